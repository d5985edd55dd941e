package dmarc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics and that whatever record it keeps
// formats to a text that parses cleanly back to the same record.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		// RFC 7489 Appendix B.2.
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
		"v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
		// RFC 7489 §7.1 consent record.
		"v=DMARC1",
		"V = DMARC1 ;P=Reject; sp = quarantine;ADKIM=s; aspf=S; pct=007; fo = 1 : d:S; rf=AFRF; ri=3600; ruf=https://r.example/x!1G , mailto:f@example.com;",
		"v=DMARC1; rua=mailto:d@example.com; sp=bogus",
		"v=DMARC1; p=reject; np=reject; x=a=b",
		"v=DMARC1; p=reject; rua=mailto:a%2Cb@example.com!18446744073709551615t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if r == nil {
			if err == nil {
				t.Fatalf("Parse(%q) = nil, nil", in)
			}
			return
		}
		out := r.String()
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) kept %q, which does not parse cleanly: %v", in, out, err)
		}
		if d := cmp.Diff(r, r2); d != "" {
			t.Fatalf("Parse(%q).String() = %q parses differently (-first +second):\n%s", in, out, d)
		}
	})
}

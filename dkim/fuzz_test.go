package dkim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics and that a record it accepts
// formats to a text that parses back to the same record.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		// RFC 6376 Appendix C and RFC 8463 Appendix A.2.
		"v=DKIM1; p=" + rfc6376Key,
		"v=DKIM1; k=ed25519; p=" + rfc8463Key,
		"v=DKIM1; p=",
		"k=rsa; h=sha1:sha256; s=email:*; t=y:s; n=note; x_1=y; p=" + keyPKCS1512,
		" k = RSA ; h = sha1 : SHA256;\r\n p=" + keySPKI1024[:50] + " \r\n\t" + keySPKI1024[50:] + " ;",
		"v=DKIM1; k=ed25519; p=" + keyEdSPKI,
		"v=spf1 -all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if (r == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v: want exactly one of record and error", in, r, err)
		}
		if r == nil {
			return
		}
		out := r.String()
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its String %q fails: %v", in, out, err)
		}
		if d := cmp.Diff(r, r2); d != "" {
			t.Fatalf("Parse(%q).String() = %q parses differently (-first +second):\n%s", in, out, d)
		}
	})
}

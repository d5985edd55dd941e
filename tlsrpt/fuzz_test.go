package tlsrpt

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics and that a record it accepts
// formats to a text that parses back to the same record.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		// RFC 8460 §3.1.1 and §3.1.2.
		"v=TLSRPTv1;rua=mailto:reports@example.com",
		"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		"v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example/x?d=1;  ext_1.a-b=x:y ;",
		"v=TLSRPTv1; rua=reports@example.com",
		"v=TLSRPTv1",
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

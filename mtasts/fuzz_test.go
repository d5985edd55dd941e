package mtasts

import (
	"reflect"
	"testing"
)

// FuzzParse parses, formats with String, re-parses and compares.
// Seeds are the RFC 8461 §3.1 example and near misses.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;",
		"v=STSv1;id=a",
		"v=STSv1 ;\tid=abc ; ",
		"v=STSv1; ext.a-1=x:y; id=1",
		"v=STSv1; id=2026-11-22",
		"v=STSv1; id=a;; x=y",
		"v=STSv1",
		"v=spf1 -all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("String() of %q is %q, which does not parse: %v", s, r.String(), err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip of %q: %+v != %+v", s, r, again)
		}
	})
}

// FuzzParsePolicy parses, formats with String, re-parses and compares.
// Seeds are the RFC 8461 §3.2 example, its CRLF form and near misses.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
		"version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400",
		"version: STSv1\nmode: none\nmax_age: 0\n",
		"version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 31557600\nx-note: hello: ü\n",
		"version: STSv1\nmode: enforce\nmx: mx.*.example.com\nmax_age: 1\n",
		"max_age: 31557601\n",
		"mode : enforce\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		again, err := ParsePolicy(p.String())
		if err != nil {
			t.Fatalf("String() of %q is %q, which does not parse: %v", s, p.String(), err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("round trip of %q: %+v != %+v", s, p, again)
		}
		for _, mx := range p.MX {
			if !p.Matches(mx) && mx[0] != '*' {
				t.Fatalf("pattern %q does not match itself", mx)
			}
		}
	})
}

package spf

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxtrace/mxtrace/internal/spfsuite"
)

// FuzzParse parses, formats with String, re-parses and compares. Seeds are
// the records of RFC 7208 Appendix A and §7.4, and every record of the RFC
// 7208 test suite.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=spf1 +all",
		"v=spf1 a -all",
		"v=spf1 a:example.org -all",
		"v=spf1 mx -all",
		"v=spf1 mx:example.org -all",
		"v=spf1 mx mx:example.org -all",
		"v=spf1 mx/30 mx:example.org/30 -all",
		"v=spf1 ptr -all",
		"v=spf1 ip4:192.0.2.128/28 -all",
		"v=spf1 include:example.com include:example.net -all",
		"v=spf1 redirect=example.org",
		"v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all",
		"v=spf1 -ip4:192.0.2.0/24 +all",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
		"v=spf1 mx -all exp=explain._spf.%{d}",
		"v=spf1 a:%{lr-}.lp.%{ir}.%{v}._spf.%{d2} ip6:2001:db8::/32 a//64 ~all",
	} {
		f.Add(s)
	}
	if data, err := os.ReadFile(suiteFile); err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var sc spfsuite.Scenario
			if dec.Decode(&sc) != nil {
				break
			}
			for _, entries := range sc.ZoneData {
				for _, e := range entries {
					var m map[string]any
					if e.Decode(&m) != nil {
						continue
					}
					for _, typ := range []string{"SPF", "TXT"} {
						if s, ok := m[typ].(string); ok && IsRecord(s) {
							f.Add(s)
						}
					}
				}
			}
		}
	}
	env := &macroEnv{sender: "a-b@example.com", local: "a-b", domainOf: "example.com", domain: "example.com",
		ip: netip.MustParseAddr("2001:db8::1"), helo: "mx.example.com", ptr: func(string) string { return "unknown" }}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "position ") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		text := r.String()
		r2, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String() %q does not parse: %v", s, text, err)
		}
		if d := equalRecords(r, r2); d != "" {
			t.Fatalf("round trip of %q via %q differs:\n%s", s, text, d)
		}
		if text2 := r2.String(); text2 != text {
			t.Fatalf("String() not stable: %q then %q", text, text2)
		}
		// A domain-spec that parsed always expands.
		for _, term := range r.Terms {
			if term.Domain == "" || term.Modifier && term.Name != ModRedirect && term.Name != ModExp {
				continue
			}
			if _, err := term.Domain.expand(env, domainLetters, false); err != nil {
				t.Fatalf("%q parsed but does not expand: %v", term.Raw, err)
			}
		}
	})
}

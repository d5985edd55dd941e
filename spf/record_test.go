package spf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		want   string // String() of the result
		lookup int    // Lookups()
	}{
		{"v=spf1", "v=spf1", 0},
		{"V=SPF1  -ALL ", "v=spf1 -all", 0},
		{"v=spf1 +mx a:Mail.Example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:DB8::/32 -all", "v=spf1 +mx a:Mail.Example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 -all", 2},
		{"v=spf1 a//64 mx/0 ptr ptr:example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all", "v=spf1 a//64 mx/0 ptr ptr:example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all", 5},
		{"v=spf1 include:_spf.example.com redirect=_spf.example.net exp=explain._spf.%{d}", "v=spf1 include:_spf.example.com redirect=_spf.example.net exp=explain._spf.%{d}", 2},
		{"v=spf1 -all redirect=example.net", "v=spf1 -all redirect=example.net", 0}, // RFC 7208 §6.1: ignored beside all
		{"v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 0},
		{"v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:foo:bar/baz.example.com", 1},
		{"v=spf1 a:foo.example.xn--zckzah -all", "v=spf1 a:foo.example.xn--zckzah -all", 1},
		{"v=spf1 ip6:::1.1.1.1/0", "v=spf1 ip6:::101:101/0", 0},
		{"v=spf1 a:macro%%percent%_%_space%-url-space.example.com", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com", 1},
		{"v=spf1 default=+", "v=spf1 default=+", 0},
	}
	for _, tc := range tests {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := r.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if got := r.Lookups(); got != tc.lookup {
			t.Errorf("Parse(%q).Lookups() = %d, want %d", tc.in, got, tc.lookup)
		}
	}
}

func TestParseTerms(t *testing.T) {
	r, err := Parse("v=spf1 -a:example.com/24//64 ip4:192.0.2.1 redirect=x.example")
	if err != nil {
		t.Fatal(err)
	}
	want := []Term{
		{Pos: 7, Raw: "-a:example.com/24//64", Qualifier: QualifierFail, Name: "a", Domain: "example.com", CIDR4: 24, CIDR6: 64},
		{Pos: 29, Raw: "ip4:192.0.2.1", Name: "ip4", Network: netip.MustParsePrefix("192.0.2.1/32"), CIDR4: -1, CIDR6: -1},
		{Pos: 43, Raw: "redirect=x.example", Modifier: true, Name: "redirect", Domain: "x.example", CIDR4: -1, CIDR6: -1},
	}
	if d := cmp.Diff(want, r.Terms, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("terms (-want +got):\n%s", d)
	}
	if q := r.Terms[1].Qualifier; q != 0 || q.Effective() != QualifierPass || q.Status() != Pass {
		t.Errorf("implicit qualifier %q effective %q status %q", q, q.Effective(), q.Status())
	}
	if red, ok := r.Redirect(); !ok || red.Domain != "x.example" {
		t.Errorf("Redirect() = %+v, %v", red, ok)
	}
	if _, ok := r.Exp(); ok {
		t.Error("Exp() found one")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in  string
		pos int
		msg string
	}{
		{"v=spf1 ip4:192.0.2.1 incude:_spf.example.com -all", 21, `unknown mechanism "incude"`},
		{"spf1 -all", 0, `does not start with "v=spf1"`},
		{"v=spf1-all", 0, `does not start with "v=spf1"`},
		{"v=spf1 -all.", 8, `unknown mechanism "all."`},
		{"v=spf1 -all:foobar", 11, "all takes no argument"},
		{"v=spf1 -all/8", 11, "all takes no argument"},
		{"v=spf1 ip4:1.2.3.4/33", 19, "larger than 32"},
		{"v=spf1 ip4:1.2.3.4/032", 19, "leading zero"},
		{"v=spf1 ip4", 10, "needs"},
		{"v=spf1 ip4:1.2.3", 11, "not an IPv4 address"},
		{"v=spf1 ip4:1.2.3.4:8080", 11, "not an IPv4 address"},
		{"v=spf1 ip4:1.2.3.4//32", 19, "not a number"},
		{"v=spf1 ip6::CAFE::BABE", 11, "not an IPv6 address"},
		{"v=spf1 ip6:::1.1.1.1/129", 21, "larger than 128"},
		{"v=spf1 ip6:fe80::1%eth0", 11, "not an IPv6 address"},
		{"v=spf1 ip4:::1", 11, "not an IPv4 address"},
		{"v=spf1 a/33", 9, "larger than 32"},
		{"v=spf1 a//129", 10, "larger than 128"},
		{"v=spf1 a/24/64", 12, "larger than 32"},
		{"v=spf1 a:", 9, "empty domain"},
		{"v=spf1 a:foo-bar", 9, "top-level label"},
		{"v=spf1 a:museum.", 9, "top-level label"},
		{"v=spf1 a:111.222.33.44", 20, "not a valid top-level label"},
		{"v=spf1 a:example.-com", 17, "not a valid top-level label"},
		{"v=spf1 a:example.com:8080", 17, "not a valid top-level label"},
		{"v=spf1 a:foo.example.com\x00", 24, "0x00"},
		{"v=spf1 a:ctrl.example.com\rptr -all", 25, "0x0D"},
		{"v=spf1 include", 14, "needs"},
		{"v=spf1 include: -all", 15, "needs a domain"},
		{"v=spf1 include:ip5.example.com/24 -all", 27, `"com/24" is not a valid top-level label`},
		{"v=spf1 exists", 13, "needs"},
		{"v=spf1 ptr/0 -all", 10, `unexpected "/0"`},
		{"v=spf1 redirect:example.com", 7, "is a modifier"},
		{"v=spf1 redirect=", 16, "needs a domain"},
		{"v=spf1 exp=-all", 11, "top-level label"},
		{"v=spf1 exp=a.example.com exp=b.example.com", 25, "second exp= modifier"},
		{"v=spf1 redirect=a.example.com -all redirect=a.example.com", 35, "second redirect= modifier"},
		{"v=spf1 1up=foo", 7, `unknown mechanism "1up"`},
		{"v=spf1 =all", 7, "missing mechanism name"},
		{"v=spf1 moo.cow/far_out=man:dog/cat", 7, `unknown mechanism "moo.cow"`},
		{"v=spf1 foo=%abc", 11, `"%" followed by 'a'`},
		{"v=spf1 exists:%(ir).sbl.example.com", 14, `"%" followed by '('`},
		{"v=spf1 exists:foo%.sbl.example.com", 17, `"%" followed by '.'`},
		{"v=spf1 a:%{a}.example.com", 11, "unknown macro letter 'a'"},
		{"v=spf1 exp=%{r}.example.com", 13, "allowed only in explanation text"},
		{"v=spf1 a:%{d0}.example.com", 12, "nonzero"},
		{"v=spf1 a:%{d2r!}.example.com", 14, "not a macro delimiter"},
		{"v=spf1 a:%{d.example.com", 9, "not closed"},
		{"v=spf1 a:x.example.com%", 22, "at the end"},
		{"v=spf1 a:\u00e9.example.com", 9, "0xC3"},
		{"v=spf1 ip4:192.0.2.5\n include:x.example.com ~all", 20, "0x0A"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tc.in, err)
			continue
		}
		if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%q) = %q, want position %d and %q", tc.in, err, tc.pos, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "position ") {
			t.Errorf("error %q does not start with its position", err)
		}
	}
}

func TestParseTooLong(t *testing.T) {
	_, err := Parse("v=spf1 " + strings.Repeat("a ", MaxRecordLength))
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("got %v", err)
	}
}

func TestIsRecord(t *testing.T) {
	for in, want := range map[string]bool{
		"v=spf1": true, "v=spf1 -all": true, "V=SpF1 mx": true,
		"v=spf10": false, "v=spf1mx": false, "": false, " v=spf1": false, "spf2.0/pra": false,
	} {
		if got := IsRecord(in); got != want {
			t.Errorf("IsRecord(%q) = %v", in, got)
		}
	}
}

// The examples of RFC 7208 §7.4.
func TestMacroExpansionRFCExamples(t *testing.T) {
	env := &macroEnv{
		sender: "strong-bad@email.example.com", local: "strong-bad", domainOf: "email.example.com",
		domain: "email.example.com", ip: netip.MustParseAddr("192.0.2.3"), helo: "mx.example.org",
	}
	tests := map[string]string{
		"%{s}":                              "strong-bad@email.example.com",
		"%{o}":                              "email.example.com",
		"%{d}":                              "email.example.com",
		"%{d4}":                             "email.example.com",
		"%{d3}":                             "email.example.com",
		"%{d2}":                             "example.com",
		"%{d1}":                             "com",
		"%{dr}":                             "com.example.email",
		"%{d2r}":                            "example.email",
		"%{l}":                              "strong-bad",
		"%{l-}":                             "strong.bad",
		"%{lr}":                             "strong-bad",
		"%{lr-}":                            "bad.strong",
		"%{l1r-}":                           "strong",
		"%{ir}.%{v}._spf.%{d2}":             "3.2.0.192.in-addr._spf.example.com",
		"%{lr-}.lp._spf.%{d2}":              "bad.strong.lp._spf.example.com",
		"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}":   "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
		"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}":  "3.2.0.192.in-addr.strong.lp._spf.example.com",
		"%{d2}.trusted-domains.example.net": "example.com.trusted-domains.example.net",
		"%%%_%-":                            "% %20",
		"%{S}":                              "strong-bad%40email.example.com",
		"%{h}":                              "mx.example.org",
	}
	for in, want := range tests {
		got, err := MacroString(in).expand(env, domainLetters, false)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", in, got, err, want)
		}
	}
	env.ip = netip.MustParseAddr("2001:db8::cb01")
	got, err := MacroString("%{ir}.%{v}._spf.%{d2}").expand(env, domainLetters, false)
	if want := "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"; err != nil || got != want {
		t.Errorf("IPv6 %%{ir}: %q, %v; want %q", got, err, want)
	}
	got, err = MacroString("%{c} %{r} %{t}").expand(env, allLetters, true)
	if want := "2001:db8::cb01 unknown 0"; err != nil || got != want {
		t.Errorf("explanation letters: %q, %v; want %q", got, err, want)
	}
}

func TestQueryName(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 30) + "example.com" // 311 characters
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Example.COM.", "Example.COM.", true},
		{"a..example.com", "", false},
		{strings.Repeat("a", 64) + ".example.com", "", false},
		{"", "", false},
		{`back\slash.example.com`, `back\\slash.example.com.`, true},
		{long, "", false}, // RFC 7208 §4.3: too long; only macro expansions are truncated
		{truncateName(long), strings.Repeat("abcdefghi.", 24) + "example.com.", true},
	}
	for _, tc := range tests {
		got, ok := queryName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && len(strings.TrimSuffix(got, ".")) > MaxNameLength {
			t.Errorf("queryName(%q) longer than %d", tc.in, MaxNameLength)
		}
	}
}

// equalRecords compares two parses of the same record, ignoring where
// terms were and how they were spelt.
func equalRecords(a, b *Record) string {
	return cmp.Diff(a.Terms, b.Terms,
		cmpopts.IgnoreFields(Term{}, "Pos", "Raw"),
		cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }),
		cmpopts.EquateEmpty())
}

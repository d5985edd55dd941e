package spf

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/mxtrace/mxtrace/resolve"
)

// seenResolver records every question asked of the resolver it wraps.
type seenResolver struct {
	r    resolve.Resolver
	mu   sync.Mutex
	seen []resolve.Question
}

func (s *seenResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	s.mu.Lock()
	s.seen = append(s.seen, q)
	s.mu.Unlock()
	return s.r.Lookup(ctx, q)
}

// names returns the names asked for, in order.
func (s *seenResolver) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, q := range s.seen {
		out = append(out, q.Name)
	}
	return out
}

// txtStrings writes s as the quoted character-strings of one TXT record.
func txtStrings(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}

// TestExpansionTruncated checks RFC 7208 §4.8 and §7.3: an expanded name
// over 253 characters loses labels on the left until it fits, and that is
// the name the resolver is asked for; a name that cannot be made valid is
// not asked for and its term does not match.
func TestExpansionTruncated(t *testing.T) {
	const d = "long.example.test" // %{d}: 17 characters
	dotted := strings.Repeat("abcdefghi.", 23)
	truncated := dotted + "ab." + d              // 250 characters
	exact := dotted + "abcde." + d               // 253 characters
	huge := strings.Repeat("%{l}", 300) + "%{d}" // 300 copies of a 250-octet local part: 75,017 characters
	zone := `
$ORIGIN example.test.
@     300 SOA ns hostmaster 1 7200 900 1209600 300
long  TXT "v=spf1 a:%{l}.%{d} -all"
many  TXT ` + txtStrings("v=spf1 a:"+huge+" -all") + `
` + truncated + `. A 192.0.2.7
` + exact + `. A 192.0.2.8
` + dotted + `many.example.test. A 192.0.2.9
`
	zones, err := resolve.ParseZones(strings.NewReader(zone), "truncate")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		local  string
		domain string
		ip     string
		status Status
		asked  string // the A query the a mechanism made; "" for none
	}{
		// 300 characters: the five leftmost labels go.
		{"over 253", strings.Repeat("abcdefghi.", 28) + "ab", d, "192.0.2.7", Pass, truncated + "."},
		// Exactly 253: untouched.
		{"exactly 253", strings.Repeat("abcdefghi.", 23) + "abcde", d, "192.0.2.8", Pass, exact + "."},
		// 289 characters; dropping the 200-octet label leaves a 70-octet
		// one: no valid name, no query, no match.
		{"long label left", strings.Repeat("b", 200) + "." + strings.Repeat("a", 70), d, "192.0.2.7", Fail, ""},
		// An expansion far over any bound still gives its last labels.
		{"75,017 characters", strings.Repeat("abcdefghi.", 25), "many.example.test", "192.0.2.9", Pass, dotted + "many.example.test."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &seenResolver{r: zones}
			res := (&Checker{Resolver: r}).CheckHost(t.Context(), Query{IP: netip.MustParseAddr(tc.ip), Sender: tc.local + "@" + tc.domain})
			if res.Status != tc.status {
				t.Errorf("status %s (%v), want %s", res.Status, res.Err, tc.status)
			}
			var asked []string
			for _, q := range r.seen {
				if q.Type != 16 { // everything but the record's own TXT query
					asked = append(asked, q.Name)
				}
			}
			switch {
			case tc.asked == "" && len(asked) != 0:
				t.Errorf("asked %q, want no query", asked)
			case tc.asked != "" && (len(asked) != 1 || asked[0] != tc.asked):
				t.Errorf("asked %q, want [%q]", asked, tc.asked)
			}
		})
	}
}

// TestExpansionTailEquivalent checks that keeping only the end of a long
// domain-spec expansion gives the query name the whole expansion gives.
func TestExpansionTailEquivalent(t *testing.T) {
	locals := []string{
		strings.Repeat("abcdefghi.", 25),
		strings.Repeat("x", 64),
		strings.Repeat("x", 300),
		"a.b",
		"a..b",
		strings.Repeat("a", 62) + ".",
		strings.Repeat("ab.", 100) + strings.Repeat("c", 63),
		".",
	}
	specs := []func(n int) string{
		func(n int) string { return strings.Repeat("%{l}", n) + ".%{d}" },
		func(n int) string { return strings.Repeat("%{l}.", n) + "%{d}" },
		func(n int) string { return "x." + strings.Repeat("%{l}", n) },
		func(n int) string { return strings.Repeat("%{l}", n) + "." },
	}
	for _, l := range locals {
		for si, spec := range specs {
			for _, n := range []int{1, 2, 50, 1000} {
				m := spec(n)
				env := &macroEnv{local: l, domain: "example.com"}
				got, err := MacroString(m).expand(env, domainLetters, false)
				if err != nil {
					t.Fatalf("spec %d, n %d: %v", si, n, err)
				}
				if len(got) > maxExpansion {
					t.Errorf("spec %d, n %d: expansion of %d bytes kept", si, n, len(got))
				}
				whole := strings.ReplaceAll(strings.ReplaceAll(m, "%{l}", l), "%{d}", "example.com")
				wq, wok := queryName(truncateName(whole))
				gq, gok := queryName(got)
				if wq != gq || wok != gok {
					t.Errorf("local %.20q…, spec %d, n %d: %q, %v; the whole expansion gives %q, %v", l, si, n, gq, gok, wq, wok)
				}
			}
		}
	}
}

func TestTruncateName(t *testing.T) {
	a63 := strings.Repeat("a", 63)
	name253 := strings.Join([]string{a63, a63, a63, strings.Repeat("b", 61)}, ".")
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{name253, name253},
		{name253 + ".", name253 + "."},
		{"x." + name253, name253},
		{strings.Repeat("x.", 10) + name253, name253},
		{"xx" + name253, name253[64:]},
		{"x." + name253 + ".", name253 + "."},
		{strings.Repeat("c", 300), strings.Repeat("c", 300)},
		{strings.Repeat("c", 300) + ".example.com", "example.com"},
	} {
		if got := truncateName(tc.in); got != tc.want {
			t.Errorf("truncateName(%.30q…) = %.30q…; want %.30q…", tc.in, got, tc.want)
		}
	}
}

// TestLongDomainNotTruncated: the domain check_host() starts from is not a
// macro expansion. Over 253 characters it is malformed, and the result is
// none (RFC 7208 §4.3), not the policy of a shorter name.
func TestLongDomainNotTruncated(t *testing.T) {
	short := strings.Repeat("abcdefghi.", 23) + "example.test" // 242 characters
	zone := `
$ORIGIN example.test.
@ 300 SOA ns hostmaster 1 7200 900 1209600 300
` + short + `. TXT "v=spf1 +all"
`
	zones, err := resolve.ParseZones(strings.NewReader(zone), "long")
	if err != nil {
		t.Fatal(err)
	}
	r := &seenResolver{r: zones}
	res := (&Checker{Resolver: r}).CheckHost(t.Context(), Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "joe@abcdefghi.abcdefghi." + short})
	if res.Status != None || !errors.Is(res.Err, ErrInvalidDomain) || !strings.Contains(res.Err.Error(), "262 characters long") {
		t.Errorf("%s %v; want none, too long", res.Status, res.Err)
	}
	if n := r.names(); len(n) != 0 {
		t.Errorf("asked %q", n)
	}
	// A domain of 100,000 characters is not quoted whole.
	huge := strings.Repeat("x", 100000) + ".example.test"
	res = (&Checker{Resolver: r}).CheckHost(t.Context(), Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "joe@" + huge})
	if res.Status != None || len(res.Err.Error()) > 400 || !strings.Contains(res.Err.Error(), "100013 characters long") {
		t.Errorf("%s, %d-byte error %.300q", res.Status, len(res.Err.Error()), res.Err)
	}
}

// FuzzExpansionTail checks that the bounded expansion of a domain-spec
// gives the query name the whole expansion gives once truncated (RFC 7208
// §4.8, §7.3), for any macro-string repeated any number of times and any
// local part.
func FuzzExpansionTail(f *testing.F) {
	f.Add("%{l}", "abcdefghi.abcdefghi", uint16(300))
	f.Add("%{L}.", strings.Repeat("x", 70), uint16(50))
	f.Add("%{l2r-}.x", "a-b.c-d", uint16(2000))
	f.Add("%{d}.%{l}", "..", uint16(100))
	f.Fuzz(func(t *testing.T, unit, local string, n uint16) {
		toks, serr := tokenizeMacro(unit, domainLetters, false)
		if serr != nil || len(unit) > 64 || len(local) > 300 || n > 2000 {
			return
		}
		env := &macroEnv{local: local, sender: local + "@example.com", domain: "example.com", domainOf: "example.com", helo: "h.example"}
		var whole strings.Builder
		for range n {
			for _, t := range toks {
				if t.letter == 0 {
					whole.WriteString(t.literal)
				} else {
					whole.WriteString(t.apply(env.value(t.letter)))
				}
			}
		}
		m := MacroString(strings.Repeat(unit, int(n)))
		got, err := m.expand(env, domainLetters, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > maxExpansion {
			t.Fatalf("%d bytes kept", len(got))
		}
		wq, wok := queryName(truncateName(whole.String()))
		gq, gok := queryName(got)
		if wq != gq || wok != gok {
			t.Fatalf("%q, %v; the whole expansion gives %q, %v", gq, gok, wq, wok)
		}
	})
}

package resolve_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// TestCanonicalName: names without escapes agree with miekg's
// dns.CanonicalName (RFC 4034 §6.2: fully qualified, ASCII letters
// folded); every spelling of a name with octets that need escapes becomes
// the one miekg/dns reads from the wire.
func TestCanonicalName(t *testing.T) {
	for _, name := range []string{"", ".", "example.com", "example.com.", "MX1.Example.COM.", "_25._TCP.mx.example.", "a..b.", "bad-" + strings.Repeat("x", 70) + ".example."} {
		if got, want := resolve.CanonicalName(name), dns.CanonicalName(name); got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", name, got, want)
		}
	}
	for _, tt := range []struct {
		want      string
		spellings []string
	}{
		{`macro%percent\ \ space%20url-space.example.com.`, []string{
			"macro%percent  space%20url-space.example.com",
			`macro%percent\032\032space%20url-space.example.com.`,
			`Macro%Percent\ \032Space%20URL-space.EXAMPLE.com.`,
		}},
		{`a\@b.example.`, []string{"a@b.example.", `a\064b.example.`, `A\@B.example`}},
		{`a\;b.example.`, []string{"a;b.example.", `a\059b.example.`}},
		{`a\\b.example.`, []string{`a\\b.example.`, `a\092b.example.`}},
		{`a\.b.example.`, []string{`a\.b.example.`, `A\046B.example.`}},
		{`\195\169.example.`, []string{"é.example.", `\195\169.Example.`, "\xc3\xa9.example."}},
		{"abc.example.", []string{`a\066c.example.`, `\097BC.example`}},
	} {
		for _, s := range tt.spellings {
			if got := resolve.CanonicalName(s); got != tt.want {
				t.Errorf("CanonicalName(%q) = %q, want %q", s, got, tt.want)
			}
			if !resolve.EqualNames(s, tt.want) || !resolve.EqualNames(tt.want, s) {
				t.Errorf("EqualNames(%q, %q) = false", s, tt.want)
			}
			if q := resolve.Q(s, dns.TypeA); q != resolve.Q(tt.want, dns.TypeA) {
				t.Errorf("Q(%q) = %v, want the question of %q", s, q, tt.want)
			}
		}
	}
	for _, pair := range [][2]string{{"a b.example.", "ab.example."}, {`a\032b.example.`, `a\033b.example.`}, {"a.b.", `a\.b.`}} {
		if resolve.EqualNames(pair[0], pair[1]) {
			t.Errorf("EqualNames(%q, %q) = true", pair[0], pair[1])
		}
	}
}

// TestCanonicalNameNoAlloc: every question a scan asks goes through
// CanonicalName (Q), most of them already canonical, and every record of
// every answer through EqualNames: neither allocates for such a name.
func TestCanonicalNameNoAlloc(t *testing.T) {
	for _, name := range []string{"mx1.example.com.", "_25._tcp.mx.example.", "."} {
		if n := testing.AllocsPerRun(100, func() { resolve.Q(name, dns.TypeMX) }); n != 0 {
			t.Errorf("Q(%q): %v allocations, want 0", name, n)
		}
		upper := strings.ToUpper(name)
		if n := testing.AllocsPerRun(100, func() { resolve.EqualNames(upper, name) }); n != 0 {
			t.Errorf("EqualNames(%q, %q): %v allocations, want 0", upper, name, n)
		}
	}
}

// FuzzCanonicalName: the canonical form is fully qualified, folded and a
// fixed point; EqualNames agrees with it; a name without escapes is
// dns.CanonicalName's, and one miekg/dns can pack is what it reads back
// from the wire.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"Example.COM", "a.b.", "\xff\x41.", `a\032b.`, "a b.", `a\`, `\999.`, `\.`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := resolve.CanonicalName(name)
		if strings.ContainsAny(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.HasSuffix(got, ".") {
			t.Errorf("CanonicalName(%q) = %q", name, got)
		}
		if again := resolve.CanonicalName(got); again != got {
			t.Errorf("CanonicalName(%q) = %q, and again %q", name, got, again)
		}
		if !resolve.EqualNames(name, got) {
			t.Errorf("EqualNames(%q, its canonical form %q) = false", name, got)
		}
		// miekg's strings.Map turns invalid UTF-8 into U+FFFD; a DNS
		// label is bytes, so ours keeps them.
		if plain := !strings.ContainsAny(name, "\\ \"();@'") && utf8.ValidString(name) && !hasNonPrintable(name); plain {
			if want := dns.CanonicalName(name); got != want {
				t.Errorf("CanonicalName(%q) = %q, want %q", name, got, want)
			}
		}
		fqdn := name
		if !strings.HasSuffix(fqdn, ".") {
			fqdn += "."
		}
		var wire [256]byte
		if n, err := dns.PackDomainName(fqdn, wire[:], 0, nil, false); err == nil {
			back, _, err := dns.UnpackDomainName(wire[:n], 0)
			if err == nil && !strings.EqualFold(back, got) {
				t.Errorf("CanonicalName(%q) = %q, miekg reads %q from its wire form", name, got, back)
			}
		}
	})
}

func hasNonPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return true
		}
	}
	return false
}

// TestEqualNames: equal exactly when the canonical forms are.
func TestEqualNames(t *testing.T) {
	names := []string{"", ".", "a", "a.", "A.", "a..", "Mx.Example.", "mx.example", "mx.example.", "mx.exampl.", "MX.EXAMPLE", "xn--bcher-kva.example.", "\u212a.", "k.", "ß.", "a\\.b.", "A\\.B", "a b.", `a\032b.`, `A\ B`, "a@b.", `a\064B.`, `a\`, `\999.`}
	for _, a := range names {
		for _, b := range names {
			want := resolve.CanonicalName(a) == resolve.CanonicalName(b)
			if got := resolve.EqualNames(a, b); got != want {
				t.Errorf("EqualNames(%q, %q) = %v, canonical forms say %v", a, b, got, want)
			}
		}
	}
}

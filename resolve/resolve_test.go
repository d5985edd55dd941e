package resolve_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
)

// TestCanonicalName agrees with miekg's dns.CanonicalName (RFC 4034 §6.2:
// fully qualified, ASCII letters folded, other bytes kept).
func TestCanonicalName(t *testing.T) {
	for _, name := range []string{"", ".", "example.com", "example.com.", "MX1.Example.COM.", "a\\066c.example.", "Bücher.example", `x\.Y.example.`, "_25._TCP.mx.example."} {
		if got, want := resolve.CanonicalName(name), dns.CanonicalName(name); got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"Example.COM", "a.b.", "\xff\x41."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := resolve.CanonicalName(name)
		// miekg's strings.Map turns invalid UTF-8 into U+FFFD; a DNS
		// label is bytes, so ours keeps them, and agrees otherwise.
		if want := dns.CanonicalName(name); utf8.ValidString(name) && got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", name, got, want)
		}
		if strings.ContainsAny(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.HasSuffix(got, ".") || len(got) < len(name) || len(got) > len(name)+1 {
			t.Errorf("CanonicalName(%q) = %q", name, got)
		}
	})
}

// TestEqualNames: equal exactly when the canonical forms are.
func TestEqualNames(t *testing.T) {
	names := []string{"", ".", "a", "a.", "A.", "a..", "Mx.Example.", "mx.example", "mx.example.", "mx.exampl.", "MX.EXAMPLE", "xn--bcher-kva.example.", "\u212a.", "k.", "ß.", "a\\.b.", "A\\.B"}
	for _, a := range names {
		for _, b := range names {
			want := resolve.CanonicalName(a) == resolve.CanonicalName(b)
			if got := resolve.EqualNames(a, b); got != want {
				t.Errorf("EqualNames(%q, %q) = %v, canonical forms say %v", a, b, got, want)
			}
		}
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	return resolvetest.MustRR(t, s)
}

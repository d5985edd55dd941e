package dnsname

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"  example.com  ", "example.com"},
		{"postmaster@example.org", "example.org"},
		{"\"odd@local\"@Example.Org", "example.org"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"fußball.example", "xn--fuball-cta.example"}, // non-transitional: ß kept (UTS #46, IDNA2008)
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"com", "com"},
		{"1.2.3.4.in-addr.arpa", "1.2.3.4.in-addr.arpa"},
		{"123.example", "123.example"},
		{"123", "123"}, // one label: not an address (a single-label domain is valid input)
		{"a-b.example", "a-b.example"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	} {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 26) + "example" // 267 characters
	for _, tt := range []struct {
		in, wantInMessage string
	}{
		{"", "is empty"},
		{"   ", "is empty"},
		{"user@", "is empty"},
		{".", "root"},
		{"example..com", "empty label"},
		{".example.com", "empty label"},
		{"example.com..", "empty label"},
		{"exa mple.com", `label "exa mple" contains white space`},
		{"-example.com", `label "-example" starts with a hyphen`},
		{"example-.com", `label "example-" ends with a hyphen`},
		{strings.Repeat("a", 64) + ".example", "is 64 octets long, more than 63"},
		{long, "more than 253"},
		{"exa!mple.com", `contains the character '!'`},
		{"a/b.example", `contains the character '/'`},
		{"192.0.2.1", "192.0.2.1 is an IP address, not a domain name"},
		{"192.0.2.1.", "192.0.2.1 is an IP address, not a domain name"},
		{" 2001:db8::1 ", "2001:db8::1 is an IP address, not a domain name"},
		{"[192.0.2.1]", "[192.0.2.1] is an address literal, not a domain name"},
		{"user@[IPv6:2001:db8::1]", `"user@[IPv6:2001:db8::1]": [IPv6:2001:db8::1] is an address literal`},
		{"postmaster@192.0.2.1", `"postmaster@192.0.2.1": 192.0.2.1 is an IP address`},
		{"10.1", "10.1 looks like an IP address"},
		// Empty labels are bad names, not addresses ("looks like an IP
		// address" before).
		{"..", "empty label"},
		{"1..2", "empty label"},
		{"...", "empty label"},
		// UTS #46 maps these labels to nothing ("is empty" before,
		// naming no label).
		{"xn--.example", `label "xn--" is empty once converted to an A-label`},
		{"XN--.example", `label "XN--" is empty once converted`},
		{"\u00ad.example", "is empty once converted"},
	} {
		_, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q): no error", tt.in)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): error %v does not wrap ErrInvalid", tt.in, err)
		}
		if msg := err.Error(); !strings.Contains(msg, tt.wantInMessage) || strings.Contains(msg, "\n") {
			t.Errorf("Parse(%q) = %q, want one line containing %q", tt.in, msg, tt.wantInMessage)
		}
	}
}

func TestNameMethods(t *testing.T) {
	n := MustParse("mx.Bücher.example")
	if n.FQDN() != "mx.xn--bcher-kva.example." {
		t.Errorf("FQDN = %q", n.FQDN())
	}
	if n.Unicode() != "mx.bücher.example" {
		t.Errorf("Unicode = %q", n.Unicode())
	}
	p, ok := n.Parent()
	if !ok || p != "xn--bcher-kva.example" {
		t.Errorf("Parent = %q, %v", p, ok)
	}
	if _, ok := Name("com").Parent(); ok {
		t.Error("com has no parent name")
	}
	if !n.IsSubdomainOf("example") || Name("badexample").IsSubdomainOf("example") {
		t.Error("IsSubdomainOf must match whole labels only")
	}
}

// FuzzParse: Parse never panics, and what it accepts is canonical, valid
// and a fixed point.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "a@b.c", "..", "-a.b", strings.Repeat("x", 70), "xn--zz", "٠٠.example", "a\u200db.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		s := string(n)
		if len(s) == 0 || len(s) > MaxNameLength || strings.HasSuffix(s, ".") || s != strings.ToLower(s) {
			t.Fatalf("Parse(%q) = %q: not canonical", in, s)
		}
		for l := range strings.SplitSeq(s, ".") {
			if msg := checkLabel(l); msg != "" {
				t.Fatalf("Parse(%q) = %q: label %q %s", in, s, l, msg)
			}
		}
		again, err := Parse(s)
		if err != nil || again != n {
			t.Fatalf("Parse(Parse(%q)) = %q, %v; want %q", in, again, err, n)
		}
	})
}

// checkToASCII: for a name the shortcut takes, the full processing gives
// the same name (up to case, which Parse folds) and no error.
func checkToASCII(t *testing.T, s string) {
	t.Helper()
	if !plainASCII(s) {
		return
	}
	want, err := idnaASCII(s)
	if err != nil {
		t.Fatalf("%q: the shortcut accepts it, full UTS #46 processing fails: %v", s, err)
	}
	if got, _ := toASCII(s); !strings.EqualFold(got, want) {
		t.Fatalf("%q: shortcut gives %q, full processing %q", s, got, want)
	}
}

// TestToASCIIFastPath: which names take the shortcut, and that it agrees
// with the full processing on them (and on every single ASCII byte as a
// label).
func TestToASCIIFastPath(t *testing.T) {
	for _, tt := range []struct {
		in    string
		plain bool
	}{
		{"example.com", true},
		{"Mail-1.Example.COM", true},
		{"_dmarc.example.com", true},
		{"a--b.example", true},
		{"-a.example", true}, // hyphens are checked by checkLabel, after
		{strings.Repeat("x", 70) + ".example", true},
		{"xn--bcher-kva.example", false},
		{"XN--zz.example", false},
		{"bücher.example", false},
		{"a..b", false},
		{"a b.example", false},
		{"a\x00b.example", false},
		{"", false},
	} {
		if got := plainASCII(tt.in); got != tt.plain {
			t.Errorf("plainASCII(%q) = %v, want %v", tt.in, got, tt.plain)
		}
		checkToASCII(t, tt.in)
	}
	for c := range 128 {
		checkToASCII(t, "a"+string(rune(c))+"b.example")
	}
}

// FuzzToASCII: the shortcut never disagrees with the full processing.
func FuzzToASCII(f *testing.F) {
	for _, s := range []string{"example.com", "A-B.c_d", "xn--a", "xN--bcher-kva.x", "a.-b-"} {
		f.Add(s)
	}
	f.Fuzz(checkToASCII)
}

func TestParent(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"mx.example.com.", "example.com.", true},
		{"example.com", "com", true},
		{"com.", ".", true},
		{"com", ".", true},
		{".", "", false},
		{"", "", false},
		{`a\.b.example.`, "example.", true},    // an escaped dot is inside the label
		{`a\\.b.example.`, "b.example.", true}, // an escaped backslash, then a separator
		{`a\046b.example.`, "example.", true},  // \DDD is one octet
		{`a\032\032b.example.`, "example.", true},
		{`a\.`, ".", true},
	} {
		got, ok := Parent(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Parent(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParent: every walk up a name's ancestors ends at the root within as
// many steps as the name has bytes, each step agreeing with miekg's label
// splitting.
func FuzzParent(f *testing.F) {
	for _, s := range []string{"a.b.c.", "com", ".", "", `a\.b.`, `x\\`, `\`, "..", `a\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		steps := 0
		for n, ok := Parent(name); ok; n, ok = Parent(n) {
			if steps++; steps > len(name)+1 {
				t.Fatalf("Parent walk from %q does not end", name)
			}
			if n != "." && !strings.HasSuffix(name, n) {
				t.Fatalf("Parent walk from %q reached %q, not a suffix", name, n)
			}
		}
		if _, ok := dns.IsDomainName(name); !ok || name == "." || name == "" {
			return
		}
		p, _ := Parent(name)
		if i, end := dns.NextLabel(name, 0); !end && p != name[i:] {
			t.Errorf("Parent(%q) = %q, miekg's next label starts at %q", name, p, name[i:])
		}
	})
}

// TestParseAddressCheckNoAlloc: telling an address from a name (an IP
// address parsed as one) allocates nothing for a name, which no address
// parser needs to see: a scan parses every input line.
func TestParseAddressCheckNoAlloc(t *testing.T) {
	for _, in := range []string{"example.com", "d123.tld3.test", "mx-1.example"} {
		if got := testing.AllocsPerRun(100, func() { addressReason(in) }); got != 0 {
			t.Errorf("addressReason(%q): %v allocations, want 0", in, got)
		}
	}
}

// TestParseAllocs: a scan parses every input line, so checking a plain
// name's labels allocates nothing beyond the IDNA mapping (one) and the
// lower-casing of a name that needs it (one more); the error path alone
// splits the raw name.
func TestParseAllocs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{{"example.com", 1}, {"d123.tld3.test", 1}, {"Mail.Example.COM", 2}} {
		if got := testing.AllocsPerRun(100, func() { Parse(tt.in) }); got > tt.want {
			t.Errorf("Parse(%q): %v allocations, want at most %v", tt.in, got, tt.want)
		}
	}
}

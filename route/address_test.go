package route

import (
	"net/netip"
	"testing"
)

// TestOwners: the first host of each address is kept, in the slice and,
// past ownersInline addresses, in the map; only reports a sole address.
func TestOwners(t *testing.T) {
	var o owners
	if _, ok := o.only(); ok || o.len() != 0 {
		t.Fatal("an empty set has an only address")
	}
	o.put("192.0.2.1", "mx1")
	if a, ok := o.only(); !ok || a != "192.0.2.1" {
		t.Fatalf("only = %q, %v; want 192.0.2.1", a, ok)
	}
	const n = 3 * ownersInline
	for i := 2; i <= n; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String()
		if _, ok := o.get(a); ok {
			t.Fatalf("%s found before it was put", a)
		}
		o.put(a, "mx"+a)
	}
	if o.len() != n {
		t.Fatalf("len %d, want %d", o.len(), n)
	}
	if _, ok := o.only(); ok {
		t.Fatal("only with many addresses")
	}
	if h, ok := o.get("192.0.2.1"); !ok || h != "mx1" {
		t.Errorf("first address: %q, %v; want mx1 kept across the switch to a map", h, ok)
	}
	if h, ok := o.get("192.0.2.40"); !ok || h != "mx192.0.2.40" {
		t.Errorf("address past the slice: %q, %v", h, ok)
	}
}

// TestIsIPLiteral: an exchange named by an address (rule: MX target is a
// name) is told from a host name, with or without brackets.
func TestIsIPLiteral(t *testing.T) {
	for name, want := range map[string]bool{
		"192.0.2.1":         true,
		"[192.0.2.1]":       true,
		"2001:db8::25":      true,
		"[2001:db8::25]":    true,
		"mx1.example.com":   false,
		"1.2.3":             false, // digits and dots, but no address
		"192.0.2.1.nip.io":  false,
		"0x7f.1":            false,
		"":                  false,
		"mx:25.example.com": false,
		"123":               false,
		"192.0.2.256":       false,
		"..":                false,
		"[mx1.example.com]": false,
	} {
		if got := isIPLiteral(name); got != want {
			t.Errorf("isIPLiteral(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestEmbeddedIPv4: an IPv6 address that reaches an IPv4 one through a
// translator (NAT64's well-known prefix, 6to4) is as private as the IPv4
// address inside it; it was taken for a public address.
func TestEmbeddedIPv4(t *testing.T) {
	for addr, want := range map[string]string{
		"64:ff9b::a00:1":       "NAT64 of 10.0.0.1, private-use, RFC 1918",
		"64:ff9b::7f00:1":      "NAT64 of 127.0.0.1, loopback, RFC 1122",
		"2002:a00:1::1":        "6to4 of 10.0.0.1, private-use, RFC 1918",
		"2002:c0a8:101::25":    "6to4 of 192.168.1.1, private-use, RFC 1918",
		"::ffff:10.0.0.1":      "IPv4-mapped of 10.0.0.1, private-use, RFC 1918",
		"::ffff:8.8.8.8":       "",
		"64:ff9b::808:808":     "",
		"2002:808:808::1":      "",
		"64:ff9b::c000:201":    "", // documentation, under a documentation domain
		"2001:4860:4860::8888": "",
	} {
		if got := specialPurpose(netip.MustParseAddr(addr), "d.test"); got != want {
			t.Errorf("specialPurpose(%s) = %q, want %q", addr, got, want)
		}
	}
}

package ipclass

import (
	"net/netip"
	"testing"
)

// TestOf: every block at its first and last address, the addresses just
// outside, and the IPv6 forms that lead to IPv4. want is Class.String():
// "" for a globally reachable address.
func TestOf(t *testing.T) {
	cases := []struct{ addr, want string }{
		{"0.0.0.0", "this network, RFC 791"},
		{"0.255.255.255", "this network, RFC 791"},
		{"1.0.0.0", ""},
		{"9.255.255.255", ""},
		{"10.0.0.0", "private-use, RFC 1918"},
		{"10.255.255.255", "private-use, RFC 1918"},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.64.0.0", "shared address space, RFC 6598"},
		{"100.127.255.255", "shared address space, RFC 6598"},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"127.0.0.0", "loopback, RFC 1122"},
		{"127.255.255.255", "loopback, RFC 1122"},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.254.0.0", "link-local, RFC 3927"},
		{"169.254.255.255", "link-local, RFC 3927"},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.16.0.0", "private-use, RFC 1918"},
		{"172.31.255.255", "private-use, RFC 1918"},
		{"172.32.0.0", ""},
		{"191.255.255.255", ""},
		{"192.0.0.0", "IETF protocol assignments, RFC 6890"},
		{"192.0.0.8", "IETF protocol assignments, RFC 6890"},
		{"192.0.0.9", ""},  // PCP anycast
		{"192.0.0.10", ""}, // TURN anycast
		{"192.0.0.11", "IETF protocol assignments, RFC 6890"},
		{"192.0.0.255", "IETF protocol assignments, RFC 6890"},
		{"192.0.1.0", ""},
		{"192.0.2.0", "documentation, RFC 5737"},
		{"192.0.2.255", "documentation, RFC 5737"},
		{"192.0.3.0", ""},
		{"192.88.98.255", ""},
		{"192.88.99.0", "deprecated 6to4 relay anycast, RFC 7526"},
		{"192.88.99.255", "deprecated 6to4 relay anycast, RFC 7526"},
		{"192.88.100.0", ""},
		{"192.167.255.255", ""},
		{"192.168.0.0", "private-use, RFC 1918"},
		{"192.168.255.255", "private-use, RFC 1918"},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.18.0.0", "benchmarking, RFC 2544"},
		{"198.19.255.255", "benchmarking, RFC 2544"},
		{"198.20.0.0", ""},
		{"198.51.99.255", ""},
		{"198.51.100.0", "documentation, RFC 5737"},
		{"198.51.100.255", "documentation, RFC 5737"},
		{"198.51.101.0", ""},
		{"203.0.112.255", ""},
		{"203.0.113.0", "documentation, RFC 5737"},
		{"203.0.113.255", "documentation, RFC 5737"},
		{"203.0.114.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.0", "multicast, RFC 5771"},
		{"239.255.255.255", "multicast, RFC 5771"},
		{"240.0.0.0", "reserved, RFC 1112"},
		{"255.255.255.254", "reserved, RFC 1112"},
		{"255.255.255.255", "limited broadcast, RFC 919"},

		{"::", "unspecified, RFC 4291"},
		{"::1", "loopback, RFC 4291"},
		{"::2", "IPv4-compatible, RFC 4291"}, // of 0.0.0.2
		{"::a00:1", "IPv4-compatible, RFC 4291"},
		{"::808:808", "IPv4-compatible, RFC 4291"}, // of 8.8.8.8: refused all the same
		{"::1:0:0:0", "reserved, RFC 4291"},
		{"::ffff:8.8.8.8", ""},
		{"::ffff:10.0.0.1", "IPv4-mapped of 10.0.0.1, private-use, RFC 1918"},
		{"::ffff:192.0.2.1", "IPv4-mapped of 192.0.2.1, documentation, RFC 5737"},
		{"64:ff9b::808:808", ""},
		{"64:ff9b::a00:1", "NAT64 of 10.0.0.1, private-use, RFC 1918"},
		{"64:ff9b::7f00:1", "NAT64 of 127.0.0.1, loopback, RFC 1122"},
		{"64:ff9b::ffff:ffff", "NAT64 of 255.255.255.255, limited broadcast, RFC 919"},
		{"64:ff9b::1:0:0", "reserved, RFC 4291"}, // past the /96
		{"64:ff9b:1::", "local-use NAT64, RFC 8215"},
		{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64, RFC 8215"},
		{"64:ff9b:1::808:808", "local-use NAT64, RFC 8215"},
		{"100::", "discard-only, RFC 6666"},
		{"100::ffff:ffff:ffff:ffff", "discard-only, RFC 6666"},
		{"100:0:0:1::", "reserved, RFC 4291"},
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved, RFC 4291"},
		{"2000::", ""},
		{"2000:ffff::1", ""},
		{"2001::", "Teredo, RFC 4380"},
		{"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo, RFC 4380"},
		{"2001:1::", "IETF protocol assignments, RFC 2928"},
		{"2001:1::1", ""}, // PCP anycast
		{"2001:1::2", ""}, // TURN anycast
		{"2001:1::3", "IETF protocol assignments, RFC 2928"},
		{"2001:2::", "benchmarking, RFC 5180"},
		{"2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking, RFC 5180"},
		{"2001:2:1::", "IETF protocol assignments, RFC 2928"},
		{"2001:3::", ""}, // AMT
		{"2001:3:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:4:112::", ""}, // AS112-v6
		{"2001:4:112:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:4:113::", "IETF protocol assignments, RFC 2928"},
		{"2001:20::1", "IETF protocol assignments, RFC 2928"}, // ORCHIDv2
		{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments, RFC 2928"},
		{"2001:200::", ""},
		{"2001:4860:4860::8888", ""},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:db8::", "documentation, RFC 3849"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation, RFC 3849"},
		{"2001:db9::", ""},
		{"2002::", "6to4 of 0.0.0.0, this network, RFC 791"},
		{"2002:a00:1::1", "6to4 of 10.0.0.1, private-use, RFC 1918"},
		{"2002:c0a8:101::25", "6to4 of 192.168.1.1, private-use, RFC 1918"},
		{"2002:808:808::1", ""},
		{"2002:c058:6301::1", "6to4 of 192.88.99.1, deprecated 6to4 relay anycast, RFC 7526"},
		{"2003::", ""},
		{"2a00:1450::1", ""},
		{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"3fff::", "documentation, RFC 9637"},
		{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation, RFC 9637"},
		{"3fff:1000::", ""},
		{"4000::", "reserved, RFC 4291"},
		{"5f00::", "SRv6 SIDs, RFC 9602"},
		{"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "SRv6 SIDs, RFC 9602"},
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved, RFC 4291"},
		{"fc00::", "unique-local, RFC 4193"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local, RFC 4193"},
		{"fe80::", "link-local, RFC 4291"},
		{"fe80::1%eth0", "link-local, RFC 4291"},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local, RFC 4291"},
		{"fec0::1", "reserved, RFC 4291"}, // deprecated site-local
		{"ff00::", "multicast, RFC 4291"},
		{"ff02::1", "multicast, RFC 4291"},
	}
	met := map[netip.Prefix]bool{}
	for _, tc := range cases {
		a := netip.MustParseAddr(tc.addr)
		c := Of(a)
		if got := c.String(); got != tc.want {
			t.Errorf("Of(%s) = %q, want %q", tc.addr, got, tc.want)
		}
		if c.Global() != (tc.want == "") {
			t.Errorf("Of(%s).Global() = %v", tc.addr, c.Global())
		}
		for _, b := range Blocks() {
			if b.Prefix.Contains(a.WithZone("")) {
				met[b.Prefix] = true
				break
			}
		}
	}
	for _, b := range Blocks() {
		if !met[b.Prefix] {
			t.Errorf("no case in %s", b.Prefix)
		}
	}
}

// TestDoc: only the documentation blocks are marked, also behind NAT64,
// 6to4 and IPv4 mapping.
func TestDoc(t *testing.T) {
	for addr, want := range map[string]bool{
		"192.0.2.1":         true,
		"198.51.100.1":      true,
		"203.0.113.1":       true,
		"2001:db8::1":       true,
		"3fff::1":           true,
		"::ffff:192.0.2.1":  true,
		"64:ff9b::c000:201": true,
		"2002:c000:201::1":  true,
		"10.0.0.1":          false,
		"8.8.8.8":           false,
		"fc00::1":           false,
	} {
		if got := Of(netip.MustParseAddr(addr)).Doc; got != want {
			t.Errorf("Of(%s).Doc = %v, want %v", addr, got, want)
		}
	}
}

// TestEmbedded: every IPv6 form that embeds an IPv4 address is named,
// with its RFC and the IPv4 address inside, whether that address is
// global or not; the addresses around the forms and the plain ones are
// not. want is Embedding.String(), "" for no form.
func TestEmbedded(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"::ffff:9.9.9.9", "IPv4-mapped of 9.9.9.9, RFC 4291"},
		{"::ffff:127.0.0.1", "IPv4-mapped of 127.0.0.1 (loopback, RFC 1122), RFC 4291"},
		{"::9.9.9.9", "IPv4-compatible of 9.9.9.9, RFC 4291"},
		{"::10.0.0.1", "IPv4-compatible of 10.0.0.1 (private-use, RFC 1918), RFC 4291"},
		{"::2", "IPv4-compatible of 0.0.0.2 (this network, RFC 791), RFC 4291"},
		{"::", ""},  // unspecified, not a form
		{"::1", ""}, // loopback, not a form
		{"::1:0:0:0", ""},
		{"64:ff9b::909:909", "NAT64 of 9.9.9.9, RFC 6052"},
		{"64:ff9b::7f00:1", "NAT64 of 127.0.0.1 (loopback, RFC 1122), RFC 6052"},
		{"64:ff9b::1:0:0", ""}, // past the /96
		{"64:ff9b:1::909:909", "local-use NAT64, RFC 8215"},
		{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64, RFC 8215"},
		{"64:ff9b:2::", ""},
		{"2002:909:909::1", "6to4 of 9.9.9.9, RFC 3056"},
		{"2002:7f00:1::1", "6to4 of 127.0.0.1 (loopback, RFC 1122), RFC 3056"},
		{"2002:c058:6301::1", "6to4 of 192.88.99.1 (deprecated 6to4 relay anycast, RFC 7526), RFC 3056"},
		{"2003::1", ""},
		// Teredo: server 65.54.227.120, client obfuscated (RFC 4380 §4).
		{"2001:0:4136:e378:8000:63bf:f6f6:f6f6", "Teredo of 9.9.9.9, RFC 4380"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo of 127.0.0.1 (loopback, RFC 1122), RFC 4380"},
		{"2001:1::1", ""},
		{"9.9.9.9", ""},
		{"127.0.0.1", ""},
		{"2620:fe::fe", ""},
		{"fe80::1%eth0", ""},
	} {
		e, ok := Embedded(netip.MustParseAddr(tc.addr))
		if ok != (tc.want != "") || ok && e.String() != tc.want {
			t.Errorf("Embedded(%s) = %q, %v; want %q", tc.addr, e, ok, tc.want)
		}
	}
}

// TestFirstByte: the per-first-byte index never hides a block. Every
// first byte of both families, and the first and last address of every
// block and their neighbours, give what a look at every block gives.
func TestFirstByte(t *testing.T) {
	var addrs []netip.Addr
	for b := range 256 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(b), 1, 2, 3}))
		var v6 [16]byte
		v6[0], v6[1], v6[15] = byte(b), 0x22, 1
		addrs = append(addrs, netip.AddrFrom16(v6))
	}
	for _, b := range Blocks() {
		first := b.Prefix.Masked().Addr()
		last := first
		for i := b.Prefix.Bits(); i < first.BitLen(); i++ {
			last = setBit(last, i)
		}
		addrs = append(addrs, first, last, first.Prev(), last.Next())
	}
	special := 0
	for _, a := range addrs {
		if !a.IsValid() || a.Is4In6() || nat64WellKnown.Contains(a) || sixToFour.Contains(a) {
			continue
		}
		want := fullLookup(a)
		if got := Of(a); got != want {
			t.Errorf("Of(%s) = %q, every block says %q", a, got, want)
		}
		if !want.Global() {
			special++
		}
	}
	if special < len(Blocks()) {
		t.Errorf("only %d special cases met: the test misses blocks", special)
	}
}

// fullLookup is Of by a look at every block, without the index.
func fullLookup(a netip.Addr) Class {
	for _, b := range Blocks() {
		if b.Prefix.Contains(a) {
			return b.Class
		}
	}
	if a.Is6() && !globalUnicast.Contains(a) {
		return reserved
	}
	return Class{}
}

// setBit sets bit i (from the most significant) of a.
func setBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] |= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] |= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}

// TestInvalid: the zero Addr is not a reachable address.
func TestInvalid(t *testing.T) {
	if Of(netip.Addr{}).Global() {
		t.Error("the zero Addr is global")
	}
}

func BenchmarkOf(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("93.184.216.34"),
		netip.MustParseAddr("2a00:1450:4001::1b"),
		netip.MustParseAddr("2001:4860:4860::8888"),
		netip.MustParseAddr("10.1.2.3"),
	}
	for b.Loop() {
		for _, a := range addrs {
			_ = Of(a)
		}
	}
}

// FuzzOf: any address classifies without a panic, and an IPv4 address
// behind IPv4 mapping, NAT64 or 6to4 is judged as the address itself.
func FuzzOf(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1})
	f.Add([]byte{192, 0, 2, 1})
	f.Add([]byte{8, 8, 8, 8})
	f.Add(netip.MustParseAddr("fe80::1").AsSlice())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		c := Of(a)
		if c.Global() && (c.Doc || c.Via != "") {
			t.Errorf("Of(%s) = %+v: global with details", a, c)
		}
		if !a.Is4() {
			return
		}
		v4 := a.As4()
		var nat64, sixToFour [16]byte
		copy(nat64[:], netip.MustParseAddr("64:ff9b::").AsSlice())
		copy(nat64[12:], v4[:])
		sixToFour[0], sixToFour[1] = 0x20, 0x02
		copy(sixToFour[2:], v4[:])
		for _, v6 := range []netip.Addr{netip.AddrFrom16(a.As16()), netip.AddrFrom16(nat64), netip.AddrFrom16(sixToFour)} {
			d := Of(v6)
			if d.Name != c.Name || d.Doc != c.Doc || (!d.Global() && d.Inner != a) {
				t.Errorf("Of(%s) = %+v, but Of(%s) = %+v", v6, d, a, c)
			}
		}
	})
}

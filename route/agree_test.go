package route

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/ipclass"
)

// TestRouteAndDialAgree: an address route flags as not reachable from the
// Internet (mx-target-private) is one dial's default policy refuses, and
// the reverse, for the first and last address of every block of the
// table, their neighbours, and their IPv4-mapped, NAT64 and 6to4 forms.
// The two documented differences (docs/routing.md, docs/security.md):
// route accepts documentation addresses under documentation domains, dial
// never does; and route judges an IPv6 address that leads to an IPv4 one
// (IPv4-mapped, NAT64, 6to4) by that address, as reachable as it is, while
// dial refuses every IPv6 form that embeds an IPv4 address whatever it
// holds. So an embedding of a global IPv4 address passes route and not
// dial.
func TestRouteAndDialAgree(t *testing.T) {
	var addrs []netip.Addr
	for _, b := range ipclass.Blocks() {
		first := b.Prefix.Masked().Addr()
		last := lastOf(b.Prefix)
		addrs = append(addrs, first, last, first.Prev(), last.Next())
		if first.Is4() {
			for _, a := range []netip.Addr{first, last} {
				v4 := a.As4()
				var nat64, sixToFour [16]byte
				copy(nat64[:], netip.MustParseAddr("64:ff9b::").AsSlice())
				copy(nat64[12:], v4[:])
				sixToFour[0], sixToFour[1] = 0x20, 0x02
				copy(sixToFour[2:], v4[:])
				addrs = append(addrs, netip.AddrFrom16(a.As16()), netip.AddrFrom16(nat64), netip.AddrFrom16(sixToFour))
			}
		}
	}
	addrs = append(addrs, netip.MustParseAddr("fec0::1"), netip.MustParseAddr("4000::1"), netip.MustParseAddr("fe80::1%eth0"))
	policy := &dial.Policy{}
	refused := 0
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		err := policy.Check(a)
		if err != nil && !errors.Is(err, dial.ErrForbidden) {
			t.Fatalf("Check(%s): %v", a, err)
		}
		if err != nil {
			refused++
		}
		_, embeds := ipclass.Embedded(a)
		if embeds && err == nil {
			t.Errorf("%s: dial allows an IPv6 form that embeds an IPv4 address", a)
		}
		if embeds && ipclass.Of(a).Global() {
			if why := specialPurpose(a, "mail.example.de"); why != "" {
				t.Errorf("%s: route says %q, want reachable as the global IPv4 address inside", a, why)
			}
			continue
		}
		if why := specialPurpose(a, "mail.example.de"); (why != "") != (err != nil) {
			t.Errorf("%s: route says %q, dial says %v", a, why, err)
		}
		why := specialPurpose(a, "d.test")
		doc := ipclass.Of(a).Doc
		switch {
		case doc && why != "":
			t.Errorf("%s under d.test: route says %q, want accepted (documentation)", a, why)
		case !doc && (why != "") != (err != nil):
			t.Errorf("%s under d.test: route says %q, dial says %v", a, why, err)
		}
	}
	if refused < len(ipclass.Blocks()) {
		t.Errorf("only %d addresses refused: the test misses blocks", refused)
	}
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

package ipclass_test

import (
	"fmt"
	"net/netip"

	"github.com/mxtrace/mxtrace/ipclass"
)

// An address is global, or in a named block; an IPv6 address that leads
// to IPv4 is judged by the IPv4 address inside it.
func ExampleOf() {
	for _, s := range []string{"8.8.8.8", "10.1.2.3", "64:ff9b::7f00:1", "2001:db8::25"} {
		c := ipclass.Of(netip.MustParseAddr(s))
		fmt.Printf("%s global=%v doc=%v %q\n", s, c.Global(), c.Doc, c.String())
	}
	// Output:
	// 8.8.8.8 global=true doc=false ""
	// 10.1.2.3 global=false doc=false "private-use, RFC 1918"
	// 64:ff9b::7f00:1 global=false doc=false "NAT64 of 127.0.0.1, loopback, RFC 1122"
	// 2001:db8::25 global=false doc=true "documentation, RFC 3849"
}

// Every IPv6 form that embeds an IPv4 address is named, whatever the
// address inside: dial refuses them all, route judges the ones that lead
// to IPv4 by that address.
func ExampleEmbedded() {
	for _, s := range []string{"64:ff9b::909:909", "2002:7f00:1::1", "2001:db8::25"} {
		if e, ok := ipclass.Embedded(netip.MustParseAddr(s)); ok {
			fmt.Printf("%s: %s\n", s, e)
		} else {
			fmt.Printf("%s: plain\n", s)
		}
	}
	// Output:
	// 64:ff9b::909:909: NAT64 of 9.9.9.9, RFC 6052
	// 2002:7f00:1::1: 6to4 of 127.0.0.1 (loopback, RFC 1122), RFC 3056
	// 2001:db8::25: plain
}

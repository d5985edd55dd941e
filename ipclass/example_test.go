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

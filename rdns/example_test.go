package rdns_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
)

// Check forward-confirmed reverse DNS of an exchange address.
func ExampleLookup() {
	zones, _ := resolve.ParseZones(strings.NewReader(`
$ORIGIN 2.0.192.in-addr.arpa.
@  60 SOA ns.example. h.example. 1 2 3 4 60
10 60 PTR mx.example.
$ORIGIN example.
@  60 SOA ns.example. h.example. 1 2 3 4 60
mx 60 A 192.0.2.10
`), "example")
	r, err := rdns.Lookup(context.Background(), zones, netip.MustParseAddr("192.0.2.10"), rdns.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Names, "confirmed:", r.Confirmed)
	// Output: [mx.example] confirmed: mx.example
}

package resolve_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// Answer questions from zone text through the run's cache, following an
// alias to the records at its end. With a network, put stub.New in
// place of the zones.
func ExampleFollow() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
mail       60 CNAME host.example.
host       60 A 192.0.2.25
`), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	cache := resolve.NewCache(zones, 0)
	res, err := resolve.Follow(context.Background(), cache, resolve.Q("mail.example.", dns.TypeA))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Chain, res.Records[0].(*dns.A).A)
	nx, _ := resolve.Follow(context.Background(), cache, resolve.Q("gone.example.", dns.TypeA))
	fmt.Println("gone.example NXDOMAIN:", nx.NXDomain)
	// Output:
	// [host.example.] 192.0.2.25
	// gone.example NXDOMAIN: true
}

package route_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// Plan a domain from a zone file; with a network, use stub.New
// wrapped in resolve.NewCache instead.
func ExamplePlanner_Plan() {
	zone := `
$ORIGIN example.
@       3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
shop    3600 MX 20 backup.shop.example.
shop    3600 MX 10 mx.shop.example.
mx.shop      3600 A 192.0.2.10
backup.shop  3600 A 192.0.2.20
backup.shop  3600 AAAA 2001:db8::20
`
	zones, err := resolve.ParseZones(strings.NewReader(zone), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	planner := &route.Planner{Resolver: resolve.NewCache(zones, 0), Seed: 1, HasSeed: true}
	plan, err := planner.Plan(context.Background(), dnsname.MustParse("Shop.Example."))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan.Domain, plan.Result)
	for _, t := range plan.Tiers {
		for _, h := range t.Hosts {
			fmt.Println(t.Preference, h.Name, h.Addresses)
		}
	}
	fmt.Println("order:", plan.Order)
	// Output:
	// shop.example ok
	// 10 mx.shop.example [192.0.2.10]
	// 20 backup.shop.example [192.0.2.20 2001:db8::20]
	// order: [mx.shop.example backup.shop.example]
}

package watch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/watch"
)

// Check a domain twice, before and after a change to its zone, and say
// what changed: the facts of each check are a Snapshot (stored as JSON
// beside the result), and Diff compares two of them.
func ExampleDiff() {
	snapshot := func(zone string) *watch.Snapshot {
		zones, _ := resolve.ParseZones(strings.NewReader(zone), "example.zone")
		r := resolve.NewCache(zones, 0)
		a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline"}
		return watch.SnapshotOf(a.Audit(context.Background(), dnsname.MustParse("shop.example")))
	}
	const head = `
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
shop     3600 MX 10 mx1.shop.example.
mx1.shop 3600 A 192.0.2.10
mx2.shop 3600 A 192.0.2.20
_dmarc.shop 3600 TXT "v=DMARC1; p=reject; rua=mailto:d@shop.example"
`
	before := snapshot(head + `shop 3600 MX 20 mx2.shop.example.
shop 3600 TXT "v=spf1 mx -all"`)
	after := snapshot(head + `shop 3600 TXT "v=spf1 mx ~all"`)

	b, _ := json.Marshal(before)
	stored, _ := watch.ParseSnapshot(b)
	for _, c := range watch.Diff(stored, after) {
		fmt.Println(c.Severity, c.Kind, c.Message)
	}
	// Output:
	// warning exchange-removed mx2.shop.example (preference 20) was removed from the exchanges of shop.example.
	// warning spf-weakened The SPF policy of shop.example was weakened: -all → ~all.
}

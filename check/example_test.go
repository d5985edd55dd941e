package check_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// Audit a domain from zone text. Nameservers, the MTA-STS policy fetch
// and blacklists need the network; leaving their fields nil skips them.
func ExampleAuditor_Audit() {
	zones, _ := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
shop     3600 MX 10 mx.shop.example.
shop     3600 TXT "v=spf1 mx +all"
mx.shop  3600 A 192.0.2.10
`), "example.zone")
	r := resolve.NewCache(zones, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline"}
	rep := a.Audit(context.Background(), dnsname.MustParse("shop.example"))
	for _, ar := range rep.Areas {
		if ar.Area == finding.AreaSPF {
			fmt.Println(ar.Area, ar.Status, ar.Findings[0].ID)
		}
	}
	// Output: SPF problems spf-plus-all
}

// Follow an audit area by area, as GET /api/v1/check/{domain}/events
// does: the route is known first, each area as soon as its facts are in,
// and the report at the end is Audit's.
func ExampleAuditor_AuditEach() {
	zones, _ := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
shop     3600 MX 10 mx.shop.example.
shop     3600 TXT "v=spf1 mx -all"
mx.shop  3600 A 192.0.2.10
`), "example.zone")
	r := resolve.NewCache(zones, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline"}
	judged := map[finding.Area]check.Status{}
	rep := a.AuditEach(context.Background(), dnsname.MustParse("shop.example"), func(p check.Progress) {
		switch {
		case p.Plan != nil:
			fmt.Println("route:", p.Plan.Result, p.Plan.Order)
		case p.Result != nil:
			judged[p.Area] = p.Result.Status
		}
	})
	fmt.Println(len(judged), "areas judged,", len(rep.Skipped), "skipped; SPF:", judged[finding.AreaSPF])
	// Output:
	// route: ok [mx.shop.example]
	// 6 areas judged, 6 skipped; SPF: pass
}

package report_test

import (
	"context"
	"os"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// Print a plan as route does, without colour.
func ExampleWriteRoute() {
	zones, _ := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
shop     3600 MX 10 mx.shop.example.
mx.shop  3600 A 192.0.2.10
mx.shop  3600 AAAA 2001:db8::10
`), "example.zone")
	plan, _ := (&route.Planner{Resolver: zones}).Plan(context.Background(), dnsname.MustParse("shop.example"))
	plan.ElapsedMS = 0
	report.WriteRoute(os.Stdout, plan, report.Style{})
	// Output:
	// shop.example  ok  1 exchange in 1 tier  (0 ms)
	//   PREF  EXCHANGE         ADDRESSES     PROBLEMS
	//   10    mx.shop.example  192.0.2.10
	//                          2001:db8::10
	//   order: mx.shop.example
}

package scan_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/scan"
)

// Scan a list offline, from a zone: one CSV row per entry, in input
// order, the invalid entry included, and a summary.
func Example() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@        3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
mail     3600 MX 10 mx1.mail.example.
mail     3600 MX 20 mx2.mail.example.
mx1.mail 3600 A 192.0.2.1
mx2.mail 3600 A 192.0.2.2
null     3600 MX 0 .
`), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	planner := &route.Planner{Resolver: resolve.NewCache(zones, 0)}
	list := "mail.example\n# a comment\nuser@null.example\nnot..valid\ngone.example\n"

	var out bytes.Buffer
	sum, err := scan.Run(context.Background(), scan.Lines(strings.NewReader(list)), &out,
		scan.Config{Job: scan.Route(planner), Format: scan.FormatCSV})
	if err != nil {
		fmt.Println(err)
		return
	}
	rows, _ := csv.NewReader(&out).ReadAll()
	for _, r := range rows {
		// line, domain, result, first_exchange, error_kind
		fmt.Println(strings.TrimSpace(strings.Join([]string{r[0], r[1], r[2], r[7], r[11]}, " ")))
	}
	fmt.Println(sum.Written, sum.Results)
	// Output:
	// line domain result first_exchange error_kind
	// 1 mail.example ok mx1.mail.example
	// 3 null.example null-mx
	// 4 not..valid error  invalid-input
	// 5 gone.example nxdomain
	// 4 map[error:1 null-mx:1 nxdomain:1 ok:1]
}

// RouteCached makes a domain's plan from the answers already in memory,
// or says they are not all there; a scan runs it where a domain's
// prefetch ends, and gives the domain to a worker (Route) when it is not ok.
func ExampleRouteCached() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@        3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
mail     3600 MX 10 mx1.mail.example.
mx1.mail 3600 A 192.0.2.1
`), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	planner := &route.Planner{Resolver: resolve.NewCache(zones, 0)}
	domain, _ := dnsname.Parse("mail.example")
	fromMemory := scan.RouteCached(planner)

	_, _, ok := fromMemory(domain)
	fmt.Println("before any lookup:", ok)
	if _, err := scan.Route(planner)(context.Background(), domain); err != nil {
		fmt.Println(err)
		return
	}
	plan, err, ok := fromMemory(domain)
	fmt.Println("after Route:", ok, plan.(*route.Plan).Order, err)
	// Output:
	// before any lookup: false
	// after Route: true [mx1.mail.example] <nil>
}

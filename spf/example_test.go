package spf_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
)

func ExampleParse() {
	r, err := spf.Parse("v=spf1 include:_spf.example.com ip4:192.0.2.0/24 -all")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range r.Terms {
		fmt.Printf("%d %s queries DNS: %v\n", t.Pos, t, t.QueriesDNS())
	}
	_, err = spf.Parse("v=spf1 ip4:192.0.2.1 incude:_spf.example.com -all")
	fmt.Println(err)
	// Output:
	// 7 include:_spf.example.com queries DNS: true
	// 32 ip4:192.0.2.0/24 queries DNS: false
	// 49 -all queries DNS: false
	// position 21: unknown mechanism "incude"
}

// Evaluate a domain's policy for a client address, and audit its record
// tree, from zone text; with a network, use stub.New wrapped in
// resolve.NewCache instead.
func ExampleChecker_CheckHost() {
	zone := `
$ORIGIN example.
@        3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
shop     3600 TXT "v=spf1 mx include:_spf.shop.example ~all"
shop     3600 MX  10 mx.shop.example.
mx.shop  3600 A   192.0.2.10
_spf.shop 3600 TXT "v=spf1 ip4:198.51.100.0/24 ptr -all"
`
	zones, err := resolve.ParseZones(strings.NewReader(zone), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := resolve.NewCache(zones, 0)
	c := &spf.Checker{Resolver: r}
	res := c.CheckHost(context.Background(), spf.Query{
		IP:     netip.MustParseAddr("198.51.100.7"),
		Sender: "orders@shop.example",
		HELO:   "mail.shop.example",
	})
	fmt.Println(res.Status, "after", res.Lookups, "lookups")
	for _, s := range res.Path {
		fmt.Printf("  %s: %s -> %s\n", s.Domain, s.Term, s.Result)
	}

	an, err := spf.Lookup(context.Background(), r, dnsname.MustParse("shop.example"), spf.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tree:", an.Lookups, "lookups,", an.VoidLookups, "void")
	for _, f := range spf.Findings(an) {
		fmt.Println(f.ID, f.Subject)
	}
	// Output:
	// pass after 2 lookups
	//   shop.example: include:_spf.shop.example -> pass
	//   _spf.shop.example: ip4:198.51.100.0/24 -> pass
	// tree: 3 lookups, 0 void
	// spf-ptr _spf.shop.example
}

// Evaluate a request as "mxtrace spf" and GET /api/v1/spf/{domain} take
// it: text parameters, checked by Query (a *RequestError is bad input),
// then check_host() and the record tree at once.
func ExampleEvaluate() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@     3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
shop  3600 TXT "v=spf1 ip4:198.51.100.0/24 ?all"
`), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	c := &spf.Checker{Resolver: resolve.NewCache(zones, 0)}

	_, _, err = spf.Request{Domain: "shop.example", IP: "198.51.100.300"}.Query()
	fmt.Println(err)

	q, tree, err := spf.Request{Domain: "orders@shop.example", IP: "198.51.100.7"}.Query()
	if err != nil {
		fmt.Println(err)
		return
	}
	e := spf.Evaluate(context.Background(), c, q, tree, spf.Options{})
	fmt.Println(e.Status, "for", e.Sender, "from", e.IP)
	for _, f := range e.Findings {
		fmt.Println(f.ID)
	}
	// Output:
	// ip: "198.51.100.300" is not an IP address
	// pass for orders@shop.example from 198.51.100.7
	// spf-neutral-all
}

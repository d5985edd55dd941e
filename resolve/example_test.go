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

// Ask several questions at once and wait once: over a scan's Mux (an
// Async resolver) no goroutine waits per question; over zone files or a
// stub, at most the given number of goroutines ask.
func ExampleLookupAll() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@          60 SOA ns.example. hostmaster.example. 1 7200 900 1209600 60
s1._domainkey 60 TXT "v=DKIM1; p="
`), "example.zone")
	if err != nil {
		fmt.Println(err)
		return
	}
	qs := []resolve.Question{
		resolve.Q("s1._domainkey.example.", dns.TypeTXT),
		resolve.Q("s2._domainkey.example.", dns.TypeTXT),
	}
	for i, r := range resolve.LookupAll(context.Background(), resolve.NewCache(zones, 0), qs, 8) {
		fmt.Println(qs[i].Name, len(r.Answer.Answer), "records, NXDOMAIN:", r.Answer.NXDomain(), r.Err)
	}
	// Output:
	// s1._domainkey.example. 1 records, NXDOMAIN: false <nil>
	// s2._domainkey.example. 0 records, NXDOMAIN: true <nil>
}

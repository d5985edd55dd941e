package dnsbl_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/resolve"
)

func ExampleQueryName() {
	fmt.Println(dnsbl.QueryName(netip.MustParseAddr("192.0.2.99"), "zen.spamhaus.org"))
	// Output: 99.2.0.192.zen.spamhaus.org.
}

// Look an exchange's addresses up on a list (here served from a zone file,
// with its RFC 5782 §5 test entry) and judge the answers.
func ExampleLookup() {
	zone := `$TTL 300
bl.example. SOA ns.bl.example. hostmaster.bl.example. 1 7200 900 1209600 300
2.0.0.127.bl.example. A 127.0.0.2
99.2.0.192.bl.example. A 127.0.0.4
99.2.0.192.bl.example. TXT "spam trap hit"
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "bl")
	if err != nil {
		panic(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("192.0.2.1")}
	res, err := dnsbl.Lookup(context.Background(), r, addrs, dnsbl.Options{Lists: []string{"bl.example"}})
	if err != nil {
		panic(err)
	}
	for _, e := range res.Entries {
		fmt.Println(e.Address, e.Status)
	}
	for _, f := range dnsbl.Findings(res) {
		fmt.Println(f.ID, f.Subject)
	}
	// Output:
	// 192.0.2.99 listed
	// 192.0.2.1 clean
	// dnsbl-listed 192.0.2.99
}

package dnsbl_test

import (
	"fmt"
	"net/netip"

	"github.com/mxtrace/mxtrace/dnsbl"
)

func ExampleQueryName() {
	fmt.Println(dnsbl.QueryName(netip.MustParseAddr("192.0.2.99"), "zen.spamhaus.org"))
	// Output: 99.2.0.192.zen.spamhaus.org.
}

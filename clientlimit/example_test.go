package clientlimit_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mxtrace/mxtrace/clientlimit"
)

// Two requests a second with a burst of 2: the third at once waits.
func Example() {
	b := clientlimit.New(2, 2, clientlimit.MaxBuckets)
	client := clientlimit.Key(netip.MustParseAddr("2001:db8:1:2::7"))
	now := time.Unix(0, 0)
	for range 3 {
		fmt.Println(client, b.Take(client, now))
	}
	// Output:
	// 2001:db8:1:2::/64 0s
	// 2001:db8:1:2::/64 0s
	// 2001:db8:1:2::/64 500ms
}

package dnstest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
)

// A server answering from zone text, asked with miekg's client. In a test,
// dnstest.NewZone(t, zone) does the same and closes the server at the end.
func Example() {
	const zone = `
example.test.     300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60
example.test.     300 IN MX  10 mx1.example.test.
example.test.     300 IN MX  20 mx2.example.test.
mx1.example.test. 300 IN A   192.0.2.1
`
	srv, err := dnstest.StartZone(zone)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &dns.Client{Net: "udp"}
	for _, name := range []string{"example.test.", "nope.example.test."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeMX)
		r, _, err := c.ExchangeContext(ctx, q, srv.Addr)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(name, dns.RcodeToString[r.Rcode], "aa:", r.Authoritative)
		for _, rr := range r.Answer {
			mx := rr.(*dns.MX)
			fmt.Println(" ", mx.Preference, mx.Mx)
		}
	}
	fmt.Println("queries:", srv.Queries())
	// Output:
	// example.test. NOERROR aa: true
	//   10 mx1.example.test.
	//   20 mx2.example.test.
	// nope.example.test. NXDOMAIN aa: true
	// queries: 2
}

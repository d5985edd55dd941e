package stub_test

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// Ask a server for a domain's MX set; NXDOMAIN is an answer, not an error.
func ExampleNew() {
	srv, err := dnstest.StartZone(`
example.test.     300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60
example.test.     300 IN MX  10 mx1.example.test.
`)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	r, err := stub.New(stub.Config{Servers: []string{srv.Addr}, NoRecursion: true, Timeout: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	a, err := r.Lookup(ctx, resolve.Q("example.test.", dns.TypeMX))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Answer[0].(*dns.MX).Mx)
	nx, err := r.Lookup(ctx, resolve.Q("nope.example.test.", dns.TypeMX))
	fmt.Println("NXDOMAIN:", err == nil && nx.NXDomain())
	// Output:
	// mx1.example.test.
	// NXDOMAIN: true
}

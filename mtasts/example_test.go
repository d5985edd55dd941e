package mtasts_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/resolve"
)

// A policy as served at https://mta-sts.example.com/.well-known/mta-sts.txt,
// checked against the exchanges of a delivery plan.
func ExampleParsePolicy() {
	rec, err := mtasts.Parse("v=STSv1; id=20160831085700Z;")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("policy id:", rec.ID)

	p, err := mtasts.ParsePolicy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("mode:", p.Mode, "max_age:", p.MaxAge)
	fmt.Println("not covered:", p.NotCovered([]string{"mail.example.com", "mx1.example.net", "a.b.example.net"}))

	_, err = mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\n")
	fmt.Println(err)
	// Output:
	// policy id: 20160831085700Z
	// mode: enforce max_age: 604800
	// not covered: [a.b.example.net]
	// mta-sts: invalid policy: no max_age field
}

// Look up a domain's MTA-STS record without fetching the policy (as check
// does offline, from zone files), and judge it.
func ExampleLookup() {
	zone := `$TTL 3600
example.com. SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300
_mta-sts.example.com. TXT "v=STSv1; id=2024-01-01"
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "example")
	if err != nil {
		panic(err)
	}
	res, err := mtasts.Lookup(context.Background(), r, "example.com", mtasts.Options{NoFetch: true})
	if err != nil {
		panic(err)
	}
	for _, f := range mtasts.Findings(res, []string{"mx.example.com"}) {
		fmt.Println(f.ID, f.Severity, f.Subject)
	}
	// Output:
	// mta-sts-txt-invalid error _mta-sts.example.com
}

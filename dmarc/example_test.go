package dmarc_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/resolve"
)

func ExampleLookup() {
	zone := `$TTL 3600
example.com. SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300
_dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:dmarc@reports.example.net"
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "example")
	if err != nil {
		panic(err)
	}
	// The report domain reports.example.net is not in the zone text, so its
	// consent cannot be asked: Lookup says so in err and keeps the rest.
	res, err := dmarc.Lookup(context.Background(), r, "mail.example.com", dmarc.Options{})
	fmt.Println("policy from", res.PolicyDomain+":", res.Policy)
	fmt.Println("consent of reports.example.net:", res.Destinations[0].Consent, err != nil)
	for _, f := range dmarc.Findings(res) {
		fmt.Println(f.ID, f.Severity)
	}
	// Output:
	// policy from example.com: none
	// consent of reports.example.net: unknown true
	// dmarc-policy-none info
}

func ExampleParse() {
	rec, err := dmarc.Parse("v=DMARC1; p=reject; pct=150; rua=reports@example.com")
	fmt.Println(rec)
	fmt.Println(err)
	// Output:
	// v=DMARC1; p=reject
	// dmarc: pct=150: must be a whole number from 0 to 100; rua=reports@example.com: "reports@example.com" is not a URI: write mailto:reports@example.com
}

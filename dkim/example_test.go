package dkim_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/resolve"
)

func ExampleLookup() {
	// The key of RFC 6376 Appendix C, 1024-bit RSA, at a selector of the
	// caller's; and a revoked key at the Microsoft 365 selector.
	zone := `$TTL 3600
example.com. SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300
brisbane._domainkey.example.com. TXT "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB"
selector1._domainkey.example.com. TXT "v=DKIM1; k=rsa; p="
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "example")
	if err != nil {
		panic(err)
	}
	res, err := dkim.Lookup(context.Background(), r, "example.com", dkim.Options{Selectors: []string{"brisbane"}})
	if err != nil {
		panic(err)
	}
	for _, k := range res.Keys {
		fmt.Printf("%s: %s, %d bits, revoked %v\n", k.Name, k.Record.KeyType, k.Record.Bits, k.Record.Revoked())
	}
	for _, f := range dkim.Findings(res) {
		fmt.Println(f.ID, f.Severity, f.Subject)
	}
	// Output:
	// brisbane._domainkey.example.com: rsa, 1024 bits, revoked false
	// selector1._domainkey.example.com: rsa, 0 bits, revoked true
	// dkim-weak-key warning brisbane._domainkey.example.com
}

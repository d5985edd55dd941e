package tlsrpt_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

func ExampleParse() {
	r, err := tlsrpt.Parse("v=TLSRPTv1;rua=mailto:reports@example.com,https://reporting.example.com/v1/tlsrpt")
	fmt.Println(r.RUA, err)
	_, err = tlsrpt.Parse("v=TLSRPTv1; rua=reports@example.com")
	fmt.Println(err)
	// Output:
	// [mailto:reports@example.com https://reporting.example.com/v1/tlsrpt] <nil>
	// tlsrpt: rua: "reports@example.com" is not a URI: write mailto:reports@example.com
}

func ExampleLookup() {
	zone := `$TTL 3600
example.com. SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300
_smtp._tls.example.com. TXT "v=TLSRPTv1; rua=mailto:a@example.com"
_smtp._tls.example.com. TXT "v=TLSRPTv1; rua=mailto:b@example.com"
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "example")
	if err != nil {
		panic(err)
	}
	res, err := tlsrpt.Lookup(context.Background(), r, "example.com", tlsrpt.Options{})
	if err != nil {
		panic(err)
	}
	for _, f := range tlsrpt.Findings(res) {
		fmt.Println(f.ID, f.Severity, f.Subject)
	}
	// Output:
	// tlsrpt-invalid error _smtp._tls.example.com
}

package dnsname_test

import (
	"fmt"

	"github.com/mxtrace/mxtrace/dnsname"
)

func ExampleParse() {
	for _, in := range []string{"Postmaster@Bücher.Example.", "bad..example"} {
		n, err := dnsname.Parse(in)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(n, n.FQDN(), n.Unicode())
	}
	// Output:
	// xn--bcher-kva.example xn--bcher-kva.example. bücher.example
	// invalid domain name "bad..example": has an empty label (two dots in a row, or a leading dot)
}

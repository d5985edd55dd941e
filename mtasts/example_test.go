package mtasts_test

import (
	"fmt"

	"github.com/mxtrace/mxtrace/mtasts"
)

// A policy as served at https://mta-sts.example.com/.well-known/mta-sts.txt,
// checked against the exchanges of a delivery plan.
func ExampleParsePolicy() {
	rec, err := mtasts.ParseRecord("v=STSv1; id=20160831085700Z;")
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

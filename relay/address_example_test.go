package relay_test

import (
	"errors"
	"fmt"

	"github.com/mxtrace/mxtrace/relay"
)

func ExampleParseAddress() {
	for _, s := range []string{"<User@D.Example>", `"a b"@d.example`, "user%other.example@d.example", "user@[192.0.2.1]"} {
		a, err := relay.ParseAddress(s)
		switch {
		case errors.Is(err, relay.ErrRouteInLocalPart), errors.Is(err, relay.ErrAddressLiteral):
			fmt.Println("refused:", relay.AddressReason(err))
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println(a.Local, a.Domain)
		}
	}
	// Output:
	// User d.example
	// "a b" d.example
	// refused: route-in-local-part
	// refused: address-literal
}

package dial_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/mxtrace/mxtrace/dial"
)

// A server that dials what strangers name refuses non-public addresses:
// the check runs at connect time, on the resolved address.
func ExampleNet() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()

	d := &dial.Net{Policy: &dial.Policy{}}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	fmt.Println(errors.Is(err, dial.ErrForbidden))
	if fe, ok := errors.AsType[*dial.ForbiddenError](err); ok {
		fmt.Println(fe.Class.Name)
	}
	// Output:
	// true
	// loopback
}

package dial

import (
	"errors"
	"net/netip"

	"github.com/mxtrace/mxtrace/ipclass"
)

// ErrForbidden is the error of a connection the Policy refuses; the
// error returned is a *ForbiddenError, which says what the address is.
var ErrForbidden = errors.New("dial: address not allowed")

// ForbiddenError is a connection the Policy refused.
type ForbiddenError struct {
	Addr netip.Addr
	// Class is what package ipclass says of Addr: Class.Name names the
	// special-purpose block, as the IANA registries of RFC 6890 name it
	// ("loopback", "private-use"), with the block's RFC and, for NAT64,
	// 6to4 and IPv4-mapped addresses, the IPv4 address inside, whose block
	// it is.
	Class ipclass.Class
}

func (e *ForbiddenError) Error() string {
	return "dial: " + e.Addr.String() + " is not globally reachable (" + e.Class.String() + "); only public addresses may be dialed"
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// Policy says which addresses may be dialed. The zero value allows
// public addresses only: the rule of a server that dials what strangers
// name (an MX record is a pointer its owner controls; docs/security.md).
type Policy struct {
	// AllowPrivate allows every address: loopback, private, link-local
	// and the other special-purpose blocks too.
	AllowPrivate bool
}

// Check returns nil when addr may be dialed, else a *ForbiddenError.
// Without AllowPrivate only globally reachable addresses pass, as package
// ipclass classifies them: every block of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 §2.2) whose "Globally
// Reachable" is False is refused, and so are multicast, the reserved
// 240.0.0.0/4, Teredo, ORCHID and, for IPv6, everything outside
// 2000::/3, the only block allocated for global unicast (RFC 4291 §2.4).
// NAT64, 6to4 and IPv4-mapped addresses are judged by the IPv4 address
// they lead to. A nil Policy allows every address, as Net's nil Policy
// does.
func (p *Policy) Check(addr netip.Addr) error {
	if p == nil || p.AllowPrivate {
		return nil
	}
	if c := ipclass.Of(addr); !c.Global() {
		return &ForbiddenError{Addr: addr, Class: c}
	}
	return nil
}

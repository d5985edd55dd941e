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
	// Embedding, when its Form is set, is the IPv6 form that embeds an
	// IPv4 address Addr is in, the reason it was refused: "NAT64", with
	// its RFC and the IPv4 address inside.
	Embedding ipclass.Embedding
	// Class is what package ipclass says of Addr: Class.Name names the
	// special-purpose block, as the IANA registries of RFC 6890 name it
	// ("loopback", "private-use"), with the block's RFC and, for NAT64,
	// 6to4 and IPv4-mapped addresses, the IPv4 address inside, whose block
	// it is. It is the zero Class (global) for an embedding form of a
	// global IPv4 address, refused for its form alone.
	Class ipclass.Class
}

// Reason says what the address is, for a finding: "127.0.0.1 is not a
// public address (loopback, RFC 1122)", or "64:ff9b::909:909 is not a
// public address (NAT64 of 9.9.9.9, RFC 6052: an IPv6 form that embeds an
// IPv4 address)".
func (e *ForbiddenError) Reason() string {
	if e.Embedding.Form != "" {
		return e.Addr.String() + " is not a public address (" + e.Embedding.String() + ": an IPv6 form that embeds an IPv4 address)"
	}
	return e.Addr.String() + " is not a public address (" + e.Class.String() + ")"
}

func (e *ForbiddenError) Error() string {
	return "dial: " + e.Reason() + "; only public addresses may be dialed"
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
// Without AllowPrivate only globally reachable addresses given plainly
// pass. Every IPv6 form that embeds an IPv4 address is refused, whatever
// the address inside (ipclass.Embedded): IPv4-mapped, IPv4-compatible,
// NAT64 (well-known and local-use), 6to4 and Teredo. A connection to one
// goes to, or through, an IPv4 host by a translator, relay or tunnel, or,
// for IPv4-mapped, over an IPv4 socket to an address the caller never
// checked as such; and no mail host needs one, since an exchange can
// publish its IPv4 address in an A record. Then every block of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 §2.2) whose "Globally
// Reachable" is False is refused (package ipclass), and so are multicast,
// the reserved 240.0.0.0/4, ORCHID and, for IPv6, everything outside
// 2000::/3, the only block allocated for global unicast (RFC 4291 §2.4).
// A nil Policy allows every address, as Net's nil Policy does.
func (p *Policy) Check(addr netip.Addr) error {
	if p == nil || p.AllowPrivate {
		return nil
	}
	c := ipclass.Of(addr)
	if e, ok := ipclass.Embedded(addr); ok {
		return &ForbiddenError{Addr: addr, Embedding: e, Class: c}
	}
	if !c.Global() {
		return &ForbiddenError{Addr: addr, Class: c}
	}
	return nil
}

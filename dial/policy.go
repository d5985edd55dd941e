package dial

import (
	"errors"
	"net/netip"
)

// ErrForbidden is the error of a connection the Policy refuses; the
// error returned is a *ForbiddenError, which says what the address is.
var ErrForbidden = errors.New("dial: address not allowed")

// ForbiddenError is a connection the Policy refused.
type ForbiddenError struct {
	Addr netip.Addr
	// Range names the special-purpose block the address is in, as the
	// IANA registries of RFC 6890 name it ("loopback", "private-use").
	Range string
}

func (e *ForbiddenError) Error() string {
	return "dial: " + e.Addr.String() + " is a " + e.Range + " address; only public addresses may be dialed"
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
// Without AllowPrivate only globally reachable unicast addresses pass:
// every block of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 §2.2) whose "Globally Reachable" is False is
// refused, and so are the blocks that are not plain unicast destinations
// (the deprecated 6to4 relay anycast, 6to4 and ORCHID, which lead to
// other addresses or to none), multicast, the reserved 240.0.0.0/4 with
// the limited broadcast address, and, for IPv6, everything outside
// 2000::/3, the only block allocated for global unicast (RFC 4291 §2.4),
// except NAT64 addresses, judged by the IPv4 address they translate to.
func (p *Policy) Check(addr netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	if r := specialRange(addr); r != "" {
		return &ForbiddenError{Addr: addr, Range: r}
	}
	return nil
}

// block is a special-purpose prefix and its registry name.
type block struct {
	prefix netip.Prefix
	name   string
}

func b(prefix, name string) block { return block{netip.MustParsePrefix(prefix), name} }

// specialRange names the non-public block addr is in, "" for a public
// address.
func specialRange(addr netip.Addr) string {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		// RFC 4291 §2.5.5.2: an IPv4-mapped address reaches the IPv4 one.
		return specialRange(addr.Unmap())
	}
	if addr.Is4() {
		for _, blk := range ipv4Special() {
			if blk.prefix.Contains(addr) {
				return blk.name
			}
		}
		return ""
	}
	for _, blk := range ipv6Public() {
		if blk.prefix.Contains(addr) {
			return ""
		}
	}
	for _, blk := range ipv6Special() {
		if blk.prefix.Contains(addr) {
			return blk.name
		}
	}
	if nat64.Contains(addr) {
		// RFC 6052 §2.1: the well-known prefix translates to the IPv4
		// address in its last 32 bits, which must itself be public.
		a := addr.As16()
		if r := specialRange(netip.AddrFrom4([4]byte(a[12:]))); r != "" {
			return "NAT64-translated " + r
		}
		return ""
	}
	if !globalUnicast.Contains(addr) {
		switch {
		case addr.IsUnspecified():
			return "unspecified"
		case addr.IsLoopback():
			return "loopback"
		case addr.IsMulticast():
			return "multicast"
		case addr.IsLinkLocalUnicast():
			return "link-local"
		case addr.IsPrivate():
			return "unique-local"
		}
		return "reserved"
	}
	return ""
}

var (
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// ipv4Special is the IANA IPv4 Special-Purpose Address Registry's blocks
// that are not globally reachable (RFC 6890 §2.2.2 and later updates),
// plus multicast (RFC 5771) and the future-use block (RFC 1112 §4).
func ipv4Special() []block {
	return []block{
		b("0.0.0.0/8", "this-network"),                // RFC 791
		b("10.0.0.0/8", "private-use"),                // RFC 1918
		b("100.64.0.0/10", "shared (CGN)"),            // RFC 6598
		b("127.0.0.0/8", "loopback"),                  // RFC 1122
		b("169.254.0.0/16", "link-local"),             // RFC 3927
		b("172.16.0.0/12", "private-use"),             // RFC 1918
		b("192.0.0.0/24", "IETF protocol assignment"), // RFC 6890
		b("192.0.2.0/24", "documentation"),            // RFC 5737
		b("192.88.99.0/24", "deprecated 6to4 relay"),  // RFC 7526
		b("192.168.0.0/16", "private-use"),            // RFC 1918
		b("198.18.0.0/15", "benchmarking"),            // RFC 2544
		b("198.51.100.0/24", "documentation"),         // RFC 5737
		b("203.0.113.0/24", "documentation"),          // RFC 5737
		b("224.0.0.0/4", "multicast"),                 // RFC 5771
		b("240.0.0.0/4", "reserved"),                  // RFC 1112; 255.255.255.255 (RFC 919 broadcast) is in it
	}
}

// ipv6Public are the globally reachable blocks inside ipv6Special's
// (checked first).
func ipv6Public() []block {
	return []block{
		b("2001:1::1/128", ""),   // RFC 7723 PCP anycast
		b("2001:1::2/128", ""),   // RFC 8155 TURN anycast
		b("2001:3::/32", ""),     // RFC 7450 AMT
		b("2001:4:112::/48", ""), // RFC 7535 AS112-v6
	}
}

// ipv6Special is the IANA IPv6 Special-Purpose Address Registry's blocks
// inside 2000::/3 that are not globally reachable (RFC 6890 §2.2.3 and
// later updates). Outside 2000::/3 every address is refused.
func ipv6Special() []block {
	return []block{
		b("2001::/23", "IETF protocol assignment"), // RFC 2928 (Teredo, ORCHID, benchmarking inside)
		b("2001:db8::/32", "documentation"),        // RFC 3849
		b("2002::/16", "6to4"),                     // RFC 3056: reaches an embedded IPv4 address
		b("3fff::/20", "documentation"),            // RFC 9637
	}
}

// Package ipclass classifies an IP address by the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and its updates): whether
// a sender on the Internet can reach it, and if not, which block it is in.
//
// It is the one table of these blocks, shared by two readings. Of says
// whether an address is reachable: route flags an MX target it finds not
// global (mx-target-private), and an IPv6 address that leads to an IPv4
// address (IPv4-mapped, the NAT64 well-known prefix, 6to4) is judged by
// that IPv4 address; the other forms that embed one (the deprecated
// IPv4-compatible ::/96, the local-use NAT64 prefix 64:ff9b:1::/48,
// Teredo) are not global whatever they hold. Embedded names every IPv6
// form that embeds an IPv4 address, which dial's policy refuses whatever
// the address inside, unless private addresses are allowed
// (docs/security.md#what-serve-refuses).
package ipclass

import (
	"net/netip"
	"slices"
)

// Class is what Of says about an address.
type Class struct {
	// Name is the registry's name of the block the address is in, in
	// lower case ("private-use", "loopback"); "" for a globally reachable
	// address.
	Name string
	// RFC is the document that defines the block ("RFC 1918").
	RFC string
	// Doc marks the documentation blocks (RFC 5737, RFC 3849, RFC 9637).
	Doc bool
	// Via is how an IPv6 address leads to IPv4 ("IPv4-mapped", "NAT64",
	// "6to4"), and Inner that IPv4 address, which the other fields
	// describe; "" for an address judged by itself.
	Via   string
	Inner netip.Addr
}

// Global reports whether the address is globally reachable.
func (c Class) Global() bool { return c.Name == "" }

// String is "private-use, RFC 1918", or "NAT64 of 10.0.0.1, private-use,
// RFC 1918" for an address judged by the IPv4 address inside it; "" for
// a globally reachable address.
func (c Class) String() string {
	if c.Global() {
		return ""
	}
	s := c.Name + ", " + c.RFC
	if c.Via != "" {
		s = c.Via + " of " + c.Inner.String() + ", " + s
	}
	return s
}

// blocks are the special-purpose blocks that are not globally reachable,
// and the few globally reachable blocks inside them (the zero Class), more
// specific before less specific: the first block that contains an
// address decides. The IPv6 blocks that lead to IPv4 (::ffff:0:0/96,
// 64:ff9b::/96, 2002::/16) are not here: Of judges them by their IPv4
// address. An IPv6 address outside 2000::/3 and every block here is
// "reserved" (RFC 4291 §2.4: only 2000::/3 is allocated for global
// unicast).
var blocks = []Block{
	// IANA IPv4 Special-Purpose Address Registry (RFC 6890 §2.2.2).
	{pfx("0.0.0.0/8"), Class{Name: "this network", RFC: "RFC 791"}},
	{pfx("10.0.0.0/8"), Class{Name: "private-use", RFC: "RFC 1918"}},
	{pfx("100.64.0.0/10"), Class{Name: "shared address space", RFC: "RFC 6598"}},
	{pfx("127.0.0.0/8"), Class{Name: "loopback", RFC: "RFC 1122"}},
	{pfx("169.254.0.0/16"), Class{Name: "link-local", RFC: "RFC 3927"}},
	{pfx("172.16.0.0/12"), Class{Name: "private-use", RFC: "RFC 1918"}},
	{pfx("192.0.0.9/32"), Class{}},  // PCP anycast (RFC 7723): globally reachable
	{pfx("192.0.0.10/32"), Class{}}, // TURN anycast (RFC 8155): globally reachable
	{pfx("192.0.0.0/24"), Class{Name: "IETF protocol assignments", RFC: "RFC 6890"}},
	{pfx("192.0.2.0/24"), Class{Name: "documentation", RFC: "RFC 5737", Doc: true}},
	{pfx("192.88.99.0/24"), Class{Name: "deprecated 6to4 relay anycast", RFC: "RFC 7526"}},
	{pfx("192.168.0.0/16"), Class{Name: "private-use", RFC: "RFC 1918"}},
	{pfx("198.18.0.0/15"), Class{Name: "benchmarking", RFC: "RFC 2544"}},
	{pfx("198.51.100.0/24"), Class{Name: "documentation", RFC: "RFC 5737", Doc: true}},
	{pfx("203.0.113.0/24"), Class{Name: "documentation", RFC: "RFC 5737", Doc: true}},
	{pfx("224.0.0.0/4"), Class{Name: "multicast", RFC: "RFC 5771"}},
	{pfx("255.255.255.255/32"), Class{Name: "limited broadcast", RFC: "RFC 919"}},
	{pfx("240.0.0.0/4"), Class{Name: "reserved", RFC: "RFC 1112"}},

	// IANA IPv6 Special-Purpose Address Registry (RFC 6890 §2.2.3).
	{pfx("::/128"), Class{Name: "unspecified", RFC: "RFC 4291"}},
	{pfx("::1/128"), Class{Name: "loopback", RFC: "RFC 4291"}},
	// RFC 4291 §2.5.5.1: IPv4-compatible addresses are deprecated and no
	// transition mechanism uses them; nothing routes them, so they are
	// refused whatever IPv4 address they hold (outside 2000::/3 they
	// would be "reserved" anyway: the name says what they are).
	{pfx("::/96"), Class{Name: "IPv4-compatible", RFC: "RFC 4291"}},
	// RFC 8215: the prefix length, hence where an IPv4 address sits, is
	// the operator's choice, so it cannot be judged by one.
	{pfx("64:ff9b:1::/48"), Class{Name: "local-use NAT64", RFC: "RFC 8215"}},
	{pfx("100::/64"), Class{Name: "discard-only", RFC: "RFC 6666"}},
	{pfx("2001:1::1/128"), Class{}},   // PCP anycast (RFC 7723): globally reachable
	{pfx("2001:1::2/128"), Class{}},   // TURN anycast (RFC 8155): globally reachable
	{pfx("2001:3::/32"), Class{}},     // AMT (RFC 7450): globally reachable
	{pfx("2001:4:112::/48"), Class{}}, // AS112-v6 (RFC 7535): globally reachable
	// RFC 4380 §4: a Teredo address holds the Teredo server's IPv4
	// address and the client's, obfuscated, and is reached through a
	// relay that tunnels over UDP to whatever the client's mapped address
	// is: it is refused outright, whatever IPv4 addresses it carries.
	{pfx("2001::/32"), Class{Name: "Teredo", RFC: "RFC 4380"}},
	{pfx("2001:2::/48"), Class{Name: "benchmarking", RFC: "RFC 5180"}},
	// ORCHIDv2 (RFC 7343) and DRIP DETs (RFC 9374) are identifiers, not
	// locators: nothing answers at them, so they stay in 2001::/23.
	{pfx("2001::/23"), Class{Name: "IETF protocol assignments", RFC: "RFC 2928"}},
	{pfx("2001:db8::/32"), Class{Name: "documentation", RFC: "RFC 3849", Doc: true}},
	{pfx("3fff::/20"), Class{Name: "documentation", RFC: "RFC 9637", Doc: true}},
	{pfx("5f00::/16"), Class{Name: "SRv6 SIDs", RFC: "RFC 9602"}},
	{pfx("fc00::/7"), Class{Name: "unique-local", RFC: "RFC 4193"}},
	{pfx("fe80::/10"), Class{Name: "link-local", RFC: "RFC 4291"}},
	{pfx("ff00::/8"), Class{Name: "multicast", RFC: "RFC 4291"}},
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Prefixes of IPv6 addresses that lead to an IPv4 address, and the one
// block allocated for global unicast.
var (
	nat64WellKnown = pfx("64:ff9b::/96")
	sixToFour      = pfx("2002::/16")
	globalUnicast  = pfx("2000::/3")
)

// reserved is the class of an IPv6 address outside 2000::/3 and every
// block.
var reserved = Class{Name: "reserved", RFC: "RFC 4291"}

// byFirst holds, per family (0: IPv4, 1: IPv6) and first byte, the
// blocks an address starting with that byte can be in, in the order of
// blocks: most addresses are global and have none to look at, and the
// others look at a few.
var byFirst = func() (idx [2][256][]Block) {
	for _, b := range blocks {
		p := b.Prefix.Masked()
		fam, f := leading(p.Addr())
		span := 1
		if p.Bits() < 8 {
			span = 1 << (8 - p.Bits())
		}
		for i := range span {
			idx[fam][int(f)+i] = append(idx[fam][int(f)+i], b)
		}
	}
	return idx
}()

// leading returns a's family (0: IPv4, 1: IPv6) and first byte.
func leading(a netip.Addr) (int, byte) {
	if a.Is4() {
		return 0, a.As4()[0]
	}
	return 1, a.As16()[0]
}

// Of classifies a (its zone ignored). The zero Class means globally
// reachable.
func Of(a netip.Addr) Class {
	if !a.IsValid() {
		return reserved
	}
	a = a.WithZone("")
	if a.Is6() {
		b := a.As16()
		var via string
		var v4 netip.Addr
		switch {
		case a.Is4In6():
			// RFC 4291 §2.5.5.2: an IPv4-mapped address reaches the
			// IPv4 one.
			via, v4 = "IPv4-mapped", a.Unmap()
		case nat64WellKnown.Contains(a):
			// RFC 6052 §2.1, §3.1: the last 32 bits are the IPv4
			// address, which must not be a non-global one.
			via, v4 = "NAT64", netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(a):
			// RFC 3056 §2: bits 16 to 47 are the 6to4 site's IPv4
			// address.
			via, v4 = "6to4", netip.AddrFrom4([4]byte(b[2:6]))
		}
		if via != "" {
			c := Of(v4)
			if c.Global() {
				return Class{}
			}
			c.Via, c.Inner = via, v4
			return c
		}
	}
	return lookup(a)
}

// Block is one entry of the table Of uses.
type Block struct {
	Prefix netip.Prefix
	// Class is what Of says of an address in Prefix that no more
	// specific block holds: the zero Class for the globally reachable
	// blocks inside non-global ones.
	Class Class
}

// Embedding is an IPv6 address of a form that embeds an IPv4 address.
type Embedding struct {
	// Form names it: "IPv4-mapped", "IPv4-compatible", "NAT64",
	// "local-use NAT64", "6to4" or "Teredo".
	Form string
	// RFC is the document that defines the form ("RFC 6052").
	RFC string
	// Inner is the IPv4 address inside: for Teredo the client's, the one
	// packets are tunnelled to; the zero Addr for local-use NAT64, whose
	// prefix length, so where the address sits, is the operator's choice
	// (RFC 8215).
	Inner netip.Addr
}

// String is "NAT64 of 9.9.9.9, RFC 6052", or "6to4 of 127.0.0.1
// (loopback, RFC 1122), RFC 3056" when the IPv4 address inside is not
// global either.
func (e Embedding) String() string {
	if !e.Inner.IsValid() {
		return e.Form + ", " + e.RFC
	}
	s := e.Form + " of " + e.Inner.String()
	if c := Of(e.Inner); !c.Global() {
		s += " (" + c.String() + ")"
	}
	return s + ", " + e.RFC
}

// Prefixes of the IPv6 forms that embed an IPv4 address and are not in
// blocks.
var (
	ipv4Compatible = pfx("::/96")
	nat64LocalUse  = pfx("64:ff9b:1::/48")
	teredo         = pfx("2001::/32")
)

// Embedded reports whether a is one of the IPv6 forms that embed an IPv4
// address, and which: IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2),
// IPv4-compatible ::/96 but for :: and ::1 (RFC 4291 §2.5.5.1), NAT64
// 64:ff9b::/96 (RFC 6052 §2.1) and 64:ff9b:1::/48 (RFC 8215), 6to4
// 2002::/16 (RFC 3056 §2) and Teredo 2001::/32 (RFC 4380 §4). A packet to
// one goes to, or through, the IPv4 host inside by a translator, relay or
// tunnel the sender does not see: dial refuses them all, so that only an
// address given plainly is ever connected to.
func Embedded(a netip.Addr) (Embedding, bool) {
	if !a.Is6() {
		return Embedding{}, false
	}
	a = a.WithZone("")
	b := a.As16()
	last32 := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case a.Is4In6():
		return Embedding{Form: "IPv4-mapped", RFC: "RFC 4291", Inner: a.Unmap()}, true
	case ipv4Compatible.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return Embedding{Form: "IPv4-compatible", RFC: "RFC 4291", Inner: last32}, true
	case nat64WellKnown.Contains(a):
		return Embedding{Form: "NAT64", RFC: "RFC 6052", Inner: last32}, true
	case nat64LocalUse.Contains(a):
		return Embedding{Form: "local-use NAT64", RFC: "RFC 8215"}, true
	case sixToFour.Contains(a):
		return Embedding{Form: "6to4", RFC: "RFC 3056", Inner: netip.AddrFrom4([4]byte(b[2:6]))}, true
	case teredo.Contains(a):
		// RFC 4380 §4: the last 32 bits are the client's IPv4 address
		// with every bit inverted.
		c := [4]byte(b[12:16])
		for i := range c {
			c[i] ^= 0xff
		}
		return Embedding{Form: "Teredo", RFC: "RFC 4380", Inner: netip.AddrFrom4(c)}, true
	}
	return Embedding{}, false
}

// Blocks returns the table Of uses, more specific blocks first, without
// the IPv6 blocks judged by their IPv4 address (::ffff:0:0/96,
// 64:ff9b::/96, 2002::/16) and the "reserved" rest outside 2000::/3.
func Blocks() []Block { return slices.Clone(blocks) }

// lookup is Of for an address judged by itself.
func lookup(a netip.Addr) Class {
	fam, f := leading(a)
	for _, b := range byFirst[fam][f] {
		if b.Prefix.Contains(a) {
			return b.Class
		}
	}
	if fam == 1 && (f < 0x20 || f > 0x3f) {
		return reserved // outside 2000::/3
	}
	return Class{}
}

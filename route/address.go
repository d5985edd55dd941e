package route

import (
	"net/netip"
	"strings"
)

// specialRange is one entry of the IANA special-purpose address registries
// (RFC 6890 and its updates) that is not globally reachable, so a sender on
// the Internet cannot deliver to it.
type specialRange struct {
	prefix netip.Prefix
	why    string
	doc    bool // a documentation range (RFC 5737, RFC 3849, RFC 9637)
}

var specialRanges = func() []specialRange {
	rs := []struct {
		p, why string
		doc    bool
	}{
		{"0.0.0.0/8", "this-network", false},
		{"10.0.0.0/8", "private, RFC 1918", false},
		{"100.64.0.0/10", "shared address space, RFC 6598", false},
		{"127.0.0.0/8", "loopback", false},
		{"169.254.0.0/16", "link-local", false},
		{"172.16.0.0/12", "private, RFC 1918", false},
		{"192.0.0.0/24", "IETF protocol assignments", false},
		{"192.0.2.0/24", "documentation, RFC 5737", true},
		{"192.168.0.0/16", "private, RFC 1918", false},
		{"198.18.0.0/15", "benchmarking, RFC 2544", false},
		{"198.51.100.0/24", "documentation, RFC 5737", true},
		{"203.0.113.0/24", "documentation, RFC 5737", true},
		{"224.0.0.0/4", "multicast", false},
		{"240.0.0.0/4", "reserved", false},
		{"::/128", "unspecified", false},
		{"::1/128", "loopback", false},
		{"::ffff:0:0/96", "IPv4-mapped", false},
		{"64:ff9b:1::/48", "local-use NAT64, RFC 8215", false},
		{"100::/64", "discard-only, RFC 6666", false},
		{"2001:2::/48", "benchmarking, RFC 5180", false},
		{"2001:db8::/32", "documentation, RFC 3849", true},
		{"3fff::/20", "documentation, RFC 9637", true},
		{"5f00::/16", "SRv6 SIDs, RFC 9602", false},
		{"fc00::/7", "unique local, RFC 4193", false},
		{"fe80::/10", "link-local", false},
		{"ff00::/8", "multicast", false},
	}
	out := make([]specialRange, len(rs))
	for i, r := range rs {
		out[i] = specialRange{netip.MustParsePrefix(r.p), r.why, r.doc}
	}
	return out
}()

// specialFirst marks, per family (0: IPv4, 1: IPv6), the first bytes
// that some special range can start with (a prefix shorter than 8 bits
// covers several).
var specialFirst = func() (marks [2][256]bool) {
	for _, r := range specialRanges {
		p := r.prefix.Masked()
		fam, first := leading(p.Addr())
		span := 1
		if p.Bits() < 8 {
			span = 1 << (8 - p.Bits())
		}
		for b := range span {
			marks[fam][int(first)+b] = true
		}
	}
	return marks
}()

// leading returns a's family (0: IPv4, 1: IPv6) and first byte.
func leading(a netip.Addr) (int, byte) {
	if a.Is4() {
		return 0, a.As4()[0]
	}
	return 1, a.As16()[0]
}

// specialPurpose says why addr is not reachable from the Internet, or ""
// when it is. Documentation addresses are accepted for domains that are
// themselves reserved for testing and documentation (RFC 2606, RFC 6761
// §6.2): an example zone under .test with 192.0.2.1 is consistent, the same
// address under a real domain is a mistake.
func specialPurpose(a netip.Addr, domain string) string {
	a = a.WithZone("")
	if v4, how, ok := embeddedIPv4(a); ok {
		if why := specialPurpose(v4, domain); why != "" {
			return how + " of " + v4.String() + ", " + why
		}
		return ""
	}
	if fam, first := leading(a); !specialFirst[fam][first] {
		// Most addresses are global: no range starts with their first
		// byte, so none of them needs a look.
		return ""
	}
	return inSpecialRanges(a, domain)
}

// Prefixes whose addresses lead to the IPv4 address inside them.
var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address reaches through a
// translator: the last 32 bits of the NAT64 well-known prefix (RFC 6052
// §2.1, §3.1: it must not carry a non-global IPv4 address), and bits 16 to
// 47 of a 6to4 address (RFC 3056 §2). An MX address 64:ff9b::a00:1 is
// 10.0.0.1 for a sender behind NAT64: private all the same.
func embeddedIPv4(a netip.Addr) (netip.Addr, string, bool) {
	b := a.As16()
	switch {
	case !a.Is6() || a.Is4In6():
		return netip.Addr{}, "", false
	case nat64WellKnown.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	}
	return netip.Addr{}, "", false
}

// inSpecialRanges is specialPurpose's look at every range.
func inSpecialRanges(a netip.Addr, domain string) string {
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			if r.doc && isDocumentationDomain(domain) {
				return ""
			}
			return r.why
		}
	}
	return ""
}

// isDocumentationDomain reports names under the TLDs of RFC 2606 and RFC
// 6761 §6.2–6.4 and the second-level example names of RFC 2606 §3.
func isDocumentationDomain(domain string) bool {
	switch domain[strings.LastIndexByte(domain, '.')+1:] {
	case "test", "example", "invalid", "localhost":
		return true
	}
	for _, n := range []string{"example.com", "example.net", "example.org"} {
		if domain == n || strings.HasSuffix(domain, "."+n) {
			return true
		}
	}
	return false
}

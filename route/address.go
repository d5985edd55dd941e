package route

import (
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/ipclass"
)

// specialPurpose says why addr is not reachable from the Internet, or ""
// when it is, by the IANA special-purpose registries (RFC 6890; package
// ipclass, which judges NAT64, 6to4 and IPv4-mapped addresses by the IPv4
// address inside them: RFC 6052 §3.1, RFC 3056 §2). Documentation
// addresses are accepted for domains that are themselves reserved for
// testing and documentation (RFC 2606, RFC 6761 §6.2): an example zone
// under .test with 192.0.2.1 is consistent, the same address under a real
// domain is a mistake (docs/routing.md).
func specialPurpose(a netip.Addr, domain string) string {
	c := ipclass.Of(a)
	if c.Global() || c.Doc && isDocumentationDomain(domain) {
		return ""
	}
	return c.String()
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

package serve

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request is attributed to, for the rate limit
// and the access log: the peer's address, unless the peer is one of the
// trusted reverse proxies, in which case it is what the proxies say in
// X-Forwarded-For (the de facto header that RFC 7239 §5.2's "for"
// parameter standardises).
//
// Each proxy appends the address it received the request from, so the
// list is read from the right: the right-most address not inside a trusted
// prefix is the client, and every address to its left was written by the
// client itself and proves nothing. An entry that does not parse is the
// word of the proxy that passed it on, so that proxy is the client. With
// no trusted prefixes, or a peer outside them, the header is ignored.
//
// The address is unmapped (::ffff:192.0.2.1 is 192.0.2.1) and has no zone.
// A peer address that does not parse (a Unix socket) gives the zero Addr,
// and all such peers are one client.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := plainAddr(ap.Addr())
	if !within(addr, trusted) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return addr
			}
			hop = plainAddr(hop)
			if !within(hop, trusted) {
				return hop
			}
			addr = hop
		}
	}
	return addr
}

// plainAddr is a without its IPv4 mapping and zone.
func plainAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// within reports whether a is inside one of prefixes.
func within(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

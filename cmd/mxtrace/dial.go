package main

import "github.com/mxtrace/mxtrace/dial"

// dialer is the outbound dialer of every command: -4/-6 apply, and
// g.policy, which is nil (any address) for the commands, since users point
// mxtrace at their own hosts, and refuses non-public addresses for serve
// unless --allow-private (docs/security.md#what-serve-refuses).
func (g *globals) dialer() *dial.Net {
	return &dial.Net{IPv4: g.ipv4, IPv6: g.ipv6, Policy: g.policy}
}

package main

import "github.com/mxtrace/mxtrace/dial"

// dialer is the outbound dialer of every command: -4/-6 apply, and no
// address policy, since users point mxtrace at their own hosts
// (docs/security.md).
func (g *globals) dialer() *dial.Net {
	return &dial.Net{IPv4: g.ipv4, IPv6: g.ipv6}
}

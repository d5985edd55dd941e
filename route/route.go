// Package route computes the delivery plan for a mail domain exactly as an
// RFC 5321 §5.1 sender does: follow an alias, recognise NXDOMAIN, Null MX
// (RFC 7505) and implicit MX, sort the exchanges into preference tiers, drop
// what --self forbids, shuffle each tier, and resolve every exchange.
package route

import (
	"context"
	"log/slog"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// Bounds on the work one plan may cause (SPEC routing rule 9).
const (
	DefaultMaxExchanges = 64
	DefaultMaxAddresses = 16
)

// Planner computes Plans. The zero value is not usable: Resolver is required.
type Planner struct {
	Resolver resolve.Resolver
	Logger   *slog.Logger // nil: no logging

	// Self is the sending host's name when it is itself an MX of the
	// domain (RFC 5321 §5.1): records at its preference or above are dropped.
	Self dnsname.Name
	// Seed makes the shuffle reproducible when HasSeed is set.
	Seed    uint64
	HasSeed bool
	// IPv4 and IPv6 select the address families resolved; both false means both.
	IPv4, IPv6 bool
	// MaxExchanges and MaxAddresses default to DefaultMaxExchanges and DefaultMaxAddresses.
	MaxExchanges, MaxAddresses int
}

// Plan computes the delivery plan for domain. It always returns a Plan; the
// error is non-nil exactly when Result is ResultError and says why.
func (p *Planner) Plan(ctx context.Context, domain dnsname.Name) (*Plan, error) {
	panic("TODO")
}

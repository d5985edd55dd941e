// Package rdns checks reverse DNS for mail servers: the PTR record of an
// address (RFC 1035 §3.5, RFC 3596 §2.5) and forward-confirmed reverse DNS,
// where one of the PTR names must resolve back to the address (RFC 8601
// §3, "iprev"). Receivers commonly distrust or reject mail from addresses
// without it, so an exchange that also sends mail needs it.
package rdns

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// MaxNames bounds how many PTR names are forward-checked, as RFC 7208 §4.6.4
// bounds the same walk for SPF's ptr mechanism.
const MaxNames = 10

// Result is the reverse DNS of one address.
type Result struct {
	Address netip.Addr `json:"address"`
	// Names are the PTR targets, in the order served, without the final dot.
	Names []string `json:"names"`
	// Confirmed is the first name whose A/AAAA records include Address.
	Confirmed string `json:"confirmed,omitempty"`
}

// Lookup finds the PTR names of addr and confirms them forward, asking for
// every name at once. A temporary failure of the PTR lookup is an error;
// failures of the forward lookups leave that name unconfirmed.
func Lookup(ctx context.Context, r resolve.Resolver, addr netip.Addr, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "rdns lookup", []any{"address", addr},
		func() (*Result, error) { return lookup(ctx, r, addr) },
		func(res *Result) []any { return []any{"names", len(res.Names), "confirmed", res.Confirmed} })
}

// Options configure Lookup; the zero value is ready to use.
type Options struct {
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

func lookup(ctx context.Context, r resolve.Resolver, addr netip.Addr) (*Result, error) {
	addr = addr.Unmap()
	res := &Result{Address: addr, Names: []string{}}
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return nil, fmt.Errorf("rdns: %w", err)
	}
	ptr, err := resolve.Follow(ctx, r, resolve.Q(rev, dns.TypePTR))
	if err != nil {
		return nil, err
	}
	for _, rr := range ptr.Records {
		res.Names = append(res.Names, strings.TrimSuffix(dns.CanonicalName(rr.(*dns.PTR).Ptr), "."))
	}
	qtype := dns.TypeA
	if addr.Is6() {
		qtype = dns.TypeAAAA
	}
	names := res.Names[:min(len(res.Names), MaxNames)]
	match := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			fwd, err := resolve.Follow(ctx, r, resolve.Q(n+".", qtype))
			if err != nil {
				return
			}
			match[i] = slices.ContainsFunc(fwd.Records, func(rr dns.RR) bool {
				a, ok := resolve.AddrOf(rr)
				return ok && a == addr
			})
		})
	}
	wg.Wait()
	if i := slices.Index(match, true); i >= 0 {
		res.Confirmed = names[i]
	}
	return res, nil
}

// Findings reports ptr-missing or ptr-mismatch for one address of the
// exchange host (the plan's name for it, which the messages quote).
func Findings(res *Result, host string) []finding.Finding {
	switch {
	case res == nil:
		return nil
	case len(res.Names) == 0:
		return []finding.Finding{finding.Newf(finding.PTRMissing, res.Address.String(), "%s (%s) has no PTR record.", res.Address, host)}
	case res.Confirmed == "":
		return []finding.Finding{finding.Newf(finding.PTRMismatch, res.Address.String(),
			"%s (%s) has PTR %s, but that name does not resolve back to %s.", res.Address, host, strings.Join(res.Names, ", "), res.Address)}
	}
	return nil
}

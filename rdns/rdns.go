// Package rdns checks reverse DNS for mail servers: the PTR record of an
// address (RFC 1035 §3.5, RFC 3596 §2.5) and forward-confirmed reverse DNS,
// where one of the PTR names must resolve back to the address (RFC 8601
// §3, "iprev"). Receivers commonly distrust or reject mail from addresses
// without it, so an exchange that also sends mail needs it.
package rdns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
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
func Lookup(ctx context.Context, r resolve.Resolver, addr netip.Addr) (*Result, error) {
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

// Findings reports ptr-missing and ptr-mismatch for the addresses of the
// exchange host.
func Findings(host string, results []*Result) []finding.Finding {
	var fs []finding.Finding
	for _, r := range results {
		switch {
		case len(r.Names) == 0:
			fs = append(fs, finding.Newf(finding.PTRMissing, r.Address.String(), "%s (%s) has no PTR record.", r.Address, host))
		case r.Confirmed == "":
			fs = append(fs, finding.Newf(finding.PTRMismatch, r.Address.String(),
				"%s (%s) has PTR %s, but that name does not resolve back to %s.", r.Address, host, strings.Join(r.Names, ", "), r.Address))
		}
	}
	return fs
}

package probe

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// The DNS facts about exchanges that the SMTP judges use besides the probe
// itself: the reverse DNS of every address (a greeting may name the PTR
// name instead of the MX name) and the TLSA records of every exchange (the
// DANE match). GatherPTR and GatherTLSA are the one way they are gathered:
// check.Gather calls them for its audit, and Auditor for "mxtrace probe".

// HostPTR is the reverse DNS of one exchange's addresses.
type HostPTR struct {
	Host    string         `json:"host"`
	Results []*rdns.Result `json:"results"`
	Errors  []string       `json:"errors,omitempty"` // addresses whose PTR lookup failed temporarily
	// Outside counts addresses whose reverse zone is not in the --zone
	// files (offline runs): not looked at, and not an error.
	Outside int `json:"outside,omitempty"`
}

// GatherPTR looks up the PTR names of every address of every host and
// confirms them forward, all at once (rdns.LookupAll); the result has one
// HostPTR per host, in order.
func GatherPTR(ctx context.Context, r resolve.Resolver, hosts []route.Host, logger *slog.Logger) []HostPTR {
	// Every address of every host, looked up at once; sorted into the
	// hosts afterwards.
	var addrs []netip.Addr
	var of []int // the host of each address
	for i, h := range hosts {
		for _, s := range h.Addresses {
			if ip, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, ip)
				of = append(of, i)
			}
		}
	}
	res, errs := rdns.LookupAll(ctx, r, addrs, rdns.Options{Logger: logger})

	out := make([]HostPTR, len(hosts))
	for i, h := range hosts {
		out[i].Host = h.Name
	}
	// One array for every host's Results, each host's cut from it: a
	// host's addresses are next to each other in addrs, and the array
	// never grows, so no cut moves.
	all := make([]*rdns.Result, 0, len(res))
	begin := 0
	for k, err := range errs {
		if k == 0 || of[k] != of[k-1] {
			begin = len(all)
		}
		h := &out[of[k]]
		switch {
		case errors.Is(err, resolve.ErrNotInZone):
			h.Outside++
		case err != nil:
			h.Errors = append(h.Errors, err.Error())
		default:
			all = append(all, res[k])
			h.Results = all[begin:len(all):len(all)]
		}
	}
	return out
}

// PTRNames indexes the PTR names of the gathered addresses by address, the
// form Findings compares greetings with.
func PTRNames(ptr []HostPTR) map[netip.Addr][]string {
	m := map[netip.Addr][]string{}
	for _, h := range ptr {
		for _, r := range h.Results {
			if len(r.Names) > 0 {
				m[r.Address] = r.Names
			}
		}
	}
	return m
}

// Addressed lists the plan's hosts that resolved to an address: the ones
// a sender connects to, and so the ones whose TLSA records it asks for
// (RFC 7672 §2.2: TLSA lookup follows address resolution). An IP-literal
// target or a dangling name has no TLSA base domain.
func Addressed(hosts []route.Host) []string {
	var out []string
	for _, h := range hosts {
		if len(h.Addresses) > 0 && h.Name != "" && !isAddressLiteral(h.Name) {
			out = append(out, h.Name)
		}
	}
	return out
}

// GatherTLSA looks up the TLSA records of every host at once
// (dane.LookupAll). Results and errors are in the order of hosts: a result
// is nil where that host's lookup failed, and its error says why.
func GatherTLSA(ctx context.Context, r resolve.Resolver, hosts []string, opts dane.Options) ([]*dane.Result, []error) {
	return dane.LookupAll(ctx, r, hosts, opts)
}

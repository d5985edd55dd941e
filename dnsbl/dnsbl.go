// Package dnsbl looks exchange addresses up on DNS blacklists (RFC 5782)
// and tells a listing apart from a list that refused to answer.
//
// A list is asked for the address with its octets (IPv4) or nibbles (IPv6)
// reversed under the list's zone (RFC 5782 §2.1, §2.4). An A record in
// 127.0.0.0/8 means listed, with the TXT record as the reason; NXDOMAIN
// means not listed. Lists also answer in ways that mean "I will not tell
// you": Spamhaus returns 127.255.255.x to public resolvers and over-quota
// users, a hijacking resolver returns an advertising address for every
// name, and a dead list answers for everything or nothing. Those are
// reported as dnsbl-unusable, never as a listing, using the test entries of
// RFC 5782 §5 (127.0.0.2 must be listed, 127.0.0.1 must not).
package dnsbl

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
)

// DefaultLists are queried when the caller names none: widely used lists
// that are free for low-volume queries. Spamhaus ZEN blocks queries that
// arrive through large public resolvers; that shows up as dnsbl-unusable.
var DefaultLists = []string{
	"zen.spamhaus.org",
	"bl.spamcop.net",
	"psbl.surriel.com",
	"bl.mailspike.net",
}

// Status is the outcome of one address on one list.
type Status string

// Statuses.
const (
	Listed   Status = "listed"
	Clean    Status = "clean"
	Unusable Status = "unusable" // the list refused or gave a meaningless answer
)

// Entry is one address on one list.
type Entry struct {
	List    string     `json:"list"`
	Address netip.Addr `json:"address"`
	Status  Status     `json:"status"`
	Codes   []string   `json:"codes,omitempty"`  // the A records returned, e.g. 127.0.0.2
	Reason  string     `json:"reason,omitempty"` // the TXT record, or why the list is unusable
}

// Result is what Lookup found: one Entry per (list, address), lists in
// order, addresses in order. Its JSON form is the list of entries.
type Result struct {
	Entries []Entry
}

// MarshalJSON writes the entries as a JSON array.
func (r *Result) MarshalJSON() ([]byte, error) { return json.Marshal(r.Entries) }

// IsZero reports whether there is nothing to show (no address was asked
// about), for omitzero.
func (r *Result) IsZero() bool { return r == nil || len(r.Entries) == 0 }

// Options configure Lookup; the zero value asks DefaultLists.
type Options struct {
	Lists  []string     // the list zones to ask; empty: DefaultLists
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

// QueryName is the name asked for addr on zone (RFC 5782 §2.1, §2.4).
func QueryName(addr netip.Addr, zone string) string {
	return string(append(rdns.AppendReversed(nil, addr), dns.Fqdn(zone)...))
}

// Lookup looks every listable address of addrs up on every list, all at
// once. Private, loopback, link-local and other non-global addresses are
// left out: no list can know them, and asking would only leak them. Each
// list's health is checked once with the RFC 5782 §5 test entries, unless
// no address is left to ask about.
//
// A list that fails or refuses is an Unusable entry, not an error. The
// error is for a blacklist check that could not be done at all: not one
// query, test entries included, got an answer (the resolver is down).
func Lookup(ctx context.Context, r resolve.Resolver, addrs []netip.Addr, opts Options) (*Result, error) {
	addrs = slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool {
		a = a.Unmap()
		return !a.IsGlobalUnicast() || a.IsPrivate()
	})
	return lookuplog.Run(opts.Logger, "dnsbl lookup", []any{"addresses", len(addrs)},
		func() (*Result, error) { return check(ctx, r, addrs, opts.Lists) },
		func(res *Result) []any { return []any{"entries", len(res.Entries)} })
}

// check asks every list about every one of addrs, which are all global.
func check(ctx context.Context, r resolve.Resolver, addrs []netip.Addr, lists []string) (*Result, error) {
	if len(addrs) == 0 {
		return &Result{Entries: []Entry{}}, nil
	}
	if len(lists) == 0 {
		lists = DefaultLists
	}
	out := make([]Entry, len(lists)*len(addrs))
	errs := make([]error, len(lists)*len(addrs))
	health := make([]string, len(lists))
	healthErr := make([]error, len(lists))
	var wg sync.WaitGroup
	for li, list := range lists {
		wg.Go(func() { health[li], healthErr[li] = checkHealth(ctx, r, list) })
		for ai, a := range addrs {
			k := li*len(addrs) + ai
			wg.Go(func() { out[k], errs[k] = lookup(ctx, r, list, a) })
		}
	}
	wg.Wait()
	if err := allFailed(append(errs, healthErr...)); err != nil {
		return nil, fmt.Errorf("dnsbl: no list could be asked: %w", err)
	}
	for li, list := range lists {
		if health[li] == "" {
			continue
		}
		for ai := range addrs {
			e := &out[li*len(addrs)+ai]
			if e.Status == Listed || e.Status == Clean {
				*e = Entry{List: list, Address: e.Address, Status: Unusable, Reason: health[li]}
			}
		}
	}
	return &Result{Entries: out}, nil
}

// allFailed returns the first error when every one of errs is an error,
// else nil.
func allFailed(errs []error) error {
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errs[0]
}

// checkHealth checks a list with its RFC 5782 §5 test entries and returns
// why it is unusable, or "". The error is set when both test queries failed.
func checkHealth(ctx context.Context, r resolve.Resolver, list string) (string, error) {
	pos, posErr := lookup(ctx, r, list, netip.MustParseAddr("127.0.0.2"))
	neg, negErr := lookup(ctx, r, list, netip.MustParseAddr("127.0.0.1"))
	if posErr != nil && negErr != nil {
		return pos.Reason, posErr
	}
	return health(pos, neg), nil
}

// health says why a list whose test entries answered pos and neg is
// unusable, or "".
func health(pos, neg Entry) string {
	switch {
	case pos.Status == Unusable:
		return pos.Reason
	case neg.Status == Unusable:
		return neg.Reason
	case pos.Status != Listed:
		return "the list does not list its test entry 127.0.0.2 (RFC 5782 §5): it is down or refuses this resolver"
	case neg.Status == Listed:
		return "the list lists 127.0.0.1, which must never be listed (RFC 5782 §5): it answers for every address"
	}
	return ""
}

// lookup asks one list about one address. A failed query is an Unusable
// entry saying so, and its error.
func lookup(ctx context.Context, r resolve.Resolver, list string, addr netip.Addr) (Entry, error) {
	e := Entry{List: list, Address: addr}
	name := QueryName(addr, list)
	a, err := resolve.Follow(ctx, r, resolve.Q(name, dns.TypeA))
	if err != nil {
		e.Status, e.Reason = Unusable, fmt.Sprintf("the query failed: %v", err)
		return e, err
	}
	if len(a.Records) == 0 {
		// RFC 5782 §2.1: a listed entry has an A record; NXDOMAIN or no
		// A record both mean not listed.
		e.Status = Clean
		return e, nil
	}
	for _, rr := range a.Records {
		ip, _ := resolve.AddrOf(rr)
		e.Codes = append(e.Codes, ip.String())
		if why := refusal(ip); why != "" {
			e.Status, e.Reason = Unusable, why
		}
	}
	if e.Status == Unusable {
		return e, nil
	}
	e.Status = Listed
	if t, err := resolve.Follow(ctx, r, resolve.Q(name, dns.TypeTXT)); err == nil {
		var reasons []string
		for _, rr := range t.Records {
			reasons = append(reasons, resolve.TXTData(rr.(*dns.TXT)))
		}
		e.Reason = strings.Join(reasons, "; ")
	}
	return e, nil
}

// refusal explains a return code that is not a listing, or "".
func refusal(ip netip.Addr) string {
	switch {
	case !netip.MustParsePrefix("127.0.0.0/8").Contains(ip):
		// RFC 5782 §2.1: codes are in 127/8; anything else comes from a
		// resolver that rewrites NXDOMAIN.
		return fmt.Sprintf("the list answered %s, outside 127.0.0.0/8: the resolver rewrites answers", ip)
	case netip.MustParsePrefix("127.255.255.0/24").Contains(ip):
		// Spamhaus's error codes (also used by others): 252 typo in the
		// query, 254 query through a public resolver, 255 excessive use.
		return fmt.Sprintf("the list refused the query (return code %s)", ip)
	}
	return ""
}

// Findings turns a Lookup result into findings: one dnsbl-listed per
// listing, and one dnsbl-unusable per list that could not be used.
func Findings(res *Result) []finding.Finding {
	if res == nil {
		return nil
	}
	var fs []finding.Finding
	unusable := map[string]bool{}
	for _, r := range res.Entries {
		switch r.Status {
		case Listed:
			msg := fmt.Sprintf("%s is listed on %s (%s)", r.Address, r.List, strings.Join(r.Codes, ", "))
			if r.Reason != "" {
				msg += ": " + r.Reason
			}
			fs = append(fs, finding.New(finding.DNSBLListed, r.Address.String(), msg+"."))
		case Unusable:
			if !unusable[r.List] {
				unusable[r.List] = true
				fs = append(fs, finding.Newf(finding.DNSBLUnusable, r.List, "%s could not be used: %s.", r.List, r.Reason))
			}
		}
	}
	return fs
}

package resolve

import (
	"context"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// MaxCNAMEChain bounds how many aliases Follow walks. RFC 1034 §3.6.2 asks
// resolvers to follow chains but to detect loops; 8 is what BIND and Unbound
// accept in practice (Unbound's max is 11 restarts), far above real use.
const MaxCNAMEChain = 8

// Result is the outcome of Follow: the records of the asked type at the end
// of the alias chain, or the reason there are none.
type Result struct {
	Question Question // what was asked
	Name     string   // the canonical name reached (equal to Question.Name without aliases)
	Chain    []string // every alias target in order; empty when Question.Name is not an alias
	Records  []dns.RR // records of Question.Type owned by Name, in the order served
	NXDomain bool     // Name does not exist
	AD       bool     // every answer on the way had the AD bit
	TTL      uint32   // the lowest TTL met on the way (how long the result holds)
	Server   string   // who gave the final answer
}

// NoData reports a name that exists but has no records of the asked type.
func (r *Result) NoData() bool { return !r.NXDomain && len(r.Records) == 0 }

// Follow asks r for name/qtype and follows CNAME records to the canonical
// name (RFC 1034 §3.6.2, RFC 2181 §10.1). A recursive resolver usually
// returns the whole chain in one answer; when it stops early (an
// authoritative-only answer, or a chain that leaves the zone) Follow asks
// again for the last target. Loops and chains longer than MaxCNAMEChain are
// errors, never an endless walk.
func Follow(ctx context.Context, r Resolver, q Question) (*Result, error) {
	res := &Result{Question: q, Name: q.Name, AD: true}
	firstTTL := true
	for queries := 0; ; queries++ {
		if queries > MaxCNAMEChain {
			return res, &Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w (more than %d aliases)", ErrCNAMEChain, MaxCNAMEChain)}
		}
		a, err := r.Lookup(ctx, Q(res.Name, q.Type))
		if err != nil {
			return res, err
		}
		res.Server = a.Server
		res.AD = res.AD && a.AD
		ttl := a.TTL()
		if firstTTL || ttl < res.TTL {
			res.TTL, firstTTL = ttl, false
		}
		// Walk the aliases this answer carries, in chain order whatever the
		// order of the section.
		for {
			next := ""
			if q.Type != dns.TypeCNAME {
				for _, rr := range a.Answer {
					if c, ok := rr.(*dns.CNAME); ok && equalNames(c.Hdr.Name, res.Name) {
						next = CanonicalName(c.Target)
						break
					}
				}
			}
			if next == "" {
				break
			}
			// The names seen are the question and the chain so far, at
			// most MaxCNAMEChain+1: a scan of them needs no map.
			if next == q.Name || slices.Contains(res.Chain, next) {
				return res, &Error{Question: q, Server: a.Server, Rcode: -1, Err: fmt.Errorf("%w at %s", ErrCNAMELoop, next)}
			}
			if len(res.Chain) >= MaxCNAMEChain {
				return res, &Error{Question: q, Server: a.Server, Rcode: -1, Err: fmt.Errorf("%w (more than %d aliases)", ErrCNAMEChain, MaxCNAMEChain)}
			}
			res.Chain = append(res.Chain, next)
			res.Name = next
		}
		for _, rr := range a.Answer {
			if rr.Header().Rrtype == q.Type && equalNames(rr.Header().Name, res.Name) {
				res.Records = append(res.Records, rr)
			}
		}
		if len(res.Records) > 0 {
			return res, nil
		}
		if a.NXDomain() {
			// RFC 6604 §2.1: the rcode is about the last name of the chain.
			res.NXDomain = true
			return res, nil
		}
		// NOERROR without records. If the answer ended on the name asked
		// (no new alias), or carried a negative-answer SOA for the chain's
		// end (RFC 2308 §2.2), it is NODATA. Otherwise the server stopped at
		// an alias it could not follow: ask for the target.
		if len(a.Answer) == 0 || equalNames(a.Question.Name, res.Name) || hasSOA(a.Authority) {
			return res, nil
		}
	}
}

func hasSOA(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

func equalNames(a, b string) bool { return CanonicalName(a) == CanonicalName(b) }

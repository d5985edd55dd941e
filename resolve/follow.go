package resolve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// MaxCNAMEChain bounds how many aliases Follow walks. RFC 1034 §3.6.2 asks
// resolvers to follow chains but to detect loops; 8 is what BIND and Unbound
// accept in practice (Unbound's max is 11 restarts), far above real use
// (docs/routing.md#alias-chain, docs/security.md#deadlines-and-caps).
const MaxCNAMEChain = 8

// Result is the outcome of Follow: the records of the asked type at the end
// of the alias chain, or the reason there are none.
type Result struct {
	Question Question // what was asked
	Name     string   // the canonical name reached (equal to Question.Name without aliases)
	Chain    []string // every alias target in order; empty when Question.Name is not an alias
	Records  []dns.RR // records of Question.Type owned by Name, in the order served; shared, not to be modified
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
//
// Records may share the answer's slice, which is shared too (a Cache hands
// the same answer to every caller): callers must not modify it.
func Follow(ctx context.Context, r Resolver, q Question) (*Result, error) {
	// The walk is in follow so that Follow inlines: a caller that keeps
	// the Result to itself (the planner, for every exchange of every
	// domain of a scan) then has it on its stack, not the heap.
	res := &Result{Question: q, Name: q.Name, AD: true}
	return res, res.follow(ctx, r, false)
}

// ErrNotCached is FollowCached's word for a walk that needs an answer r
// does not hold in memory.
var ErrNotCached = errors.New("not cached")

// FollowCached is Follow from the answers r holds in memory (Ready), never
// asking anyone: ErrNotCached when one is missing. A scan plans nearly
// every domain from its cache; one look per question, where asking
// IsReady and then Follow looked twice, each under the cache's lock.
func FollowCached(r Resolver, q Question) (*Result, error) {
	res := &Result{Question: q, Name: q.Name, AD: true}
	return res, res.follow(noContext, r, true)
}

// noContext is the context of a walk from memory, which never uses it: a
// variable, not a call, so that FollowCached inlines.
var noContext = context.Background()

// follow walks the chain, from memory only when fromMemory is set.
func (res *Result) follow(ctx context.Context, r Resolver, fromMemory bool) error {
	q := res.Question
	firstTTL := true
	for queries := 0; ; queries++ {
		if queries > MaxCNAMEChain {
			return &Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w (more than %d aliases)", ErrCNAMEChain, MaxCNAMEChain)}
		}
		// res.Name is canonical already, q's (Q, NewQuestion) or an
		// alias target made so below: not canonicalised again.
		ask := Question{Name: res.Name, Type: q.Type}
		var a *Answer
		if fromMemory {
			var ok bool
			if a, ok = CachedAnswer(r, ask); !ok {
				return ErrNotCached
			}
		} else {
			var err error
			if a, err = r.Lookup(ctx, ask); err != nil {
				return err
			}
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
					if c, ok := rr.(*dns.CNAME); ok && EqualNames(c.Hdr.Name, res.Name) {
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
				return &Error{Question: q, Server: a.Server, Rcode: -1, Err: fmt.Errorf("%w at %s", ErrCNAMELoop, displayName(next))}
			}
			if len(res.Chain) >= MaxCNAMEChain {
				return &Error{Question: q, Server: a.Server, Rcode: -1, Err: fmt.Errorf("%w (more than %d aliases)", ErrCNAMEChain, MaxCNAMEChain)}
			}
			res.Chain = append(res.Chain, next)
			res.Name = next
		}
		if res.Records = owned(a.Answer, res.Name, q.Type); len(res.Records) > 0 {
			return nil
		}
		if a.NXDomain() {
			// RFC 6604 §2.1: the rcode is about the last name of the chain.
			res.NXDomain = true
			return nil
		}
		// NOERROR without records. If the answer ended on the name asked
		// (no new alias), or carried a negative-answer SOA for the chain's
		// end (RFC 2308 §2.2), it is NODATA. Otherwise the server stopped at
		// an alias it could not follow: ask for the target.
		if len(a.Answer) == 0 || EqualNames(a.Question.Name, res.Name) || hasSOA(a.Authority) {
			return nil
		}
	}
}

// owned returns the records of rrs of type qtype owned by name, in the
// order served; nil when there are none. They are nearly always one run
// (after the aliases, if any), which is returned as a part of rrs, not a
// copy; its capacity ends with it, so an append cannot write into rrs.
func owned(rrs []dns.RR, name string, qtype uint16) []dns.RR {
	match := func(rr dns.RR) bool { return rr.Header().Rrtype == qtype && EqualNames(rr.Header().Name, name) }
	first, last, n := -1, -1, 0
	for i, rr := range rrs {
		if match(rr) {
			if first < 0 {
				first = i
			}
			last, n = i, n+1
		}
	}
	switch {
	case n == 0:
		return nil
	case n == last-first+1:
		return rrs[first : last+1 : last+1]
	}
	out := make([]dns.RR, 0, n)
	for _, rr := range rrs[first : last+1] {
		if match(rr) {
			out = append(out, rr)
		}
	}
	return out
}

func hasSOA(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// EqualNames reports names equal up to ASCII case, a trailing dot and
// their spelling, as their CanonicalName forms compare (RFC 4343: only
// ASCII letters fold; "a\032b." and "a b." are one name), without
// building them (it runs for every record of every answer a scan reads):
// only names that differ and have an escape, or an octet that may be
// escaped, are compared in canonical form.
func EqualNames(a, b string) bool {
	if a == b {
		return true
	}
	ta, tb := strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	if len(ta) == len(tb) {
		same := true
		for i := 0; i < len(ta) && same; i++ {
			same = lowerASCII(ta[i]) == lowerASCII(tb[i])
		}
		if same {
			return true
		}
	}
	if !mayBeSpelled(a) && !mayBeSpelled(b) {
		return false
	}
	return CanonicalName(a) == CanonicalName(b)
}

// mayBeSpelled reports a name with an octet that has another spelling.
func mayBeSpelled(name string) bool {
	for i := 0; i < len(name); i++ {
		if needsSpelling(name[i]) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// displayName is an absolute name as messages show it, without the
// trailing dot, so that a sentence ending with it does not end in "..".
func displayName(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}

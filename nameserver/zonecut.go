package nameserver

import (
	"context"
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// cut is where a name's records live.
type cut struct {
	name  string   // the canonical name: the start, or the end of its alias chain
	chain []string // alias targets in order
	nx    bool     // name does not exist
	apex  string   // the owner of the zone's SOA; empty when not found
}

// zoneCut finds the apex of the zone holding start's records. It asks the
// recursive resolver for start's SOA: the zone's SOA is at its apex, so an
// answer owned by the name says the name is an apex, and a negative answer
// carries the SOA of the zone that would hold it in its authority section
// (RFC 2308 §2.1, §2.2; RFC 2181 §6 calls the apex the top node of the zone,
// RFC 1034 §4.2 the zone cut). An alias is followed to its canonical name,
// whose zone is the one that matters for mail (RFC 5321 §5.1). When the
// resolver strips the SOA from negative answers, the search walks up one
// label at a time, at most maxWalk labels.
func (au *audit) zoneCut(ctx context.Context, start string) (*cut, error) {
	c := &cut{name: dns.CanonicalName(start)}
	first := c.name
	for queries := 0; ; queries++ {
		if queries > resolve.MaxCNAMEChain {
			return c, fmt.Errorf("nameserver: zone of %s: %w (more than %d aliases)", display(start), resolve.ErrCNAMEChain, resolve.MaxCNAMEChain)
		}
		a, err := recursive{au}.Lookup(ctx, resolve.Q(c.name, dns.TypeSOA))
		if err != nil {
			return c, fmt.Errorf("nameserver: zone of %s: %w", display(c.name), err)
		}
		// RFC 1034 §3.6.2: follow the aliases the answer carries, in
		// chain order whatever the order of the section.
		advanced := false
		for {
			next := cnameOf(a.Answer, c.name)
			if next == "" {
				break
			}
			// The names seen are the start and the chain so far, at
			// most MaxCNAMEChain+1: a scan of them needs no map.
			if next == first || slices.Contains(c.chain, next) {
				return c, fmt.Errorf("nameserver: zone of %s: %w at %s", display(start), resolve.ErrCNAMELoop, display(next))
			}
			if len(c.chain) >= resolve.MaxCNAMEChain {
				return c, fmt.Errorf("nameserver: zone of %s: %w (more than %d aliases)", display(start), resolve.ErrCNAMEChain, resolve.MaxCNAMEChain)
			}
			c.chain = append(c.chain, next)
			c.name, advanced = next, true
		}
		// RFC 6604 §2.1: the rcode is about the last name of the chain.
		c.nx = a.NXDomain()
		if soaOwnedBy(a.Answer, c.name) {
			c.apex = c.name
			return c, nil
		}
		if owner := negativeSOA(a.Authority, c.name); owner != "" {
			c.apex = owner
			return c, nil
		}
		if !advanced || c.nx || hasType(a.Answer, dns.TypeSOA) {
			break
		}
		// The resolver stopped at an alias it did not follow (an
		// authoritative-only answer): ask for the target.
	}

	// No SOA in sight: walk up towards the root. A name's zone is the one
	// whose apex is its closest ancestor owning an SOA.
	steps := 0
	for p, ok := dnsname.Parent(c.name); ok; p, ok = dnsname.Parent(p) {
		if steps++; steps > maxWalk {
			return c, fmt.Errorf("%w: walked up %d labels from %s", ErrNoZoneCut, maxWalk, display(c.name))
		}
		a, err := recursive{au}.Lookup(ctx, resolve.Q(p, dns.TypeSOA))
		if err != nil {
			return c, fmt.Errorf("nameserver: zone of %s: %w", display(c.name), err)
		}
		if soaOwnedBy(a.Answer, p) {
			c.apex = p
			return c, nil
		}
		if owner := negativeSOA(a.Authority, p); owner != "" {
			c.apex = owner
			return c, nil
		}
	}
	return c, fmt.Errorf("%w: %s", ErrNoZoneCut, display(c.name))
}

// cnameOf returns the target of the CNAME owned by name in rrs, or "".
func cnameOf(rrs []dns.RR, name string) string {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && resolve.EqualNames(c.Hdr.Name, name) {
			return dns.CanonicalName(c.Target)
		}
	}
	return ""
}

// soaOwnedBy reports whether rrs hold an SOA owned by name.
func soaOwnedBy(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA && resolve.EqualNames(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// negativeSOA returns the owner of the SOA in a negative answer's authority
// section when it is name or an ancestor of name (RFC 2308 §3: the SOA of
// the zone holding the name), or "". An SOA for an unrelated zone is
// ignored: it cannot be the zone of the name.
func negativeSOA(authority []dns.RR, name string) string {
	for _, rr := range authority {
		if rr.Header().Rrtype == dns.TypeSOA && dns.IsSubDomain(rr.Header().Name, name) {
			return dns.CanonicalName(rr.Header().Name)
		}
	}
	return ""
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

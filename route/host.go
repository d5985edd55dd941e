package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// resolveHost resolves one exchange to its addresses
// (docs/routing.md#address-resolution) and notes its problems
// (docs/routing.md#per-exchange-problems). A and AAAA are asked at once.
// The name may be absolute, as served (its lookups then need no copy of
// it), or as displayed.
func (p *Planner) resolveHost(ctx context.Context, domain, name string) (Host, []finding.Finding) {
	if n := trimDot(name); isIPLiteral(n) {
		return literalHost(n)
	}
	results, errs := p.followAll(ctx, name)
	return p.judgeHost(domain, name, results[:], errs[:])
}

// cachedHost is resolveHost from the answers in memory, with no wait and
// no goroutine: false when one is missing. It is a scan's usual case, as
// most exchanges are a few providers' hosts; asked here, the questions
// and every Result stay on this stack (FollowCached inlines).
func (p *Planner) cachedHost(domain, name string) (Host, []finding.Finding, bool) {
	if n := trimDot(name); isIPLiteral(n) {
		h, fs := literalHost(n)
		return h, fs, true
	}
	qs := p.addressQuestions(name)
	var results [2]resolve.Result
	var errs [2]error
	for i, q := range qs {
		r, err := resolve.FollowCached(p.Resolver, q)
		if err == resolve.ErrNotCached {
			return Host{}, nil, false
		}
		results[i], errs[i] = *r, err
	}
	h, fs := p.judgeHost(domain, name, results[:len(qs)], errs[:len(qs)])
	return h, fs, true
}

// literalHost is the Host of an exchange named by an address literal.
// RFC 5321 §5.1: the MX target is a domain name. A sender looks the
// literal up as a name, which fails; we do not send that query.
func literalHost(name string) (Host, []finding.Finding) {
	f := finding.Newf(finding.MXTargetIP, name, "The MX target %s is an IP address, not a host name.", name)
	return Host{Name: name, Addresses: []string{}, Problems: []finding.ID{f.ID}}, []finding.Finding{f}
}

// judgeHost builds the Host of an exchange from the outcomes of its
// address lookups and notes its problems. Addresses keep the order the
// resolver served them, IPv4 first then IPv6
// (docs/routing.md#address-resolution); a sender's own family preference is
// applied when it connects.
func (p *Planner) judgeHost(domain, name string, results []resolve.Result, errs []error) (Host, []finding.Finding) {
	name = trimDot(name)
	h := Host{Name: name, Addresses: []string{}, Problems: []finding.ID{}}
	var fs []finding.Finding
	problem := func(f finding.Finding) {
		fs = append(fs, f)
		addProblem(&h, f.ID)
	}

	nx := false
	var failed []string
	// docs/routing.md#bounded-work: the first maxN addresses are kept and
	// the others only counted, however many a server sent.
	maxN := cmp.Or(p.MaxAddresses, DefaultMaxAddresses)
	total := 0
	// An alias chain that loops or runs too long is the zone's
	// configuration, broken for good (RFC 1034 §3.6.2); a name outside the
	// --zone files was not looked up. Each has its own finding, not the
	// temporary mx-lookup-failed.
	var loop, long, notInZones bool
	var buf [8]netip.Addr
	addrs := buf[:0]
	for i, r := range results {
		if len(r.Chain) > 0 && h.CanonicalName == "" {
			h.CanonicalName = trimDot(r.Name)
		}
		switch err := errs[i]; {
		case err == nil:
		case errors.Is(err, resolve.ErrCNAMELoop):
			loop = true
		case errors.Is(err, resolve.ErrCNAMEChain):
			long = true
		case errors.Is(err, resolve.ErrNotInZone):
			notInZones = true
		default:
			failed = append(failed, err.Error())
		}
		if errs[i] != nil {
			continue
		}
		nx = nx || r.NXDomain
		for _, rr := range r.Records {
			if ip, ok := resolve.AddrOf(rr); ok {
				if total++; len(addrs) < maxN {
					addrs = append(addrs, ip)
				}
			}
		}
	}

	// RFC 2181 §10.3: an MX target must not be an alias. Senders follow it,
	// so the addresses are kept, but it is reported.
	if h.CanonicalName != "" {
		problem(finding.Newf(finding.MXTargetCNAME, name, "The exchange %s is an alias (CNAME) of %s.", name, h.CanonicalName))
	}
	if loop {
		problem(finding.Newf(finding.MXTargetAliasLoop, name, "The exchange %s is an alias chain that loops: it has no address.", name))
	}
	if long {
		problem(finding.Newf(finding.MXTargetAliasTooLong, name, "The exchange %s is an alias chain longer than %d aliases: resolvers give up before its address.", name, resolve.MaxCNAMEChain))
	}
	if notInZones {
		problem(finding.Newf(finding.MXNotInZones, name, "The exchange %s is not in the zone files, so its addresses were not looked up.", name))
	}
	if len(failed) > 0 {
		problem(finding.Newf(finding.MXLookupFailed, name, "Resolving %s failed temporarily: %s.", name, strings.Join(failed, "; ")))
	}
	if len(addrs) == 0 && len(failed) == 0 && !loop && !long && !notInZones {
		if nx {
			problem(finding.Newf(finding.MXTargetNXDomain, name, "The exchange %s does not exist (NXDOMAIN).", name))
		} else {
			problem(finding.Newf(finding.MXTargetNoAddress, name, "The exchange %s has no A or AAAA record.", name))
		}
	}
	if total > maxN {
		problem(finding.Newf(finding.MXTooManyAddresses, name, "%s has %d addresses; only the first %d are tried.", name, total, maxN))
	}
	var bad []string
	if len(addrs) > 0 {
		h.Addresses = make([]string, 0, len(addrs))
	}
	for _, a := range addrs {
		h.Addresses = append(h.Addresses, a.String())
		if why := specialPurpose(a, domain); why != "" {
			bad = append(bad, fmt.Sprintf("%s (%s)", a, why))
		}
	}
	if len(bad) > 0 {
		problem(finding.Newf(finding.MXTargetPrivate, name, "%s resolves to an address not reachable from the Internet: %s.", name, strings.Join(bad, ", ")))
	}
	return h, fs
}

// followAll follows the address questions of name at once: each in its
// own goroutine, but those answered from memory and the last (overlap). It
// is apart from resolveHost because what goroutines share lives on the
// heap, and a scan's usual case needs none.
func (p *Planner) followAll(ctx context.Context, name string) (results [2]resolve.Result, errs [2]error) {
	qs := p.addressQuestions(name)
	overlap(len(qs),
		func(i int) bool { return resolve.IsReady(p.Resolver, qs[i]) },
		func(i int) {
			r, err := resolve.Follow(ctx, p.Resolver, qs[i])
			results[i], errs[i] = *r, err
		})
	return results, errs
}

// addressQuestions are the address lookups of an exchange: A, AAAA or both
// (-4, -6). The name is canonical (lower case, as exchangeName gives it),
// absolute as served or as displayed. It is small enough to inline, so
// that the slice is on the caller's stack; given the absolute name, which
// the questions share, it allocates nothing: cachedHost runs for every
// exchange of every domain of a scan.
func (p *Planner) addressQuestions(name string) []resolve.Question {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	qs := []resolve.Question{{Name: name, Type: dns.TypeA}, {Name: name, Type: dns.TypeAAAA}}
	if !p.wantV4() {
		return qs[1:]
	}
	if !p.wantV6() {
		return qs[:1]
	}
	return qs
}

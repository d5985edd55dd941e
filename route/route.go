// Package route computes the delivery plan for a mail domain exactly as an
// RFC 5321 §5.1 sender does: follow an alias, recognise NXDOMAIN, Null MX
// (RFC 7505) and implicit MX, sort the exchanges into preference tiers, drop
// what --self forbids, shuffle each tier, and resolve every exchange.
//
// The planner asks its Resolver for the MX set, then for the A and AAAA
// records of every exchange at once, so a plan costs two round trips. Pass a
// resolve.Cache to share answers between plans.
package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/resolve"
)

// Bounds on the work one plan may cause (docs/routing.md#bounded-work). Senders bound
// this too: Postfix resolves at most smtp_mx_address_limit addresses.
const (
	DefaultMaxExchanges = 64
	DefaultMaxAddresses = 16
)

// MaxRecords bounds Plan.Records, the MX records as served. No DNS
// message can carry more: an MX record takes at least 15 of a message's
// 65,535 octets (a compressed owner, type, class, TTL and length, a
// preference, the root as exchange), so 4,367 at most. Only a zone file
// can serve more, and then the rest are counted in Plan.RecordsOmitted
// (docs/routing.md#bounded-work).
const MaxRecords = 4400

// TTL range outside which mx-ttl is reported.
const (
	minMXTTL = 300
	maxMXTTL = 7 * 24 * 3600
)

// Errors a plan can end with (Result "error").
var (
	// ErrMailLoop is returned when --self is the most preferred exchange.
	ErrMailLoop = errors.New("mail loop: the sending host is the most preferred exchange")
	// ErrTemporary is returned when a lookup the plan depends on failed
	// temporarily; the cause is wrapped with it or stated beside it.
	ErrTemporary = errors.New("temporary DNS failure")
)

// Planner computes Plans. Resolver is required; the other fields are
// optional. A Planner is safe for concurrent use.
type Planner struct {
	Resolver resolve.Resolver
	Logger   *slog.Logger // nil: no logging

	// Self is the sending host's name when it is itself an MX of the
	// domain (RFC 5321 §5.1): records at its preference or above are dropped.
	Self dnsname.Name
	// Seed makes the shuffle reproducible when HasSeed is set; each domain
	// gets its own stream derived from the seed and its name, so the order
	// does not depend on which domains were planned first.
	Seed    uint64
	HasSeed bool
	// IPv4 and IPv6 select the address families resolved; both false means both.
	IPv4, IPv6 bool
	// MaxExchanges and MaxAddresses default to DefaultMaxExchanges and
	// DefaultMaxAddresses when zero.
	MaxExchanges, MaxAddresses int
}

// Plan computes the delivery plan for domain. It always returns a Plan; the
// error is non-nil exactly when Result is ResultError and says why.
func (p *Planner) Plan(ctx context.Context, domain dnsname.Name) (*Plan, error) {
	start := time.Now()
	plan := &Plan{
		Schema:     SchemaVersion,
		Domain:     domain.String(),
		AliasChain: []string{},
		Records:    []Record{},
		Tiers:      []Tier{},
		Order:      []string{},
		Findings:   []finding.Finding{},
	}
	err := p.plan(ctx, domain, plan)
	plan.ElapsedMS = time.Since(start).Milliseconds()
	finding.Sort(plan.Findings)
	if err != nil {
		plan.Result = ResultError
		plan.Error = err.Error()
		err = fmt.Errorf("route %s: %w", domain, err)
	}
	if p.Logger != nil && p.Logger.Enabled(ctx, slog.LevelDebug) {
		p.Logger.Debug("route", "domain", domain, "result", plan.Result, "records", len(plan.Records)+plan.RecordsOmitted, "elapsed", time.Since(start), "error", err)
	}
	return plan, err
}

// exchange is an MX record on its way through the plan, with the target
// also in the absolute form its addresses are looked up by: the name as
// served, which costs no copy (Record.Exchange is it without the dot).
type exchange struct {
	Record
	fqdn string
}

// plan fills in plan for domain, in the steps of RFC 5321 §5.1 (one
// section of docs/routing.md each).
func (p *Planner) plan(ctx context.Context, domain dnsname.Name, plan *Plan) error {
	mx, err := p.lookupMX(ctx, domain)
	p.followAlias(plan, domain, &mx, err)
	if err != nil {
		return p.mxLookupFailed(plan, domain, &mx, err)
	}
	target := trimDot(mx.Name)
	switch {
	case mx.NXDomain:
		p.nxdomain(plan, target)
		return nil
	case len(mx.Records) == 0:
		return p.implicitMX(ctx, plan, mx.Name)
	}

	// readMX fills buf, so that the exchanges of most domains stay on this
	// stack; every later step works on them in place.
	var buf [8]exchange
	records, err := p.readMX(ctx, plan, target, mx.Records, buf[:0])
	if err != nil {
		return err
	}
	if p.nullMX(plan, target, len(mx.Records), records) {
		return nil
	}
	if records, err = p.dedupe(ctx, plan, target, records); err != nil {
		return err
	}
	sortTiers(records)
	if records, err = p.pruneSelf(plan, target, records); err != nil {
		return err
	}
	records = p.bound(plan, target, records)
	hosts, err := p.resolveExchanges(ctx, plan, records)
	if err != nil {
		return err
	}
	plan.Tiers = tiers(records, hosts)
	plan.Result = ResultOK
	p.shuffle(plan)
	p.classify(plan, target)
	return nil
}

// lookupMX asks for the MX records of domain (RFC 5321 §5.1), following
// an alias to its canonical name (RFC 1034 §3.6.2). The Result is a
// value, so that it stays on the caller's stack (resolve.Follow inlines).
func (p *Planner) lookupMX(ctx context.Context, domain dnsname.Name) (resolve.Result, error) {
	mx, err := resolve.Follow(ctx, p.Resolver, resolve.Q(domain.FQDN(), dns.TypeMX))
	return *mx, err
}

// followAlias puts the alias chain the MX lookup followed into the plan
// (docs/routing.md#alias-chain): mail is routed by the MX records at its
// end. A chain that loops or runs too long (err) leads to no MX records:
// mxLookupFailed reports it instead.
func (p *Planner) followAlias(plan *Plan, domain dnsname.Name, mx *resolve.Result, err error) {
	for _, n := range mx.Chain {
		plan.AliasChain = append(plan.AliasChain, trimDot(n))
	}
	if len(mx.Chain) > 0 && !errors.Is(err, resolve.ErrCNAMELoop) && !errors.Is(err, resolve.ErrCNAMEChain) {
		plan.add(finding.Newf(finding.MXAliasChain, domain.String(), "%s is an alias; mail is routed by the MX records of %s.", domain, trimDot(mx.Name)))
	}
}

// mxLookupFailed is the plan's end when the MX lookup failed: SERVFAIL,
// REFUSED and time-outs are temporary, never "no MX" (RFC 5321 §4.5.4.1,
// docs/routing.md#nxdomain-and-temporary-errors). An alias chain that
// loops or runs too long is the zone's configuration, broken for good (RFC
// 1034 §3.6.2, docs/routing.md#alias-chain), and a domain outside the
// --zone files is a limit of what was loaded: each has its own finding,
// and the error is the lookup's, not ErrTemporary.
func (p *Planner) mxLookupFailed(plan *Plan, domain dnsname.Name, mx *resolve.Result, err error) error {
	d := domain.String()
	switch {
	case errors.Is(err, resolve.ErrCNAMELoop):
		plan.add(finding.Newf(finding.MXAliasLoop, d, "The alias chain of %s loops back on itself after %s: it leads to no MX records.", d, chainText(d, mx.Chain)))
		return err
	case errors.Is(err, resolve.ErrCNAMEChain):
		plan.add(finding.Newf(finding.MXAliasTooLong, d, "The alias chain of %s is longer than %d aliases (%s → …): resolvers give up before its MX records.", d, resolve.MaxCNAMEChain, chainText(d, mx.Chain)))
		return err
	case errors.Is(err, resolve.ErrNotInZone):
		name := trimDot(mx.Name)
		plan.add(finding.Newf(finding.MXNotInZones, name, "%s is not in the zone files, so its MX records were not looked up.", name))
		return err
	}
	plan.add(finding.Newf(finding.MXLookupFailed, d, "The MX lookup failed temporarily: %v.", err))
	return fmt.Errorf("%w: %w", ErrTemporary, err)
}

// chainText is an alias chain for a message: start and every alias
// target, without trailing dots.
func chainText(start string, chain []string) string {
	var b strings.Builder
	b.WriteString(start)
	for _, n := range chain {
		b.WriteString(" → ")
		b.WriteString(trimDot(n))
	}
	return b.String()
}

// nxdomain ends the plan of a domain that does not exist: no mail route
// (RFC 2308 §2.1, docs/routing.md#nxdomain-and-temporary-errors).
func (p *Planner) nxdomain(plan *Plan, target string) {
	plan.Result = ResultNXDomain
	plan.add(finding.Newf(finding.MXNXDomain, target, "%s does not exist (NXDOMAIN).", target))
}

// implicitMX handles no MX records (NODATA, RFC 2308 §2.2,
// docs/routing.md#implicit-mx). RFC 5321 §5.1: the domain itself (fqdn,
// the end of its alias chain) is the exchange, at preference 0, if it has
// an address.
func (p *Planner) implicitMX(ctx context.Context, plan *Plan, fqdn string) error {
	target := trimDot(fqdn)
	host, found, ok := p.cachedHost(plan.Domain, fqdn)
	if !ok {
		host, found = p.resolveHost(ctx, plan.Domain, fqdn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(host.Addresses) == 0 {
		// The address lookup did not settle: we cannot say there is no
		// mail, so the plan is an error, not "no-mail".
		for _, f := range found {
			var err error
			switch f.ID {
			case finding.MXLookupFailed:
				err = ErrTemporary
			case finding.MXTargetAliasLoop:
				err = resolve.ErrCNAMELoop
			case finding.MXTargetAliasTooLong:
				err = resolve.ErrCNAMEChain
			case finding.MXNotInZones:
				err = &resolve.Error{Question: resolve.Q(fqdn, dns.TypeA), Rcode: -1, Err: resolve.ErrNotInZone}
			default:
				continue
			}
			plan.add(f)
			return fmt.Errorf("%w: implicit MX: %s", err, f.Message)
		}
		// The findings about the host as an exchange do not apply: there
		// is no exchange, the domain simply has no mail route.
		plan.Result = ResultNoMail
		plan.add(finding.Newf(finding.MXNoMail, target, "%s has no MX and no A/AAAA records: mail to it bounces.", target))
		return nil
	}
	plan.Implicit = true
	plan.Result = ResultOK
	plan.Tiers = []Tier{{Preference: 0, Hosts: []Host{host}}}
	plan.Findings = append(plan.Findings, found...)
	plan.add(finding.Newf(finding.MXImplicit, target, "%s has no MX records; senders deliver to its own address (implicit MX).", target))
	p.shuffle(plan)
	p.classify(plan, target)
	return nil
}

// readMX keeps the MX records as served in the plan (at most MaxRecords),
// reports their TTL, and returns the exchanges they name, Null MX left
// out, appended to records (the caller's buffer). Every step from here is
// linear in the records served (the sort n log n), and the long loops
// watch the context: a zone file can hold hundreds of thousands of
// records (docs/routing.md#bounded-work).
func (p *Planner) readMX(ctx context.Context, plan *Plan, target string, rrs []dns.RR, records []exchange) ([]exchange, error) {
	plan.Records = make([]Record, 0, min(len(rrs), MaxRecords))
	if len(rrs) > cap(records) {
		records = make([]exchange, 0, len(rrs))
	}
	ttl := uint32(math.MaxUint32)
	for i, rr := range rrs {
		if i%checkEvery == checkEvery-1 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m := rr.(*dns.MX)
		r := Record{Preference: m.Preference, Exchange: exchangeName(m.Mx), TTL: m.Hdr.Ttl}
		ttl = min(ttl, r.TTL)
		if len(plan.Records) < MaxRecords {
			plan.Records = append(plan.Records, r)
		}
		if r.Exchange != "." {
			records = append(records, exchange{r, resolve.CanonicalName(m.Mx)})
		}
	}
	plan.RecordsOmitted = len(rrs) - len(plan.Records)
	if ttl < minMXTTL || ttl > maxMXTTL {
		plan.add(finding.Newf(finding.MXTTL, target, "The MX records of %s have a TTL of %s, outside %d–%d.", target, prose.Count(int(ttl), "second"), minMXTTL, maxMXTTL))
	}
	return records, nil
}

// nullMX reports whether the plan ends at a Null MX: RFC 7505 §3
// (docs/routing.md#null-mx), a single "MX 0 ." says the domain takes no
// mail. Beside other records (served counts them all, records are the
// real exchanges) it is a misconfiguration; a sender would still deliver
// to the real exchanges, so the plan goes on with those.
func (p *Planner) nullMX(plan *Plan, target string, served int, records []exchange) bool {
	if len(records) == 0 {
		plan.Result = ResultNullMX
		plan.add(finding.Newf(finding.MXNull, target, "%s publishes a Null MX: it accepts no mail.", target))
		return true
	}
	if len(records) < served {
		plan.add(finding.Newf(finding.MXNullMixed, target, "%s publishes a Null MX (MX 0 .) beside %s.", target, prose.Count(len(records), "other MX record")))
	}
	return false
}

// dedupe removes repeated exchanges, keeping the most preferred record of
// each: a host listed twice is tried once, as Postfix and Exim do
// (docs/routing.md#tiers-and-shuffle). It works in place. An MX set is a
// handful of records, where a scan of those kept finds a repeat with no
// map to build; past dedupeScan of them a map does, so that the few
// thousand records a DNS message can carry, or the hundreds of thousands
// a zone file can, cost time in proportion (docs/routing.md#bounded-work).
// Each repeat is reported up to the bound on exchanges; the rest are
// counted in one finding.
func (p *Planner) dedupe(ctx context.Context, plan *Plan, target string, records []exchange) ([]exchange, error) {
	var index map[string]int // exchange → its place in out, past dedupeScan records
	if len(records) > dedupeScan {
		index = make(map[string]int, len(records))
	}
	maxReported := cmp.Or(p.MaxExchanges, DefaultMaxExchanges)
	repeats := 0
	out := records[:0]
	for k, r := range records {
		if k%checkEvery == checkEvery-1 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		i := -1
		if index == nil {
			i = slices.IndexFunc(out, func(o exchange) bool { return o.Exchange == r.Exchange })
		} else if j, ok := index[r.Exchange]; ok {
			i = j
		} else {
			index[r.Exchange] = len(out)
		}
		if i < 0 {
			out = append(out, r)
			continue
		}
		if repeats++; repeats <= maxReported {
			plan.add(finding.Newf(finding.MXDuplicate, r.Exchange,
				"%s is listed more than once (preferences %d and %d); it is tried once, at %d.", r.Exchange, out[i].Preference, r.Preference, min(out[i].Preference, r.Preference)))
		}
		out[i].Preference = min(out[i].Preference, r.Preference)
	}
	if repeats > maxReported {
		plan.add(finding.Newf(finding.MXDuplicate, target,
			"%s has %s, not reported one by one; each exchange is tried once, at its lowest preference.", target, prose.Count(repeats-maxReported, "more repeated MX record")))
	}
	return out, nil
}

// dedupeScan is the most records dedupe compares one by one.
const dedupeScan = 16

// checkEvery is how many records a long loop handles between looks at
// its context.
const checkEvery = 4096

// sortTiers puts the exchanges in preference order, lowest first (RFC
// 5321 §5.1, docs/routing.md#tiers-and-shuffle). The sort is stable so
// that the exchanges of one preference keep the served order in "tiers".
func sortTiers(records []exchange) {
	slices.SortStableFunc(records, func(a, b exchange) int { return cmp.Compare(a.Preference, b.Preference) })
}

// pruneSelf applies --self (RFC 5321 §5.1, docs/routing.md#self-pruning):
// a sender that is itself an MX of the domain must discard its own record
// and every record of equal or higher preference. If none remain, that is
// a configuration error, a mail loop.
func (p *Planner) pruneSelf(plan *Plan, target string, records []exchange) ([]exchange, error) {
	if p.Self == "" {
		return records, nil
	}
	i := slices.IndexFunc(records, func(r exchange) bool { return r.Exchange == p.Self.String() })
	if i < 0 {
		return records, nil
	}
	self := records[i].Preference
	records = slices.DeleteFunc(records, func(r exchange) bool { return r.Preference >= self })
	if len(records) == 0 {
		plan.add(finding.Newf(finding.MXSelfLoop, p.Self.String(), "%s has preference %d, the lowest of %s: there is no exchange left to relay to.", p.Self, self, target))
		return nil, ErrMailLoop
	}
	return records, nil
}

// bound keeps the most preferred MaxExchanges exchanges and reports the
// cut (docs/routing.md#bounded-work).
func (p *Planner) bound(plan *Plan, target string, records []exchange) []exchange {
	maxN := cmp.Or(p.MaxExchanges, DefaultMaxExchanges)
	if len(records) <= maxN {
		return records
	}
	plan.add(finding.Newf(finding.MXTooManyExchanges, target, "%s has %d exchanges; only the first %d by preference are resolved.", target, len(records), maxN))
	return records[:maxN]
}

// resolveExchanges resolves every exchange to its addresses at once (RFC
// 5321 §5.1, docs/routing.md#address-resolution), each Host in the place
// of its record, and adds the findings about each
// (docs/routing.md#per-exchange-problems). A cancelled plan says nothing
// of its exchanges.
func (p *Planner) resolveExchanges(ctx context.Context, plan *Plan, records []exchange) ([]Host, error) {
	hosts := make([]Host, len(records))
	// Those answered from memory, a scan's usual case, are judged here,
	// one after the other on this goroutine, with the readiness flags and
	// findings on this stack: overlap's goroutines would put them on the
	// heap.
	var readyBuf [8]bool
	var foundBuf [8][]finding.Finding
	ready, found := readyBuf[:0], foundBuf[:0]
	for i, x := range records {
		var ok bool
		var fs []finding.Finding
		hosts[i], fs, ok = p.cachedHost(plan.Domain, x.fqdn)
		ready, found = append(ready, ok), append(found, fs)
	}
	if slices.Contains(ready, false) {
		// Its goroutines share what they are given: copies, so that the
		// buffers stay on the stack.
		all := slices.Clone(found)
		p.resolveAll(ctx, plan.Domain, slices.Clone(records), slices.Clone(ready), hosts, all)
		found = all
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, fs := range found {
		plan.Findings = append(plan.Findings, fs...)
	}
	return hosts, nil
}

// resolveAll resolves the exchanges not ready (not answered from memory)
// at once, each into its slot of hosts and of found; the ready ones are
// done already.
func (p *Planner) resolveAll(ctx context.Context, domain string, records []exchange, ready []bool, hosts []Host, found [][]finding.Finding) {
	overlap(len(records),
		func(i int) bool { return ready[i] },
		func(i int) {
			if !ready[i] {
				hosts[i], found[i] = p.resolveHost(ctx, domain, records[i].fqdn)
			}
		})
}

// tiers groups the hosts, in the sorted order of their records, into
// tiers of one preference each (docs/routing.md#tiers-and-shuffle). Each
// tier's hosts are a run of hosts, not a copy.
func tiers(records []exchange, hosts []Host) []Tier {
	n := 1
	for i := 1; i < len(records); i++ {
		if records[i].Preference != records[i-1].Preference {
			n++
		}
	}
	out := make([]Tier, 0, n)
	for i := 0; i < len(records); {
		j := i + 1
		for j < len(records) && records[j].Preference == records[i].Preference {
			j++
		}
		out = append(out, Tier{Preference: records[i].Preference, Hosts: hosts[i:j:j]})
		i = j
	}
	return out
}

// shuffle draws the attempt order (RFC 5321 §5.1,
// docs/routing.md#tiers-and-shuffle): every host of a tier before the next
// tier, in uniformly random order inside the tier ("randomize",
// Fisher-Yates).
func (p *Planner) shuffle(plan *Plan) {
	n := 0
	for _, t := range plan.Tiers {
		n += len(t.Hosts)
	}
	plan.Order = make([]string, 0, n)
	var rng *rand.Rand // made for the first tier of more than one host
	for _, t := range plan.Tiers {
		start := len(plan.Order)
		for _, h := range t.Hosts {
			plan.Order = append(plan.Order, h.Name)
		}
		names := plan.Order[start:]
		// The shuffle starts from a canonical order, not the order the
		// server returned (resolvers rotate RRsets), so that --seed
		// gives the same attempt order whichever resolver answered.
		slices.Sort(names)
		// A tier of one host draws nothing from the stream, so a plan
		// without a larger tier needs none.
		if len(names) > 1 {
			if rng == nil {
				rng = p.rng(plan.Domain)
			}
			rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		}
	}
}

// classify adds the findings about the plan as a whole: exchanges that
// share an address (docs/routing.md#per-exchange-problems), a single
// point of failure and no IPv6 (docs/routing.md#address-resolution).
func (p *Planner) classify(plan *Plan, target string) {
	var owner owners
	hasV6 := false
	for ti := range plan.Tiers {
		for hi := range plan.Tiers[ti].Hosts {
			h := &plan.Tiers[ti].Hosts[hi]
			for _, a := range h.Addresses {
				if strings.Contains(a, ":") {
					hasV6 = true
				}
				if first, ok := owner.get(a); ok && first != h.Name {
					plan.add(finding.Newf(finding.MXDuplicate, a, "%s and %s share the address %s: one server, no redundancy.", first, h.Name, a))
					addProblem(h, finding.MXDuplicate)
					continue
				}
				owner.put(a, h.Name)
			}
		}
	}
	if a, ok := owner.only(); ok {
		plan.add(finding.Newf(finding.MXSinglePoint, target, "All mail for %s goes to one address, %s.", target, a))
	}
	if !hasV6 && owner.len() > 0 && p.wantV6() {
		plan.add(finding.Newf(finding.MXNoIPv6, target, "No exchange of %s has an IPv6 address.", target))
	}
}

// owners maps each address of a plan to the first host that has it. A
// plan has a handful of addresses, which a slice holds with no hashing and
// no allocation; past ownersInline of them (up to 64 exchanges × 16
// addresses, docs/routing.md#bounded-work) a map takes over, so the work stays linear.
type owners struct {
	buf   [ownersInline]struct{ addr, host string }
	n     int
	large map[string]string
}

const ownersInline = 16

func (o *owners) get(addr string) (string, bool) {
	if o.large != nil {
		h, ok := o.large[addr]
		return h, ok
	}
	for _, e := range o.buf[:o.n] {
		if e.addr == addr {
			return e.host, true
		}
	}
	return "", false
}

// put records host for addr, which get did not find.
func (o *owners) put(addr, host string) {
	if o.large == nil && o.n < len(o.buf) {
		o.buf[o.n] = struct{ addr, host string }{addr, host}
		o.n++
		return
	}
	if o.large == nil {
		o.large = make(map[string]string, 2*len(o.buf))
		for _, e := range o.buf {
			o.large[e.addr] = e.host
		}
	}
	o.large[addr] = host
}

func (o *owners) len() int {
	if o.large != nil {
		return len(o.large)
	}
	return o.n
}

// only returns the one address, when there is exactly one.
func (o *owners) only() (string, bool) {
	if o.len() != 1 {
		return "", false
	}
	if o.large != nil {
		for a := range o.large {
			return a, true
		}
	}
	return o.buf[0].addr, true
}

// overlap runs do(i) for every i below n and returns when all are done.
// Those ready(i) says are answered from memory run one after another on
// this goroutine; the others run in goroutines of their own, so that their
// waits for the network overlap (the last of them on this goroutine: one
// fewer to start). A scan resolves the same provider's exchanges for
// thousands of domains from the cache, where a goroutine per lookup would
// cost more than the lookup.
func overlap(n int, ready func(int) bool, do func(int)) {
	var buf [8]int
	waits := buf[:0]
	for i := range n {
		if ready(i) {
			do(i)
		} else {
			waits = append(waits, i)
		}
	}
	var wg *sync.WaitGroup // made only to start a goroutine: it is on the heap
	for k, i := range waits {
		if k == len(waits)-1 {
			do(i)
			break
		}
		if wg == nil {
			wg = new(sync.WaitGroup)
		}
		wg.Go(func() { do(i) })
	}
	if wg != nil {
		wg.Wait()
	}
}

// rng returns the random stream of domain's shuffle.
func (p *Planner) rng(domain string) *rand.Rand {
	// The source and the Rand are one allocation, not the two
	// rand.New(rand.NewPCG(…)) makes.
	s := new(struct {
		pcg  rand.PCG
		rand rand.Rand
	})
	if !p.HasSeed {
		s.pcg.Seed(rand.Uint64(), rand.Uint64())
	} else {
		h := fnv.New64a()
		h.Write([]byte(domain))
		s.pcg.Seed(p.Seed, h.Sum64())
	}
	s.rand = *rand.New(&s.pcg)
	return &s.rand
}

func (p *Planner) wantV4() bool { return p.IPv4 || !p.IPv6 }
func (p *Planner) wantV6() bool { return p.IPv6 || !p.IPv4 }

func addProblem(h *Host, id finding.ID) {
	if !slices.Contains(h.Problems, id) {
		h.Problems = append(h.Problems, id)
	}
}

// trimDot turns an absolute name into its display form.
func trimDot(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}

// exchangeName canonicalises an MX target for comparison and display.
func exchangeName(mx string) string { return trimDot(resolve.CanonicalName(mx)) }

// isIPLiteral reports whether an MX target is written as an address, e.g.
// "192.0.2.1." or "[2001:db8::1]". RFC 5321 §5.1 and RFC 7505 §1: the MX
// target is a domain name; senders must not treat it as an address.
func isIPLiteral(name string) bool {
	s := strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	// Only strings of digits and dots (IPv4) or with a colon (IPv6, never
	// in a host name) can parse, so a host name is turned away without
	// the error value ParseAddr would build: this runs for every exchange
	// of every domain of a scan.
	if !strings.Contains(s, ":") && !digitsAndDots(s) {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// digitsAndDots is strings.Trim(s, "0123456789.") == "" without the
// character set Trim builds at every call.
func digitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

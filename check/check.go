// Package check is mxtrace's mail-DNS audit: the delivery plan (RFC 5321
// §5.1) and everything around it — the zone's nameservers and DNSSEC state,
// reverse DNS of the exchanges, SPF (RFC 7208), DMARC (RFC 7489), DKIM keys
// (RFC 6376), MTA-STS (RFC 8461), TLS-RPT (RFC 8460), DANE TLSA records
// (RFC 7672), DNS blacklists (RFC 5782), and what the exchanges say over
// SMTP (RFC 5321, RFC 3207): banner, STARTTLS, certificate, the DANE match,
// and whether a backup tier is weaker than the primary.
//
// An audit runs in two phases. Gather asks every question once, through the
// run's shared cache, in parallel: the lookups that need nothing start at
// once, and those that need the plan's exchanges (PTR, TLSA, DNSBL) start
// the moment the plan is known, so independent lookups never wait for each
// other. Judge then runs the checks listed in Checks — small functions over
// the gathered Facts — and merges their findings in a stable order.
//
// Audit does both. AuditEach does both at once, for a page or a stream
// that shows progress: each check declares the facts it reads
// (Check.Needs), and is judged the moment they are gathered, so the route
// and the DNS-only areas are known long before the SMTP probes end.
package check

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// Auditor runs audits. Resolver and Planner are required (the Planner
// should use the same Resolver, so the plan's answers are shared); an area
// whose field is nil is skipped and listed in Report.Skipped with the
// reason in SkipReason. An Auditor is safe for concurrent use.
//
// An audit only reads its Auditor, so a copy of the value is a variant
// for one request (a server's "smtp=0"): change the copy's fields, never
// what they point to, which the copy shares with the original. The With
// methods make such copies.
type Auditor struct {
	Resolver resolve.Resolver
	Planner  *route.Planner

	// Nameservers asks the zone's authoritative servers directly and
	// judges DNSSEC. nil: skipped (it needs the network).
	Nameservers *nameserver.Options
	// MTASTS configures the MTA-STS lookup, which fetches the policy over
	// HTTPS. nil: only the _mta-sts TXT record is checked.
	MTASTS *mtasts.Options
	// DNSBL configures the lookup of the exchange addresses on
	// blacklists. nil: skipped.
	DNSBL *dnsbl.Options
	// Probe talks SMTP to every exchange address (banner, EHLO, STARTTLS,
	// certificate; never DATA). nil: the SMTP, tier and DANE-match checks
	// are skipped, for SMTPSkipReason (or SkipReason when that is empty).
	Probe          *probe.Prober
	SMTPSkipReason string
	// DKIMSelectors are probed in addition to dkim's built-in list.
	DKIMSelectors []string
	// SkipReason says why the nil areas above are skipped, e.g. "needs
	// the network (--zone without --resolver)".
	SkipReason string

	// InlineAreas gathers the areas whose first question Prefetch asks
	// (SPF, DMARC, DKIM, MTA-STS, TLS-RPT) one after another on the
	// goroutine that audits, instead of on a goroutine each; the plan,
	// the nameservers and what follows from the plan keep their own.
	// It is for bulk work: a scan prefetches each domain before it
	// audits it and audits hundreds at once, so those areas mostly find
	// their answers in the cache, and their goroutines overlapped little
	// waiting while costing the scan CPU to start them and to grow their
	// stacks (docs/performance.md, "The areas on the auditing
	// goroutine"). An area that does wait (an SPF include, the DKIM
	// selectors) holds back the ones after it, so one domain takes
	// longer; a scan's concurrency covers that. A single check keeps it
	// off: there, no independent lookups wait for each other (SPEC,
	// "check without SMTP"). With it, AuditEach emits the areas'
	// Progress only once all five are gathered.
	InlineAreas bool

	Logger *slog.Logger // nil: silent
}

// Facts is everything gathered about one domain. Each field is written by
// one gatherer; an error field beside a value says the lookup failed
// temporarily, which the area reports as an error, never as a finding
// about the domain.
type Facts struct {
	Domain dnsname.Name `json:"-"`
	// Plan is the delivery plan; the report carries it at the top level.
	Plan    *route.Plan `json:"-"`
	PlanErr error       `json:"-"`

	Nameservers    *nameserver.Result `json:"nameservers,omitempty"`
	NameserversErr error              `json:"-"`

	// PTR and DANE are gathered by probe.GatherPTR and probe.GatherTLSA,
	// as "mxtrace probe" gathers them.
	PTR []probe.HostPTR `json:"ptr"`

	SPF    *spf.Analysis `json:"spf,omitempty"`
	SPFErr error         `json:"-"`

	DMARC    *dmarc.Result `json:"dmarc,omitempty"`
	DMARCErr error         `json:"-"`

	DKIM    *dkim.Result `json:"dkim,omitempty"`
	DKIMErr error        `json:"-"`

	MTASTS    *mtasts.Result `json:"mta_sts,omitempty"`
	MTASTSErr error          `json:"-"`

	TLSRPT    *tlsrpt.Result `json:"tls_rpt,omitempty"`
	TLSRPTErr error          `json:"-"`

	// DANE has one result per exchange with addresses (probe.Addressed),
	// nil where the TLSA lookup failed; DANEErrs says why, in the same
	// order.
	DANE     []*dane.Result `json:"dane"`
	DANEErrs []error        `json:"-"`

	DNSBL    *dnsbl.Result `json:"dnsbl,omitzero"`
	DNSBLErr error         `json:"-"`

	// SMTP holds one probe per exchange address, in plan order; nil when
	// not probed. ProbedAt is when, for judging certificate dates.
	SMTP     []*probe.Result `json:"smtp,omitempty"`
	ProbedAt time.Time       `json:"-"`
}

// WithoutSMTP returns a copy of a that does not talk SMTP: the SMTP, tier
// and DANE-match checks are skipped for reason. When a has no Prober,
// they are skipped already, for its own reason, which the copy keeps.
func (a *Auditor) WithoutSMTP(reason string) *Auditor {
	c := *a
	if c.Probe != nil {
		c.Probe, c.SMTPSkipReason = nil, reason
	}
	return &c
}

// WithDKIMSelectors returns a copy of a that also probes selectors, after
// a's own. The copy has its own list: appending to a shared one could
// write into the original's array while another audit reads it.
func (a *Auditor) WithDKIMSelectors(selectors ...string) *Auditor {
	c := *a
	c.DKIMSelectors = slices.Concat(a.DKIMSelectors, selectors)
	return &c
}

// Fact names the Facts fields one gatherer writes. A Check lists the
// facts its judge reads (Check.Needs), so that AuditEach judges an area
// the moment they are complete, and never while a gatherer may still be
// writing them.
type Fact uint16

// Facts, by the fields they stand for.
const (
	FactPlan        Fact = 1 << iota // Plan, PlanErr
	FactNameservers                  // Nameservers, NameserversErr
	FactPTR                          // PTR
	FactSPF                          // SPF, SPFErr
	FactDMARC                        // DMARC, DMARCErr
	FactDKIM                         // DKIM, DKIMErr
	FactMTASTS                       // MTASTS, MTASTSErr
	FactTLSRPT                       // TLSRPT, TLSRPTErr
	FactDANE                         // DANE, DANEErrs
	FactDNSBL                        // DNSBL, DNSBLErr
	FactSMTP                         // SMTP, ProbedAt

	allFacts  = FactSMTP<<1 - 1
	factCount = 11
)

// only sets v to a copy of f with Domain and the fields of need, the rest
// zero, and returns it: what a judge that declared need may read. A judge
// reading a fact it did not declare sees it missing in every audit, not
// only when a gatherer is late, so a wrong declaration fails the tests
// every time.
func (f *Facts) only(need Fact, v *Facts) *Facts {
	*v = Facts{Domain: f.Domain}
	if need&FactPlan != 0 {
		v.Plan, v.PlanErr = f.Plan, f.PlanErr
	}
	if need&FactNameservers != 0 {
		v.Nameservers, v.NameserversErr = f.Nameservers, f.NameserversErr
	}
	if need&FactPTR != 0 {
		v.PTR = f.PTR
	}
	if need&FactSPF != 0 {
		v.SPF, v.SPFErr = f.SPF, f.SPFErr
	}
	if need&FactDMARC != 0 {
		v.DMARC, v.DMARCErr = f.DMARC, f.DMARCErr
	}
	if need&FactDKIM != 0 {
		v.DKIM, v.DKIMErr = f.DKIM, f.DKIMErr
	}
	if need&FactMTASTS != 0 {
		v.MTASTS, v.MTASTSErr = f.MTASTS, f.MTASTSErr
	}
	if need&FactTLSRPT != 0 {
		v.TLSRPT, v.TLSRPTErr = f.TLSRPT, f.TLSRPTErr
	}
	if need&FactDANE != 0 {
		v.DANE, v.DANEErrs = f.DANE, f.DANEErrs
	}
	if need&FactDNSBL != 0 {
		v.DNSBL, v.DNSBLErr = f.DNSBL, f.DNSBLErr
	}
	if need&FactSMTP != 0 {
		v.SMTP, v.ProbedAt = f.SMTP, f.ProbedAt
	}
	return v
}

// Gather asks every question about domain, in parallel (but see
// InlineAreas), and returns the facts. It does not fail: each area's
// error is in its field.
func (a *Auditor) Gather(ctx context.Context, domain dnsname.Name) *Facts {
	done := make(chan Fact, factCount)
	f := a.gather(ctx, domain, done)
	for range factCount {
		<-done
	}
	return f
}

// gather starts every gatherer and returns the Facts they fill in. Each
// fact is sent on done once, when its fields are written (or left empty,
// when the Auditor does not gather it): the receive is what makes the
// fields safe to read. done must hold factCount facts, so no gatherer
// waits for the reader.
func (a *Auditor) gather(ctx context.Context, domain dnsname.Name, done chan<- Fact) *Facts {
	f := &Facts{Domain: domain}
	// The plan first, and everything that needs its exchanges as soon as
	// it is known; the independent areas meanwhile. Each goroutine is a
	// method call, not a closure: a scan starts some eight a domain, and
	// the closures were two allocations each.
	go a.gatherPlan(ctx, f, done)
	if a.Nameservers != nil {
		go a.gatherArea(ctx, f, FactNameservers, done)
	} else {
		// An area with nothing to gather (not asked for, or no
		// exchange to ask about) is done at once, without a goroutine:
		// a scan has most of them (--no-dnsbl, no SMTP probes), for
		// every domain.
		done <- FactNameservers
	}
	for _, fact := range [...]Fact{FactSPF, FactDMARC, FactDKIM, FactMTASTS, FactTLSRPT} {
		if a.InlineAreas {
			a.gatherArea(ctx, f, fact, done)
		} else {
			go a.gatherArea(ctx, f, fact, done)
		}
	}
	return f
}

// gatherPlan plans the route, then starts the areas about its exchanges
// and gathers their PTR records itself, having nothing else to do.
func (a *Auditor) gatherPlan(ctx context.Context, f *Facts, done chan<- Fact) {
	f.Plan, f.PlanErr = a.Planner.Plan(ctx, f.Domain)
	done <- FactPlan
	var hosts []route.Host
	if f.Plan != nil {
		hosts = f.Plan.Hosts()
	}
	// The addresses only matter to the blacklists and the probes, which
	// a scan mostly does without.
	var addrs []netip.Addr
	if a.DNSBL != nil || a.Probe != nil {
		addrs = addresses(hosts)
	}
	if a.DNSBL != nil && len(addrs) > 0 {
		go a.gatherDNSBL(ctx, f, addrs, done)
	} else {
		done <- FactDNSBL
	}
	if a.Probe != nil && len(addrs) > 0 {
		go a.gatherArea(ctx, f, FactSMTP, done)
	} else {
		done <- FactSMTP
	}
	go a.gatherDANE(ctx, f, hosts, done)
	if f.Plan != nil {
		f.PTR = probe.GatherPTR(ctx, a.Resolver, hosts, a.Logger)
	}
	done <- FactPTR
}

// gatherDNSBL looks the exchanges' addresses up on the blacklists.
func (a *Auditor) gatherDNSBL(ctx context.Context, f *Facts, addrs []netip.Addr, done chan<- Fact) {
	opts := *a.DNSBL
	opts.Logger = cmp.Or(opts.Logger, a.Logger)
	f.DNSBL, f.DNSBLErr = dnsbl.Lookup(ctx, a.Resolver, addrs, opts)
	done <- FactDNSBL
}

// gatherDANE looks up the TLSA records of the exchanges with addresses.
func (a *Auditor) gatherDANE(ctx context.Context, f *Facts, hosts []route.Host, done chan<- Fact) {
	f.DANE, f.DANEErrs = probe.GatherTLSA(ctx, a.Resolver, probe.Addressed(hosts), dane.Options{Logger: a.Logger})
	done <- FactDANE
}

// gatherArea gathers one fact into f and sends it on done: an area of
// the domain's own, or the SMTP probes, which start once f.Plan is
// written.
func (a *Auditor) gatherArea(ctx context.Context, f *Facts, fact Fact, done chan<- Fact) {
	domain := f.Domain
	switch fact {
	case FactNameservers:
		opts := *a.Nameservers
		opts.Logger = cmp.Or(opts.Logger, a.Logger)
		f.Nameservers, f.NameserversErr = nameserver.Lookup(ctx, a.Resolver, domain, opts)
	case FactSPF:
		f.SPF, f.SPFErr = spf.Lookup(ctx, a.Resolver, domain, spf.Options{Logger: a.Logger})
	case FactDMARC:
		f.DMARC, f.DMARCErr = dmarc.Lookup(ctx, a.Resolver, domain, dmarc.Options{Logger: a.Logger})
	case FactDKIM:
		f.DKIM, f.DKIMErr = dkim.Lookup(ctx, a.Resolver, domain, dkim.Options{Selectors: a.DKIMSelectors, Logger: a.Logger})
	case FactMTASTS:
		opts := mtasts.Options{NoFetch: true}
		if a.MTASTS != nil {
			opts = *a.MTASTS
		}
		opts.Logger = cmp.Or(opts.Logger, a.Logger)
		f.MTASTS, f.MTASTSErr = mtasts.Lookup(ctx, a.Resolver, domain, opts)
	case FactTLSRPT:
		f.TLSRPT, f.TLSRPTErr = tlsrpt.Lookup(ctx, a.Resolver, domain, tlsrpt.Options{Logger: a.Logger})
	case FactSMTP:
		f.ProbedAt = time.Now()
		f.SMTP = a.Probe.ProbePlan(ctx, f.Plan)
	}
	done <- fact
}

// addresses lists the distinct addresses of hosts, in plan order, made
// once at its length.
func addresses(hosts []route.Host) []netip.Addr {
	m := 0
	for _, h := range hosts {
		m += len(h.Addresses)
	}
	if m == 0 {
		return nil
	}
	addrs := make([]netip.Addr, 0, m)
	for _, h := range hosts {
		for _, s := range h.Addresses {
			// A plan holds at most 64 × 16 addresses (route's bounds),
			// mostly a handful: a linear search costs less than a map.
			if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(addrs, ip) {
				addrs = append(addrs, ip)
			}
		}
	}
	return addrs
}

// failures is several lookups' errors as one line: the first, and how
// many more. It wraps them all, for errors.Is.
type failures []error

func (e failures) Error() string {
	if len(e) == 1 {
		return e[0].Error()
	}
	return fmt.Sprintf("%v (and %d more)", e[0], len(e)-1)
}

func (e failures) Unwrap() []error { return e }

// oneLine returns the non-nil errors of errs as failures, or nil.
func oneLine(errs []error) error {
	var fs failures
	for _, err := range errs {
		if err != nil {
			fs = append(fs, err)
		}
	}
	if fs == nil {
		return nil
	}
	return fs
}

// Audit gathers the facts about domain and judges them.
func (a *Auditor) Audit(ctx context.Context, domain dnsname.Name) *Report {
	return a.AuditEach(ctx, domain, nil)
}

// Progress is one area decided during AuditEach: judged (Result, what
// Report.Areas holds for it) or not checked (Skip, what Report.Skipped
// holds for it). Exactly one of Result and Skip is set.
type Progress struct {
	Area   finding.Area `json:"area"`
	Result *AreaResult  `json:"result,omitempty"`
	Skip   *Skip        `json:"skipped,omitempty"`
	// Plan is set on the routing area's event: the delivery plan, known
	// long before the slowest area (the SMTP probes), so a page can draw
	// the route at once.
	Plan *route.Plan `json:"plan,omitempty"`
}

// AuditEach is Audit, calling emit as each area is decided: one call per
// entry of the returned Report's Areas and Skipped (areas with nothing to
// check are in neither, and get none), in the order they are decided,
// never concurrently, all before AuditEach returns. The Auditor's own
// skips (areas it was told to leave out) come first; every other area is
// judged the moment the facts its Check needs are gathered, so a slow
// area (SMTP probes wait for greeting delays of minutes, RFC 5321
// §4.5.3.2) does not hold back the quick ones. The Report is the one
// Audit returns: areas and skips in Checks order, whatever the order of
// the events. emit may be nil; while it runs, gathering goes on but no
// other area is judged.
func (a *Auditor) AuditEach(ctx context.Context, domain dnsname.Name, emit func(Progress)) *Report {
	start := time.Now()
	done := make(chan Fact, factCount)
	f := a.gather(ctx, domain, done)
	j := newJudging(f, a.skipped(), emit)
	for have := Fact(0); have != allFacts; {
		have |= <-done
		j.judgeReady(have)
	}
	r := j.report()
	r.ElapsedMS = time.Since(start).Milliseconds()
	if a.Logger != nil && a.Logger.Enabled(ctx, slog.LevelDebug) {
		a.Logger.Debug("check", "domain", domain, "result", r.Result, "findings", len(r.Findings), "elapsed", time.Since(start))
	}
	return r
}

// skipped lists the areas this Auditor does not look at.
func (a *Auditor) skipped() []Skip {
	var s []Skip
	if a.Nameservers == nil {
		s = append(s, Skip{finding.AreaNameservers, a.SkipReason})
	}
	if a.MTASTS == nil {
		s = append(s, Skip{policyFetch, a.SkipReason})
	}
	if a.DNSBL == nil {
		s = append(s, Skip{finding.AreaDNSBL, a.SkipReason})
	}
	if a.Probe == nil {
		reason := cmp.Or(a.SMTPSkipReason, a.SkipReason)
		s = append(s, Skip{finding.AreaSMTP, reason}, Skip{finding.AreaTiers, reason})
	}
	return s
}

// policyFetch is the part of the MTA-STS area left out without the
// network, listed with the skipped areas.
const policyFetch finding.Area = "MTA-STS policy fetch"

// Skip is an area not looked at, and why.
type Skip struct {
	Area   finding.Area `json:"area"`
	Reason string       `json:"reason"`
}

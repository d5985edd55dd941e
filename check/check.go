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
package check

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
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

// Gather asks every question about domain, in parallel, and returns the
// facts. It does not fail: each area's error is in its field.
func (a *Auditor) Gather(ctx context.Context, domain dnsname.Name) *Facts {
	f := &Facts{Domain: domain}
	var wg sync.WaitGroup

	// The plan first, and everything that needs its exchanges as soon as
	// it is known; the independent areas meanwhile.
	wg.Go(func() {
		f.Plan, f.PlanErr = a.Planner.Plan(ctx, domain)
		_, addrs := exchanges(f.Plan)
		var inner sync.WaitGroup
		var hosts []route.Host
		if f.Plan != nil {
			hosts = f.Plan.Hosts()
			inner.Go(func() { f.PTR = probe.GatherPTR(ctx, a.Resolver, hosts, a.Logger) })
		}
		inner.Go(func() {
			f.DANE, f.DANEErrs = probe.GatherTLSA(ctx, a.Resolver, probe.Addressed(hosts), dane.Options{Logger: a.Logger})
		})
		if a.DNSBL != nil && len(addrs) > 0 {
			inner.Go(func() {
				opts := *a.DNSBL
				opts.Logger = cmp.Or(opts.Logger, a.Logger)
				f.DNSBL, f.DNSBLErr = dnsbl.Lookup(ctx, a.Resolver, addrs, opts)
			})
		}
		if a.Probe != nil && len(addrs) > 0 {
			inner.Go(func() {
				f.ProbedAt = time.Now()
				f.SMTP = a.Probe.ProbePlan(ctx, f.Plan)
			})
		}
		inner.Wait()
	})
	if a.Nameservers != nil {
		wg.Go(func() {
			opts := *a.Nameservers
			opts.Logger = cmp.Or(opts.Logger, a.Logger)
			f.Nameservers, f.NameserversErr = nameserver.Lookup(ctx, a.Resolver, domain, opts)
		})
	}
	wg.Go(func() {
		f.SPF, f.SPFErr = spf.Lookup(ctx, a.Resolver, domain, spf.Options{Logger: a.Logger})
	})
	wg.Go(func() { f.DMARC, f.DMARCErr = dmarc.Lookup(ctx, a.Resolver, domain, dmarc.Options{Logger: a.Logger}) })
	wg.Go(func() {
		f.DKIM, f.DKIMErr = dkim.Lookup(ctx, a.Resolver, domain, dkim.Options{Selectors: a.DKIMSelectors, Logger: a.Logger})
	})
	wg.Go(func() {
		opts := mtasts.Options{NoFetch: true}
		if a.MTASTS != nil {
			opts = *a.MTASTS
		}
		opts.Logger = cmp.Or(opts.Logger, a.Logger)
		f.MTASTS, f.MTASTSErr = mtasts.Lookup(ctx, a.Resolver, domain, opts)
	})
	wg.Go(func() {
		f.TLSRPT, f.TLSRPTErr = tlsrpt.Lookup(ctx, a.Resolver, domain, tlsrpt.Options{Logger: a.Logger})
	})
	wg.Wait()
	return f
}

// exchanges lists the plan's hosts and their addresses, in plan order.
func exchanges(p *route.Plan) (hosts []string, addrs []netip.Addr) {
	if p == nil {
		return nil, nil
	}
	seen := map[netip.Addr]bool{}
	for _, h := range p.Hosts() {
		hosts = append(hosts, h.Name)
		for _, s := range h.Addresses {
			if ip, err := netip.ParseAddr(s); err == nil && !seen[ip] {
				seen[ip] = true
				addrs = append(addrs, ip)
			}
		}
	}
	return hosts, addrs
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
	start := time.Now()
	f := a.Gather(ctx, domain)
	r := Judge(f, a.skipped())
	r.ElapsedMS = time.Since(start).Milliseconds()
	if a.Logger != nil {
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

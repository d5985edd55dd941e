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
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/rdns"
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

	PTR []HostPTR `json:"ptr"`

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

	DANE    []*dane.Result `json:"dane"`
	DANEErr error          `json:"-"`

	DNSBL    *dnsbl.Result `json:"dnsbl,omitzero"`
	DNSBLErr error         `json:"-"`

	// SMTP holds one probe per exchange address, in plan order; nil when
	// not probed. ProbedAt is when, for judging certificate dates.
	SMTP     []*probe.Result `json:"smtp,omitempty"`
	ProbedAt time.Time       `json:"-"`
}

// HostPTR is the reverse DNS of one exchange's addresses.
type HostPTR struct {
	Host    string         `json:"host"`
	Results []*rdns.Result `json:"results"`
	Errors  []string       `json:"errors,omitempty"` // addresses whose PTR lookup failed temporarily
	// Outside counts addresses whose reverse zone is not in the --zone
	// files (offline runs): not looked at, and not an error.
	Outside int `json:"outside,omitempty"`
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
		inner.Go(func() { f.PTR = a.gatherPTR(ctx, f.Plan) })
		inner.Go(func() { f.DANE, f.DANEErr = a.gatherDANE(ctx, addressed(f.Plan)) })
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
		opts := mtasts.Options{NoFetch: true, Logger: a.Logger}
		if a.MTASTS != nil {
			opts = *a.MTASTS
		}
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

// addressed lists the plan's hosts that resolved to an address: the ones
// a sender connects to, and so the ones whose TLSA records it asks for
// (RFC 7672 §2.2: TLSA lookup follows address resolution). An IP-literal
// target or a dangling name has no TLSA base domain.
func addressed(p *route.Plan) []string {
	var hosts []string
	if p == nil {
		return nil
	}
	for _, h := range p.Hosts() {
		if len(h.Addresses) > 0 {
			if _, err := netip.ParseAddr(h.Name); err != nil {
				hosts = append(hosts, h.Name)
			}
		}
	}
	return hosts
}

// gatherDANE looks up the TLSA records of every host at once. Results are
// in the order of hosts, nil where that host's lookup failed; the error
// joins the failures.
func (a *Auditor) gatherDANE(ctx context.Context, hosts []string) ([]*dane.Result, error) {
	out := make([]*dane.Result, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { out[i], errs[i] = dane.Lookup(ctx, a.Resolver, h, dane.Options{Logger: a.Logger}) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// gatherPTR looks up every exchange address's PTR and forward-confirms it,
// all at once.
func (a *Auditor) gatherPTR(ctx context.Context, p *route.Plan) []HostPTR {
	if p == nil {
		return nil
	}
	// One slot per address of every host, all looked up at once; sorted
	// into the hosts afterwards.
	type lookup struct {
		host int
		res  *rdns.Result
		err  error
	}
	hosts := p.Hosts()
	var lookups []lookup
	var addrs []netip.Addr
	for i, h := range hosts {
		for _, s := range h.Addresses {
			if ip, err := netip.ParseAddr(s); err == nil {
				lookups = append(lookups, lookup{host: i})
				addrs = append(addrs, ip)
			}
		}
	}
	var wg sync.WaitGroup
	for k := range lookups {
		wg.Go(func() {
			lookups[k].res, lookups[k].err = rdns.Lookup(ctx, a.Resolver, addrs[k], rdns.Options{Logger: a.Logger})
		})
	}
	wg.Wait()

	out := make([]HostPTR, len(hosts))
	for i, h := range hosts {
		out[i].Host = h.Name
	}
	for _, l := range lookups {
		h := &out[l.host]
		switch {
		case errors.Is(l.err, resolve.ErrNotInZone):
			h.Outside++
		case l.err != nil:
			h.Errors = append(h.Errors, l.err.Error())
		default:
			h.Results = append(h.Results, l.res)
		}
	}
	return out
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
		s = append(s, Skip{AreaNameservers, a.SkipReason})
	}
	if a.MTASTS == nil {
		s = append(s, Skip{"MTA-STS policy fetch", a.SkipReason})
	}
	if a.DNSBL == nil {
		s = append(s, Skip{AreaDNSBL, a.SkipReason})
	}
	if a.Probe == nil {
		reason := cmp.Or(a.SMTPSkipReason, a.SkipReason)
		s = append(s, Skip{AreaSMTP, reason}, Skip{AreaTiers, reason})
	}
	return s
}

// Skip is an area not looked at, and why.
type Skip struct {
	Area   string `json:"area"`
	Reason string `json:"reason"`
}

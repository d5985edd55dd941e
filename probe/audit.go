package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// SchemaVersion is the "schema" member of Report's JSON form.
const SchemaVersion = 1

// MaxHostAddresses bounds the addresses of a host target that are probed,
// as route bounds an exchange's (route.DefaultMaxAddresses).
const MaxHostAddresses = route.DefaultMaxAddresses

// ErrNoAddress is returned for a host target with no A or AAAA record.
var ErrNoAddress = errors.New("probe: the host has no address")

// Target is what one "mxtrace probe" argument names: a mail domain, whose
// exchanges are found through its delivery plan, or one host, probed by
// itself with no MX lookup.
type Target struct {
	// Domain is set for a domain target.
	Domain dnsname.Name
	// Host is a host name or an IP address, for a host target.
	Host string
	// Port, for a host target, overrides the Prober's port; 0 keeps it.
	Port int
}

// String is the target as the user would write it.
func (t Target) String() string {
	if t.Domain != "" {
		return t.Domain.String()
	}
	h := t.Host
	if t.Port == 0 {
		return h
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(t.Port)
}

// Auditor probes targets and judges what it finds: the SMTP findings of
// every endpoint, and the DANE match of every exchange with TLSA records.
type Auditor struct {
	Prober *Prober // required
	// Resolver finds the addresses of host targets and the PTR names the
	// greetings are compared with. Required.
	Resolver resolve.Resolver
	// Planner plans domain targets; required for them.
	Planner *route.Planner
	// DANE configures the TLSA lookups (through Resolver); nil: no DANE
	// matching.
	DANE *dane.Options
	// IPv4 and IPv6 select the address families of host targets; both
	// false means both. (Domain targets follow the Planner's.)
	IPv4, IPv6 bool
}

// Report is the outcome of probing one target; its JSON form is the
// "probe --json" output.
type Report struct {
	Schema int    `json:"schema"`
	Target string `json:"target"`
	Kind   string `json:"kind"` // "domain" or "host"
	// Plan is the delivery plan of a domain target.
	Plan *route.Plan `json:"plan,omitempty"`
	// Error says why nothing (or not everything) could be probed.
	Error   string    `json:"error,omitempty"`
	Results []*Result `json:"results"`
	// PTR are the PTR names of the probed addresses that have them.
	PTR map[netip.Addr][]string `json:"ptr,omitempty"`
	// DANE has one check per result, in the same order, when TLSA
	// records were looked up.
	DANE     []*DANECheck      `json:"dane,omitempty"`
	Findings []finding.Finding `json:"findings"`
	// ElapsedMS is the wall time of the whole target, in milliseconds.
	ElapsedMS int64 `json:"elapsed_ms"`
}

// Audit probes one target. For a domain, it plans the route and probes
// every address of every exchange; when the plan has nothing to probe
// (NXDOMAIN, Null MX, no mail), the plan's findings are the report's. The
// error is a failure to do the job: a temporary DNS failure, or a host
// without an address; what the servers do wrong is in the findings.
func (a *Auditor) Audit(ctx context.Context, t Target) (*Report, error) {
	start := time.Now()
	rep := &Report{Schema: SchemaVersion, Target: t.String(), Results: []*Result{}, Findings: []finding.Finding{}}
	defer func() { rep.ElapsedMS = time.Since(start).Milliseconds() }()
	p := a.Prober
	var jobs []job
	var hosts []route.Host // the exchanges whose DNS facts are gathered
	if t.Domain != "" {
		rep.Kind = "domain"
		plan, err := a.Planner.Plan(ctx, t.Domain)
		rep.Plan = plan
		if err != nil || plan.Result != route.ResultOK {
			if err != nil {
				rep.Error = err.Error()
			}
			rep.Findings = append(rep.Findings, plan.Findings...)
			finding.Sort(rep.Findings)
			return rep, err
		}
		jobs = planJobs(plan)
		hosts = plan.Hosts()
	} else {
		rep.Kind = "host"
		if t.Port != 0 {
			cp := *p
			cp.Port = t.Port
			p = &cp
		}
		addrs, host, err := a.hostAddresses(ctx, t.Host)
		if err != nil {
			rep.Error = err.Error()
			return rep, err
		}
		h := route.Host{Name: host}
		for _, ad := range addrs {
			jobs = append(jobs, job{host: host, addr: ad.String()})
			h.Addresses = append(h.Addresses, ad.String())
		}
		hosts = []route.Host{h}
	}

	// The probe, and the DNS facts its judges use, gathered as check
	// gathers them (GatherPTR, GatherTLSA), all at once.
	var wg sync.WaitGroup
	wg.Go(func() { rep.Results = p.run(ctx, jobs) })
	tlsaHosts := Addressed(hosts)
	var tlsa []*dane.Result
	var tlsaErrs []error
	if a.DANE != nil {
		wg.Go(func() { tlsa, tlsaErrs = GatherTLSA(ctx, a.Resolver, tlsaHosts, *a.DANE) })
	}
	var ptr []HostPTR
	wg.Go(func() { ptr = GatherPTR(ctx, a.Resolver, hosts, p.Logger) })
	wg.Wait()
	rep.PTR = PTRNames(ptr)

	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	rep.Findings = append(rep.Findings, Findings(rep.Results, now, rep.PTR)...)
	if a.DANE != nil {
		rep.DANE = MatchTLSA(rep.Results, tlsaHosts, tlsa, tlsaErrs)
		rep.Findings = append(rep.Findings, DANEFindings(rep.DANE)...)
	}
	if len(rep.PTR) == 0 {
		rep.PTR = nil
	}
	finding.Sort(rep.Findings)
	if err := OutOfTime(rep.Results); err != nil {
		// Not probed in time is the job not done, not a finding.
		rep.Error = err.Error()
		return rep, err
	}
	return rep, nil
}

// job is one address to probe.
type job struct {
	host    string
	pref    uint16
	hasPref bool
	addr    string
}

func planJobs(plan *route.Plan) []job {
	var jobs []job
	for _, t := range plan.Tiers {
		for _, h := range t.Hosts {
			for _, a := range h.Addresses {
				jobs = append(jobs, job{host: h.Name, pref: t.Preference, hasPref: true, addr: a})
			}
		}
	}
	return jobs
}

// run probes every job, at most MaxParallel at once; the results are in
// job order.
func (p *Prober) run(ctx context.Context, jobs []job) []*Result {
	s := p.settings()
	limit := p.MaxParallel
	if limit <= 0 {
		limit = DefaultMaxParallel
	}
	out := make([]*Result, len(jobs))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var r *Result
			if addr, err := netip.ParseAddr(j.addr); err != nil {
				r = &Result{Host: j.host, Port: s.port, Transcript: []TranscriptLine{},
					Err: &StepError{Step: StepConnect, Kind: KindNetwork, Message: fmt.Sprintf("invalid address %q", j.addr), Err: err}}
			} else {
				r = s.probe(ctx, j.host, addr)
			}
			if j.hasPref {
				pref := j.pref
				r.Preference = &pref
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// hostAddresses resolves a host target: an IP address stands for itself
// (and the results carry no host name); a name is resolved to its A and
// AAAA records at once, in the order served, at most MaxHostAddresses.
func (a *Auditor) hostAddresses(ctx context.Context, host string) ([]netip.Addr, string, error) {
	if ad, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ad.Unmap()}, "", nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	var types []uint16
	if a.IPv4 || !a.IPv6 {
		types = append(types, dns.TypeA)
	}
	if a.IPv6 || !a.IPv4 {
		types = append(types, dns.TypeAAAA)
	}
	res := make([]*resolve.Result, len(types))
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, qt := range types {
		wg.Go(func() { res[i], errs[i] = resolve.Follow(ctx, a.Resolver, resolve.Q(name+".", qt)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, name, fmt.Errorf("addresses of %s: %w", name, err)
	}
	var addrs []netip.Addr
	for _, r := range res {
		for _, rr := range r.Records {
			if ad, ok := resolve.AddrOf(rr); ok && len(addrs) < MaxHostAddresses {
				addrs = append(addrs, ad)
			}
		}
	}
	if len(addrs) == 0 {
		return nil, name, fmt.Errorf("%w: %s", ErrNoAddress, name)
	}
	return addrs, name, nil
}

package check

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// Check is one area's judgement over the gathered facts.
type Check struct {
	Area finding.Area
	// Needs lists the facts Judge reads; it is handed only those (the
	// others are zero), as soon as they are gathered. A check not marked
	// WithoutDomain also waits for the plan, which says whether the
	// domain exists.
	Needs Fact
	Judge func(f *Facts) Verdict
	// WithoutDomain: the area is judged even when the domain does not
	// exist. The others are about names below it, which are NXDOMAIN too
	// (RFC 8020 §2), and could only report that absence again.
	WithoutDomain bool
}

// Checks lists every check, in report order. It is the one place to read
// what an audit looks at.
func Checks() []Check { return slices.Clone(checkTable[:]) }

// checkTable is what Checks returns, built once: an audit reads it and
// never writes it (a fresh list per audit was 480 bytes of every domain's
// garbage).
var checkTable = [...]Check{
	{Area: finding.AreaRouting, Needs: FactPlan, Judge: judgeRouting, WithoutDomain: true},
	{Area: finding.AreaNameservers, Needs: FactNameservers, Judge: judgeNameservers, WithoutDomain: true},
	{Area: finding.AreaPTR, Needs: FactPlan | FactPTR, Judge: judgePTR},
	{Area: finding.AreaSPF, Needs: FactSPF, Judge: judgeSPF},
	{Area: finding.AreaDMARC, Needs: FactDMARC, Judge: judgeDMARC},
	{Area: finding.AreaDKIM, Needs: FactDKIM, Judge: judgeDKIM},
	// mta-sts-mx-not-covered compares the policy with the exchanges.
	{Area: finding.AreaMTASTS, Needs: FactMTASTS | FactPlan, Judge: judgeMTASTS},
	{Area: finding.AreaTLSRPT, Needs: FactTLSRPT, Judge: judgeTLSRPT},
	// RFC 7672 §3: the records are matched against what the servers
	// present.
	{Area: finding.AreaDANE, Needs: FactPlan | FactDANE | FactSMTP, Judge: judgeDANE},
	{Area: finding.AreaDNSBL, Needs: FactPlan | FactDNSBL, Judge: judgeDNSBL},
	// The banner name is compared with the address's PTR names.
	{Area: finding.AreaSMTP, Needs: FactPlan | FactSMTP | FactPTR, Judge: judgeSMTP},
	// A backup tier is compared on PTR and blacklist entries too.
	{Area: finding.AreaTiers, Needs: FactPlan | FactSMTP | FactPTR | FactDNSBL, Judge: judgeTiers},
}

// Outcome says whether an area was judged.
type Outcome uint8

// Outcomes.
const (
	// Judged: the Verdict's Findings, Summary and Err are the judgement.
	Judged Outcome = iota
	// NotChecked: the facts the area needs could not be gathered, for the
	// Verdict's Reason (the route could not be computed, so there is no
	// exchange to look at). The report lists the area as skipped.
	NotChecked
	// NothingToCheck: the area does not apply (a domain without
	// exchanges has no PTR to check, one tier has no backup to compare),
	// or the Auditor left it out and lists it with its own reason. The
	// report leaves it out.
	NothingToCheck
)

// Verdict is one area's judgement over the gathered facts.
type Verdict struct {
	Outcome  Outcome
	Findings []finding.Finding
	Summary  string // one line for the report
	// Err is what kept the area from being judged in full (a temporary
	// failure); the findings, if any, are what could be judged anyway.
	Err error
	// Reason says why the area was NotChecked.
	Reason string
}

// judged is the Verdict of an area that was looked at.
func judged(fs []finding.Finding, summary string, err error) Verdict {
	return Verdict{Outcome: Judged, Findings: fs, Summary: summary, Err: err}
}

// failed is the Verdict of an area whose facts could not be gathered.
func failed(err error) Verdict { return Verdict{Outcome: Judged, Err: err} }

// nothing is the Verdict of an area that does not apply.
var nothing = Verdict{Outcome: NothingToCheck}

// noRoute returns the NotChecked Verdict of an area about the exchanges
// when the route could not be computed (there is no exchange to look at,
// which is not a pass), and false otherwise.
func noRoute(f *Facts) (Verdict, bool) {
	if f.Plan == nil || f.Plan.Result == route.ResultError {
		return Verdict{Outcome: NotChecked, Reason: "the route could not be computed"}, true
	}
	return Verdict{}, false
}

// Status is an area's outcome.
type Status string

// Statuses.
const (
	StatusPass     Status = "pass"     // looked at, nothing above info
	StatusProblems Status = "problems" // findings at warning or error
	StatusError    Status = "error"    // could not be judged: a lookup failed temporarily
)

// AreaResult is one area of the report.
type AreaResult struct {
	Area     finding.Area      `json:"area"`
	Status   Status            `json:"status"`
	Summary  string            `json:"summary"`
	Error    string            `json:"error,omitempty"`
	Findings []finding.Finding `json:"findings"`

	err error // what Error says, for errors.Is
}

// Report is the audit of one domain. Its JSON form has the members of
// "route --json" (the plan) with every finding of every area in "findings",
// plus the areas, what was skipped, and the gathered details.
type Report struct {
	*route.Plan
	Findings  []finding.Finding `json:"findings"`
	Areas     []AreaResult      `json:"areas"`
	Skipped   []Skip            `json:"skipped"`
	Details   *Facts            `json:"details"`
	ElapsedMS int64             `json:"elapsed_ms"`
}

// Judge runs every check over f and builds the report. When the domain
// does not exist, only the checks marked WithoutDomain run; the others are
// listed as skipped.
func Judge(f *Facts, skipped []Skip) *Report {
	j := newJudging(f, skipped, nil)
	j.judgeReady(allFacts)
	return j.report()
}

// judging is one audit's judgement, built check by check as the facts
// come in (AuditEach), or all at once (Judge): one code path, so both
// give the same Report.
//
// It is one allocation, report included (2,024 bytes: the runtime's 2 KiB
// size class): a scan judges every domain, and a copy of the Facts per
// check, the results, and the report's slices grown by appending were
// 11 KB of every audit's garbage (--memprofile of a 20,000-domain scan).
// BenchmarkJudge: 27,068 B in 195 allocations before, 8,873 B in 47 now,
// for its three domains.
type judging struct {
	f       *Facts
	checks  []Check
	skipped []Skip         // the Auditor's own, first in the report
	emit    func(Progress) // nil: no one listens, and no Progress is built
	// view is what the check being judged may read (Facts.only). Checks
	// are judged one at a time and no judge keeps its Facts, so one view
	// serves them all.
	view      Facts
	decisions [len(checkTable)]decision
	// areas holds the result of each judged check; report packs them to
	// the front, into the Report's Areas.
	areas [len(checkTable)]AreaResult
	rep   Report
}

// decision is what became of one check.
type decision struct {
	decided bool
	judged  bool   // its area holds its result
	skipped bool   // not checked, and the Auditor did not skip it already
	reason  string // why it was not checked (a Skip's Reason; its Area is the check's)
}

// newJudging starts judging f, emitting the Auditor's skips at once.
func newJudging(f *Facts, skipped []Skip, emit func(Progress)) *judging {
	j := &judging{f: f, checks: checkTable[:], skipped: skipped, emit: emit}
	if emit != nil {
		for _, s := range skipped {
			emit(Progress{Area: s.Area, Skip: &s})
		}
	}
	return j
}

// waitsFor is what c must wait for: its facts, and the plan unless it is
// judged without the domain.
func (c Check) waitsFor() Fact {
	if c.WithoutDomain {
		return c.Needs
	}
	return c.Needs | FactPlan
}

// judgeReady decides every check not yet decided whose facts are all in
// have, in Checks order, and emits each.
func (j *judging) judgeReady(have Fact) {
	for i := range j.checks {
		c, d := &j.checks[i], &j.decisions[i]
		if d.decided || c.waitsFor()&^have != 0 {
			continue
		}
		d.decided = true
		j.decide(c, d, &j.areas[i])
		switch {
		case d.judged:
			if j.emit != nil {
				p := Progress{Area: c.Area, Result: new(j.areas[i])}
				if c.Area == finding.AreaRouting {
					p.Plan = j.f.Plan
				}
				j.emit(p)
			}
		case d.skipped && slices.ContainsFunc(j.skipped, func(s Skip) bool { return s.Area == c.Area }):
			d.skipped = false
		case d.skipped && j.emit != nil:
			j.emit(Progress{Area: c.Area, Skip: &Skip{c.Area, d.reason}})
		}
	}
}

// decide judges c over the facts it needs: the area's result into ar, or
// why it was not checked into d, or neither when there is nothing to
// check.
func (j *judging) decide(c *Check, d *decision, ar *AreaResult) {
	// The plan is read only by a check that waits for it.
	if !c.WithoutDomain && j.f.Plan != nil && j.f.Plan.Result == route.ResultNXDomain {
		d.skipped, d.reason = true, "the domain does not exist"
		return
	}
	v := c.Judge(j.f.only(c.Needs, &j.view))
	switch v.Outcome {
	case NotChecked:
		d.skipped, d.reason = true, v.Reason
		return
	case NothingToCheck:
		return
	}
	fs, err := v.Findings, v.Err
	finding.Sort(fs)
	d.judged = true
	*ar = AreaResult{Area: c.Area, Status: StatusPass, Summary: v.Summary, Findings: fs}
	if ar.Findings == nil {
		ar.Findings = []finding.Finding{}
	}
	if finding.Worst(fs) > finding.Info {
		ar.Status = StatusProblems
	}
	if err != nil {
		ar.Status, ar.Error, ar.err = StatusError, err.Error(), err
	}
}

// report builds the Report from the decided checks, in Checks order, and
// ends the judging. Its slices are made at their length (appending to
// empty ones grew them several times over); an empty one is still not
// nil, as the JSON has [] for it.
func (j *judging) report() *Report {
	nSkips, nFindings := len(j.skipped), 0
	for i, d := range j.decisions {
		if d.judged {
			nFindings += len(j.areas[i].Findings)
		}
		if d.skipped {
			nSkips++
		}
	}
	r := &j.rep
	*r = Report{Plan: j.f.Plan, Details: j.f,
		Findings: make([]finding.Finding, 0, nFindings),
		Skipped:  append(make([]Skip, 0, nSkips), j.skipped...)}
	n := 0
	for i, d := range j.decisions {
		if d.skipped {
			r.Skipped = append(r.Skipped, Skip{j.checks[i].Area, d.reason})
		}
		if d.judged {
			j.areas[n] = j.areas[i] // n ≤ i: packs the judged ones in order
			r.Findings = append(r.Findings, j.areas[n].Findings...)
			n++
		}
	}
	r.Areas = j.areas[:n:n]
	finding.Sort(r.Findings)
	return r
}

// AreaError is an area that could not be judged, and why.
type AreaError struct {
	Area finding.Area
	Err  error
}

func (e *AreaError) Error() string { return string(e.Area) + ": " + e.Err.Error() }
func (e *AreaError) Unwrap() error { return e.Err }

// Errors returns the errors (*AreaError) that kept areas from being judged, wrapping
// the lookups' errors (errors.Is finds resolve.ErrTimeout and the like).
func (r *Report) Errors() []error {
	var errs []error
	for _, a := range r.Areas {
		if a.Status == StatusError {
			errs = append(errs, &AreaError{Area: a.Area, Err: a.err})
		}
	}
	return errs
}

func judgeRouting(f *Facts) Verdict {
	p := f.Plan
	switch p.Result {
	case route.ResultOK:
		kind := prose.Count(p.HostCount(), "exchange") + " in " + prose.Count(len(p.Tiers), "tier")
		if p.Implicit {
			kind = "implicit MX"
		}
		return judged(p.Findings, kind, nil)
	case route.ResultError:
		// An alias chain that loops or runs too long is an answer, broken
		// for good (RFC 1034 §3.6.2): the area was judged, and its finding
		// (mx-alias-loop, mx-alias-too-long) says what to fix.
		switch {
		case errors.Is(f.PlanErr, resolve.ErrCNAMELoop):
			return judged(p.Findings, "the alias chain loops", nil)
		case errors.Is(f.PlanErr, resolve.ErrCNAMEChain):
			return judged(p.Findings, "the alias chain is too long", nil)
		}
		return judged(p.Findings, "", f.PlanErr)
	case route.ResultNullMX:
		return judged(p.Findings, "accepts no mail (Null MX, RFC 7505)", nil)
	case route.ResultNXDomain:
		return judged(p.Findings, "the domain does not exist", nil)
	case route.ResultNoMail:
		// RFC 5321 §5.1: no MX records and no address for the implicit MX.
		return judged(p.Findings, "no MX and no address: no mail", nil)
	}
	return judged(p.Findings, string(p.Result), nil)
}

func judgeNameservers(f *Facts) Verdict {
	if f.Nameservers == nil && f.NameserversErr == nil {
		return nothing
	}
	if f.NameserversErr != nil {
		return failed(f.NameserversErr)
	}
	n := f.Nameservers
	if err := noServerAsked(n); err != nil {
		return failed(err)
	}
	// A server whose every address the policy refused was not asked
	// (ns-target-refused says so): it is not counted as asked.
	asked := 0
	for _, s := range n.Servers {
		if slices.ContainsFunc(s.Addresses, func(a nameserver.Address) bool { return a.MX.Status != nameserver.StatusNotAllowed }) {
			asked++
		}
	}
	count := prose.Count(asked, "server") + " asked"
	if asked < len(n.Servers) {
		count = fmt.Sprintf("%d of %s asked", asked, prose.Count(len(n.Servers), "server"))
	}
	return judged(nameserver.Findings(n), "zone "+strings.TrimSuffix(n.Apex, ".")+", "+count+"; DNSSEC: "+string(n.DNSSEC.State), nil)
}

// noServerAsked returns why not one authoritative server was asked, or
// nil: an audit that asked nobody checked nothing, and is no pass.
func noServerAsked(n *nameserver.Result) error {
	var problems []string
	for _, s := range n.Servers {
		if len(s.Addresses) > 0 {
			return nil
		}
		if s.Problem != "" {
			problems = append(problems, s.Problem)
		}
	}
	zone := strings.TrimSuffix(n.Apex, ".")
	if len(n.Servers) == 0 {
		return fmt.Errorf("zone %s has no NS records: there is no server to ask", zone)
	}
	return fmt.Errorf("none of the %s of zone %s could be asked: %s", prose.Count(len(n.Servers), "server"), zone, strings.Join(problems, "; "))
}

func judgePTR(f *Facts) Verdict {
	if v, ok := noRoute(f); ok {
		return v
	}
	if len(f.PTR) == 0 {
		return nothing
	}
	var fs []finding.Finding
	var errs []error
	n, outside := 0, 0
	for _, h := range f.PTR {
		for _, r := range h.Results {
			fs = append(fs, rdns.Findings(r, h.Host)...)
		}
		for _, e := range h.Errors {
			errs = append(errs, errors.New(e))
		}
		n += len(h.Results)
		outside += h.Outside
	}
	// One line however many failed: the first, and how many more.
	err := oneLine(errs)
	switch {
	case n == 0 && len(errs) == 0 && outside > 0:
		// Nothing looked at is no pass.
		return Verdict{Outcome: NotChecked, Reason: "the reverse zones of the exchanges' addresses are not in the --zone files"}
	case n == 0 && len(errs) == 0:
		return nothing // no exchange has an address
	}
	summary := prose.Count(n, "address") + " checked"
	if outside > 0 {
		zones := "their reverse zones are"
		if outside == 1 {
			zones = "its reverse zone is"
		}
		summary += fmt.Sprintf(", %d not checked (%s not in the --zone files)", outside, zones)
	}
	return judged(fs, summary, err)
}

// maxSummaryRecord bounds the record an area's summary quotes.
const maxSummaryRecord = 256

func judgeSPF(f *Facts) Verdict {
	if f.SPFErr != nil {
		return failed(f.SPFErr)
	}
	a := f.SPF
	summary := "no record"
	if a.Tree != nil && a.Tree.Record != "" {
		// The record is the served TXT text: escaped (it may carry
		// terminal escapes) and cut, as the summary is one line.
		summary = fmt.Sprintf("%s (%d of 10 DNS lookups, %d void)", printable.Cut(printable.String(a.Tree.Record), maxSummaryRecord), a.Lookups, a.VoidLookups)
	}
	return judged(spf.Findings(a), summary, nil)
}

func judgeDMARC(f *Facts) Verdict {
	if f.DMARCErr != nil && f.DMARC == nil {
		return failed(f.DMARCErr)
	}
	summary := "no record"
	if f.DMARC.Record != nil {
		summary = fmt.Sprintf("p=%s at %s", f.DMARC.Policy, f.DMARC.PolicyDomain)
	}
	return judged(dmarc.Findings(f.DMARC), summary, f.DMARCErr)
}

func judgeDKIM(f *Facts) Verdict {
	if f.DKIMErr != nil && f.DKIM == nil {
		return failed(f.DKIMErr)
	}
	var found []string
	for _, k := range f.DKIM.Keys {
		found = append(found, k.Selector)
	}
	summary := "no key at the probed selectors"
	switch len(found) {
	case 0:
	case 1:
		summary = "key at selector " + found[0]
	default:
		summary = "keys at selectors " + prose.List(found)
	}
	return judged(dkim.Findings(f.DKIM), summary, f.DKIMErr)
}

func judgeMTASTS(f *Facts) Verdict {
	if f.MTASTSErr != nil {
		return failed(f.MTASTSErr)
	}
	// The exchanges are compared with a policy's mx patterns only: most
	// domains have none.
	var hosts []string
	if f.Plan != nil && f.MTASTS.Policy != nil {
		hosts = make([]string, 0, f.Plan.HostCount())
		for h := range f.Plan.EachHost() {
			hosts = append(hosts, h.Name)
		}
	}
	summary := "no record"
	if m := f.MTASTS; m.Policy != nil {
		summary = fmt.Sprintf("mode %s, %s", m.Policy.Mode, prose.Count(len(m.Policy.MX), "MX pattern"))
	} else if m.Record != nil {
		summary = "record id=" + m.Record.ID
		if m.FetchErr == nil && m.PolicyErr == nil {
			// The fetch was skipped: the record alone is no policy.
			summary += ", policy not fetched"
		}
	}
	return judged(mtasts.Findings(f.MTASTS, hosts), summary, nil)
}

func judgeTLSRPT(f *Facts) Verdict {
	if f.TLSRPTErr != nil {
		return failed(f.TLSRPTErr)
	}
	summary := "no record"
	if f.TLSRPT.Record != nil {
		summary = printable.Cut(f.TLSRPT.Record.String(), maxSummaryRecord)
	}
	return judged(tlsrpt.Findings(f.TLSRPT), summary, nil)
}

func judgeDANE(f *Facts) Verdict {
	if v, ok := noRoute(f); ok {
		return v
	}
	if len(f.DANE) == 0 {
		return nothing // no exchange is a name with addresses
	}
	with := 0
	for _, r := range f.DANE {
		if r != nil && len(r.Records) > 0 {
			with++
		}
	}
	var fs []finding.Finding
	for _, r := range f.DANE {
		fs = append(fs, dane.Findings(r)...)
	}
	summary := fmt.Sprintf("TLSA records for %d of %s", with, prose.Count(len(f.DANE), "exchange"))
	if len(f.DANE) < f.Plan.HostCount() {
		// TLSA records are looked up only for exchanges with addresses
		// (probe.Addressed): say what is counted, or the count disagrees
		// with routing's.
		if len(f.DANE) == 1 {
			summary += " with an address"
		} else {
			summary += " with addresses"
		}
	}
	if f.SMTP != nil {
		// RFC 7672 §3: the records must match what the servers present.
		checks := daneChecks(f)
		fs = append(fs, probe.DANEFindings(checks)...)
		matched := 0
		for _, c := range checks {
			if c.Status == probe.DANEMatch {
				matched++
			}
		}
		if matched > 0 {
			summary += fmt.Sprintf("; %s matched", prose.Count(matched, "server"))
		}
	}
	return judged(fs, summary, oneLine(f.DANEErrs))
}

// daneChecks matches every probed endpoint against its exchange's TLSA
// records as probe's Auditor does: an exchange whose lookup failed is
// lookup-failed, not none.
func daneChecks(f *Facts) []*probe.DANECheck {
	var hosts []route.Host
	if f.Plan != nil {
		hosts = f.Plan.Hosts()
	}
	return probe.MatchTLSA(f.SMTP, probe.Addressed(hosts), f.DANE, f.DANEErrs)
}

func judgeSMTP(f *Facts) Verdict {
	if v, ok := noRoute(f); ok && f.SMTP == nil {
		return v
	}
	if f.SMTP == nil {
		return nothing
	}
	greeted, tlsOK, forbidden := 0, 0, 0
	for _, r := range f.SMTP {
		if r.Greeted() {
			greeted++
		}
		if r.TLS != nil {
			tlsOK++
		}
		if refusedByPolicy(r) {
			forbidden++
		}
	}
	verb := "answer"
	if greeted == 1 {
		verb = "answers"
	}
	summary := fmt.Sprintf("%d of %s %s, %d with STARTTLS", greeted, prose.Count(len(f.SMTP), "address"), verb, tlsOK)
	if forbidden > 0 {
		// smtp-target-refused says which, and why.
		summary += fmt.Sprintf("; %d not probed (not a public address)", forbidden)
	}
	// An address our own deadline cut short was not probed: the area
	// could not be checked there, which is no finding about the server.
	return judged(probe.Findings(f.SMTP, f.ProbedAt, probe.PTRNames(f.PTR)), summary, probe.OutOfTime(f.SMTP))
}

func judgeTiers(f *Facts) Verdict {
	if v, ok := noRoute(f); ok && f.SMTP == nil {
		return v
	}
	if f.SMTP == nil || f.Plan == nil || len(f.Plan.Tiers) < 2 {
		return nothing
	}
	fs := TierFindings(endpoints(f))
	return judged(fs, prose.Count(len(f.Plan.Tiers)-1, "backup tier")+" compared with the primary", nil)
}

// ptrByAddress indexes the PTR results by address; addresses whose PTR
// was not looked up (or failed) are absent.
func (f *Facts) ptrByAddress() map[netip.Addr]*rdns.Result {
	m := map[netip.Addr]*rdns.Result{}
	for _, h := range f.PTR {
		for _, r := range h.Results {
			m[r.Address] = r
		}
	}
	return m
}

// endpoints joins the probe, PTR and blacklist facts per exchange address.
func endpoints(f *Facts) []Endpoint {
	tierOf := map[string]int{}
	for i, t := range f.Plan.Tiers {
		for _, h := range t.Hosts {
			tierOf[h.Name] = i
		}
	}
	ptr := f.ptrByAddress()
	listed := map[netip.Addr]bool{}
	asked := map[netip.Addr]bool{}
	var entries []dnsbl.Entry
	if f.DNSBL != nil {
		entries = f.DNSBL.Entries
	}
	for _, r := range entries {
		switch r.Status {
		case dnsbl.Listed:
			listed[r.Address], asked[r.Address] = true, true
		case dnsbl.Clean:
			asked[r.Address] = true
		}
	}
	var eps []Endpoint
	for _, r := range f.SMTP {
		if r == nil || (r.Err != nil && (r.Err.Kind == probe.KindOutOfTime || r.Err.Kind == probe.KindCanceled)) || refusedByPolicy(r) {
			// Not given its time, or not a public address the dialer
			// may connect to: nothing to compare (a primary that was not
			// probed is not one that refuses).
			continue
		}
		t := tierOf[r.Host]
		e := Endpoint{
			Tier: t, Pref: f.Plan.Tiers[t].Preference, Host: r.Host, Addr: r.Address,
			Connected: r.Connected,
			Greeted:   r.Greeted(),
			STARTTLS:  r.TLS != nil,
		}
		if r.TLS != nil {
			e.ValidCert = r.TLS.Verified
			e.TLS12 = r.TLS.VersionID >= tls.VersionTLS12
		}
		if p, ok := ptr[r.Address]; ok {
			e.PTR, e.PTRKnown = p.Confirmed != "", true
		}
		e.CleanKnown = asked[r.Address]
		e.Clean = e.CleanKnown && !listed[r.Address]
		eps = append(eps, e)
	}
	return eps
}

func judgeDNSBL(f *Facts) Verdict {
	if v, ok := noRoute(f); ok {
		return v
	}
	if f.DNSBL == nil && f.DNSBLErr == nil {
		return nothing
	}
	if f.DNSBLErr != nil {
		return failed(f.DNSBLErr)
	}
	// A list that refused every address checked nothing: it is named
	// apart, and an area where no list answered could not be checked
	// (a pass would say the addresses are clean).
	usable, refused := map[string]bool{}, map[string]bool{}
	listed, why := 0, ""
	for _, r := range f.DNSBL.Entries {
		switch r.Status {
		case dnsbl.Listed:
			listed++
			usable[r.List] = true
		case dnsbl.Clean:
			usable[r.List] = true
		default:
			refused[r.List] = true
			if why == "" {
				why = r.List + ": " + r.Reason
			}
		}
	}
	if len(usable) == 0 {
		if why == "" {
			return nothing
		}
		return judged(dnsbl.Findings(f.DNSBL), "", errors.New("no list gave a usable answer; "+why))
	}
	summary := prose.Count(listed, "listing") + " on " + strings.Join(sortedKeys(usable, nil), ", ")
	if names := sortedKeys(refused, usable); len(names) > 0 {
		summary += "; not usable: " + strings.Join(names, ", ")
	}
	return judged(dnsbl.Findings(f.DNSBL), summary, nil)
}

// sortedKeys returns the keys of m that are not in except, sorted.
func sortedKeys(m, except map[string]bool) []string {
	var out []string
	for k := range m {
		if !except[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// refusedByPolicy reports whether the dialer's address policy refused r's
// address (smtp-target-refused): it was not probed.
func refusedByPolicy(r *probe.Result) bool {
	return r != nil && r.Err != nil && r.Err.Kind == probe.KindForbidden
}

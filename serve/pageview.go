package serve

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
)

// The report page's view of a check.Report: what the templates show, in
// the order a person reads it — the verdict, the route, then every area
// with its findings, then what was not checked.

// reportView is the whole report page.
type reportView struct {
	Domain  string // the A-label name
	Unicode string // the name in Unicode, when it differs
	JSON    string // the API object's URL
	Verdict verdictView
	// Route is the picture (routeSVG) for a wide screen, RouteNarrow the
	// same in one column for a phone; the style sheet shows one.
	Route, RouteNarrow template.HTML
	// Badges: some exchange in the picture has badges, which the caption
	// explains; RouteNote says which are missing, and why.
	Badges    bool
	RouteNote string
	Plan      *route.Plan
	Areas     []areaView
	Skipped   []skipGroup
	Elapsed   int64
}

// verdictView is the first thing on the page: the answer in one line.
type verdictView struct {
	Class  string // ok, info, warning, error
	Title  string
	Detail string
	// Counts, for the line under the title.
	Errors, Warnings, Notes, Passed int
	// TimedOut lists the areas the deadline cut short.
	TimedOut []string
}

// areaView is one area of the audit and its findings.
type areaView struct {
	ID         string // anchor, "area-spf"
	Order      int    // position in check.Checks(), for the live page
	Name       string
	Status     string // pass, info, warning, error, failed
	StatusText string
	Summary    string
	Error      string
	Findings   []findingGroup
	SPF        *spfView // the include tree, in the SPF area
}

// findingGroup is the findings of one ID in an area: one fix for them
// all, so eleven addresses without PTR are one item, not eleven.
type findingGroup struct {
	ID    finding.ID
	Sev   string
	Fix   string
	Refs  []refPart
	Items []finding.Finding
	// More counts the findings past maxGroupItems, left to the JSON.
	More int
}

// maxGroupItems bounds the findings of one ID a page lists: a domain with
// 64 exchanges of 16 addresses each could have a thousand without PTR.
const maxGroupItems = 10

// refPart is a piece of a reference: a link to an RFC section, or the
// text between two.
type refPart struct{ Text, URL string }

// spfView is the SPF include tree with its lookup counts (RFC 7208 §4.6.4).
type spfView struct {
	Tree                *spf.Node
	Lookups, Void       int
	MaxLookups, MaxVoid int
	Over                bool
	Loop, Incomplete    bool
}

// skipGroup is the areas skipped for one reason.
type skipGroup struct {
	Reason string
	Areas  []string
}

// newReportView builds the page's view of r for domain. checkErr is the
// hub's error for the check, ErrDeadline when it ran out of time.
func newReportView(domain dnsname.Name, r *check.Report, checkErr error) *reportView {
	if r.Plan == nil {
		// The planner gives no plan when its context ended or --self
		// left nothing: the route is an error, as the JSON says.
		rc := *r
		msg := "the route could not be computed"
		if r.Details != nil && r.Details.PlanErr != nil {
			msg = r.Details.PlanErr.Error()
		}
		rc.Plan = &route.Plan{Schema: route.SchemaVersion, Domain: domain.String(), Result: route.ResultError, Error: msg}
		r = &rc
	}
	v := &reportView{Domain: domain.String(), JSON: "/api/v1/check/" + domain.String(), Plan: r.Plan, Elapsed: r.ElapsedMS}
	if u := domain.Unicode(); u != domain.String() {
		v.Unicode = u
	}
	v.Route, v.RouteNarrow = routeSVG(r, wide), routeSVG(r, narrow)
	if r.Plan.Result == route.ResultOK {
		for _, h := range hostsOf(r) {
			v.Badges = v.Badges || len(h.Badges) > 0
		}
	}
	order := map[finding.Area]int{}
	for i, c := range check.Checks() {
		order[c.Area] = i
	}
	for _, a := range r.Areas {
		av := newAreaView(a, order[a.Area])
		if a.Area == finding.AreaSPF && r.Details != nil && r.Details.SPF != nil && hasTree(r.Details.SPF.Tree) {
			s := r.Details.SPF
			av.SPF = &spfView{Tree: s.Tree, Lookups: s.Lookups, Void: s.VoidLookups, MaxLookups: spf.MaxLookups,
				MaxVoid: spf.MaxVoidLookups, Over: s.Lookups > spf.MaxLookups, Loop: s.Loop, Incomplete: s.Incomplete}
		}
		v.Areas = append(v.Areas, av)
	}
	v.Skipped = skipGroups(r.Skipped)
	for _, sk := range r.Skipped {
		if sk.Area == finding.AreaSMTP && len(r.Plan.Tiers) > 0 {
			v.RouteNote = "STARTTLS and certificate badges come from the SMTP probe, which was skipped"
			if sk.Reason != "" {
				v.RouteNote += " (" + sk.Reason + ")"
			}
			v.RouteNote += "."
		}
	}
	v.Verdict = verdict(r, checkErr)
	return v
}

// hasTree reports whether an SPF tree has anything to draw: a record, or
// includes.
func hasTree(n *spf.Node) bool { return n != nil && (n.Record != "" || len(n.Children) > 0) }

func newAreaView(a check.AreaResult, order int) areaView {
	av := areaView{ID: areaID(a.Area), Order: order, Name: string(a.Area), Summary: a.Summary, Error: a.Error}
	av.Status, av.StatusText = "pass", "passed"
	switch finding.Worst(a.Findings) {
	case finding.Error:
		av.Status, av.StatusText = "error", "errors"
	case finding.Warning:
		av.Status, av.StatusText = "warning", "warnings"
	case finding.Info:
		av.Status, av.StatusText = "info", "notes"
	}
	if a.Status == check.StatusError {
		av.Status, av.StatusText = "failed", "could not check"
	}
	for _, f := range a.Findings {
		// Sorted worst first, then by ID: one ID's findings are together.
		if n := len(av.Findings); n > 0 && av.Findings[n-1].ID == f.ID {
			av.Findings[n-1].Items = append(av.Findings[n-1].Items, f)
			continue
		}
		av.Findings = append(av.Findings, findingGroup{ID: f.ID, Sev: f.Severity.String(), Fix: f.Fix,
			Refs: refLinks(f.Reference), Items: []finding.Finding{f}})
	}
	for i := range av.Findings {
		// "… and 1 more" would hide what one more line shows.
		if g := &av.Findings[i]; len(g.Items) > maxGroupItems+2 {
			g.Items, g.More = g.Items[:maxGroupItems], len(g.Items)-maxGroupItems
		}
	}
	return av
}

// areaID is the anchor of an area's section: "reverse DNS" → "area-reverse-dns".
func areaID(a finding.Area) string {
	var b strings.Builder
	b.WriteString("area-")
	dash := false
	for _, r := range strings.ToLower(string(a)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

var (
	rfcPart    = regexp.MustCompile(`^RFC (\d{1,5})(.*)$`)
	rfcSection = regexp.MustCompile(`§([0-9]+(?:\.[0-9]+)*)`)
)

// refLinks turns a finding's reference ("RFC 5321 §4.1.1.1, §3.2; RFC
// 8314") into links to the RFC Editor's pages, one per section.
func refLinks(ref string) []refPart {
	var out []refPart
	for i, part := range strings.Split(ref, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if i > 0 && len(out) > 0 {
			out = append(out, refPart{Text: "; "})
		}
		m := rfcPart.FindStringSubmatch(part)
		if m == nil {
			out = append(out, refPart{Text: part})
			continue
		}
		base := "https://www.rfc-editor.org/rfc/rfc" + m[1]
		secs := rfcSection.FindAllStringSubmatch(m[2], -1)
		if len(secs) == 0 {
			out = append(out, refPart{Text: part, URL: base})
			continue
		}
		for k, s := range secs {
			text := "§" + s[1]
			if k == 0 {
				text = "RFC " + m[1] + " " + text
			} else {
				out = append(out, refPart{Text: ", "})
			}
			out = append(out, refPart{Text: text, URL: base + "#section-" + s[1]})
		}
	}
	return out
}

// skipGroups groups the skipped areas by reason, keeping the first
// reason's place.
func skipGroups(skipped []check.Skip) []skipGroup {
	var out []skipGroup
	for _, s := range skipped {
		i := len(out)
		for k := range out {
			if out[k].Reason == s.Reason {
				i = k
			}
		}
		if i == len(out) {
			out = append(out, skipGroup{Reason: s.Reason})
		}
		out[i].Areas = append(out[i].Areas, string(s.Area))
	}
	return out
}

// verdict is the answer first: whether mail can reach the domain, and
// what needs fixing.
func verdict(r *check.Report, checkErr error) verdictView {
	p := r.Plan
	v := verdictView{}
	for _, f := range r.Findings {
		switch f.Severity {
		case finding.Error:
			v.Errors++
		case finding.Warning:
			v.Warnings++
		default:
			v.Notes++
		}
	}
	var failed []string
	for _, a := range r.Areas {
		switch {
		case a.Status == check.StatusError:
			failed = append(failed, string(a.Area))
		case finding.Worst(a.Findings) <= finding.Info:
			v.Passed++
		}
	}
	for _, err := range r.Errors() {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, resolve.ErrTimeout) {
			if ae, ok := errors.AsType[*check.AreaError](err); ok {
				v.TimedOut = append(v.TimedOut, string(ae.Area))
			}
		}
	}
	if (errors.Is(checkErr, ErrDeadline) || errors.Is(checkErr, context.DeadlineExceeded)) && len(v.TimedOut) == 0 {
		v.TimedOut = failed
	}

	d := p.Domain
	switch p.Result {
	case route.ResultNXDomain:
		v.Class, v.Title, v.Detail = "error", d+" does not exist", "The name has no DNS records at all (NXDOMAIN): mail to it bounces."
		return v
	case route.ResultNullMX:
		v.Class, v.Title, v.Detail = "info", d+" accepts no mail", "It publishes a Null MX (RFC 7505): senders return mail to it at once."
		if v.Errors+v.Warnings > 0 {
			v.Detail += " " + problems(v) + " below."
		}
		return v
	case route.ResultNoMail:
		v.Class, v.Title, v.Detail = "error", "Mail to "+d+" bounces", "It has neither MX nor address records, so senders have nowhere to deliver."
		return v
	}
	if p.Result == route.ResultError || len(p.Tiers) == 0 || len(p.Tiers[0].Hosts) == 0 {
		v.Class, v.Title, v.Detail = "error", "The route of "+d+" could not be computed", p.Error+". Senders would queue the mail and retry."
		if len(v.TimedOut) > 0 {
			v.Title = "The check ran out of time"
		}
		return v
	}
	// Where mail goes: the first tier with an exchange that can take it
	// (as the picture judges them).
	hosts := hostsOf(r)
	first := -1
	for i, t := range p.Tiers {
		if slices.ContainsFunc(t.Hosts, func(h route.Host) bool { return hosts[h.Name].Usable }) {
			first = i
			break
		}
	}
	if first < 0 {
		v.Class, v.Title = "error", "No exchange of "+d+" can take mail"
		v.Detail = "Senders retry for days, then bounce every message; the findings below say why."
		return v
	}
	t := p.Tiers[first]
	where := "Mail for " + d + " goes to " + t.Hosts[0].Name
	if n := len(t.Hosts); n > 1 {
		where = fmt.Sprintf("Mail for %s is spread over %d exchanges at preference %d", d, n, t.Preference)
	}
	if p.Implicit {
		where = d + " has no MX records: mail goes to its own address"
	}
	if first > 0 {
		where += fmt.Sprintf(", since nothing at preference %d can take it", p.Tiers[0].Preference)
	}
	if n := len(p.Tiers) - first - 1; n > 0 {
		where += fmt.Sprintf(", with %s behind", prose.Count(n, "backup tier"))
	}
	v.Detail = where + "."
	switch {
	case len(failed) > 0:
		v.Class = "warning"
		v.Title = prose.Count(len(failed), "area") + " could not be checked"
		if len(v.TimedOut) > 0 {
			v.Title = "The check ran out of time"
		}
		if v.Errors+v.Warnings > 0 {
			v.Title += "; " + problems(v) + " found"
		}
	case v.Errors > 0:
		v.Class, v.Title = "error", problems(v)+" to fix"
	case v.Warnings > 0:
		v.Class, v.Title = "warning", "Mail gets through, with "+problems(v)
	default:
		v.Class, v.Title = "ok", "Mail for "+d+" is set up right"
	}
	return v
}

// problems says "2 errors and 1 warning".
func problems(v verdictView) string {
	var parts []string
	if v.Errors > 0 {
		parts = append(parts, prose.Count(v.Errors, "error"))
	}
	if v.Warnings > 0 {
		parts = append(parts, prose.Count(v.Warnings, "warning"))
	}
	return prose.List(parts)
}

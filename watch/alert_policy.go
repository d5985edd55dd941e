package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/store"
)

// DefaultRemind is the reminder period when AlertPolicy.Remind is zero.
const DefaultRemind = 24 * time.Hour

// alertWindow is how many of a domain's newest alerts the policy reads to
// find whether an error is open and when it was last alerted. An open
// error is alerted at least once per reminder period, so the marker is
// among them unless a domain queued this many change alerts since.
const alertWindow = 256

// AlertPolicy decides the alerts of each new result (docs/watch.md#alerts).
// Its Alerts method is a Runner's Policy; Decide is the rules alone, a
// pure function.
type AlertPolicy struct {
	// Store gives the domain's recent alerts: whether an error is open,
	// since when, and when it was last alerted.
	Store store.Store
	// Remind is the period after which an error that lasts is alerted
	// again (zero: DefaultRemind; negative: never).
	Remind time.Duration
	// BaseURL is a mxtrace serve site ("https://mxtrace.example.org");
	// when set, each alert links to the domain's page on it.
	BaseURL string
}

// Check is one check as the alert rules see it.
type Check struct {
	At     time.Time
	Status string
	// Temporary: the domain could not be checked.
	Temporary bool
	// Errors are the check's findings at error severity, one change each
	// (kind "finding-open"); for a temporary check, what could not be
	// checked (kind "could-not-check").
	Errors []NoticeChange
}

// Incident is what the alerts already queued say of a domain: an error is
// open since Since, last alerted at Last; or none is (Open false).
type Incident struct {
	Open        bool
	Since, Last time.Time
}

// PolicyInput is what Decide reads.
type PolicyInput struct {
	Domain string
	// Prev is the domain's check before Cur; nil for its first.
	Prev *Check
	Cur  Check
	// Changes are what Diff found between the last check that was not
	// temporary and Cur (none when Cur is temporary).
	Changes  []Change
	Incident Incident
	// Remind is the reminder period; zero or negative: no reminders.
	Remind time.Duration
}

// Decide is the alert rules: what to tell about one new check. Each notice
// is queued once per alert target.
//
//  1. Every change is one notice (kind change), whatever its severity.
//  2. A domain that could not be checked (Temporary) is told only when the
//     check after confirms it: two temporary checks in a row make one
//     confirmed-failure notice, and its error stays open until a check
//     completes. One failed check alone, a DNS hiccup, says nothing.
//  3. A check with findings at error severity keeps an error open. When
//     none was open, the error changes of rule 1 open it; a check that
//     has errors without such a change (the first check of a domain, or
//     errors the last complete check already had) opens it with one
//     notice (kind change) listing them.
//  4. While an error is open and nothing new was said of it, a reminder
//     repeats the open errors once Remind has passed since its last
//     notice.
//  5. The first complete check without errors after an open error is a
//     recovery notice.
//
// A notice that belongs to an open error carries Since, the time it began;
// a recovery closes it. IncidentOf reads that back from the queued alerts,
// so the rules need no state beyond the store's.
func Decide(in PolicyInput) []Notice {
	cur, inc := in.Cur, in.Incident
	failing := !cur.Temporary && len(cur.Errors) > 0
	since := cur.At
	if inc.Open {
		since = inc.Since
	}
	notice := func(kind AlertKind, changes []NoticeChange) Notice {
		if changes == nil {
			changes = []NoticeChange{} // "changes":[] for receivers, never null
		}
		return Notice{Schema: NoticeSchema, Kind: kind, Domain: in.Domain, At: cur.At, Status: cur.Status, Changes: changes}
	}
	var out []Notice
	told := false // something was said of the open error
	for _, c := range in.Changes {
		n := notice(AlertChange, []NoticeChange{noticeChange(c)})
		if failing && c.Severity >= finding.Error {
			n.Since, told = since, true
		}
		out = append(out, n)
	}
	due := inc.Open && in.Remind > 0 && cur.At.Sub(inc.Last) >= in.Remind
	switch {
	case cur.Temporary:
		switch {
		case !inc.Open && in.Prev != nil && in.Prev.Temporary:
			n := notice(AlertConfirmedFailure, cur.Errors)
			n.Since = in.Prev.At
			out = append(out, n)
		case due:
			n := notice(AlertReminder, cur.Errors)
			n.Since = inc.Since
			out = append(out, n)
		}
	case failing:
		switch {
		case !inc.Open && !told:
			n := notice(AlertChange, cur.Errors)
			n.Since = since
			out = append(out, n)
		case inc.Open && !told && due:
			n := notice(AlertReminder, cur.Errors)
			n.Since = inc.Since
			out = append(out, n)
		}
	case inc.Open:
		var resolved []NoticeChange
		if in.Prev != nil && !in.Prev.Temporary {
			resolved = in.Prev.Errors
		}
		n := notice(AlertRecovery, resolved)
		n.Since = inc.Since
		out = append(out, n)
	}
	return out
}

// IncidentOf reads the open error from a domain's alerts, newest first:
// the newest alert that belongs to an error (its body has a Since) tells,
// unless it is a recovery.
func IncidentOf(alerts []store.Alert) Incident {
	for _, a := range alerts {
		var n Notice
		if json.Unmarshal(a.Body, &n) != nil || n.Since.IsZero() {
			continue
		}
		if n.Kind == AlertRecovery {
			return Incident{}
		}
		return Incident{Open: true, Since: n.Since, Last: n.At}
	}
	return Incident{}
}

// noticeChange is c as an alert carries it; a new error finding gets the
// catalogue's fix.
func noticeChange(c Change) NoticeChange {
	nc := NoticeChange{Kind: string(c.Kind), Subject: c.Subject, Severity: c.Severity.String(), Message: c.Message, Old: c.Old, New: c.New}
	if c.Kind == KindFindingNew {
		if e, ok := finding.Lookup(finding.ID(c.New)); ok {
			nc.Fix = e.Fix
		}
	}
	return nc
}

// CheckOf is a stored result as the rules see it: its error findings, or
// for a temporary result what could not be checked.
func CheckOf(r *store.Result) (*Check, error) {
	if r == nil {
		return nil, nil
	}
	c := &Check{At: r.At, Status: r.Status, Temporary: r.Temporary}
	s, err := ParseSnapshot(r.Facts)
	if err != nil {
		return nil, fmt.Errorf("watch: result %d of %s: %w", r.ID, r.Domain, err)
	}
	if r.Temporary {
		areas := make([]string, len(s.Incomplete))
		for i, a := range s.Incomplete {
			areas[i] = string(a)
		}
		msg := "Could not be checked"
		if len(areas) > 0 {
			msg += ": " + strings.Join(areas, ", ") + " could not be judged"
		}
		if s.Error != "" {
			msg += " (" + s.Error + ")"
		}
		c.Errors = []NoticeChange{{Kind: "could-not-check", Subject: r.Domain, Severity: finding.Error.String(), Message: msg + "."}}
		return c, nil
	}
	for _, f := range s.Findings {
		if f.Severity < finding.Error {
			continue
		}
		nc := NoticeChange{Kind: "finding-open", Subject: f.Subject, Severity: f.Severity.String(), New: string(f.ID),
			Message: fmt.Sprintf("Error %s about %s.", f.ID, f.Subject)}
		if e, ok := finding.Lookup(f.ID); ok {
			nc.Message = fmt.Sprintf("Error %s about %s: %s.", f.ID, f.Subject, strings.TrimSuffix(e.Title, "."))
			nc.Fix = e.Fix
		}
		if !slices.ContainsFunc(c.Errors, func(o NoticeChange) bool { return o.New == nc.New && o.Subject == nc.Subject }) {
			c.Errors = append(c.Errors, nc)
		}
	}
	return c, nil
}

// Alerts is the Runner's Policy: Decide over the previous and the new
// result and the domain's queued alerts, each notice to every target of
// the watch (a log line when it has none).
func (p *AlertPolicy) Alerts(ctx context.Context, w store.Watch, prev, cur *store.Result, changes []Change) ([]store.Alert, error) {
	pc, err := CheckOf(prev)
	if err != nil {
		return nil, err
	}
	cc, err := CheckOf(cur)
	if err != nil {
		return nil, err
	}
	in := PolicyInput{Domain: w.Domain, Prev: pc, Cur: *cc, Changes: changes, Remind: p.Remind}
	if in.Remind == 0 {
		in.Remind = DefaultRemind
	}
	recent, err := p.Store.Alerts(ctx, w.Domain, time.Time{}, alertWindow)
	if err != nil {
		return nil, fmt.Errorf("watch: alerts of %s: %w", w.Domain, err)
	}
	in.Incident = IncidentOf(recent)
	targets := w.Alerts
	if len(targets) == 0 {
		targets = []string{string(TargetLog)}
	}
	var out []store.Alert
	for _, n := range Decide(in) {
		if p.BaseURL != "" {
			n.Link = strings.TrimSuffix(p.BaseURL, "/") + "/d/" + url.PathEscape(w.Domain)
		}
		body, err := json.Marshal(&n)
		if err != nil {
			return nil, fmt.Errorf("watch: alert of %s: %w", w.Domain, err)
		}
		for _, t := range targets {
			out = append(out, store.Alert{Domain: w.Domain, Target: t, Kind: string(n.Kind), Body: body})
		}
	}
	return out, nil
}

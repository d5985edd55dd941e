package serve

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// The watch pages: a timeline section on a report page when the domain has
// history (events on a time axis drawn on the server, the same events as
// a list of text, and how many days each exchange's certificate has
// left), and /watches, the watched domains with a form to add or remove
// one. Both are bounded in size whatever the store holds.

// Bounds of what a page shows; the rest is counted and linked (the JSON).
const (
	pageEvents  = 20  // events listed
	pageChanges = 3   // changes listed per event
	axisMarks   = 120 // events drawn on the axis
	// pageResults bounds the stored results a report page reads (light,
	// without their reports), as a report page is for anyone to ask.
	pageResults     = 200
	pageCertificate = 16 // certificates counted down
	// certSoon is when a certificate's end is near: the days within which
	// watch reports it expiring.
	certSoon = 14
)

// timelineView is the history section of a report page.
type timelineView struct {
	Domain, JSON string
	Checks       int
	Cut          bool   // older results were not read
	Last         string // as people read it
	LastISO      string // RFC 3339, for <time>
	LastStatus   string
	Axis         template.HTML
	Events       []eventView
	MoreEvents   int
	Certs        []certView
	MoreCerts    int
	// CertSource says where the certificates were seen.
	CertSource string
}

// eventView is one event of the list.
type eventView struct {
	Time, When  string // RFC 3339 (for <time>), and as people read it
	Status      string
	Class       string // ok, warning, error, info: its worst change or status
	What        string
	Changes     []watch.ChangeJSON
	MoreChanges int
}

// certView is one certificate's countdown.
type certView struct {
	Host, Addresses, NotAfter, Text, Class string
	Days                                   int
}

// timeline reads domain's history for its report page: nil when the
// server has no store or the domain nothing stored. A store that fails is
// logged and the page goes without.
func (s *Server) timeline(ctx context.Context, domain string) *timelineView {
	if s.cfg.Store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	h, err := s.readHistory(ctx, domain, time.Time{}, pageResults, pageResults)
	if err != nil {
		s.log.Error("serve: reading history", "domain", domain, "error", err)
		return nil
	}
	if h.Checks == 0 {
		return nil
	}
	v := &timelineView{Domain: domain, JSON: "/api/v1/history/" + domain, Checks: h.Checks, Cut: h.cut,
		Last: timeText(h.latest.At), LastISO: h.latest.At.UTC().Format(time.RFC3339), LastStatus: h.latest.Status}
	oldest := h.latest.At
	if n := len(h.Events); n > 0 {
		oldest = h.Events[n-1].At
	}
	v.Axis = axisSVG(domain, h.Events, oldest, h.latest.At)
	for i, e := range h.Events {
		if i == pageEvents {
			v.MoreEvents = len(h.Events) - i
			break
		}
		ev := eventView{Time: e.At.Format(time.RFC3339), When: timeText(e.At), Status: e.Status, Class: eventClass(e), What: eventWhat(e)}
		ev.Changes = e.Changes[:min(len(e.Changes), pageChanges)]
		ev.MoreChanges = len(e.Changes) - len(ev.Changes)
		v.Events = append(v.Events, ev)
	}
	// The certificates of the newest result that could be checked.
	if h.good != nil {
		v.certsFrom(h.good.Facts, "the stored check of "+timeText(h.good.At))
	}
	return v
}

// certsFrom sets the countdown from a stored result's facts.
func (v *timelineView) certsFrom(facts []byte, source string) {
	snap, err := watch.ParseSnapshot(facts)
	if err != nil {
		return
	}
	v.setCerts(snap.SMTP, time.Now(), source)
}

// withReport is v with the countdown from the check just done, when it
// probed a certificate: fresher than the stored one.
func (v *timelineView) withReport(rep *check.Report) *timelineView {
	if v == nil || rep == nil {
		return v
	}
	snap := watch.SnapshotOf(rep)
	if snap == nil || !slices.ContainsFunc(snap.SMTP, func(x watch.SMTP) bool { return x.Cert != nil }) {
		return v
	}
	c := *v
	c.setCerts(snap.SMTP, time.Now(), "the check above")
	return &c
}

// setCerts counts down each certificate of smtp: one line per exchange
// and certificate, with the addresses that presented it.
func (v *timelineView) setCerts(smtp []watch.SMTP, now time.Time, source string) {
	type key struct{ host, fp string }
	var order []key
	seen := map[key]*certView{}
	addrs := map[key][]string{}
	for _, x := range smtp {
		if x.Cert == nil {
			continue
		}
		k := key{x.Host, x.Cert.Fingerprint}
		if _, ok := seen[k]; !ok {
			seen[k] = newCertView(x.Host, x.Cert.NotAfter, now)
			order = append(order, k)
		}
		addrs[k] = append(addrs[k], x.Address)
	}
	if len(order) == 0 {
		return
	}
	v.Certs, v.MoreCerts, v.CertSource = nil, 0, source
	for i, k := range order {
		if i == pageCertificate {
			v.MoreCerts = len(order) - i
			break
		}
		c := seen[k]
		c.Addresses = prose.List(addrs[k])
		v.Certs = append(v.Certs, *c)
	}
	// The nearest end first.
	slices.SortStableFunc(v.Certs, func(a, b certView) int { return cmp.Compare(a.Days, b.Days) })
}

// newCertView says how long a certificate ending at notAfter has left at
// now, in whole days.
func newCertView(host string, notAfter, now time.Time) *certView {
	left := notAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	c := &certView{Host: host, NotAfter: notAfter.UTC().Format(time.DateOnly), Days: days, Class: "ok"}
	switch {
	case left < 0:
		c.Class = "error"
		c.Text = "expired " + agoText(-days)
	case days < 1:
		c.Class = "error"
		c.Text = "expires within a day"
	case days <= certSoon:
		c.Class = "warning"
		c.Text = prose.Count(days, "day") + " left"
	default:
		c.Text = prose.Count(days, "day") + " left"
	}
	return c
}

// agoText is a number of whole days in the past.
func agoText(days int) string {
	if days == 0 {
		return "today"
	}
	return prose.Count(days, "day") + " ago"
}

// eventClass is the colour class of an event: its worst change, or its
// status.
func eventClass(e watch.EventJSON) string {
	var worst finding.Severity // 0: no change
	for _, c := range e.Changes {
		if s, err := finding.ParseSeverity(c.Severity); err == nil {
			worst = max(worst, s)
		}
	}
	switch {
	case worst == finding.Error || (worst == 0 && e.Status == store.StatusError):
		return "error"
	case worst == finding.Warning || (worst == 0 && e.Status == store.StatusProblems):
		return "warning"
	case worst == finding.Info:
		return "info"
	}
	return "ok"
}

// eventWhat says what an event is, as mxtrace history does.
func eventWhat(e watch.EventJSON) string {
	switch {
	case e.Temporary:
		return "could not be checked"
	case e.First && len(e.Changes) == 0:
		return "first check"
	case len(e.Changes) == 0:
		return "status changed"
	}
	return prose.Count(len(e.Changes), "change")
}

// Geometry of the axis picture, in viewBox units.
const (
	axisW    = 680
	axisH    = 64
	axisPad  = 16
	axisY    = 30
	axisMark = 6
)

// axisSVG draws events (newest first) on a time axis from oldest to
// newest: one mark per event, coloured by its class, its time and what it
// was as its tooltip, the two ends labelled. The list under it says the
// same in text, so the picture is a summary (role img with a label).
func axisSVG(domain string, events []watch.EventJSON, oldest, newest time.Time) template.HTML {
	span := newest.Sub(oldest)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return axisW - axisPad
		}
		return axisPad + float64(t.Sub(oldest))/float64(span)*(axisW-2*axisPad)
	}
	label := fmt.Sprintf("%s from %s to %s on a time axis", prose.Count(len(events), "event"), timeText(oldest), timeText(newest))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="axis" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`+"\n", axisW, axisH, esc(label))
	fmt.Fprintf(&b, "<title>Timeline of %s</title>\n", esc(domain))
	fmt.Fprintf(&b, `<line class="ax-line" x1="%d" y1="%d" x2="%d" y2="%d"/>`+"\n", axisPad, axisY, axisW-axisPad, axisY)
	// Oldest drawn first, so the newest lies on top where marks meet.
	drawn := events[:min(len(events), axisMarks)]
	for _, e := range slices.Backward(drawn) {
		fmt.Fprintf(&b, `<circle class="ax-%s" cx="%.1f" cy="%d" r="%d"><title>%s: %s, %s</title></circle>`+"\n",
			eventClass(e), x(e.At), axisY, axisMark, timeText(e.At), esc(e.Status), esc(eventWhat(e)))
	}
	fmt.Fprintf(&b, `<text class="ax-text" x="%d" y="%d">%s</text>`+"\n", axisPad, axisH-6, esc(timeText(oldest)))
	fmt.Fprintf(&b, `<text class="ax-text ax-end" x="%d" y="%d">%s</text>`+"\n", axisW-axisPad, axisH-6, esc(timeText(newest)))
	b.WriteString("</svg>")
	return template.HTML(b.String())
}

// timeText is a stored time as the pages and the commands print it: UTC,
// to the second.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// watchesPage is /watches.
type watchesPage struct {
	pageData
	List []watchRow
	// Admin: the server takes changes (it has an admin token).
	Admin bool
	// Done says what the last form did, after its redirect.
	Done string
	// Default period for the form.
	Every string
}

// alertTargets says a watch's alert targets for the list.
func alertTargets(n int) string {
	if n == 0 {
		return "a log line"
	}
	return prose.Count(n, "target")
}

// watchRow is one watched domain in the list.
type watchRow struct {
	Domain, URL, Every, Last, LastStatus, Next, Class string
	// Alerts counts the alert targets without naming them (a webhook
	// address or a mailbox is not for strangers); a watch with none alerts
	// by a log line, as watch list says.
	Alerts string
}

// pageWatches lists the watched domains with their last status and next
// check.
func (s *Server) pageWatches(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.watches(w, r)
	if !ok {
		return
	}
	now := time.Now()
	p := watchesPage{
		pageData: s.nav(pageData{Title: "Watched domains · mxtrace", SkipTo: "the list", HeaderSearch: true}),
		Admin:    s.cfg.AdminToken != "", Every: watch.ShortEvery(defaultEvery),
	}
	for _, x := range ws {
		row := watchRow{Domain: x.Domain, URL: "/d/" + url.PathEscape(x.Domain), Every: watch.ShortEvery(x.Every), Alerts: alertTargets(len(x.Alerts)),
			Last: "never", LastStatus: "not checked yet", Next: "now", Class: "info"}
		if !x.LastRun.IsZero() {
			row.Last, row.LastStatus = timeText(x.LastRun), x.LastStatus
			row.Class = map[string]string{store.StatusOK: "ok", store.StatusProblems: "warning", store.StatusError: "error"}[x.LastStatus]
		}
		switch {
		case x.Worker != "" && x.LeaseUntil.After(now):
			row.Next = "checking now"
		case x.NextRun.After(now):
			row.Next = timeText(x.NextRun)
		}
		p.List = append(p.List, row)
	}
	// What the form just did, said only when the list agrees.
	q := r.URL.Query()
	watched := func(d string) bool {
		return slices.ContainsFunc(ws, func(x store.WatchStatus) bool { return x.Domain == d })
	}
	if d := domainOf(q.Get("added")); d != "" && watched(d) {
		p.Done = "Now watching " + d + "."
	} else if d := domainOf(q.Get("removed")); d != "" && !watched(d) {
		p.Done = "Stopped watching " + d + "; its history stays."
	}
	s.render(w, http.StatusOK, p, "watches")
}

// formAddWatch is the add form of /watches: the admin token is its
// credential (a field, never a cookie, so another site cannot make a
// browser send it), answered 303 See Other back to the list (RFC 9110
// §15.4.4).
func (s *Server) formAddWatch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return
	}
	if !s.form(w, r) || !s.admin(w, r, r.PostFormValue("token")) {
		return
	}
	req := watchRequest{Domain: r.PostFormValue("domain"), Every: r.PostFormValue("every"), Alerts: strings.Fields(r.PostFormValue("alerts"))}
	ws, _, err := s.addWatch(r.Context(), req)
	if err != nil {
		s.watchFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/watches?added="+url.QueryEscape(ws.Domain), http.StatusSeeOther)
}

// formRemoveWatch is the remove form of /watches.
func (s *Server) formRemoveWatch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return
	}
	if !s.form(w, r) || !s.admin(w, r, r.PostFormValue("token")) {
		return
	}
	if err := s.removeWatch(r.Context(), r.PostFormValue("domain")); err != nil {
		s.watchFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/watches?removed="+url.QueryEscape(domainOf(r.PostFormValue("domain"))), http.StatusSeeOther)
}

// form parses a form's body (capped by the route's policy), or answers
// 400.
func (s *Server) form(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error(), 0)
		return false
	}
	return true
}

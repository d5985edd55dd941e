package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/store"
)

var policyT0 = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func hours(h int) time.Time { return policyT0.Add(time.Duration(h) * time.Hour) }

var (
	errMX   = NoticeChange{Kind: "finding-open", Subject: "example.org", Severity: "error", New: "mx-target-nxdomain", Message: "Error mx-target-nxdomain"}
	noCheck = NoticeChange{Kind: "could-not-check", Subject: "example.org", Severity: "error", Message: "Could not be checked."}
)

func okAt(h int) *Check { return &Check{At: hours(h), Status: store.StatusOK} }
func failAt(h int) *Check {
	return &Check{At: hours(h), Status: store.StatusProblems, Errors: []NoticeChange{errMX}}
}
func tempAt(h int) *Check {
	return &Check{At: hours(h), Status: store.StatusError, Temporary: true, Errors: []NoticeChange{noCheck}}
}

// said is a notice in short: kind, since (hour, or - for none), the
// kinds of its changes.
func said(ns []Notice) []string {
	var out []string
	for _, n := range ns {
		s := string(n.Kind) + " since "
		if n.Since.IsZero() {
			s += "-"
		} else {
			s += fmt.Sprint(int(n.Since.Sub(policyT0).Hours()))
		}
		var kinds []string
		for _, c := range n.Changes {
			kinds = append(kinds, c.Kind)
		}
		out = append(out, s+" ["+strings.Join(kinds, " ")+"]")
	}
	return out
}

func TestDecide(t *testing.T) {
	mxAdded := Change{Kind: KindExchangeAdded, Subject: "mx2.example.org", Severity: finding.Info, Message: "added"}
	ttl := Change{Kind: KindTTLChanged, Subject: "mx1.example.org", Severity: finding.Info, Message: "ttl"}
	newErr := Change{Kind: KindFindingNew, Subject: "example.org", Severity: finding.Error, New: "mx-target-nxdomain", Message: "new error"}
	open := func(since, last int) Incident { return Incident{Open: true, Since: hours(since), Last: hours(last)} }
	const remind = 24 * time.Hour
	cases := []struct {
		name    string
		prev    *Check
		cur     *Check
		changes []Change
		inc     Incident
		want    []string
	}{
		// Rule 1: one notice per change.
		{"no change, ok", okAt(0), okAt(1), nil, Incident{}, nil},
		{"two changes, two notices", okAt(0), okAt(1), []Change{mxAdded, ttl}, Incident{},
			[]string{"change since - [exchange-added]", "change since - [ttl-changed]"}},
		// Rule 2: a temporary failure alone says nothing; confirmed by
		// the next check, once.
		{"one temporary failure", okAt(0), tempAt(1), nil, Incident{}, nil},
		{"first check temporary", nil, tempAt(0), nil, Incident{}, nil},
		{"two in a row", tempAt(1), tempAt(2), nil, Incident{},
			[]string{"confirmed-failure since 1 [could-not-check]"}},
		{"three in a row: already confirmed", tempAt(2), tempAt(3), nil, open(1, 2), nil},
		{"still failing after the period: reminder", tempAt(25), tempAt(26), nil, open(1, 2),
			[]string{"reminder since 1 [could-not-check]"}},
		{"hiccup, then fine: no recovery", tempAt(1), okAt(2), nil, Incident{}, nil},
		{"confirmed failure, then fine: recovery", tempAt(2), okAt(3), nil, open(1, 2),
			[]string{"recovery since 1 []"}},
		// Rule 3: an error opens with its change, or with the errors.
		{"new error finding opens", okAt(0), failAt(1), []Change{newErr}, Incident{},
			[]string{"change since 1 [finding-new]"}},
		{"errors at the first check", nil, failAt(0), nil, Incident{},
			[]string{"change since 0 [finding-open]"}},
		{"errors after a confirmed failure", tempAt(2), failAt(3), nil, open(1, 2), nil},
		{"info change while an error is open", failAt(1), failAt(2), []Change{mxAdded}, open(1, 1),
			[]string{"change since - [exchange-added]"}},
		{"another error while one is open", failAt(1), failAt(2), []Change{newErr}, open(1, 1),
			[]string{"change since 1 [finding-new]"}},
		// Rule 4: reminders.
		{"error lasts, not yet due", failAt(10), failAt(11), nil, open(1, 1), nil},
		{"error lasts, due", failAt(24), failAt(25), nil, open(1, 1),
			[]string{"reminder since 1 [finding-open]"}},
		{"due, but a new error was just told", failAt(24), failAt(25), []Change{newErr}, open(1, 1),
			[]string{"change since 1 [finding-new]"}},
		{"after a reminder, the next one a period later", failAt(25), failAt(26), nil, open(1, 25), nil},
		{"a temporary check while an error is open", failAt(1), tempAt(2), nil, open(1, 1), nil},
		// Rule 5: recovery.
		{"error ends", failAt(5), okAt(6), []Change{{Kind: KindFindingResolved, Severity: finding.Info, Old: "mx-target-nxdomain"}}, open(1, 1),
			[]string{"change since - [finding-resolved]", "recovery since 1 [finding-open]"}},
		{"ok and nothing open", okAt(5), okAt(6), nil, Incident{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := said(Decide(PolicyInput{Domain: "example.org", Prev: c.prev, Cur: *c.cur, Changes: c.changes, Incident: c.inc, Remind: remind}))
			if !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestDecideNoReminders(t *testing.T) {
	in := PolicyInput{Domain: "example.org", Prev: failAt(100), Cur: *failAt(101), Incident: Incident{Open: true, Since: hours(1), Last: hours(1)}}
	if got := Decide(in); len(got) != 0 {
		t.Errorf("Remind 0 gave %q", said(got))
	}
}

// TestIncidentOf reads the incident back from alerts as Decide queued
// them: a storm of checks, every rule's output fed to the next check.
func TestIncidentOf(t *testing.T) {
	var queued []store.Alert // newest first
	queue := func(ns []Notice) {
		for _, n := range ns {
			b, _ := json.Marshal(&n)
			queued = append([]store.Alert{{Kind: string(n.Kind), Body: b}}, queued...)
		}
	}
	checks := []*Check{okAt(0), tempAt(1), tempAt(2), tempAt(3), failAt(4), failAt(27), failAt(28), okAt(29), tempAt(30), okAt(31)}
	var prev *Check
	var all []string
	for _, c := range checks {
		ns := Decide(PolicyInput{Domain: "example.org", Prev: prev, Cur: *c, Incident: IncidentOf(queued), Remind: 24 * time.Hour})
		queue(ns)
		all = append(all, said(ns)...)
		prev = c
	}
	want := []string{"confirmed-failure since 1 [could-not-check]", "reminder since 1 [finding-open]", "recovery since 1 [finding-open]"}
	if !slices.Equal(all, want) {
		t.Errorf("got  %q\nwant %q", all, want)
	}
	if inc := IncidentOf(queued); inc.Open {
		t.Errorf("after the recovery: %+v", inc)
	}
	if inc := IncidentOf([]store.Alert{{Body: []byte("garbage")}}); inc.Open {
		t.Errorf("garbage: %+v", inc)
	}
}

// memAlerts is the part of store.Store the policy reads.
type memAlerts struct {
	store.Store
	alerts []store.Alert
}

func (m *memAlerts) Alerts(_ context.Context, domain string, _ time.Time, limit int) ([]store.Alert, error) {
	var out []store.Alert
	for _, a := range m.alerts {
		if a.Domain == domain && len(out) < limit {
			out = append(out, a)
		}
	}
	return out, nil
}

func TestAlertPolicyAlerts(t *testing.T) {
	facts := func(s *Snapshot) []byte {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := &Snapshot{Version: SnapshotVersion, Domain: "example.org"}
	bad := &Snapshot{Version: SnapshotVersion, Domain: "example.org", Findings: []Finding{
		{Area: finding.AreaRouting, ID: finding.MXTargetNXDomain, Severity: finding.Error, Subject: "mx1.example.org"},
		{Area: finding.AreaRouting, ID: finding.MXNoIPv6, Severity: finding.Warning, Subject: "mx1.example.org"},
	}}
	p := &AlertPolicy{Store: &memAlerts{}, BaseURL: "https://mxtrace.example.org/"}
	w := store.Watch{Domain: "example.org", Alerts: []string{"https://hooks.example.org/a", "mailto:ops@example.org"}}
	prev := &store.Result{ID: 1, Domain: "example.org", At: hours(0), Status: store.StatusOK, Facts: facts(good)}
	cur := &store.Result{ID: 2, Domain: "example.org", At: hours(1), Status: store.StatusProblems, Facts: facts(bad)}
	changes := []Change{{Kind: KindFindingNew, Subject: "mx1.example.org", Severity: finding.Error, New: string(finding.MXTargetNXDomain), Message: "New error"}}
	alerts, err := p.Alerts(t.Context(), w, prev, cur, changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 2 || alerts[0].Target != w.Alerts[0] || alerts[1].Target != w.Alerts[1] {
		t.Fatalf("alerts %+v: want one per target", alerts)
	}
	var n Notice
	if err := json.Unmarshal(alerts[0].Body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Kind != AlertChange || alerts[0].Kind != store.AlertChange || n.Link != "https://mxtrace.example.org/d/example.org" ||
		!n.Since.Equal(hours(1)) || len(n.Changes) != 1 || n.Changes[0].Fix == "" {
		t.Errorf("notice %+v", n)
	}

	// No target: a log line. The errors of a first check, with the
	// catalogue's fix, and not the warning.
	w.Alerts = nil
	alerts, err = p.Alerts(t.Context(), w, nil, cur, nil)
	if err != nil || len(alerts) != 1 || alerts[0].Target != "log" {
		t.Fatalf("alerts %+v, %v", alerts, err)
	}
	json.Unmarshal(alerts[0].Body, &n)
	if len(n.Changes) != 1 || n.Changes[0].New != string(finding.MXTargetNXDomain) || n.Changes[0].Fix == "" {
		t.Errorf("first check's errors: %+v", n.Changes)
	}

	// Broken facts are an error, not a silent nothing.
	if _, err := p.Alerts(t.Context(), w, &store.Result{Facts: []byte("{")}, cur, nil); err == nil {
		t.Error("broken facts: no error")
	}
}

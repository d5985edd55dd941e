package watch_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// routePlan is an ok plan of domain with one tier of exchanges, each with
// one address.
func routePlan(domain string, exchanges ...string) *route.Plan {
	p := &route.Plan{Schema: route.SchemaVersion, Domain: domain, Result: route.ResultOK, Findings: []finding.Finding{}}
	t := route.Tier{Preference: 10}
	for _, x := range exchanges {
		p.Records = append(p.Records, route.Record{Exchange: x, Preference: 10, TTL: 3600})
		t.Hosts = append(t.Hosts, route.Host{Name: x, Addresses: []string{"192.0.2.1"}})
	}
	p.Tiers = []route.Tier{t}
	return p
}

// scanLine is p as scan --db stores it; a nil p is an entry that could
// not be scanned.
func scanLine(t *testing.T, domain string, p *route.Plan) store.ScanResult {
	t.Helper()
	if p == nil {
		return store.ScanResult{Domain: domain, Status: "error", Line: []byte(`{"domain":"` + domain + `","result":"error"}`)}
	}
	line, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	facts, err := json.Marshal(watch.SnapshotOfPlan(p))
	if err != nil {
		t.Fatal(err)
	}
	return store.ScanResult{Domain: domain, Status: string(p.Result), Line: line, Facts: facts}
}

func storeScan(t *testing.T, s store.ScanStore, rs ...store.ScanResult) int64 {
	t.Helper()
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Mode: "route", Input: "list"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// TestDiffScans: two stored route scans are merged by domain: the typed
// changes of a domain in both, the domains in one only, a line that could
// not be scanned, a temporary failure not read as a removal, a duplicate
// counted once.
func TestDiffScans(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.(store.ScanStore)
	temporary := &route.Plan{Schema: route.SchemaVersion, Domain: "g.example", Result: route.ResultError, Error: "time-out", Findings: []finding.Finding{}}
	old := storeScan(t, s,
		scanLine(t, "a.example", routePlan("a.example", "mx1.a.example")),
		scanLine(t, "b.example", routePlan("b.example", "mx.b.example")),
		scanLine(t, "c.example", routePlan("c.example", "mx.c.example")),
		scanLine(t, "e.example", routePlan("e.example", "mx.e.example")),
		scanLine(t, "g.example", routePlan("g.example", "mx.g.example")),
		scanLine(t, "h.example", nil),
	)
	new := storeScan(t, s,
		scanLine(t, "h.example", nil),
		scanLine(t, "g.example", temporary),
		scanLine(t, "e.example", nil),
		scanLine(t, "d.example", routePlan("d.example", "mx.d.example")),
		scanLine(t, "b.example", routePlan("b.example", "mx.b.example")),
		scanLine(t, "b.example", routePlan("b.example", "other.example")),
		scanLine(t, "a.example", routePlan("a.example", "mx1.a.example", "mx2.a.example")),
	)
	var got []watch.ScanDomain
	sum, err := watch.DiffScans(t.Context(), s, old, new, func(d watch.ScanDomain) error {
		for i := range d.Changes {
			d.Changes[i].Message = "" // said by Diff's own tests
		}
		got = append(got, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []watch.ScanDomain{
		{Domain: "a.example", OldStatus: "ok", NewStatus: "ok", Changes: []watch.Change{
			{Kind: watch.KindExchangeAdded, Subject: "mx2.a.example", Severity: finding.Info, New: "MX 10 mx2.a.example (TTL 3600)"}}},
		{Domain: "c.example", Only: "old", OldStatus: "ok"},
		{Domain: "d.example", Only: "new", NewStatus: "ok"},
		{Domain: "e.example", OldStatus: "ok", NewStatus: "error", Uncompared: "a line without facts: the entry could not be scanned"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
	wantSum := &watch.ScanDiffSummary{Old: 6, New: 6, Both: 5, Changed: 1, OnlyOld: 1, OnlyNew: 1, Uncompared: 1,
		Kinds: map[watch.ChangeKind]int64{watch.KindExchangeAdded: 1}}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

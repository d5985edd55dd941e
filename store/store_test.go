package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pressly/goose/v3"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/store/postgres"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// backend makes empty databases of one engine: each call of newDSN names a
// database no one has used.
type backend struct {
	name   string
	newDSN func(t *testing.T) string
}

// TestContract runs the same tests against each backend: SQLite, and a
// real PostgreSQL started once for all of them (skipped when it is missing,
// failed under CI=true).
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"OpenMigratesEmptyDatabase", testOpenMigratesEmptyDatabase},
		{"OpenConcurrently", testOpenConcurrently},
		{"Watches", testWatches},
		{"AddWatches", testAddWatches},
		{"ClaimAndRecord", testClaimAndRecord},
		{"LeaseExpires", testLeaseExpires},
		{"RecordIsOneTransaction", testRecordIsOneTransaction},
		{"ResultsAndChangesNewestFirst", testResultsAndChangesNewestFirst},
		{"LightReads", testLightReads},
		{"AlertOutbox", testAlertOutbox},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentDelivery", testConcurrentDelivery},
	}
	run := func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, backend{name: "sqlite", newDSN: func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "sub", "mxtrace.db")
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := peers.StartPostgres(t)
		run(t, backend{name: "postgres", newDSN: func(t *testing.T) string { return pg.NewDatabase(t) }})
	})
}

// open opens dsn and closes it at the end of the test.
func open(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// t0 is the tests' clock: times are given, never read, so leases expire
// when a test says so.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func addWatch(t *testing.T, s store.Store, domain string, next time.Time) {
	t.Helper()
	w := store.Watch{Domain: domain, Every: time.Hour, NextRun: next, Added: t0.Add(-24 * time.Hour)}
	if err := s.AddWatch(t.Context(), w); err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, s store.Store, worker string, now time.Time, limit int, lease time.Duration, all bool) []string {
	t.Helper()
	ws, err := s.Claim(t.Context(), worker, now, limit, lease, all)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, w := range ws {
		ds = append(ds, w.Domain)
	}
	return ds
}

func result(domain string, at time.Time) store.Result {
	return store.Result{
		Domain: domain, At: at, Status: store.StatusProblems,
		// Spacing and key order that a jsonb column would not keep.
		Report: []byte(`{"domain": "` + domain + `",  "z": 1, "a": [1, 2]}`),
		Facts:  []byte(`{"version":1,"mx":["mx1.` + domain + `."]}`),
	}
}

func testOpenMigratesEmptyDatabase(t *testing.T, b backend) {
	dsn := b.newDSN(t)
	for i := range 2 { // a second open finds the schema up to date
		s := open(t, dsn)
		ws, err := s.Watches(t.Context())
		if err != nil || len(ws) != i {
			t.Fatalf("open %d: %v, %v; want %d watches", i, ws, err, i)
		}
		addWatch(t, s, fmt.Sprintf("d%d.example", i), t0)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := open(t, dsn).Watches(t.Context())
	if err != nil || len(ws) != 2 {
		t.Fatalf("after reopening: %v, %v; want both watches", ws, err)
	}
	// Up to the newest migration embedded for the engine, not merely to
	// one that has the tables used above.
	got, newest := schemaVersion(t, b, dsn)
	if newest < 1 || got != newest {
		t.Errorf("goose schema version %d, want the newest embedded migration, %d", got, newest)
	}
}

// schemaVersion returns the goose version of the database dsn of b and the
// version of the newest migration embedded for b's engine.
func schemaVersion(t *testing.T, b backend, dsn string) (got, newest int64) {
	t.Helper()
	var (
		db      *sql.DB
		dialect goose.Dialect
		fsys    fs.FS
		err     error
	)
	switch b.name {
	case "sqlite":
		db, err = sqlite.Open(t.Context(), dsn)
		dialect, fsys = goose.DialectSQLite3, sqlite.Migrations()
	case "postgres":
		db, err = postgres.Open(t.Context(), dsn)
		dialect, fsys = goose.DialectPostgres, postgres.Migrations()
	default:
		t.Fatalf("no engine %q", b.name)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(dialect, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = p.GetDBVersion(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, src := range p.ListSources() {
		newest = max(newest, src.Version)
	}
	return got, newest
}

// testOpenConcurrently: several processes (here connection pools) opening a
// new database at the same moment all succeed; one of them migrates it.
func testOpenConcurrently(t *testing.T, b backend) {
	for range 3 {
		dsn := b.newDSN(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := store.Open(t.Context(), dsn)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Watches(t.Context()); err != nil {
					t.Error(err)
				}
				s.Close()
			})
		}
		wg.Wait()
	}
}

func testWatches(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	w := store.Watch{Domain: "example.org", Every: 90 * time.Minute, Alerts: []string{"https://hooks.example/x", "mailto:pm@example.org"},
		NextRun: t0, Added: t0.Add(-time.Hour)}
	if err := s.AddWatch(ctx, w); err != nil {
		t.Fatal(err)
	}
	addWatch(t, s, "a.example", t0)
	// An update keeps Added and changes the rest.
	w2 := w
	w2.Every, w2.Alerts, w2.NextRun, w2.Added = time.Hour, nil, t0.Add(time.Minute), t0
	if err := s.AddWatch(ctx, w2); err != nil {
		t.Fatal(err)
	}
	ws, err := s.Watches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.WatchStatus{
		{Watch: store.Watch{Domain: "a.example", Every: time.Hour, NextRun: t0.Truncate(time.Microsecond), Added: t0.Add(-24 * time.Hour).Truncate(time.Microsecond)}},
		{Watch: store.Watch{Domain: "example.org", Every: time.Hour, NextRun: t0.Add(time.Minute), Added: t0.Add(-time.Hour)}},
	}
	if d := cmp.Diff(want, ws); d != "" {
		t.Errorf("watches (-want +got):\n%s", d)
	}
	// One watch by its domain: the same row as the list, nil for none.
	one, err := s.Watch(ctx, "example.org")
	if err != nil || one == nil {
		t.Fatalf("watch example.org: %v, %v", one, err)
	}
	if d := cmp.Diff(want[1], *one); d != "" {
		t.Errorf("watch example.org (-want +got):\n%s", d)
	}
	if ok, err := s.RemoveWatch(ctx, "example.org"); !ok || err != nil {
		t.Errorf("remove: %v, %v; want true", ok, err)
	}
	if none, err := s.Watch(ctx, "example.org"); none != nil || err != nil {
		t.Errorf("watch of a removed domain: %+v, %v; want nil, nil", none, err)
	}
	if ok, err := s.RemoveWatch(ctx, "example.org"); ok || err != nil {
		t.Errorf("remove again: %v, %v; want false", ok, err)
	}
	if err := s.AddWatch(ctx, store.Watch{Domain: "x.example"}); err == nil {
		t.Error("a watch with no period was added")
	}
}

// testAddWatches: a list is added whole, or (one watch invalid) not at
// all.
func testAddWatches(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	var ws []store.Watch
	for i := range 500 {
		ws = append(ws, store.Watch{Domain: fmt.Sprintf("d%03d.example", i), Every: time.Hour, NextRun: t0, Added: t0})
	}
	bad := append(slices.Clone(ws[:2]), store.Watch{Domain: "x.example"})
	if err := s.AddWatches(ctx, bad); err == nil {
		t.Error("a list with a watch without a period was added")
	}
	if got, err := s.Watches(ctx); len(got) != 0 || err != nil {
		t.Fatalf("after a refused list: %d watches, %v; want none", len(got), err)
	}
	if err := s.AddWatches(ctx, ws); err != nil {
		t.Fatal(err)
	}
	got, err := s.Watches(ctx)
	if err != nil || len(got) != len(ws) || got[0].Domain != "d000.example" || !got[499].NextRun.Equal(t0) {
		t.Errorf("%d watches, %v; want %d", len(got), err, len(ws))
	}
}

func testClaimAndRecord(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	addWatch(t, s, "due1.example", t0.Add(-2*time.Minute))
	addWatch(t, s, "due2.example", t0.Add(-time.Minute))
	addWatch(t, s, "due3.example", t0)
	addWatch(t, s, "later.example", t0.Add(time.Hour))

	if got := claim(t, s, "w1", t0, 2, time.Minute, false); !slices.Equal(got, []string{"due1.example", "due2.example"}) {
		t.Errorf("w1 claimed %v; want the two earliest due", got)
	}
	if got := claim(t, s, "w2", t0, 0, time.Minute, false); !slices.Equal(got, []string{"due3.example"}) {
		t.Errorf("w2 claimed %v; want the one due and not leased", got)
	}
	if got := claim(t, s, "w3", t0.Add(30*time.Second), 0, time.Minute, true); !slices.Equal(got, []string{"later.example"}) {
		t.Errorf("w3 claimed %v with all; want only the watch no lease holds", got)
	}
	ws, _ := s.Watches(ctx)
	if ws[0].Worker != "w1" || !ws[0].LeaseUntil.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("due1 lease: %q until %v", ws[0].Worker, ws[0].LeaseUntil)
	}

	// w1 records due1: the lease is released, the next run set, the
	// result, its change and its alert stored.
	r := result("due1.example", t0.Add(10*time.Second))
	changes := []store.Change{{Kind: "mx-added", Subject: "mx2.due1.example", Severity: "info", Message: "exchange added", New: "mx2.due1.example"}}
	alerts := []store.Alert{{Target: "https://hooks.example/x", Kind: store.AlertChange, Body: []byte(`{"change":"mx-added"}`)}}
	id, err := s.Record(ctx, "w1", r, changes, alerts, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.Last(ctx, "due1.example")
	if err != nil {
		t.Fatal(err)
	}
	r.ID, r.At = id, r.At.Truncate(time.Microsecond)
	if d := cmp.Diff(&r, last); d != "" {
		t.Errorf("last result (-want +got):\n%s", d)
	}
	cs, err := s.Changes(ctx, "due1.example", time.Time{}, 0)
	if err != nil || len(cs) != 1 || cs[0].ResultID != id || cs[0].Domain != "due1.example" || !cs[0].At.Equal(r.At) || cs[0].New != "mx2.due1.example" {
		t.Errorf("changes: %+v, %v", cs, err)
	}
	as, err := s.Alerts(ctx, "due1.example", time.Time{}, 0)
	if err != nil || len(as) != 1 || as[0].ResultID != id || !as[0].NextAttempt.Equal(r.At) || string(as[0].Body) != `{"change":"mx-added"}` {
		t.Errorf("alerts: %+v, %v", as, err)
	}
	ws, _ = s.Watches(ctx)
	if w := ws[0]; w.Worker != "" || !w.LeaseUntil.IsZero() || !w.NextRun.Equal(t0.Add(time.Hour)) ||
		w.LastStatus != store.StatusProblems || !w.LastRun.Equal(r.At) {
		t.Errorf("due1 after record: %+v", w)
	}
	// Recorded, it is not due again until its next run.
	if got := claim(t, s, "w4", t0.Add(2*time.Minute), 0, time.Minute, false); !slices.Equal(got, []string{"due2.example", "due3.example"}) {
		t.Errorf("after the leases ran out, w4 claimed %v; want due2 and due3, not the recorded due1", got)
	}
}

func testLeaseExpires(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	addWatch(t, s, "example.com", t0)
	if got := claim(t, s, "dead", t0, 0, time.Minute, false); len(got) != 1 {
		t.Fatalf("claimed %v", got)
	}
	if got := claim(t, s, "other", t0.Add(time.Minute-time.Microsecond), 0, time.Minute, false); len(got) != 0 {
		t.Errorf("claimed %v while the lease holds", got)
	}
	// The worker died: at the end of its lease another takes the watch.
	if got := claim(t, s, "other", t0.Add(time.Minute), 0, time.Minute, false); len(got) != 1 {
		t.Fatalf("claimed %v after the lease ran out; want the watch", got)
	}
	// The first worker was only late: its result is refused whole.
	_, err := s.Record(ctx, "dead", result("example.com", t0.Add(70*time.Second)), nil,
		[]store.Alert{{Target: "log", Kind: store.AlertChange}}, t0.Add(time.Hour))
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("record by the worker that lost its lease: %v; want ErrLeaseLost", err)
	}
	if r, err := s.Last(ctx, "example.com"); r != nil || err != nil {
		t.Errorf("a refused record left a result: %+v, %v", r, err)
	}
	if as, _ := s.Alerts(ctx, "example.com", time.Time{}, 0); len(as) != 0 {
		t.Errorf("a refused record left alerts: %+v", as)
	}
	if _, err := s.Record(ctx, "other", result("example.com", t0.Add(80*time.Second)), nil, nil, t0.Add(time.Hour)); err != nil {
		t.Errorf("record by the lease holder: %v", err)
	}
	// A removed watch has no lease to release either.
	addWatch(t, s, "gone.example", t0)
	claim(t, s, "w", t0, 0, time.Minute, false)
	if _, err := s.RemoveWatch(ctx, "gone.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(ctx, "w", result("gone.example", t0), nil, nil, t0.Add(time.Hour)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("record of a removed watch: %v; want ErrLeaseLost", err)
	}
}

// TestRecordIsOneTransaction: a failure at the last insert (an alert the
// schema refuses) leaves nothing of the result behind, and the lease held.
func testRecordIsOneTransaction(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	addWatch(t, s, "example.net", t0)
	claim(t, s, "w", t0, 0, time.Minute, false)
	changes := []store.Change{{Kind: "mx-removed", Subject: "mx.example.net", Severity: "warning", Message: "gone"}}
	alerts := []store.Alert{
		{Target: "log", Kind: store.AlertChange, Body: []byte(`{}`)},
		{Target: "", Kind: store.AlertChange, Body: []byte(`{}`)}, // refused by CHECK (target <> '')
	}
	if _, err := s.Record(ctx, "w", result("example.net", t0), changes, alerts, t0.Add(time.Hour)); err == nil {
		t.Fatal("record with an alert without a target succeeded")
	}
	if r, err := s.Last(ctx, "example.net"); r != nil || err != nil {
		t.Errorf("result left: %+v, %v", r, err)
	}
	if cs, _ := s.Changes(ctx, "example.net", time.Time{}, 0); len(cs) != 0 {
		t.Errorf("changes left: %+v", cs)
	}
	if as, _ := s.Alerts(ctx, "example.net", time.Time{}, 0); len(as) != 0 {
		t.Errorf("alerts left: %+v", as)
	}
	ws, _ := s.Watches(ctx)
	if ws[0].Worker != "w" || !ws[0].NextRun.Equal(t0.Truncate(time.Microsecond)) || !ws[0].LastRun.IsZero() {
		t.Errorf("watch after the failed record: %+v; want it unchanged, still leased", ws[0])
	}
	if _, err := s.Record(ctx, "w", result("example.net", t0), changes, alerts[:1], t0.Add(time.Hour)); err != nil {
		t.Errorf("the same record without the bad alert: %v", err)
	}
}

func testResultsAndChangesNewestFirst(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	var ids []int64
	for i := range 5 {
		r := result("example.org", t0.Add(time.Duration(i)*time.Hour))
		c := store.Change{Kind: "ttl-changed", Subject: "example.org", Severity: "info", Message: "ttl", Old: fmt.Sprint(i), New: fmt.Sprint(i + 1)}
		// No worker: a result from a scan, with no watch behind it.
		id, err := s.Record(ctx, "", r, []store.Change{c}, nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := s.Record(ctx, "", result("other.example", t0), nil, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Results(ctx, "example.org", t0.Add(2*time.Hour), 2)
	if err != nil || len(rs) != 2 || rs[0].ID != ids[4] || rs[1].ID != ids[3] {
		t.Errorf("results since 2h, 2 of them: %v, %v; want ids %d, %d", rs, err, ids[4], ids[3])
	}
	rs, _ = s.Results(ctx, "example.org", time.Time{}, 0)
	if len(rs) != 5 {
		t.Errorf("all results: %d; want 5", len(rs))
	}
	cs, err := s.Changes(ctx, "example.org", t0.Add(3*time.Hour), 0)
	if err != nil || len(cs) != 2 || cs[0].Old != "4" || cs[1].Old != "3" || cs[0].ResultID != ids[4] {
		t.Errorf("changes since 3h: %+v, %v", cs, err)
	}
	if r, err := s.Last(ctx, "nothing.example"); r != nil || err != nil {
		t.Errorf("last of a domain never checked: %v, %v; want nil, nil", r, err)
	}
	if _, err := s.Record(ctx, "", store.Result{Domain: "x.example", At: t0, Status: "ok", Report: []byte("{")}, nil, nil, time.Time{}); err == nil {
		t.Error("a report that is not JSON was stored")
	}
}

// testLightReads: Summaries are Results without report and facts, Result
// reads one whole by ID, NextDue is the earliest next run of any watch.
func testLightReads(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	if next, err := s.NextDue(ctx); err != nil || !next.IsZero() {
		t.Errorf("next due with nothing watched: %v, %v; want the zero time", next, err)
	}
	addWatch(t, s, "b.example", t0.Add(time.Hour))
	addWatch(t, s, "a.example", t0.Add(time.Minute))
	if next, err := s.NextDue(ctx); err != nil || !next.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("next due: %v, %v; want %v", next, err, t0.Add(time.Minute))
	}
	for i := range 3 {
		r := result("example.org", t0.Add(time.Duration(i)*time.Hour))
		r.Temporary = i == 1
		if _, err := s.Record(ctx, "", r, nil, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := s.Results(ctx, "example.org", t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	light, err := s.Summaries(ctx, "example.org", t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range whole {
		whole[i].Report, whole[i].Facts = nil, nil
	}
	if diff := cmp.Diff(whole, light); diff != "" || len(light) != 2 || !light[1].Temporary {
		t.Errorf("summaries are not the results without report and facts (-results +summaries):\n%s", diff)
	}
	if one, _ := s.Summaries(ctx, "example.org", time.Time{}, 1); len(one) != 1 || one[0].ID != light[0].ID {
		t.Errorf("the newest summary: %+v; want result %d", one, light[0].ID)
	}
	r, err := s.Result(ctx, light[1].ID)
	want := result("example.org", t0.Add(time.Hour))
	if err != nil || r == nil || r.ID != light[1].ID || !r.At.Equal(want.At.Truncate(time.Microsecond)) || string(r.Report) != string(want.Report) || string(r.Facts) != string(want.Facts) || !r.Temporary {
		t.Errorf("result %d: %+v, %v; want it whole", light[1].ID, r, err)
	}
	if r, err := s.Result(ctx, 1<<40); r != nil || err != nil {
		t.Errorf("a result that does not exist: %v, %v; want nil, nil", r, err)
	}
}

func testAlertOutbox(t *testing.T, b backend) {
	s := open(t, b.newDSN(t))
	ctx := t.Context()
	alerts := []store.Alert{
		{Target: "https://hooks.example/a", Kind: store.AlertChange, Body: []byte(`{"n":1}`)},
		{Target: "mailto:pm@example.org", Kind: store.AlertChange, Body: []byte(`{"n":2}`)},
	}
	if _, err := s.Record(ctx, "", result("example.org", t0), nil, alerts, time.Time{}); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueAlerts(ctx, t0, 0, time.Minute)
	if err != nil || len(due) != 2 || due[0].Target != alerts[0].Target || !due[0].NextAttempt.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("due alerts: %+v, %v", due, err)
	}
	// Taken: no other deliverer gets them while the lease holds.
	if again, _ := s.DueAlerts(ctx, t0.Add(time.Second), 0, time.Minute); len(again) != 0 {
		t.Errorf("alerts handed out twice: %+v", again)
	}
	if err := s.AlertSent(ctx, due[0].ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.AlertFailed(ctx, due[1].ID, t0.Add(5*time.Minute), "connection refused"); err != nil {
		t.Fatal(err)
	}
	// A deliverer whose lease ran out fails an alert another one sent
	// meanwhile: it stays sent.
	if err := s.AlertFailed(ctx, due[0].ID, t0.Add(5*time.Minute), "late failure"); err != nil {
		t.Errorf("failure of a sent alert: %v", err)
	}
	if again, _ := s.DueAlerts(ctx, t0.Add(4*time.Minute), 0, time.Minute); len(again) != 0 {
		t.Errorf("due before the retry time: %+v", again)
	}
	again, _ := s.DueAlerts(ctx, t0.Add(5*time.Minute), 0, time.Minute)
	if len(again) != 1 || again[0].ID != due[1].ID || again[0].Attempts != 1 || again[0].LastError != "connection refused" {
		t.Fatalf("due at the retry: %+v; want the failed alert only, one attempt", again)
	}
	// A deliverer that dies leaves it due again after the lease.
	if again, _ := s.DueAlerts(ctx, t0.Add(6*time.Minute), 0, time.Minute); len(again) != 1 {
		t.Errorf("after the deliverer's lease: %+v; want the alert again", again)
	}
	// Given up: never due again, kept with its error.
	if err := s.AlertFailed(ctx, due[1].ID, time.Time{}, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.DueAlerts(ctx, t0.Add(24*time.Hour), 0, time.Minute); len(again) != 0 {
		t.Errorf("due after giving up or sending: %+v", again)
	}
	as, _ := s.Alerts(ctx, "example.org", time.Time{}, 0)
	if len(as) != 2 {
		t.Fatalf("alerts: %+v", as)
	}
	byID := map[int64]store.Alert{as[0].ID: as[0], as[1].ID: as[1]}
	if a := byID[due[0].ID]; !a.Sent.Equal(t0.Add(time.Second).Truncate(time.Microsecond)) || !a.NextAttempt.IsZero() || a.Attempts != 0 {
		t.Errorf("sent alert: %+v", a)
	}
	if a := byID[due[1].ID]; !a.Sent.IsZero() || !a.NextAttempt.IsZero() || a.Attempts != 2 || a.LastError != "550 no such user" {
		t.Errorf("given-up alert: %+v", a)
	}
	if err := s.AlertSent(ctx, 1<<40, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sent of an unknown alert: %v; want ErrNotFound", err)
	}
	if err := s.AlertFailed(ctx, 1<<40, t0, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failure of an unknown alert: %v; want ErrNotFound", err)
	}
}

// TestConcurrentClaims: workers, each with a database connection pool of
// its own as separate processes would have, claim and record in parallel;
// no watch is handed out twice while its lease holds, and every due watch
// is checked once.
func testConcurrentClaims(t *testing.T, b backend) {
	const watches, workers = 60, 6
	dsn := b.newDSN(t)
	setup := open(t, dsn)
	for i := range watches {
		addWatch(t, setup, fmt.Sprintf("d%02d.example", i), t0.Add(-time.Duration(i)*time.Second))
	}
	var (
		mu      sync.Mutex
		claimed = map[string][]string{} // domain → workers
		wg      sync.WaitGroup
	)
	for w := range workers {
		s := open(t, dsn)
		worker := fmt.Sprintf("worker%d", w)
		wg.Go(func() {
			ctx := context.Background()
			for {
				ws, err := s.Claim(ctx, worker, t0, 3, time.Hour, false)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ws) == 0 {
					return
				}
				for _, w := range ws {
					mu.Lock()
					claimed[w.Domain] = append(claimed[w.Domain], worker)
					mu.Unlock()
					if _, err := s.Record(ctx, worker, result(w.Domain, t0), nil, nil, t0.Add(time.Hour)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != watches {
		t.Errorf("%d watches claimed; want all %d", len(claimed), watches)
	}
	for d, ws := range claimed {
		if len(ws) != 1 {
			t.Errorf("%s claimed by %v", d, ws)
		}
		if rs, _ := setup.Results(t.Context(), d, time.Time{}, 0); len(rs) != 1 {
			t.Errorf("%s has %d results; want 1", d, len(rs))
		}
	}
}

// TestConcurrentDelivery: deliverers draining the outbox together deliver
// every alert once.
func testConcurrentDelivery(t *testing.T, b backend) {
	const alerts, deliverers = 80, 5
	dsn := b.newDSN(t)
	setup := open(t, dsn)
	for i := range alerts / 4 {
		var as []store.Alert
		for j := range 4 {
			as = append(as, store.Alert{Target: "log", Kind: store.AlertChange, Body: fmt.Appendf(nil, `{"n":%d}`, i*4+j)})
		}
		if _, err := setup.Record(t.Context(), "", result(fmt.Sprintf("d%d.example", i), t0), nil, as, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu        sync.Mutex
		delivered = map[int64]int{}
		wg        sync.WaitGroup
	)
	for range deliverers {
		s := open(t, dsn)
		wg.Go(func() {
			ctx := context.Background()
			for {
				due, err := s.DueAlerts(ctx, t0, 7, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				for _, a := range due {
					mu.Lock()
					delivered[a.ID]++
					mu.Unlock()
					if err := s.AlertSent(ctx, a.ID, t0); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(delivered) != alerts {
		t.Errorf("%d alerts delivered; want %d", len(delivered), alerts)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Errorf("alert %d delivered %d times", id, n)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/var/lib/x")
	if got := store.DefaultPath(); got != "/var/lib/x/mxtrace/mxtrace.db" {
		t.Errorf("DefaultPath with XDG_DATA_HOME: %s", got)
	}
	t.Setenv("XDG_DATA_HOME", "relative")
	t.Setenv("HOME", "/home/pm")
	if got := store.DefaultPath(); got != "/home/pm/.local/share/mxtrace/mxtrace.db" {
		t.Errorf("DefaultPath with a relative XDG_DATA_HOME: %s", got)
	}
}

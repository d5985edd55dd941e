package watch

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
)

// testResolver answers from zone text, counts the MX questions per name
// (one per audit), fails every question while fail is set, and holds
// the questions about hold until release is closed.
type testResolver struct {
	zones   resolve.Resolver
	delay   time.Duration
	fail    atomic.Bool
	hold    string
	release chan struct{}

	mu  sync.Mutex
	mxs map[string]int
}

func newTestResolver(t *testing.T, zone string) *testResolver {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(zone), "test.zone")
	if err != nil {
		t.Fatal(err)
	}
	return &testResolver{zones: z, mxs: map[string]int{}, release: make(chan struct{})}
}

func (r *testResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Type == dns.TypeMX {
		r.mu.Lock()
		r.mxs[strings.TrimSuffix(q.Name, ".")]++
		r.mu.Unlock()
	}
	if r.hold != "" && strings.HasSuffix(q.Name, r.hold+".") {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, &resolve.Error{Question: q, Rcode: -1, Err: resolve.ErrTimeout}
		}
	}
	if r.fail.Load() {
		return nil, &resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	return r.zones.Lookup(ctx, q)
}

func (r *testResolver) mxCount(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mxs[domain]
}

// auditor is check's offline Auditor on r.
func auditor(r resolve.Resolver) *check.Auditor {
	return &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline test"}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "watch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addWatches(t *testing.T, s store.Store, every time.Duration, domains ...string) {
	t.Helper()
	for _, d := range domains {
		if err := s.AddWatch(t.Context(), store.Watch{Domain: d, Every: every}); err != nil {
			t.Fatal(err)
		}
	}
}

// manyZone has n domains, d0.example to d(n-1).example, each with one
// exchange.
func manyZone(n int) (string, []string) {
	var b strings.Builder
	b.WriteString("$ORIGIN example.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.53\n")
	var domains []string
	for i := range n {
		fmt.Fprintf(&b, "d%d 3600 IN MX 10 mx.d%d\nmx.d%d 3600 IN A 192.0.2.%d\n", i, i, i, 1+i%250)
		domains = append(domains, fmt.Sprintf("d%d.example", i))
	}
	return b.String(), domains
}

// TestRunOnceParallel: two workers running at once on one store split
// the due watches: every domain is checked, and none twice.
func TestRunOnceParallel(t *testing.T) {
	zone, domains := manyZone(60)
	res := newTestResolver(t, zone)
	res.delay = time.Millisecond
	s := openStore(t)
	addWatches(t, s, time.Hour, domains...)

	var checked [2][]Checked
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		r := &Runner{Store: s, Auditor: auditor(res), Concurrency: 3, Worker: fmt.Sprintf("w%d", i), Jitter: 0.1}
		wg.Go(func() { checked[i], errs[i] = r.RunOnce(t.Context(), false) })
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		if len(checked[i]) == 0 {
			t.Errorf("worker %d checked nothing: the work was not shared", i)
		}
		for _, c := range checked[i] {
			if c.Err != nil || c.ResultID == 0 {
				t.Errorf("worker %d, %s: %v", i, c.Domain, c.Err)
			}
			seen[c.Domain]++
		}
	}
	for _, d := range domains {
		rs, err := s.Results(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[d] != 1 || len(rs) != 1 || res.mxCount(d) != 1 {
			t.Errorf("%s: checked %d times, %d results, %d audits; want 1", d, seen[d], len(rs), res.mxCount(d))
		}
	}
	// Nothing is due any more: next runs are an hour ± 10% away.
	ws, err := s.Watches(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, w := range ws {
		if next := w.NextRun.Sub(now); next < 53*time.Minute || next > 67*time.Minute || w.LastStatus != store.StatusProblems && w.LastStatus != store.StatusOK {
			t.Errorf("%s: next run in %v, last status %q", w.Domain, next, w.LastStatus)
		}
	}
	r := &Runner{Store: s, Auditor: auditor(res), Worker: "w3"}
	if c, err := r.RunOnce(t.Context(), false); err != nil || len(c) != 0 {
		t.Errorf("a third run: %d checked, %v; want none due", len(c), err)
	}
	// --all checks everything again, once.
	c, err := r.RunOnce(t.Context(), true)
	if err != nil || len(c) != len(domains) {
		t.Errorf("RunOnce(all): %d checked, %v; want %d", len(c), err, len(domains))
	}
}

const shopZone = `$ORIGIN example.
@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300
@ 3600 IN NS ns
ns 3600 IN A 192.0.2.53
shop 3600 IN MX 10 mx1.shop
shop 3600 IN MX 20 mx2.shop
mx1.shop 3600 IN A 192.0.2.25
mx2.shop 3600 IN A 192.0.2.26
`

// TestRunTemporary: a check that could not be done is stored as such,
// with no changes (not every record removed); the next good check is
// compared with the last good one.
func TestRunTemporary(t *testing.T) {
	for _, mode := range []string{"check", "route"} {
		t.Run(mode, func(t *testing.T) { testRunTemporary(t, mode) })
	}
}

// testRunTemporary is TestRunTemporary in one mode: with route, the
// Runner has a Planner alone, and a plan whose result is error is the
// temporary failure.
func testRunTemporary(t *testing.T, mode string) {
	res := newTestResolver(t, shopZone)
	s := openStore(t)
	addWatches(t, s, time.Hour, "shop.example")
	r := &Runner{Store: s, Auditor: auditor(res), Worker: "w"}
	if mode == "route" {
		r.Auditor, r.Planner = nil, &route.Planner{Resolver: res}
	}
	once := func() Checked {
		t.Helper()
		c, err := r.RunOnce(t.Context(), true)
		if err != nil || len(c) != 1 || c[0].Err != nil {
			t.Fatalf("RunOnce: %v, %+v", err, c)
		}
		return c[0]
	}
	if c := once(); c.Temporary || len(c.Changes) != 0 {
		t.Fatalf("first check: %+v", c)
	}
	res.fail.Store(true)
	if c := once(); !c.Temporary || c.Status != store.StatusError || len(c.Changes) != 0 {
		t.Errorf("a failed check: %+v; want temporary, no changes", c)
	}
	if c := once(); !c.Temporary || len(c.Changes) != 0 {
		t.Errorf("a second failed check: %+v; want temporary, no changes", c)
	}
	res.fail.Store(false)
	// The same zone: nothing changed since the last good check.
	if c := once(); c.Temporary || len(c.Changes) != 0 {
		t.Errorf("recovered: %+v; want no changes against the last good check", c)
	}
	rs, err := s.Results(t.Context(), "shop.example", time.Time{}, 0)
	if err != nil || len(rs) != 4 || !rs[1].Temporary || !rs[2].Temporary || rs[0].Temporary || rs[3].Temporary {
		t.Errorf("stored: %d results, %v", len(rs), err)
	}
}

// TestRunGrace: when the context ends, a check that finishes within the
// grace is recorded, one that does not is abandoned and not recorded.
func TestRunGrace(t *testing.T) {
	for _, tt := range []struct {
		name      string
		releaseIn time.Duration
		want      error
	}{
		{"finishes", 50 * time.Millisecond, nil},
		{"abandoned", time.Hour, ErrAbandoned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := newTestResolver(t, shopZone)
			res.hold = "shop.example"
			s := openStore(t)
			addWatches(t, s, time.Hour, "shop.example")
			r := &Runner{Store: s, Auditor: auditor(res), Worker: "w", Grace: 300 * time.Millisecond}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan []Checked)
			go func() {
				c, err := r.RunOnce(ctx, false)
				if err != nil {
					t.Error(err)
				}
				done <- c
			}()
			for res.mxCount("shop.example") == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			timer := time.AfterFunc(tt.releaseIn, func() { close(res.release) })
			defer timer.Stop()
			c := <-done
			if len(c) != 1 || c[0].Err != tt.want {
				t.Fatalf("checked %+v, want one with error %v", c, tt.want)
			}
			last, err := s.Last(t.Context(), "shop.example")
			if err != nil || (last != nil) != (tt.want == nil) {
				t.Errorf("stored %+v, %v", last, err)
			}
		})
	}
}

// TestNextRun: the jitter spreads next runs both ways, within its bound.
func TestNextRun(t *testing.T) {
	r := &Runner{Jitter: 0.1}
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var early, late bool
	for range 200 {
		next := r.nextRun(store.Watch{Every: time.Hour}, at)
		d := next.Sub(at)
		if d < 54*time.Minute || d > 66*time.Minute {
			t.Fatalf("next run %v after, want 1h ± 6m", d)
		}
		early, late = early || d < time.Hour, late || d > time.Hour
	}
	if !early || !late {
		t.Errorf("jitter went one way only (early %v, late %v)", early, late)
	}
	r.Jitter = 0
	if d := r.nextRun(store.Watch{Every: time.Hour}, at).Sub(at); d != time.Hour {
		t.Errorf("no jitter: %v", d)
	}
}

// TestRunPolicy: the alerts the policy returns are queued with the result
// that caused them, and the policy sees the previous result and the
// changes.
func TestRunPolicy(t *testing.T) {
	res := newTestResolver(t, shopZone)
	s := openStore(t)
	addWatches(t, s, time.Hour, "shop.example")
	var prevs []*store.Result
	r := &Runner{Store: s, Auditor: auditor(res), Worker: "w",
		Policy: func(_ context.Context, w store.Watch, prev, cur *store.Result, changes []Change) ([]store.Alert, error) {
			prevs = append(prevs, prev)
			var out []store.Alert
			for _, c := range changes {
				out = append(out, store.Alert{Domain: w.Domain, Target: "log", Kind: store.AlertChange, Body: []byte(`{"kind":"` + string(c.Kind) + `"}`)})
			}
			return out, nil
		}}
	if _, err := r.RunOnce(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// mx2 goes away.
	z, err := resolve.ParseZones(strings.NewReader(strings.ReplaceAll(shopZone, "shop 3600 IN MX 20 mx2.shop\n", "")), "later.zone")
	if err != nil {
		t.Fatal(err)
	}
	res.zones = z
	c, err := r.RunOnce(t.Context(), true)
	if err != nil || len(c) != 1 || c[0].Alerts != 1 || len(c[0].Changes) != 1 || c[0].Changes[0].Kind != KindExchangeRemoved {
		t.Fatalf("second run: %v, %+v", err, c)
	}
	if len(prevs) != 2 || prevs[0] != nil || prevs[1] == nil {
		t.Errorf("the policy saw previous results %v, want nil then the first", prevs)
	}
	alerts, err := s.Alerts(t.Context(), "shop.example", time.Time{}, 0)
	if err != nil || len(alerts) != 1 || alerts[0].ResultID != c[0].ResultID || string(alerts[0].Body) != `{"kind":"exchange-removed"}` {
		t.Errorf("queued alerts: %+v, %v", alerts, err)
	}
}

// fakeDeliverer counts its runs and returns when its context ends.
type fakeDeliverer struct{ started, stopped atomic.Int32 }

func (d *fakeDeliverer) Run(ctx context.Context) error {
	d.started.Add(1)
	<-ctx.Done()
	d.stopped.Add(1)
	return nil
}

// TestRun: the daemon checks a watch again each time it is due, runs the
// deliverer beside the checks, and returns nil with both stopped when its
// context ends.
func TestRun(t *testing.T) {
	res := newTestResolver(t, shopZone)
	s := openStore(t)
	addWatches(t, s, 1500*time.Millisecond, "shop.example")
	d := &fakeDeliverer{}
	r := &Runner{Store: s, Auditor: auditor(res), Worker: "w", Poll: 100 * time.Millisecond, Deliverer: d}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for res.mxCount("shop.example") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("checked %d times in 20s, want 3 (every 1.5s)", res.mxCount("shop.example"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if d.started.Load() != 1 || d.stopped.Load() != 1 {
		t.Errorf("the deliverer started %d and stopped %d times, want 1", d.started.Load(), d.stopped.Load())
	}
	rs, err := s.Results(t.Context(), "shop.example", time.Time{}, 0)
	if err != nil || len(rs) < 3 {
		t.Fatalf("%d results, %v", len(rs), err)
	}
	// Never before it was due: a period apart, to the jitter's zero.
	for i := 0; i+1 < len(rs); i++ {
		if gap := rs[i].At.Sub(rs[i+1].At); gap < 1500*time.Millisecond {
			t.Errorf("checked %v after the check before, within its period", gap)
		}
	}
}

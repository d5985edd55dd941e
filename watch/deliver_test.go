package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/store"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 30 * time.Second, Max: time.Hour, Jitter: 0.2}
	mid := func() float64 { return 0.5 } // no jitter
	for n, want := range map[int]time.Duration{
		0: 30 * time.Second, 1: time.Minute, 2: 2 * time.Minute, 6: 32 * time.Minute,
		7: time.Hour, 8: time.Hour, 62: time.Hour, 63: time.Hour, 1000: time.Hour,
	} {
		if got := b.Delay(n, mid); got != want {
			t.Errorf("B(%d) = %s, want %s", n, got, want)
		}
	}
	if got := b.Delay(1, func() float64 { return 0 }); got != 48*time.Second {
		t.Errorf("B(1) at the low end = %s, want 48s", got)
	}
	if got := b.Delay(1, func() float64 { return 0.999999 }); got < 71*time.Second || got > 72*time.Second {
		t.Errorf("B(1) at the high end = %s, want about 72s", got)
	}
	for range 100 {
		if got := b.Delay(3, nil); got < 192*time.Second || got > 288*time.Second {
			t.Fatalf("B(3) = %s, outside 240s ± 20%%", got)
		}
	}
}

// queueStore is a SQLite store in the test's directory with one watch and
// one recorded result queuing alerts: one notice to every target.
func queueStore(t *testing.T, targets []string, n Notice) (store.Store, []int64) {
	t.Helper()
	ctx := t.Context()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "mxtrace.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now().UTC()
	w := store.Watch{Domain: n.Domain, Every: time.Hour, NextRun: now, Alerts: targets}
	if err := s.AddWatch(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "w", now, 1, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(&n)
	var alerts []store.Alert
	for _, tg := range targets {
		alerts = append(alerts, store.Alert{Domain: n.Domain, Target: tg, Kind: string(n.Kind), Body: body})
	}
	r := store.Result{Domain: n.Domain, At: now, Status: n.Status, Report: []byte(`{}`), Facts: []byte(`{"version":1}`)}
	if _, err := s.Record(ctx, "w", r, nil, alerts, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	queued, err := s.Alerts(ctx, n.Domain, time.Time{}, 0)
	if err != nil || len(queued) != len(targets) {
		t.Fatalf("queued %d alerts (%v), want %d", len(queued), err, len(targets))
	}
	var ids []int64
	for _, a := range queued {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return s, ids
}

func alertsOf(t *testing.T, s store.Store, domain string) map[string]store.Alert {
	t.Helper()
	as, err := s.Alerts(t.Context(), domain, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.Alert{}
	for _, a := range as {
		m[a.Target] = a
	}
	return m
}

// drainUntil runs Drain until every alert of domain is sent or given up.
func drainUntil(t *testing.T, d *Deliverer, s store.Store, domain string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := d.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		done := true
		for _, a := range alertsOf(t, s, domain) {
			if a.Sent.IsZero() && !a.NextAttempt.IsZero() {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("alerts of %s not done in time: %+v", domain, alertsOf(t, s, domain))
}

// TestDeliverer sends one notice to a webhook that fails twice with 503, to
// an SMTP sink with STARTTLS and AUTH, and to the log: each is delivered
// once, marked sent, the webhook after two failed attempts recorded with
// their error.
func TestDeliverer(t *testing.T) {
	rc := &receiver{failFirst: 2, status: 503}
	hook := startReceiver(t, rc)
	ca := testpki.NewCA(t, "deliver test CA")
	sk := startSink(t, ca)
	n := *testNotice()
	n.ID = 0
	targets := []string{hook.String(), "mailto:ops@example.org", "log"}
	s, ids := queueStore(t, targets, n)

	var logged bytes.Buffer
	var mu sync.Mutex
	d := &Deliverer{
		Store:   s,
		Webhook: &Webhook{Secret: testSecret},
		Mailer: &Mailer{Server: sk.addr, ServerName: "mail.test", RootCAs: ca.Pool,
			From: "mxtrace@example.org", Username: "alerts", Password: "hunter2"},
		Log:     slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &mu}, nil)),
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 5},
	}
	drainUntil(t, d, s, n.Domain)

	got := alertsOf(t, s, n.Domain)
	for _, tg := range targets {
		a := got[tg]
		if a.Sent.IsZero() {
			t.Errorf("%s: not sent: %+v", tg, a)
		}
	}
	if a := got[hook.String()]; a.Attempts != 2 || !strings.Contains(a.LastError, "503") {
		t.Errorf("webhook alert: %d failed attempts, last error %q; want 2 and a 503", a.Attempts, a.LastError)
	}
	bodies, hdrIDs, requests := rc.received()
	if requests != 3 || len(bodies) != 1 {
		t.Fatalf("receiver: %d requests, %d accepted; want 3 and 1", requests, len(bodies))
	}
	var rn Notice
	if err := json.Unmarshal(bodies[0], &rn); err != nil {
		t.Fatal(err)
	}
	if rn.ID != got[hook.String()].ID || hdrIDs[0] != itoa(rn.ID) || rn.Domain != n.Domain || len(rn.Changes) != 1 {
		t.Errorf("webhook body %+v with header ID %s; alert IDs %v", rn, hdrIDs[0], ids)
	}
	if msgs := sk.messages(); len(msgs) != 1 || !bytes.Contains(msgs[0].data, []byte("Message-ID: <mxtrace-alert-"+itoa(got["mailto:ops@example.org"].ID)+".")) {
		t.Errorf("sink: %d messages", len(msgs))
	}
	mu.Lock()
	line := logged.String()
	mu.Unlock()
	if !strings.Contains(line, "watch alert: example.org: STARTTLS lost") || !strings.Contains(line, "alert="+itoa(got["log"].ID)) {
		t.Errorf("log line:\n%s", line)
	}

	// Nothing is due any more: nothing is sent twice.
	if n, err := d.Drain(t.Context()); err != nil || n != 0 {
		t.Errorf("a later Drain took %d alerts (%v)", n, err)
	}
	if _, _, requests := rc.received(); requests != 3 || len(sk.messages()) != 1 {
		t.Errorf("sent again: %d requests, %d messages", requests, len(sk.messages()))
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestDelivererGivesUp: a 404 is given up at once; a receiver down for
// good after MaxAttempts; an unknown target and a missing mail server at
// once. None is due again.
func TestDelivererGivesUp(t *testing.T) {
	gone := startReceiver(t, &receiver{failFirst: 1000, status: 404})
	down := startReceiver(t, &receiver{failFirst: 1000, status: 502})
	targets := []string{gone.String(), down.String(), "mailto:ops@example.org"}
	s, _ := queueStore(t, targets, *testNotice())
	d := &Deliverer{Store: s, Webhook: &Webhook{Secret: testSecret},
		Backoff: Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 3}}
	drainUntil(t, d, s, "example.org")
	got := alertsOf(t, s, "example.org")
	for tg, attempts := range map[string]int{gone.String(): 1, down.String(): 3, "mailto:ops@example.org": 1} {
		a := got[tg]
		if !a.Sent.IsZero() || !a.NextAttempt.IsZero() || a.Attempts != attempts || a.LastError == "" {
			t.Errorf("%s: %+v; want given up after %d attempts", tg, a, attempts)
		}
	}
}

// flakyMark is a store that fails to mark the first alert sent: the crash
// between the receiver's 2xx and the mark.
type flakyMark struct {
	store.Store
	mu     sync.Mutex
	failed bool
}

func (f *flakyMark) AlertSent(ctx context.Context, id int64, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return errors.New("database went away")
	}
	return f.Store.AlertSent(ctx, id, at)
}

// TestDelivererAtLeastOnce: an alert sent but not marked goes out again
// once its lease has passed, with the same ID, so the receiver can drop
// it.
func TestDelivererAtLeastOnce(t *testing.T) {
	rc := &receiver{}
	hook := startReceiver(t, rc)
	s, ids := queueStore(t, []string{hook.String()}, *testNotice())
	// The clock moves only when the test says: the lease ends when the
	// test has seen it hold, however slow the machine.
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	d := &Deliverer{Store: &flakyMark{Store: s}, Webhook: &Webhook{Secret: testSecret}, Lease: time.Minute, Now: now}
	if n, err := d.Drain(t.Context()); n != 1 || err != nil {
		t.Fatalf("Drain: %d, %v", n, err)
	}
	if n, _ := d.Drain(t.Context()); n != 0 {
		t.Fatalf("taken again within its lease")
	}
	mu.Lock()
	clock = clock.Add(2 * time.Minute) // within Verify's tolerance
	mu.Unlock()
	drainUntil(t, d, s, "example.org")
	_, hdrIDs, requests := rc.received()
	if requests != 2 || hdrIDs[0] != hdrIDs[1] || hdrIDs[0] != itoa(ids[0]) {
		t.Errorf("%d requests with IDs %v; want the alert %d twice", requests, hdrIDs, ids[0])
	}
}

// TestDelivererRunStops: Run returns soon after its context ends, with a
// send in flight finished and marked within Grace.
func TestDelivererRunStops(t *testing.T) {
	slow := make(chan struct{})
	rc := &receiver{}
	hook := startReceiver(t, rc)
	s, _ := queueStore(t, []string{hook.String()}, *testNotice())
	q := &slowQueue{AlertQueue: s, started: slow}
	d := &Deliverer{Store: q, Webhook: &Webhook{Secret: testSecret}, Poll: time.Hour, Grace: 5 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-slow // DueAlerts answered: the send is on its way
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if a := alertsOf(t, s, "example.org")[hook.String()]; a.Sent.IsZero() {
		t.Errorf("the alert in flight at the stop was not marked sent: %+v", a)
	}
}

// slowQueue signals once DueAlerts has answered.
type slowQueue struct {
	AlertQueue
	started chan struct{}
	once    sync.Once
}

func (q *slowQueue) DueAlerts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.Alert, error) {
	as, err := q.AlertQueue.DueAlerts(ctx, now, limit, lease)
	q.once.Do(func() { close(q.started) })
	return as, err
}

package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// backend makes empty databases of one engine: each call of newDSN names a
// database no one has used.
type backend struct {
	name   string
	newDSN func(t *testing.T) string
}

// TestContract runs the same tests against SQLite and a real PostgreSQL
// (skipped when it is missing, failed under CI=true).
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"EnqueueClaimFinish", testEnqueueClaimFinish},
		{"EnqueueChecks", testEnqueueChecks},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
		{"ConcurrentClaims", testConcurrentClaims},
		{"LeaseExpires", testLeaseExpires},
		{"ReleaseLeases", testReleaseLeases},
		{"Operations", testOperations},
		{"NotFound", testNotFound},
		{"Expired", testExpired},
		{"PendingAndFlushDomain", testPendingAndFlushDomain},
		{"ReopenKeepsEverything", testReopen},
	}
	run := func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, backend{name: "sqlite", newDSN: func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "sub", "relay.db")
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := peers.StartPostgres(t)
		run(t, backend{name: "postgres", newDSN: func(t *testing.T) string { return pg.NewDatabase(t) }})
	})
}

// t0 is the tests' clock: times are given, never read, so leases end and
// messages expire when a test says so.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// open opens dsn with its clock at t0 and closes it at the end of the test.
func open(t *testing.T, dsn string) *queue.Queue {
	t.Helper()
	q, err := queue.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	q.Now = func() time.Time { return t0 }
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Error(err)
		}
	})
	return q
}

func message(sender string, rcpts ...string) *queue.Message {
	return &queue.Message{
		Sender: sender, Recipients: rcpts,
		Data:   []byte("Received: from x\r\nSubject: test\r\n\r\nhello " + sender + "\r\n"),
		Client: netip.MustParseAddr("192.0.2.7"), Helo: "client.example",
		Received: t0, Expires: t0.Add(queue.DefaultLifetime),
	}
}

func enqueue(t *testing.T, q *queue.Queue, m *queue.Message) queue.ID {
	t.Helper()
	id, err := q.Enqueue(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func claim(t *testing.T, q *queue.Queue, owner string, now time.Time, max int, domain string) []queue.Delivery {
	t.Helper()
	ds, err := q.Claim(t.Context(), owner, now, time.Minute, max, domain)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func finish(t *testing.T, q *queue.Queue, d queue.Delivery, o queue.Outcome) {
	t.Helper()
	if err := q.Finish(t.Context(), d, o); err != nil {
		t.Fatal(err)
	}
}

// states is each recipient's address and state in message id.
func states(t *testing.T, q *queue.Queue, id queue.ID) map[string]string {
	t.Helper()
	e, err := q.Show(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range e.Recipients {
		out[r.Address] = fmt.Sprintf("%s %d %q", r.State, r.Attempts, r.LastError)
	}
	return out
}

func testEnqueueClaimFinish(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	m := message("alice@sender.example", "a@one.example", "c@two.example", "b@one.example", "d@one.example")
	id := enqueue(t, q, m)
	if data, err := q.Data(t.Context(), id); err != nil || !bytes.Equal(data, m.Data) {
		t.Fatalf("Data: %q, %v; want %q", data, err, m.Data)
	}

	ds := claim(t, q, "w1", t0, 10, "")
	if len(ds) != 2 {
		t.Fatalf("claimed %d deliveries; want one per domain: %+v", len(ds), ds)
	}
	byDomain := map[string]queue.Delivery{}
	for _, d := range ds {
		byDomain[d.Domain] = d
		if d.Message != id || d.Sender != m.Sender || !d.Received.Equal(t0.Truncate(time.Microsecond)) ||
			!d.Expires.Equal(m.Expires.Truncate(time.Microsecond)) || d.Owner != "w1" || !d.LeaseUntil.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("delivery %+v", d)
		}
	}
	one, two := byDomain["one.example"], byDomain["two.example"]
	if diff := cmp.Diff([]string{"a@one.example", "b@one.example", "d@one.example"}, one.Recipients); diff != "" {
		t.Errorf("one.example's recipients (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c@two.example"}, two.Recipients); diff != "" {
		t.Errorf("two.example's recipients (-want +got):\n%s", diff)
	}
	if again := claim(t, q, "w2", t0, 10, ""); len(again) != 0 {
		t.Fatalf("claimed again while leased: %+v", again)
	}

	// A partial outcome: one delivered, one refused for good, one deferred.
	finish(t, q, one, queue.Outcome{
		Delivered: []string{"a@one.example"},
		// A reply of invalid UTF-8 and NUL is recorded, cleaned.
		Failed:   map[string]string{"b@one.example": "550 5.1.1 no such user \xff\x00"},
		Deferred: map[string]string{"d@one.example": "451 4.3.0 try later"},
		Next:     t0.Add(time.Hour),
	})
	want := map[string]string{
		"a@one.example": `delivered 1 ""`,
		"b@one.example": "failed 1 \"550 5.1.1 no such user \ufffd\ufffd\"",
		"c@two.example": `queued 0 ""`,
		"d@one.example": `deferred 1 "451 4.3.0 try later"`,
	}
	if diff := cmp.Diff(want, states(t, q, id)); diff != "" {
		t.Errorf("after the first attempt (-want +got):\n%s", diff)
	}
	// two.example is still leased by w1; one.example is not due yet.
	if ds := claim(t, q, "w2", t0.Add(time.Minute-time.Microsecond), 10, ""); len(ds) != 0 {
		t.Errorf("claimed %+v before it was due", ds)
	}
	// An outcome naming another delivery's recipient does not touch it.
	finish(t, q, two, queue.Outcome{Delivered: []string{"c@two.example", "d@one.example"}})

	ds = claim(t, q, "w2", t0.Add(time.Hour), 10, "")
	if len(ds) != 1 || ds[0].Domain != "one.example" || !slices.Equal(ds[0].Recipients, []string{"d@one.example"}) ||
		ds[0].Attempts != 1 || ds[0].LastError != "451 4.3.0 try later" {
		t.Fatalf("second claim: %+v; want d@one.example alone, after one attempt", ds)
	}
	st, err := q.Stats(t.Context())
	if err != nil || st.Messages != 1 || st.Recipients != 1 || st.Bytes != int64(len(m.Data)) || !st.Oldest.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("Stats: %+v, %v", st, err)
	}
	finish(t, q, ds[0], queue.Outcome{Delivered: []string{"d@one.example"}})

	// Nothing pending: the message is gone, data and all.
	if _, err := q.Show(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show after the last delivery: %v; want ErrNotFound", err)
	}
	if _, err := q.Data(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Data after the last delivery: %v; want ErrNotFound", err)
	}
	if st, err := q.Stats(t.Context()); err != nil || st != (queue.Stats{}) {
		t.Errorf("Stats of the empty queue: %+v, %v", st, err)
	}
	// IDs are never reused.
	if id2 := enqueue(t, q, message("x@y.example", "z@one.example")); id2 <= id {
		t.Errorf("a new message got ID %d after %d", id2, id)
	}
}

func testEnqueueChecks(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	for _, m := range []*queue.Message{
		nil,
		{Sender: "a@b.example"},
		{Recipients: []string{"nodomain"}},
		{Recipients: []string{"@b.example"}},
		{Recipients: []string{"a@"}},
		{Recipients: []string{"a\xff@b.example"}},
		{Recipients: []string{"a\x00b@b.example"}},
		{Sender: "\xff@x.example", Recipients: []string{"a@b.example"}},
		{Sender: "a\x00@x.example", Recipients: []string{"a@b.example"}},
	} {
		if id, err := q.Enqueue(t.Context(), m); err == nil {
			t.Errorf("Enqueue(%+v) = %d; want an error", m, id)
		}
	}
	// A recipient twice is stored once; domains compare without case; the
	// null sender, no data, no client and no times are fine.
	id := enqueue(t, q, &queue.Message{Recipients: []string{"u@One.Example", "v@one.example", "u@One.Example"}, Helo: "h\xff\x00"})
	e, err := q.Show(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.Message.Recipients, []string{"u@One.Example", "v@one.example"}) || e.Sender != "" ||
		e.Client.IsValid() || len(e.Data) != 0 || e.Helo != "h\uFFFD\uFFFD" || !e.Received.Equal(t0.Truncate(time.Microsecond)) ||
		!e.Expires.Equal(t0.Add(queue.DefaultLifetime).Truncate(time.Microsecond)) {
		t.Errorf("entry %+v", e)
	}
	for _, r := range e.Recipients {
		if r.Domain != "one.example" {
			t.Errorf("recipient %s at domain %q", r.Address, r.Domain)
		}
	}
	if ds := claim(t, q, "w", t0, 0, ""); len(ds) != 1 || len(ds[0].Recipients) != 2 {
		t.Errorf("claimed %+v; want one delivery of both recipients", ds)
	}

	// Many recipients (more than one INSERT writes) keep their order;
	// more than MaxRecipients are refused.
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("r%03d@d%d.example", i, i%3))
	}
	e, err = q.Show(t.Context(), enqueue(t, q, message("s@x.example", many...)))
	if err != nil || !slices.Equal(e.Message.Recipients, many) {
		t.Errorf("100 recipients read back as %v, %v", e, err)
	}
	tooMany := make([]string, queue.MaxRecipients+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("r%d@x.example", i)
	}
	if _, err := q.Enqueue(t.Context(), message("s@x.example", tooMany...)); err == nil {
		t.Errorf("a message of %d recipients was queued", len(tooMany))
	}
	if _, err := q.Claim(t.Context(), "", t0, time.Minute, 1, ""); err == nil {
		t.Error("Claim without an owner succeeded")
	}
	if _, err := q.Claim(t.Context(), "w", t0, 0, 1, ""); err == nil {
		t.Error("Claim without a lease succeeded")
	}
	ctx, cancel := contextCanceled(t)
	defer cancel()
	if _, err := q.Enqueue(ctx, message("late@x.example", "a@b.example")); err == nil {
		t.Error("Enqueue with an ended context succeeded")
	}
	if st, _ := q.Stats(t.Context()); st.Messages != 2 {
		t.Errorf("%d messages; want 2 (the canceled Enqueue stores none)", st.Messages)
	}
}

// testConcurrentEnqueue: many callers at once (group commits) each get
// their own ID, and each message is stored whole under it.
func testConcurrentEnqueue(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	const n = 600 // more than List reads in one statement
	ids := make([]queue.ID, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := message(fmt.Sprintf("s%d@x.example", i), fmt.Sprintf("r%d@d%d.example", i, i%3))
			m.Data = bytes.Repeat([]byte{byte(i)}, 1000+i)
			id, err := q.Enqueue(t.Context(), m)
			ids[i] = id
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es, err := q.List(t.Context(), queue.Filter{})
	if err != nil || len(es) != n {
		t.Fatalf("List: %d entries, %v; want %d", len(es), err, n)
	}
	for _, e := range es {
		if len(e.Recipients) != 1 || e.Recipients[0].State != queue.StateQueued {
			t.Errorf("message %d: recipients %+v", e.ID, e.Recipients)
		}
	}
	seen := map[queue.ID]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("ID %d given twice", id)
		}
		seen[id] = true
		e, err := q.Show(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Sender != fmt.Sprintf("s%d@x.example", i) || !bytes.Equal(e.Data, bytes.Repeat([]byte{byte(i)}, 1000+i)) {
			t.Errorf("message %d (caller %d) is not what that caller enqueued: sender %s, %d bytes", id, i, e.Sender, len(e.Data))
		}
	}
}

// testConcurrentClaims: several owners, each on its own connection pool
// (as separate processes would be), claim and finish until the queue is
// empty; no delivery is handed to two of them.
func testConcurrentClaims(t *testing.T, b backend) {
	dsn := b.newDSN(t)
	setup := open(t, dsn)
	const messages = 60
	for i := range messages {
		enqueue(t, setup, message("s@x.example", fmt.Sprintf("r@d%d.example", i%4), fmt.Sprintf("r@e%d.example", i%5)))
	}
	var mu sync.Mutex
	claimed := map[queue.ID]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		q := open(t, dsn)
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for range 1000 { // bounded: 120 deliveries, at least one each round until empty
				ds, err := q.Claim(t.Context(), owner, t0, time.Hour, 3, "")
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				for _, d := range ds {
					mu.Lock()
					if other, ok := claimed[d.ID]; ok {
						mu.Unlock()
						errs <- fmt.Errorf("delivery %d claimed by %s and %s", d.ID, other, owner)
						return
					}
					claimed[d.ID] = owner
					mu.Unlock()
					if err := q.Finish(t.Context(), d, queue.Outcome{Delivered: d.Recipients}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(claimed) != 2*messages {
		t.Errorf("%d deliveries claimed; want %d", len(claimed), 2*messages)
	}
	if st, err := setup.Stats(t.Context()); err != nil || st.Messages != 0 {
		t.Errorf("after every delivery: %+v, %v", st, err)
	}
}

// testLeaseExpires: a delivery whose owner died is claimed again once its
// lease has passed; the late owner's delivered recipients still count,
// its deferrals do not override the new owner's lease.
func testLeaseExpires(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	id := enqueue(t, q, message("s@x.example", "a@one.example", "b@one.example"))
	first := claim(t, q, "dead", t0, 10, "")
	if len(first) != 1 {
		t.Fatalf("claimed %+v", first)
	}
	if ds := claim(t, q, "live", t0.Add(time.Minute-time.Microsecond), 10, ""); len(ds) != 0 {
		t.Fatalf("claimed within the lease: %+v", ds)
	}
	second := claim(t, q, "live", t0.Add(time.Minute), 10, "")
	if len(second) != 1 || second[0].ID != first[0].ID || second[0].Owner != "live" {
		t.Fatalf("after the lease: %+v; want the same delivery for live", second)
	}
	// The first owner comes back late: a delivered, b deferred.
	finish(t, q, first[0], queue.Outcome{Delivered: []string{"a@one.example"}, Deferred: map[string]string{"b@one.example": "late"}, Next: t0.Add(24 * time.Hour)})
	want := map[string]string{"a@one.example": `delivered 1 ""`, "b@one.example": `queued 0 ""`}
	if diff := cmp.Diff(want, states(t, q, id)); diff != "" {
		t.Errorf("after the late finish (-want +got):\n%s", diff)
	}
	if ds := claim(t, q, "third", t0.Add(90*time.Second), 10, ""); len(ds) != 0 {
		t.Errorf("the late finish released live's lease: %+v", ds)
	}
	finish(t, q, second[0], queue.Outcome{Delivered: []string{"a@one.example", "b@one.example"}})
	if _, err := q.Show(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show: %v; want the message gone", err)
	}
}

// testReleaseLeases: the owners of live leases are listed once each;
// releasing a dead owner's leases makes its deliveries claimable at once,
// and leaves another owner's alone.
func testReleaseLeases(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	enqueue(t, q, message("s@x.example", "a@one.example"))
	enqueue(t, q, message("s@x.example", "b@two.example"))
	enqueue(t, q, message("s@x.example", "c@three.example"))
	if ds := claim(t, q, "host:1", t0, 2, ""); len(ds) != 2 {
		t.Fatalf("host:1 claimed %+v", ds)
	}
	if ds := claim(t, q, "host:2", t0, 10, ""); len(ds) != 1 {
		t.Fatalf("host:2 claimed %+v", ds)
	}
	owners, err := q.LeaseOwners(t.Context(), t0)
	if err != nil || !slices.Equal(owners, []string{"host:1", "host:2"}) {
		t.Fatalf("owners %v, %v", owners, err)
	}
	if owners, err := q.LeaseOwners(t.Context(), t0.Add(time.Hour)); err != nil || len(owners) != 0 {
		t.Errorf("owners after every lease ended: %v, %v", owners, err)
	}
	n, err := q.ReleaseLeases(t.Context(), "host:1")
	if err != nil || n != 2 {
		t.Fatalf("release: %d, %v; want 2", n, err)
	}
	// Within host:1's lease, its deliveries are free; host:2's is not.
	ds := claim(t, q, "host:3", t0.Add(time.Second), 10, "")
	if len(ds) != 2 || ds[0].Domain == "three.example" || ds[1].Domain == "three.example" {
		t.Errorf("after the release host:3 claimed %+v; want the two of host:1", ds)
	}
	if n, err := q.ReleaseLeases(t.Context(), "nobody"); n != 0 || err != nil {
		t.Errorf("release of no leases: %d, %v", n, err)
	}
}

func testOperations(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	m1 := message("one@x.example", "a@one.example", "b@two.example")
	m1.Received = t0.Add(-2 * time.Hour)
	id1 := enqueue(t, q, m1)
	m2 := message("two@x.example", "c@two.example")
	m2.Received = t0.Add(-time.Hour)
	id2 := enqueue(t, q, m2)
	id3 := enqueue(t, q, message("three@x.example", "d@three.example"))

	list := func(f queue.Filter) []queue.ID {
		t.Helper()
		es, err := q.List(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []queue.ID
		for _, e := range es {
			if e.Data != nil {
				t.Errorf("List returned message %d's data", e.ID)
			}
			ids = append(ids, e.ID)
		}
		return ids
	}
	for _, tt := range []struct {
		f    queue.Filter
		want []queue.ID
	}{
		{queue.Filter{}, []queue.ID{id1, id2, id3}},
		{queue.Filter{Limit: 2}, []queue.ID{id1, id2}},
		{queue.Filter{Domain: "two.example"}, []queue.ID{id1, id2}},
		{queue.Filter{Domain: "two.example", Limit: 1}, []queue.ID{id1}},
		{queue.Filter{Domain: "nowhere.example"}, nil},
	} {
		if got := list(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("List(%+v) = %v; want %v", tt.f, got, tt.want)
		}
	}
	e, err := q.Show(t.Context(), id1)
	if err != nil {
		t.Fatal(err)
	}
	wantEntry := &queue.Entry{
		Message: queue.Message{ID: id1, Sender: m1.Sender, Recipients: m1.Recipients, Data: m1.Data, Client: m1.Client, Helo: m1.Helo,
			Received: m1.Received.Truncate(time.Microsecond), Expires: m1.Expires.Truncate(time.Microsecond)},
		Recipients: []queue.RecipientState{
			{Address: "a@one.example", Domain: "one.example", State: queue.StateQueued, Next: m1.Received.Truncate(time.Microsecond)},
			{Address: "b@two.example", Domain: "two.example", State: queue.StateQueued, Next: m1.Received.Truncate(time.Microsecond)},
		},
	}
	if diff := cmp.Diff(wantEntry, e, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Show (-want +got):\n%s", diff)
	}

	// Hold: not claimed, not pending, counted held; Release undoes it.
	if err := q.Hold(t.Context(), id2); err != nil {
		t.Fatal(err)
	}
	if e, _ := q.Show(t.Context(), id2); e == nil || !e.Held {
		t.Errorf("Show after Hold: %+v", e)
	}
	if st, err := q.Stats(t.Context()); err != nil || st.Messages != 3 || st.Held != 1 || st.Recipients != 4 ||
		!st.Oldest.Equal(m1.Received.Truncate(time.Microsecond)) || st.Bytes != int64(len(m1.Data)+len(m2.Data)+len(m1.Data)-len("one")+len("three")) {
		t.Errorf("Stats: %+v, %v", st, err)
	}
	ds := claim(t, q, "w", t0, 10, "two.example")
	if len(ds) != 1 || ds[0].Message != id1 {
		t.Fatalf("claim at two.example with message %d held: %+v", id2, ds)
	}
	finish(t, q, ds[0], queue.Outcome{Deferred: map[string]string{"b@two.example": "421 busy"}, Next: t0.Add(time.Hour)})
	if p, err := q.Pending(t.Context()); err != nil || !slices.Equal(p, []string{"one.example", "three.example", "two.example"}) {
		t.Errorf("Pending: %v, %v", p, err)
	}
	if err := q.Release(t.Context(), id2); err != nil {
		t.Fatal(err)
	}
	if ds := claim(t, q, "w", t0, 10, "two.example"); len(ds) != 1 || ds[0].Message != id2 {
		t.Errorf("claim after Release: %+v; want message %d", ds, id2)
	}

	// Flush: the deferred delivery of message 1 is due now.
	if ds := claim(t, q, "w", t0, 10, "two.example"); len(ds) != 0 {
		t.Fatalf("deferred delivery claimed before its time: %+v", ds)
	}
	if err := q.Flush(t.Context(), id1); err != nil {
		t.Fatal(err)
	}
	if ds := claim(t, q, "w", t0, 10, "two.example"); len(ds) != 1 || ds[0].Message != id1 || ds[0].Attempts != 1 {
		t.Errorf("claim after Flush: %+v; want message %d", ds, id1)
	}

	// Delete: gone, its deliveries too.
	if err := q.Delete(t.Context(), id3); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Show(t.Context(), id3); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show after Delete: %v", err)
	}
	if ds := claim(t, q, "w", t0, 10, "three.example"); len(ds) != 0 {
		t.Errorf("claimed a deleted message's delivery: %+v", ds)
	}
	if got := list(queue.Filter{}); !slices.Equal(got, []queue.ID{id1, id2}) {
		t.Errorf("List after Delete: %v", got)
	}
}

func testNotFound(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	const missing = queue.ID(424242)
	ctx := t.Context()
	for name, err := range map[string]error{
		"Flush":   q.Flush(ctx, missing),
		"Hold":    q.Hold(ctx, missing),
		"Release": q.Release(ctx, missing),
		"Delete":  q.Delete(ctx, missing),
	} {
		if !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s: %v; want ErrNotFound", name, err)
		}
	}
	if _, err := q.Show(ctx, missing); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show: %v; want ErrNotFound", err)
	}
	if _, err := q.Data(ctx, missing); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Data: %v; want ErrNotFound", err)
	}
	// Finishing a delivery of a deleted message does nothing.
	id := enqueue(t, q, message("s@x.example", "a@one.example"))
	ds := claim(t, q, "w", t0, 1, "")
	if err := q.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := q.Finish(ctx, ds[0], queue.Outcome{Delivered: ds[0].Recipients, Notify: message("", "s@x.example")}); err != nil {
		t.Errorf("Finish after Delete: %v", err)
	}
}

// testExpired: a message past its lifetime is handed out for its notice;
// the failure and the notice commit together, once, even when two nodes
// both saw it expired.
func testExpired(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	early := message("s1@x.example", "a@one.example", "b@two.example")
	early.Expires = t0.Add(time.Hour)
	idEarly := enqueue(t, q, early)
	late := message("s2@x.example", "c@one.example")
	late.Expires = t0.Add(2 * time.Hour)
	enqueue(t, q, late)
	held := message("s3@x.example", "d@one.example")
	held.Expires = t0
	if err := q.Hold(t.Context(), enqueue(t, q, held)); err != nil {
		t.Fatal(err)
	}

	ds, err := q.Expired(t.Context(), t0.Add(90*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var domains []string
	for _, d := range ds {
		if d.Message != idEarly {
			t.Errorf("expired: message %d, %+v", d.Message, d)
		}
		domains = append(domains, d.Domain)
	}
	sort.Strings(domains)
	if !slices.Equal(domains, []string{"one.example", "two.example"}) {
		t.Fatalf("expired deliveries at %v; want message %d's two", domains, idEarly)
	}
	// A delivery leased now is not handed out.
	if got := claim(t, q, "w", t0.Add(90*time.Minute), 10, "one.example"); len(got) != 2 {
		t.Fatalf("claimed %+v", got)
	}
	if again, _ := q.Expired(t.Context(), t0.Add(90*time.Minute), 10); len(again) != 1 || again[0].Domain != "two.example" {
		t.Errorf("Expired with one.example leased: %+v", again)
	}

	notice := func() *queue.Message { return message("", "s1@x.example") }
	d := ds[0]
	fail := queue.Outcome{Failed: map[string]string{}, Notify: notice()}
	for _, r := range d.Recipients {
		fail.Failed[r] = "expired"
	}
	finish(t, q, d, fail)
	finish(t, q, d, fail) // a second node with the same view: no second notice
	notices, err := q.List(t.Context(), queue.Filter{Domain: "x.example"})
	if err != nil || len(notices) != 1 || notices[0].Sender != "" {
		t.Errorf("notices queued: %+v, %v; want one from the null sender", notices, err)
	}
}

func testPendingAndFlushDomain(t *testing.T, b backend) {
	q := open(t, b.newDSN(t))
	enqueue(t, q, message("s@x.example", "a@b.example", "c@a.example"))
	enqueue(t, q, message("s@x.example", "d@a.example"))
	if p, err := q.Pending(t.Context()); err != nil || !slices.Equal(p, []string{"a.example", "b.example"}) {
		t.Errorf("Pending: %v, %v", p, err)
	}
	for _, d := range claim(t, q, "w", t0, 0, "") {
		finish(t, q, d, queue.Outcome{Next: t0.Add(time.Hour)}) // every recipient deferred
	}
	if ds := claim(t, q, "w", t0, 0, ""); len(ds) != 0 {
		t.Fatalf("claimed deferred deliveries: %+v", ds)
	}
	n, err := q.FlushDomain(t.Context(), "a.example")
	if err != nil || n != 2 {
		t.Errorf("FlushDomain: %d, %v; want 2", n, err)
	}
	ds := claim(t, q, "w", t0, 0, "")
	if len(ds) != 2 || ds[0].Domain != "a.example" || ds[1].Domain != "a.example" {
		t.Errorf("after FlushDomain(a.example): %+v", ds)
	}
	if n, err := q.FlushDomain(t.Context(), "nowhere.example"); err != nil || n != 0 {
		t.Errorf("FlushDomain(nowhere): %d, %v", n, err)
	}
}

// testReopen: what was committed is there after closing and reopening.
func testReopen(t *testing.T, b backend) {
	dsn := b.newDSN(t)
	q, err := queue.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	m := message("s@x.example", "a@one.example")
	id, err := q.Enqueue(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err := open(t, dsn).Data(t.Context(), id); err != nil || !bytes.Equal(data, m.Data) {
		t.Errorf("after reopening: %q, %v", data, err)
	}
}

func contextCanceled(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx, cancel
}

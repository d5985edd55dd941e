package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// waitPending waits until n Enqueue calls are pending (bounded: 10s).
func waitPending(t *testing.T, q *Queue, n int) {
	t.Helper()
	for range 1000 {
		q.mu.Lock()
		got := len(q.pending)
		q.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d Enqueue calls never became pending", n)
}

// TestGroupCommit: the calls that arrive while a commit runs (here: while
// the test holds the write turn) are committed together, in one
// transaction, and each gets its own message's ID. A call whose context
// ends while it waits stores nothing.
func TestGroupCommit(t *testing.T) {
	q, err := Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	q.write <- struct{}{} // a commit in progress
	const n = 10
	ids := make([]ID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ids[i], errs[i] = q.Enqueue(t.Context(), &Message{Sender: fmt.Sprintf("s%d@x.example", i), Recipients: []string{"r@d.example"}})
		})
	}
	waitPending(t, q, n)
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := q.Enqueue(ctx, &Message{Sender: "late@x.example", Recipients: []string{"r@d.example"}})
		gaveUp <- err
	}()
	waitPending(t, q, n+1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("the canceled call returned %v; want context.Canceled", err)
	}
	<-q.write // the commit ends
	wg.Wait()

	if g := q.groups.Load(); g != 1 {
		t.Errorf("%d transactions for %d concurrent calls; want 1", g, n)
	}
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		e, err := q.Show(t.Context(), id)
		if err != nil || e.Sender != fmt.Sprintf("s%d@x.example", i) {
			t.Errorf("call %d got ID %d: %+v, %v", i, id, e, err)
		}
	}
	if st, err := q.Stats(t.Context()); err != nil || st.Messages != n {
		t.Errorf("Stats: %+v, %v; want %d messages (none from the canceled call)", st, err, n)
	}
}

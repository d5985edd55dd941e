package scan

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadlines checks the shared deadlines on a fake clock: attempts in
// one grain share a context, each gets at least the timeout and at most a
// grain more, a context ends at its deadline, and the run's end ends all.
func TestDeadlines(t *testing.T) {
	for _, tc := range []struct {
		timeout, grain time.Duration
	}{
		{time.Second, 10 * time.Millisecond},
		{30 * time.Second, maxGrain},
		{200 * time.Millisecond, 2 * time.Millisecond},
	} {
		t.Run(tc.timeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancel(context.Background())
				d := newDeadlines(parent, tc.timeout)
				start := time.Now()
				first := d.get()
				time.Sleep(tc.grain - time.Nanosecond)
				if same := d.get(); same != first {
					t.Fatalf("an attempt %v later, within the grain, got a context of its own", tc.grain-time.Nanosecond)
				}
				if dl, ok := first.Deadline(); !ok || !dl.Equal(start.Add(tc.grain+tc.timeout)) {
					t.Errorf("deadline %v (set %v), want start + grain + timeout = %v", dl, ok, start.Add(tc.grain+tc.timeout))
				}
				time.Sleep(time.Nanosecond)
				second := d.get()
				if second == first {
					t.Fatal("an attempt a grain later shares the first grain's context")
				}
				// The last attempt of the first grain started a nanosecond
				// before its end: it gets a grain of slack at most; the
				// first one got the grain exactly.
				if dl, _ := second.Deadline(); dl.Sub(time.Now()) < tc.timeout || dl.Sub(time.Now()) > tc.timeout+tc.grain {
					t.Errorf("the second grain's deadline is %v away, want between %v and %v", dl.Sub(time.Now()), tc.timeout, tc.timeout+tc.grain)
				}
				time.Sleep(tc.timeout - time.Nanosecond)
				if first.Err() != nil {
					t.Fatalf("the first context ended %v after the start, before its timeout and grain", time.Since(start))
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				if !errors.Is(first.Err(), context.DeadlineExceeded) {
					t.Errorf("the first context at its deadline: %v, want DeadlineExceeded", first.Err())
				}
				if second.Err() != nil {
					t.Errorf("the second context ended with the first: %v", second.Err())
				}
				cancel()
				if !errors.Is(second.Err(), context.Canceled) {
					t.Errorf("the second context after the run's end: %v, want Canceled", second.Err())
				}
				d.stop()
			})
		})
	}
}

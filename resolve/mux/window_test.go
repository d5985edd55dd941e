package mux

import (
	"testing"
	"time"
)

// TestWindowUndo: a cut is undone when every datagram counted lost since it
// was answered twice (late replies), and stays when one was lost for real.
func TestWindowUndo(t *testing.T) {
	const rto = 50 * time.Millisecond
	t0 := time.Unix(1e9, 0)
	check := func(w *window, cwnd, ssthresh float64) {
		t.Helper()
		if w.cwnd != cwnd || w.ssthresh != ssthresh {
			t.Fatalf("window %v, ssthresh %v; want %v, %v", w.cwnd, w.ssthresh, cwnd, ssthresh)
		}
	}

	w := &window{cwnd: 200, ssthresh: 1000}
	w.lost(t0, rto)
	check(w, 100, 100)
	w.lost(t0.Add(rto/2), rto) // the same loss event: no second cut
	check(w, 100, 100)
	w.cwnd = 110 // grown meanwhile
	w.needless()
	check(w, 110, 100) // one of the two proven needless
	w.needless()
	check(w, 200, 1000) // both: undone
	w.needless()        // a late reply with no cut pending changes nothing
	check(w, 200, 1000)

	// A real loss in the event: one of two datagrams never answered twice.
	w.lost(t0.Add(2*rto), rto)
	w.lost(t0.Add(2*rto+time.Millisecond), rto)
	w.needless()
	check(w, 100, 100)
	// The next event starts its own count: its datagram proven needless
	// brings back the window before it, not the one before the first.
	w.cwnd = 120
	w.lost(t0.Add(4*rto), rto)
	check(w, 60, 60)
	w.needless()
	check(w, 120, 100)

	// The floor holds.
	w = &window{cwnd: 10, ssthresh: 10}
	w.lost(t0, rto)
	check(w, minWindow, minWindow)
}

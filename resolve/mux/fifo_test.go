package mux

import "testing"

// TestFIFOBounded: a queue that never empties keeps the order and stays
// about as long as what it holds, not as long as what went through it
// (the window's queue of a server slower than the lookups started).
func TestFIFOBounded(t *testing.T) {
	var q fifo[int]
	next, want := 0, 0
	for range 10 {
		q.push(next)
		next++
	}
	for range 100_000 {
		q.push(next)
		next++
		if got := q.pop(); got != want {
			t.Fatalf("popped %d, want %d", got, want)
		}
		want++
	}
	if q.len() != 10 {
		t.Errorf("len %d, want 10", q.len())
	}
	if c := cap(q.items); c > 64 {
		t.Errorf("capacity %d after 100,000 items through a queue of 10", c)
	}
	for q.len() > 0 {
		if got := q.pop(); got != want {
			t.Fatalf("popped %d, want %d", got, want)
		}
		want++
	}
}

package route

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOverlap: the ready calls run on the caller's goroutine, one after
// another, before the others start; the others all run at once (each waits
// until every one of them has started, which would never happen if they
// ran one after another).
func TestOverlap(t *testing.T) {
	const n = 7
	ready := func(i int) bool { return i%2 == 0 } // 0, 2, 4, 6
	var waiting sync.WaitGroup
	waiting.Add(3) // 1, 3, 5
	var ran [n]atomic.Bool
	var readyRunning atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		overlap(n, ready, func(i int) {
			if ready(i) {
				if readyRunning.Add(1) != 1 {
					t.Errorf("ready call %d ran beside another", i)
				}
				for j := 1; j < n; j += 2 {
					if ran[j].Load() {
						t.Errorf("ready call %d ran after call %d started", i, j)
					}
				}
				readyRunning.Add(-1)
			} else {
				waiting.Done()
				waiting.Wait()
			}
			ran[i].Store(true)
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("overlap did not run the calls that wait at the same time")
	}
	for i := range n {
		if !ran[i].Load() {
			t.Errorf("call %d did not run", i)
		}
	}
}

package proctune

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// policies returns the scheduling policy of each thread of the process.
func policies(t *testing.T) map[int]uint32 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint32{}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil {
			out[tid] = attr.Policy
		}
	}
	return out
}

// newThreads makes the runtime start n more threads: each goroutine locks
// its thread and holds it until release is closed.
func newThreads(n int) (release func()) {
	var started, done sync.WaitGroup
	stop := make(chan struct{})
	for range n {
		started.Add(1)
		done.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			started.Done()
			<-stop
		})
	}
	started.Wait()
	return func() { close(stop); done.Wait() }
}

// TestBatchSched: every thread is batch after Batch, threads started
// later too (they inherit it), restore brings them all back to the normal
// policy, and a process that is not under the normal policy is left alone.
func TestBatchSched(t *testing.T) {
	if attr, err := unix.SchedGetAttr(0, 0); err != nil || attr.Policy != unix.SCHED_NORMAL {
		t.Fatalf("the test process should start under SCHED_OTHER: %v, %v", attr, err)
	}
	restore, err := Batch()
	if err != nil {
		t.Fatal(err)
	}
	release := newThreads(4)
	got := policies(t)
	if len(got) < 5 {
		t.Fatalf("%d threads, want at least the 4 started and the main one", len(got))
	}
	for tid, p := range got {
		if p != unix.SCHED_BATCH {
			t.Errorf("thread %d: policy %d, want SCHED_BATCH (%d)", tid, p, unix.SCHED_BATCH)
		}
	}
	release()
	restore()
	for tid, p := range policies(t) {
		if p != unix.SCHED_NORMAL {
			t.Errorf("after restore: thread %d policy %d, want SCHED_OTHER", tid, p)
		}
	}

	// Started as a batch job (chrt -b): nothing to change, nothing to
	// restore.
	if err := moveThreads(unix.SCHED_NORMAL, unix.SCHED_BATCH); err != nil {
		t.Fatal(err)
	}
	defer moveThreads(unix.SCHED_BATCH, unix.SCHED_NORMAL)
	restore, err = Batch()
	if err != nil {
		t.Fatal(err)
	}
	restore()
	for tid, p := range policies(t) {
		if p != unix.SCHED_BATCH {
			t.Errorf("a batch process: thread %d changed to policy %d", tid, p)
		}
	}
}

package proctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestNextProcs: one thread below procsLow cores, every core again above
// procsHigh on one, and no change in the gap or at the bounds.
func TestNextProcs(t *testing.T) {
	for _, tt := range []struct {
		cur, max int
		cores    float64
		want     int
	}{
		{2, 2, 0.5, 1},  // through a resolver: one thread
		{4, 4, 0.69, 1}, // just below procsLow
		{2, 2, 0.7, 2},  // at procsLow: stays
		{2, 2, 1.3, 2},  // straight at a fast server: needs them all
		{1, 2, 0.95, 2}, // one thread is short of CPU
		{1, 8, 0.91, 8}, // back to all, not one more
		{1, 2, 0.9, 1},  // at procsHigh: stays
		{1, 2, 0.5, 1},  // idle on one: stays
		{2, 2, 0.8, 2},  // in the gap: stays
		{1, 2, 0.8, 1},  // in the gap: stays
	} {
		if got := nextProcs(tt.cur, tt.max, tt.cores); got != tt.want {
			t.Errorf("nextProcs(%d, %d, %.2f) = %d, want %d", tt.cur, tt.max, tt.cores, got, tt.want)
		}
	}
}

// TestTuneProcs: an idle process drops to one thread within a couple of
// periods, a busy one goes back to every core, stop restores the default,
// and GOMAXPROCS in the environment turns it off.
func TestTuneProcs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: Procs does nothing")
	}
	max := runtime.GOMAXPROCS(0)
	defer runtime.SetDefaultGOMAXPROCS()
	waitProcs := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) != want; {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS %d, want %d", runtime.GOMAXPROCS(0), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	stop := Procs(func(string) string { return "" }, 50*time.Millisecond)
	waitProcs(1) // the test sleeps: far below procsLow
	busy := make(chan struct{})
	go func() {
		for {
			select {
			case <-busy:
				return
			default:
			}
		}
	}()
	waitProcs(max) // a spinning goroutine uses the whole thread
	close(busy)
	stop()
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Errorf("after stop: GOMAXPROCS %d, want the default %d", got, max)
	}

	stop = Procs(func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Errorf("with GOMAXPROCS in the environment: changed to %d", got)
	}
	stop()
}

// TestGC: a scan raises GOGC and sets a soft memory limit for its
// length, restores both after, and leaves them alone when the environment
// sets either.
func TestGC(t *testing.T) {
	percent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(limit)

	restore := GC(func(string) string { return "" })
	if got := debug.SetGCPercent(scanGCPercent); got != scanGCPercent {
		t.Errorf("GOGC during a scan %d, want %d", got, scanGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != scanMemoryLimit {
		t.Errorf("memory limit during a scan %d, want %d", got, scanMemoryLimit)
	}
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after the scan %d, want 100 restored", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit after the scan %d, want none restored", got)
	}

	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		restore := GC(func(k string) string {
			if k == env {
				return "200"
			}
			return ""
		})
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("with %s set: GOGC changed to %d", env, got)
		}
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("with %s set: memory limit changed to %d", env, got)
		}
		restore()
	}
}

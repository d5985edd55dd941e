package proctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"testing/synctest"
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

// cpuClock is a made-up process CPU clock for Procs: it runs at rate
// cores of the (synctest) wall clock, so the test decides how busy the
// process looks whatever else the machine is doing.
type cpuClock struct {
	mu   sync.Mutex
	rate float64
	at   time.Time
	used time.Duration
}

func (c *cpuClock) advance() {
	now := time.Now()
	c.used += time.Duration(float64(now.Sub(c.at)) * c.rate)
	c.at = now
}

func (c *cpuClock) read() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	return c.used, true
}

func (c *cpuClock) set(rate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	c.rate = rate
}

// TestTuneProcs: an idle process drops to one thread within a couple of
// periods, a busy one goes back to every core, stop restores the default,
// and GOMAXPROCS in the environment turns it off. The CPU use is made up
// (cpuClock) and time is synctest's, so the machine's load cannot change
// the outcome.
func TestTuneProcs(t *testing.T) {
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	defer runtime.SetDefaultGOMAXPROCS()
	const max = 4 // whatever the machine has: Procs works from the current value
	noEnv := func(string) string { return "" }

	synctest.Test(t, func(t *testing.T) {
		runtime.GOMAXPROCS(max)
		clk := &cpuClock{rate: 0.1, at: time.Now()}
		stop := procs(noEnv, 50*time.Millisecond, clk.read)
		time.Sleep(120 * time.Millisecond) // two periods at a tenth of a core
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Errorf("idle: GOMAXPROCS %d, want 1", got)
		}
		clk.set(0.8) // in the gap: stays on one
		time.Sleep(120 * time.Millisecond)
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Errorf("at 0.8 cores on one thread: GOMAXPROCS %d, want 1", got)
		}
		clk.set(1.0) // one thread is short of CPU
		time.Sleep(120 * time.Millisecond)
		if got := runtime.GOMAXPROCS(0); got != max {
			t.Errorf("busy: GOMAXPROCS %d, want %d", got, max)
		}
		stop()
		if got := runtime.GOMAXPROCS(0); got != def {
			t.Errorf("after stop: GOMAXPROCS %d, want the default %d", got, def)
		}

		runtime.GOMAXPROCS(max)
		clk.set(0.1)
		stop = procs(func(k string) string {
			if k == "GOMAXPROCS" {
				return "2"
			}
			return ""
		}, 10*time.Millisecond, clk.read)
		time.Sleep(100 * time.Millisecond)
		if got := runtime.GOMAXPROCS(0); got != max {
			t.Errorf("with GOMAXPROCS in the environment: changed to %d", got)
		}
		stop()
	})
}

// TestGC: a scan raises GOGC and sets a soft memory limit for its
// length, restores both after, and leaves them alone when the environment
// sets either.
func TestGC(t *testing.T) {
	percent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(limit)

	const scanMemoryLimit = 48 << 20
	restore := GC(func(string) string { return "" }, scanMemoryLimit)
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
		}, 48<<20)
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("with %s set: GOGC changed to %d", env, got)
		}
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("with %s set: memory limit changed to %d", env, got)
		}
		restore()
	}
}

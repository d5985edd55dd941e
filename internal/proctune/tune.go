// Package proctune sets the process up for a long bulk run (a scan): it
// runs for hours doing one thing, so it tunes the Go runtime's garbage
// collector (GC) and GOMAXPROCS (Procs) for it, runs as a batch job under
// Linux's scheduler (Batch, sched(7)), and puts everything back when it
// ends. The environment's GOGC, GOMEMLIMIT and GOMAXPROCS win over these.
// Each call returns the function that restores what it changed.
package proctune

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// scanGCPercent is GOGC during a scan (see GC).
const scanGCPercent = 400

// GC trades memory for CPU for the length of a scan, within a budget, and
// returns the function that restores the settings. A scan's live heap is
// small and flat (its bounded cache, the sockets' buffers, a window of
// entries: some 7-11 MB at the defaults, from 100k to 1M domains) while
// it allocates for every reply and every line, some 3 KB a domain,
// so at the default GOGC=100 the collector runs every few megabytes. With
// GOGC=400 it runs a quarter as often (docs/performance.md), and the soft
// memory limit (runtime/debug.SetMemoryLimit) makes it run sooner when
// the heap would otherwise pass limit: the garbage between collections is
// what the budget leaves beside the live heap.
//
// The limit is not what keeps a scan small; what it holds is (its cache is
// bounded by bytes, its window by its concurrency). A limit near the live
// heap makes the collector run back to back: before the cache was bounded
// by bytes, a 40 MiB limit over a live heap of 26 MB doubled the CPU a
// scan used. So the caller works limit out from the bounds of what the
// scan holds, with room for garbage.
//
// The environment's GOGC or GOMEMLIMIT, when set, win: nothing changes.
func GC(getenv func(string) string, limit int64) (restore func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	percent := debug.SetGCPercent(scanGCPercent)
	old := debug.SetMemoryLimit(limit)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(old)
	}
}

// Bounds of the CPU a scan uses, in cores, at which Procs changes
// GOMAXPROCS: below procsLow on several threads it runs on one; above
// procsHigh on one (it is short of CPU) it runs on all again. The gap
// keeps it from going back and forth.
const (
	procsLow  = 0.7
	procsHigh = 0.9
)

// nextProcs is Procs' decision for the next period: the GOMAXPROCS to
// use after a period at cur (at most max) in which the process used cores
// of CPU on average.
func nextProcs(cur, max int, cores float64) int {
	switch {
	case cur > 1 && cores < procsLow:
		return 1
	case cur == 1 && cores > procsHigh:
		return max
	}
	return cur
}

// Procs runs the scan on one thread while it needs less than a core,
// and on every core when it needs more; it returns the function that
// stops it and restores the default. A scan through a recursive resolver
// waits for it most of the time: each reply wakes the scan for a few
// microseconds, and the Go scheduler, with an idle processor (P) to hand
// the woken goroutines to, wakes and parks an OS thread for each of them:
// a large share of the scan's CPU (docs/performance.md), which the
// resolver on the same machine then lacks. Scanning a fast
// authoritative server directly needs more than a core, and gets them.
// Every period it reads the process's CPU time (getrusage(2)) and applies
// nextProcs. With GOMAXPROCS set in the environment, one CPU, or a system
// that does not tell a process its CPU time (cpuTime), it does nothing.
func Procs(getenv func(string) string, period time.Duration) (stop func()) {
	return procs(getenv, period, cpuTime)
}

// procs is Procs with the process's CPU clock passed in, so a test can
// drive the decisions with made-up CPU use instead of depending on what
// else the machine runs.
func procs(getenv func(string) string, period time.Duration, cpuTime func() (time.Duration, bool)) (stop func()) {
	max := runtime.GOMAXPROCS(0)
	lastCPU, ok := cpuTime()
	if getenv("GOMAXPROCS") != "" || max == 1 || !ok {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		last, cur := time.Now(), max
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				used, ok := cpuTime()
				if !ok {
					continue
				}
				cores := (used - lastCPU).Seconds() / now.Sub(last).Seconds()
				last, lastCPU = now, used
				if next := nextProcs(cur, max, cores); next != cur {
					runtime.GOMAXPROCS(next)
					cur = next
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		// Back to the runtime's own choice, which follows the CPU limit
		// of the container, rather than a fixed number.
		runtime.SetDefaultGOMAXPROCS()
	}
}

//go:build !unix

package main

import "time"

// cpuTime reports false: without getrusage(2) the process does not read
// its CPU time, and tuneProcs leaves GOMAXPROCS alone.
func cpuTime() (time.Duration, bool) { return 0, false }

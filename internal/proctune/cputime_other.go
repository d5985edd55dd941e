//go:build !unix

package proctune

import "time"

// cpuTime reports false: without getrusage(2) the process does not read
// its CPU time, and Procs leaves GOMAXPROCS alone.
func cpuTime() (time.Duration, bool) { return 0, false }

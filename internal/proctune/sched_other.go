//go:build !linux

package proctune

// Batch does nothing: SCHED_BATCH is Linux's (sched(7)).
func Batch() (restore func(), err error) { return func() {}, nil }

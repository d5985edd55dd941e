//go:build !linux

package main

// batchSched does nothing: SCHED_BATCH is Linux's (sched(7)).
func batchSched() (restore func(), err error) { return func() {}, nil }

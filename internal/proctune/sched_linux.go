package proctune

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Batch moves the process's threads from the normal policy
// (SCHED_OTHER) to SCHED_BATCH (sched(7)) for the length of a scan, and
// returns the function that moves them back. A batch thread that wakes up
// does not preempt the thread running on its CPU; it waits for that one to
// sleep or for the scheduler's tick. A scan through a recursive resolver on
// the same machine is woken by every few replies: under the normal policy
// each wake-up took the CPU from the resolver in the middle of its work, so
// both paid a switch and cold caches, and the scan read its replies one or
// two at a time. As a batch job it reads them a dozen at a time, when the
// resolver pauses, and both spend less CPU per domain; straight at an
// authoritative server, which needs no waking, nothing changes
// (docs/performance.md).
//
// Only a process that runs under the normal policy is changed: one started
// under another (chrt(1): batch, idle, real time) keeps it, and restore does
// nothing. New threads inherit the policy of the thread that creates them,
// so once every thread is moved the runtime's later ones are batch too;
// the threads created while it moves them are caught by going over the list
// again until a pass finds none left.
func Batch() (restore func(), err error) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return func() {}, fmt.Errorf("sched_getattr: %w", err)
	}
	if attr.Policy != unix.SCHED_NORMAL {
		return func() {}, nil
	}
	restore = func() { _ = moveThreads(unix.SCHED_BATCH, unix.SCHED_NORMAL) }
	if err := moveThreads(unix.SCHED_NORMAL, unix.SCHED_BATCH); err != nil {
		restore()
		return func() {}, err
	}
	return restore, nil
}

// moveThreads sets every thread of the process that has policy from to
// policy to, keeping its nice value, until a pass over /proc/self/task
// finds none left. A thread that ends meanwhile (ESRCH) is skipped.
func moveThreads(from, to uint32) error {
	// A pass catches the threads created during the one before it; the
	// runtime creates a few threads at most, so a handful of passes ends
	// it.
	const maxPasses = 8
	for range maxPasses {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		moved := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			if err != nil {
				return fmt.Errorf("sched_getattr %d: %w", tid, err)
			}
			if attr.Policy != from {
				continue
			}
			attr.Policy = to
			if err := unix.SchedSetAttr(tid, attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setattr %d: %w", tid, err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return errors.New("threads kept appearing while their policy was being set")
}

//go:build unix

package relay

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process pid exists on this host: signal
// 0 checks without sending anything (kill(2)); EPERM means it exists
// under another user.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

//go:build !linux

package peers

import "syscall"

// sysProcAttr has nothing to add outside Linux: peers are stopped at test
// cleanup only.
func sysProcAttr() *syscall.SysProcAttr { return nil }

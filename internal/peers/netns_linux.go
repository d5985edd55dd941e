package peers

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// enterNetns moves the calling thread, which the caller has locked, into
// the network namespace whose handle ip netns add mounted at path
// (setns(2)), and returns the function that moves it back.
func enterNetns(path string) (restore func() error, err error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	target, err := os.Open(path)
	if err != nil {
		self.Close()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		self.Close()
		return nil, fmt.Errorf("setns %s: %w", path, err)
	}
	return func() error {
		defer self.Close()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns back: %w", err)
		}
		return nil
	}, nil
}

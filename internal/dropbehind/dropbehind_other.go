//go:build !linux

package dropbehind

import "os"

// Elsewhere than Linux the Writer only writes: sync_file_range(2) is
// Linux's own.
const supported = false

func startWriteback(*os.File, int64, int64) (bool, error) { return false, nil }

func dropWritten(*os.File, int64, int64) error { return nil }

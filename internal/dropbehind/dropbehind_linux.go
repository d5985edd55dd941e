package dropbehind

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

const supported = true

// startWriteback starts writing [off, off+n) back to the disk without
// waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE). It reports false
// when the file system cannot do it (ESPIPE, EINVAL, ENOSYS,
// EOPNOTSUPP): the Writer then stops trying.
func startWriteback(f *os.File, off, n int64) (bool, error) {
	err := syncRange(f, off, n, unix.SYNC_FILE_RANGE_WRITE)
	if unsupported(err) {
		return false, nil
	}
	return true, err
}

// dropWritten waits until [off, off+n) is on the disk, then tells the
// kernel it will not be read again, so its now clean pages are freed
// (posix_fadvise(2), POSIX_FADV_DONTNEED). The advice's own error is
// ignored: it is only advice.
func dropWritten(f *os.File, off, n int64) error {
	err := syncRange(f, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	if err != nil && !unsupported(err) {
		return err
	}
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED) })
	}
	return nil
}

func syncRange(f *os.File, off, n int64, flags int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SyncFileRange(int(fd), off, n, flags) }); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: serr}
	}
	return nil
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ESPIPE) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}

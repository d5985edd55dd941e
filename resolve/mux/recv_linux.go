package mux

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// mmsghdr is struct mmsghdr of recvmmsg(2): one message header and the
// length the kernel received into it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// datagramReader reads a connected UDP socket's datagrams in batches with
// recvmmsg(2), which golang.org/x/net/ipv4's ReadBatch also uses; this one
// exists for two things that ReadBatch cannot do. It asks for no source
// addresses (the socket is connected, so the kernel already dropped
// datagrams from anyone but the server; ReadBatch allocates and parses an
// address per datagram). And after a batch shorter than its buffers, it
// waits for the poller's next readiness report before reading again, where
// ReadBatch reads once more and gets EAGAIN: behind a recursive resolver,
// whose replies come one or two at a time, that call was one system call
// per reply for nothing. Go's poller is edge-triggered, so a datagram that
// arrives after a read always wakes the reader.
type datagramReader struct {
	conn *net.UDPConn
	hdrs []mmsghdr // each points at its buffer's iovec
	bufs [][]byte
	view [][]byte // the datagrams of the last batch, in bufs
}

// newDatagramReader returns a reader of batches of up to batch datagrams of
// up to size bytes.
func newDatagramReader(c *net.UDPConn, batch, size int) *datagramReader {
	r := &datagramReader{conn: c, hdrs: make([]mmsghdr, batch), bufs: make([][]byte, batch), view: make([][]byte, batch)}
	iovs := make([]unix.Iovec, batch)
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, size)
		iovs[i].Base = &r.bufs[i][0]
		iovs[i].SetLen(size)
		r.hdrs[i].hdr.Iov = &iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	return r
}

// run reads until the socket is closed or fails, calling batch with each
// batch of datagrams (valid until it returns), and refused for each ICMP
// destination unreachable reported on the socket (unreachable), after
// which it goes on reading. It returns the error that ended it (net.ErrClosed once
// the socket is closed).
func (r *datagramReader) run(batch func([][]byte), refused func(error)) error {
	rc, err := r.conn.SyscallConn()
	if err != nil {
		return err
	}
	var failed error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
				uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case errno == syscall.EAGAIN:
				return false // wait for readiness
			case errno == syscall.EINTR:
				continue
			case upstream.Unreachable(errno):
				refused(errno)
				continue
			case errno != 0:
				failed = errno
				return true
			}
			for i := range int(n) {
				r.view[i] = r.bufs[i][:r.hdrs[i].n]
			}
			batch(r.view[:n])
			if int(n) < len(r.hdrs) {
				// The socket was empty a moment ago: wait for the
				// poller rather than read again for EAGAIN.
				return false
			}
		}
	})
	if err != nil {
		return err
	}
	return failed
}

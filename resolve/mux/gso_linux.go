package mux

import (
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (GSO, Linux 4.18): one sendmsg(2) with
// a UDP_SEGMENT control message hands the kernel a buffer of datagrams of
// one size back to back, and it cuts them apart after the path that
// sendmmsg(2) walks once per datagram (building the packet, routing, the
// loopback device or the driver), so a datagram costs a fraction of the
// CPU (docs/performance.md). It is what QUIC stacks send with; no DNS
// library offers it.

// maxSegments is how many datagrams one GSO send carries at most (the
// kernel's UDP_MAX_SEGMENTS was 64 until Linux 6.x raised it).
const maxSegments = 64

// udpGSO reports whether the kernel of c segments UDP sends (it knows the
// UDP_SEGMENT socket option).
func udpGSO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	if err := rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	}); err != nil {
		return false
	}
	return ok
}

// sendSegments sends b, datagrams of size octets back to back (the last
// may be shorter; at most maxSegments), in one sendmsg(2) with the
// UDP_SEGMENT control message, waiting for room in the socket's buffer as
// a write does. A device that cannot segment fails it with EIO.
func sendSegments(c *net.UDPConn, b []byte, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var space [4]uint64 // a control message is aligned as its header's length field
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&space[0])), unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
	var sendErr error
	if err := rc.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), b, oob, nil, 0)
		return !errors.Is(sendErr, syscall.EAGAIN)
	}); err != nil {
		return err
	}
	return sendErr
}

//go:build !linux

package mux

import (
	"errors"
	"net"
)

// maxSegments: no segmentation off Linux (see gso_linux.go).
const maxSegments = 1

// udpGSO reports false: UDP_SEGMENT is Linux's.
func udpGSO(*net.UDPConn) bool { return false }

// sendSegments is never called off Linux.
func sendSegments(*net.UDPConn, []byte, int) error {
	return errors.New("mux: no UDP segmentation on this system")
}

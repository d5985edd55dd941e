//go:build !linux

package mux

import (
	"net"

	"golang.org/x/net/ipv4"

	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// datagramReader reads a connected UDP socket's datagrams in batches with
// golang.org/x/net/ipv4's ReadBatch (one datagram per call off Linux; see
// recv_linux.go for the reader made for Linux).
type datagramReader struct {
	conn batchConn
	ms   []ipv4.Message
	view [][]byte
}

func newDatagramReader(c *net.UDPConn, batch, size int) *datagramReader {
	r := &datagramReader{conn: newBatchConn(c, c.RemoteAddr().(*net.UDPAddr)), ms: make([]ipv4.Message, batch), view: make([][]byte, batch)}
	for i := range r.ms {
		r.ms[i].Buffers = [][]byte{make([]byte, size)}
	}
	return r
}

// run reads until the socket is closed or fails, as the Linux one does.
func (r *datagramReader) run(batch func([][]byte), refused func(error)) error {
	for {
		n, err := r.conn.ReadBatch(r.ms, 0)
		if upstream.Unreachable(err) {
			refused(err)
			continue
		}
		if err != nil {
			return err
		}
		for i := range n {
			r.view[i] = r.ms[i].Buffers[0][:r.ms[i].N]
		}
		batch(r.view[:n])
	}
}

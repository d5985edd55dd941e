package mux

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// readerPair is a connected client socket read by a datagramReader and the
// loopback peer that sends to it.
type readerPair struct {
	peer   *net.UDPConn
	client *net.UDPConn
	got    chan []byte
	ended  chan error
}

func newReaderPair(t *testing.T, batch, size int, refused func(error)) *readerPair {
	t.Helper()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	client, err := net.DialUDP("udp", nil, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	p := &readerPair{peer: peer, client: client, got: make(chan []byte, 1024), ended: make(chan error, 1)}
	r := newDatagramReader(client, batch, size)
	go func() {
		p.ended <- r.run(func(datagrams [][]byte) {
			if len(datagrams) == 0 || len(datagrams) > batch {
				p.got <- nil // reported as a failure below
			}
			for _, d := range datagrams {
				p.got <- bytes.Clone(d)
			}
		}, refused)
	}()
	t.Cleanup(func() {
		client.Close()
		expectError(t, p.ended, net.ErrClosed, "run after Close")
	})
	return p
}

// expectError waits for an error that is want.
func expectError(t *testing.T, errs <-chan error, want error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: nothing in 5 s, want %v", what, want)
	}
}

func (p *readerPair) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.peer.WriteToUDP(b, p.client.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
}

func (p *readerPair) receive(t *testing.T, want []byte) {
	t.Helper()
	select {
	case got := <-p.got:
		if !bytes.Equal(got, want) {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not received", want)
	}
}

// TestDatagramReader: a burst longer than several batches arrives whole and
// in order, and single datagrams with pauses between them each arrive,
// though the reader waits for the poller after a short batch instead of
// reading again (a lost wake-up would leave one in the socket).
func TestDatagramReader(t *testing.T) {
	p := newReaderPair(t, 8, 512, func(err error) { t.Errorf("refused: %v", err) })
	var burst [][]byte
	for i := range 8*3 + 5 {
		d := fmt.Appendf(nil, "burst %d", i)
		burst = append(burst, d)
		p.send(t, d)
	}
	for _, d := range burst {
		p.receive(t, d)
	}
	for i := range 50 {
		d := fmt.Appendf(nil, "single %d", i)
		p.send(t, d)
		p.receive(t, d)
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond) // the reader parks
		}
	}
}

// TestDatagramReaderCuts: a datagram longer than the buffer arrives cut to
// it (and demux then drops it as malformed).
func TestDatagramReaderCuts(t *testing.T) {
	p := newReaderPair(t, 4, 16, func(err error) { t.Errorf("refused: %v", err) })
	p.send(t, []byte("0123456789abcdefXYZ"))
	p.receive(t, []byte("0123456789abcdef"))
	p.send(t, []byte("short"))
	p.receive(t, []byte("short"))
}

// TestDatagramReaderRefused: an ICMP port unreachable reported on the
// socket goes to refused, and the reader goes on reading.
func TestDatagramReaderRefused(t *testing.T) {
	refused := make(chan error, 16)
	p := newReaderPair(t, 4, 512, func(err error) { refused <- err })
	// A socket connected to a port nobody listens on.
	gone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := gone.LocalAddr().(*net.UDPAddr)
	gone.Close()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := newDatagramReader(c, 4, 512)
	ended := make(chan error, 1)
	go func() { ended <- r.run(func([][]byte) {}, func(err error) { refused <- err }) }()
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	expectError(t, refused, syscall.ECONNREFUSED, "refused")
	c.Close()
	expectError(t, ended, net.ErrClosed, "run after Close")
	// The other pair's reader was not disturbed.
	p.send(t, []byte("still here"))
	p.receive(t, []byte("still here"))
}

// TestPick: each run of asyncRun asynchronous queries goes to the socket
// with the fewest queries in flight, ties going round the sockets.
func TestPick(t *testing.T) {
	srv := &server{}
	for range 4 {
		srv.socks = append(srv.socks, &socket{})
	}
	load := func(counts ...int32) {
		for i, c := range counts {
			srv.socks[i].inflight.Store(c)
		}
	}
	// run picks asyncRun sockets and checks they are all want.
	run := func(want int) {
		t.Helper()
		for i := range asyncRun {
			if got := srv.pick(); got != srv.socks[want] {
				for j, s := range srv.socks {
					if s == got {
						t.Fatalf("query %d of the run went to socket %d, want %d", i, j, want)
					}
				}
			}
		}
	}
	run(0) // the first run, before any choice: socket 0
	load(5, 9, 1, 7)
	run(2)
	load(5, 9, 30, 7)
	run(0)
	load(3, 3, 3, 3) // ties: the run's turn decides
	seen := map[*socket]bool{}
	for range len(srv.socks) {
		first := srv.pick()
		for range asyncRun - 1 {
			if srv.pick() != first {
				t.Fatal("a run changed socket midway")
			}
		}
		seen[first] = true
	}
	if len(seen) != len(srv.socks) {
		t.Errorf("equal loads used %d of %d sockets", len(seen), len(srv.socks))
	}
}

// TestReadPause: a first failure, or one after a quiet second, pauses
// minReadPause; repeated ones double it up to maxReadPause.
func TestReadPause(t *testing.T) {
	var pause time.Duration
	var got []time.Duration
	for range 10 {
		pause = readPause(pause, time.Millisecond)
		got = append(got, pause)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 100, 100, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("pauses %v, want %v ms", got, want)
		}
	}
	if p := readPause(maxReadPause, 2*time.Second); p != minReadPause {
		t.Errorf("after a quiet while: %v, want %v", p, minReadPause)
	}
}

// TestUnreachable: the ICMP reports a connected socket passes on, and
// nothing else.
func TestUnreachable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{syscall.ECONNREFUSED, true},
		{syscall.EHOSTUNREACH, true},
		{syscall.ENETUNREACH, true},
		{syscall.EHOSTDOWN, true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("recvmmsg", syscall.EHOSTUNREACH)}, true},
		{syscall.EBADF, false},
		{syscall.ENOMEM, false},
		{net.ErrClosed, false},
		{nil, false},
	} {
		if got := upstream.Unreachable(tt.err); got != tt.want {
			t.Errorf("unreachable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

package relay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxtrace/mxtrace/clientlimit"
)

// remoteAddr is the client address of c, unmapped and without a zone; the
// zero Addr when c is not a TCP connection.
func remoteAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// connLimits counts the open connections, in all and per client
// (clientlimit.Key), against Config.MaxConns and Config.MaxConnsPerClient.
type connLimits struct {
	max, perClient int // 0: no limit

	mu       sync.Mutex
	total    int
	byClient map[netip.Prefix]int
}

// acquire takes a slot for a connection from key, or reports why it
// cannot: "max-conns" or "max-conns-per-client".
func (l *connLimits) acquire(key netip.Prefix) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.total >= l.max:
		return "max-conns"
	case l.perClient > 0 && l.byClient[key] >= l.perClient:
		return "max-conns-per-client"
	}
	l.total++
	l.byClient[key]++
	return ""
}

// release gives back the slot acquire took.
func (l *connLimits) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byClient[key]--; l.byClient[key] <= 0 {
		delete(l.byClient, key)
	}
}

// limitListener applies the connection limits at accept: a connection over
// a limit gets "421 4.7.0" (RFC 5321 §3.8, §4.2.5; RFC 3463 §3.8) and is
// closed before go-smtp sees it. Every other connection is a clientConn.
type limitListener struct {
	net.Listener
	s *Server
}

// refusalWrite bounds the write of the 421 to a refused connection, so a
// client that does not read cannot hold the accept loop.
const refusalWrite = time.Second

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		key := clientlimit.Key(addr)
		if why := l.s.conns.acquire(key); why != "" {
			l.s.metrics.ConnRefused(why)
			l.s.log.Info("relay: connection refused", "client", addr, "reason", why)
			_ = c.SetWriteDeadline(time.Now().Add(refusalWrite))
			_, _ = c.Write([]byte("421 4.7.0 " + l.s.cfg.Hostname + " too many connections, try again later\r\n"))
			_ = c.Close()
			continue
		}
		cc := &clientConn{Conn: c, s: l.s, addr: addr, key: key, start: time.Now()}
		l.s.track(cc, true)
		return cc, nil
	}
}

// clientConn is one client's connection under the server's limits: it
// gives back its connection slot when closed, ends the session when it
// has lasted Timeouts.Session, and lets the server end it between
// transactions (Shutdown, a client that misbehaves).
type clientConn struct {
	net.Conn
	s     *Server
	addr  netip.Addr
	key   netip.Prefix
	start time.Time

	inTransaction atomic.Bool // between MAIL and the end of DATA
	hangUp        atomic.Bool // end the session at the next read outside a transaction
	closeOnce     sync.Once
}

// errHangUp is the read error that ends a session: go-smtp answers a read
// time-out with "421 4.4.2" and closes the connection (RFC 5321 §3.8).
var errHangUp = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "relay: session ended by the server" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }
func (*timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

var _ net.Error = errHangUp

func (c *clientConn) Read(b []byte) (int, error) {
	if c.hangUp.Load() && !c.inTransaction.Load() {
		return 0, errHangUp
	}
	if d := c.s.cfg.Timeouts.Session; d > 0 && time.Since(c.start) > d {
		return 0, errHangUp
	}
	return c.Conn.Read(b)
}

// end asks the session to end at its next read outside a transaction, and
// wakes a read that is waiting for the next command now.
func (c *clientConn) end() {
	c.hangUp.Store(true)
	if !c.inTransaction.Load() {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.s.conns.release(c.key)
		c.s.track(c, false)
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

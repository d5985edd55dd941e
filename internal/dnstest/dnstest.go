// Package dnstest runs in-process DNS servers on loopback for tests and
// benchmarks: honest authoritative servers built from zone-file text
// (NewZone), and hostile ones that misbehave the way servers on the Internet
// do: silence (Silent), wrong IDs (WrongID), wrong questions
// (WrongQuestion), garbage (Garbage), endless truncation (AlwaysTruncated,
// BrokenTCP), error rcodes (Rcode), EDNS intolerance (FormErrOnEDNS), huge
// answers (Huge), replies without QR (NotResponse) and trickling TCP
// (SlowTCP). Hostile handlers replace the honest one; hostile options wrap
// any handler, so they combine with a zone.
//
// Every server listens on UDP and TCP on the same loopback port, as a DNS
// client expects when it retries a truncated answer over TCP (RFC 1035
// §4.2, RFC 7766 §5). Each server has its own handler (never miekg's global
// DefaultServeMux), answers queries concurrently, and stops with the test:
// New and NewZone register Close with t.Cleanup, and Close waits for every
// goroutine the server started, so a test leaks nothing.
//
// Handlers get a dns.ResponseWriter that also implements Transport, which
// tells them the transport and gives them a context that ends with the
// connection or the server; a handler that waits must watch it.
package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Bounds on the work one server does, so a runaway client cannot make a
// test server grow without limit.
const (
	maxInflight     = 512              // queries being handled at once per transport (UDP) or connection (TCP)
	tcpIdleTimeout  = 10 * time.Second // a TCP connection with no query for this long is closed (RFC 7766 §6.2.3)
	writeTimeout    = 5 * time.Second  // deadline of every write
	shutdownTimeout = 5 * time.Second  // how long Close waits for handlers to return
	bindAttempts    = 10               // tries to find a port free for both UDP and TCP
)

// ErrShutdown is returned by Close when handlers were still running
// shutdownTimeout after the server stopped: a handler that ignores the
// Transport context.
var ErrShutdown = errors.New("dnstest: handlers still running after shutdown")

// Server is a DNS server on loopback, answering over UDP and TCP on Addr.
type Server struct {
	Addr string // "127.0.0.1:port" (or "[::1]:port"); the same port for UDP and TCP

	handler dns.Handler
	delay   time.Duration
	grace   time.Duration // how long Close waits for handlers (shutdownTimeout; shorter in tests)
	udp     net.PacketConn
	tcp     net.Listener
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the server started

	closeOnce sync.Once
	closeErr  error

	queries atomic.Int64
	mu      sync.Mutex
	perQ    map[question]int64
	conns   map[net.Conn]struct{}
}

type question struct {
	name  string
	qtype uint16
}

// Option configures a server.
type Option func(*config)

type config struct {
	ip    string
	delay time.Duration
	wrap  []func(dns.Handler) dns.Handler
}

// WithDelay delays every answer by d, on both transports, without
// serialising queries: 100 concurrent queries all answer after about d.
// It is for latency benchmarks, where round trips must cost something.
func WithDelay(d time.Duration) Option {
	return func(c *config) { c.delay = d }
}

// WithAddr makes the server listen on another loopback address, such as
// 127.0.0.2 or ::1, so a test can run several servers on the same port
// number or tell them apart by address. Non-loopback addresses are refused.
func WithAddr(ip string) Option {
	return func(c *config) { c.ip = ip }
}

// WithMiddleware wraps the server's handler with m. Options that wrap are
// applied in order, each around the handler built so far, so the last one
// is the outermost. The hostile options in this package are built with it.
func WithMiddleware(m func(dns.Handler) dns.Handler) Option {
	return func(c *config) { c.wrap = append(c.wrap, m) }
}

// New starts a server answering with h, and closes it when the test ends.
// It fails the test if the server cannot start, or if its handlers do not
// stop when it closes.
func New(tb testing.TB, h dns.Handler, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(h, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// Start starts a server answering with h. The caller must Close it; in
// tests, New does that.
func Start(h dns.Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, errors.New("dnstest: nil handler")
	}
	cfg := config{ip: "127.0.0.1"}
	for _, o := range opts {
		o(&cfg)
	}
	ip, err := netip.ParseAddr(cfg.ip)
	if err != nil || !ip.IsLoopback() {
		// Tests only ever talk to loopback.
		return nil, fmt.Errorf("dnstest: %q is not a loopback address", cfg.ip)
	}
	for _, w := range cfg.wrap {
		h = w(h)
	}
	udp, tcp, err := listen(ip)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:    tcp.Addr().String(),
		handler: h,
		delay:   cfg.delay,
		grace:   shutdownTimeout,
		udp:     udp,
		tcp:     tcp,
		perQ:    map[question]int64{},
		conns:   map[net.Conn]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
	return s, nil
}

// listen binds a UDP socket on a free port of ip, then TCP on the same
// port, trying again with another port when TCP's is taken.
func listen(ip netip.Addr) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range bindAttempts {
		udp, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both UDP and TCP on %s: %w", ip, lastErr)
}

// Close stops the server: it closes both sockets and every TCP connection,
// ends every handler's context, and waits for the server's goroutines. It
// returns ErrShutdown if handlers are still running after a few seconds.
// Calling it again returns the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.cancel()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.udp.Close()
		s.tcp.Close()
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(s.grace):
			s.closeErr = fmt.Errorf("%w: %s, after %v", ErrShutdown, s.Addr, s.grace)
		}
	})
	return s.closeErr
}

// Queries is the number of messages the server received, over UDP and TCP,
// including those it could not parse.
func (s *Server) Queries() int64 { return s.queries.Load() }

// QueriesFor is the number of parsed queries for name (case and the
// trailing dot do not matter) and qtype.
func (s *Server) QueriesFor(name string, qtype uint16) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perQ[question{dns.CanonicalName(name), qtype}]
}

func (s *Server) serveUDP() {
	buf := make([]byte, dns.MaxMsgSize)
	sem := make(chan struct{}, maxInflight)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		raw := append([]byte(nil), buf[:n]...)
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		s.wg.Go(func() {
			defer func() { <-sem }()
			s.serve(raw, &writer{ctx: s.ctx, udp: s.udp, addr: addr})
		})
	}
}

func (s *Server) serveTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			// Closed by Close; on any other error a test server just stops
			// accepting, and clients time out.
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.serveConn(c) })
	}
}

// serveConn reads length-prefixed queries from one TCP connection (RFC 1035
// §4.2.2) and handles them concurrently, as RFC 7766 §6.2.1.1 asks for
// pipelined queries.
func (s *Server) serveConn(c net.Conn) {
	ctx, cancel := context.WithCancel(s.ctx)
	var handlers sync.WaitGroup
	conn := &tcpConn{Conn: c}
	defer func() {
		cancel()
		c.Close()
		handlers.Wait()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	sem := make(chan struct{}, maxInflight)
	var length [2]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(tcpIdleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, length[:]); err != nil {
			return
		}
		raw := make([]byte, binary.BigEndian.Uint16(length[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		handlers.Go(func() {
			defer func() { <-sem }()
			s.serve(raw, &writer{ctx: ctx, tcp: conn})
		})
	}
}

// serve counts, parses and delays one query, then hands it to the handler.
// Messages that do not parse are dropped, as most servers do with garbage.
func (s *Server) serve(raw []byte, w *writer) {
	s.queries.Add(1)
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		return
	}
	if len(req.Question) > 0 {
		q := question{dns.CanonicalName(req.Question[0].Name), req.Question[0].Qtype}
		s.mu.Lock()
		s.perQ[q]++
		s.mu.Unlock()
	}
	w.req = req
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.ctx.Done():
			return
		}
	}
	s.handler.ServeDNS(w, req)
}

// Transport is implemented by the dns.ResponseWriter a Server passes to its
// handler. Handlers use it to misbehave at the transport level.
type Transport interface {
	// Network is "udp" or "tcp".
	Network() string
	// Context ends when the server closes or, over TCP, when the
	// connection ends. Handlers that wait must return when it does.
	Context() context.Context
	// WriteRaw sends b exactly as given: one datagram over UDP; over TCP
	// bytes on the stream, without the two-octet length prefix that Write
	// adds.
	WriteRaw(b []byte) (int, error)
}

// TransportOf returns w's Transport. For a writer from another server (such
// as miekg's dns.Server) it guesses the network from the local address and
// returns a context that never ends.
func TransportOf(w dns.ResponseWriter) Transport {
	if t, ok := w.(Transport); ok {
		return t
	}
	return foreign{w}
}

type foreign struct{ w dns.ResponseWriter }

func (f foreign) Network() string {
	if _, ok := f.w.LocalAddr().(*net.TCPAddr); ok {
		return "tcp"
	}
	return "udp"
}
func (f foreign) Context() context.Context       { return context.Background() }
func (f foreign) WriteRaw(b []byte) (int, error) { return f.w.Write(b) }

// tcpConn serialises writes of the concurrent handlers of one connection.
type tcpConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *tcpConn) write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// writer is the dns.ResponseWriter (and Transport) of one query.
type writer struct {
	ctx  context.Context
	req  *dns.Msg
	udp  net.PacketConn // over UDP
	addr net.Addr       // the UDP client
	tcp  *tcpConn       // over TCP
}

func (w *writer) Network() string {
	if w.tcp != nil {
		return "tcp"
	}
	return "udp"
}

func (w *writer) Context() context.Context { return w.ctx }

func (w *writer) LocalAddr() net.Addr {
	if w.tcp != nil {
		return w.tcp.LocalAddr()
	}
	return w.udp.LocalAddr()
}

func (w *writer) RemoteAddr() net.Addr {
	if w.tcp != nil {
		return w.tcp.RemoteAddr()
	}
	return w.addr
}

// WriteMsg packs and sends m. Over UDP, a reply larger than the client can
// take is truncated and marked TC (RFC 1035 §4.2.1, RFC 2181 §9): the limit
// is 512 octets, or the payload size of the query's OPT record (RFC 6891
// §6.2.5, where sizes below 512 count as 512).
func (w *writer) WriteMsg(m *dns.Msg) error {
	if w.tcp == nil {
		size := dns.MinMsgSize
		if opt := w.req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	b, err := m.Pack()
	if err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// Write sends one message: a datagram over UDP, or with its two-octet
// length prefix over TCP (RFC 1035 §4.2.2).
func (w *writer) Write(b []byte) (int, error) {
	if w.tcp == nil {
		return w.udp.WriteTo(b, w.addr)
	}
	if len(b) > dns.MaxMsgSize {
		return 0, fmt.Errorf("dnstest: message of %d octets does not fit a TCP length prefix", len(b))
	}
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	n, err := w.tcp.write(append(framed, b...))
	return max(n-2, 0), err
}

func (w *writer) WriteRaw(b []byte) (int, error) {
	if w.tcp == nil {
		return w.udp.WriteTo(b, w.addr)
	}
	return w.tcp.write(b)
}

// Close closes the TCP connection; over UDP it does nothing.
func (w *writer) Close() error {
	if w.tcp != nil {
		return w.tcp.Close()
	}
	return nil
}

func (w *writer) TsigStatus() error   { return nil }
func (w *writer) TsigTimersOnly(bool) {}
func (w *writer) Hijack()             {}

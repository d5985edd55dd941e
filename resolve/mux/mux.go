// Package mux is the bulk DNS transport behind scan: a Mux keeps a few
// connected UDP sockets per server and multiplexes many queries over each,
// matching replies by ID and question (RFC 5452 §9.1), with the reply
// checks, fall-backs (EDNS, RFC 6891 §7; TCP, RFC 7766 §5) and fail-over
// of resolve/stub. Lookups may block (Lookup) or call back
// (LookupAsync, resolve.Async), paced per server by a congestion window
// and a retransmission timer (RFC 6298). On Linux, queries leave in
// batches (sendmmsg, UDP GSO) and replies are read in batches (recvmmsg).
// It is made for resolvers the user trusts on a path they control (see
// Mux for why).
package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// Defaults and bounds for Config.
const (
	// DefaultInFlight bounds the lookups a Mux runs at once when
	// Config.MaxInFlight is 0: enough for a resolver a few
	// milliseconds away at 100 000 queries a second.
	DefaultInFlight = 4096
	// DefaultSockets is the number of sockets per server when
	// Config.Sockets is 0. A multi-threaded server (Unbound, Knot, BIND
	// with SO_REUSEPORT, one socket per thread) hands each of our sockets
	// to one of its threads by a hash of the source port, and a load
	// balancer in front of a resolver farm picks a member the same way:
	// with only two sockets both land on the same thread one time in two
	// (Unbound with two threads then answers a whole scan from one;
	// docs/performance.md), with eight the odds that one thread gets none
	// are 1 in 128.
	DefaultSockets = 8
	// MaxInFlight is the largest MaxInFlight: half of the 16-bit ID
	// space of one socket (RFC 1035 §4.1.1), so an ID is always found in
	// a probe or two and a late reply rarely meets a reused ID.
	MaxInFlight = 1 << 15
	// DefaultBackoff is the base of the pause before a retry after a
	// time-out or SERVFAIL; it doubles per retry, with jitter.
	DefaultBackoff = 50 * time.Millisecond
	// maxBackoff caps one pause.
	maxBackoff = 2 * time.Second
	// socketBuffer is the kernel buffer asked for each socket (capped
	// by net.core.rmem_max / wmem_max): a burst of replies to thousands
	// of queries in flight must not overflow it.
	socketBuffer = 4 << 20
)

// ErrClosed is returned (wrapped in an *Error) by lookups on a closed Mux,
// and by those in flight when it closes.
var ErrClosed = errors.New("mux: resolver closed")

// Config configures a Mux. The embedded stub.Config has the same meaning
// as for a Stub (servers, per-attempt timeout, attempts per server, EDNS0
// buffer size, RD and CD bits, logger).
type Config struct {
	stub.Config
	// Sockets is the number of UDP sockets per server (default
	// DefaultSockets, or runtime.GOMAXPROCS(0) if more), each with one
	// reader goroutine.
	Sockets int
	// MaxInFlight bounds the lookups running at once (default
	// DefaultInFlight, at most MaxInFlight); further callers block
	// until one ends or their context does.
	MaxInFlight int
	// QPS limits the queries sent to each server per second (0: no
	// limit), with bursts of Burst (default QPS/20, at least 1).
	QPS   float64
	Burst int
	// Backoff is the base pause before asking a server again after a
	// time-out or SERVFAIL (default DefaultBackoff; negative: none).
	// Retry n waits Backoff·2ⁿ⁻¹, scaled by a random factor in [0.5, 1.5).
	Backoff time.Duration
	// BatchBlocking sends the first datagram of each blocking lookup
	// (Lookup) as the asynchronous lookups' leave: through the socket's
	// outbox, with the others queued meanwhile, in one sendmmsg or
	// segmented send, instead of a write system call each. A lookup is
	// written at once only when nothing else is in flight on its socket
	// (no reply is coming whose batch would send it: Nagle's rule, RFC
	// 896); otherwise it leaves when flushBatch have gathered, at the
	// reader's next batch end, or flushDelay later. No congestion window
	// paces these lookups: a server that stops answering gets them all,
	// each waiting its own time-out, as a Stub's would. Retransmissions
	// are written at once as without it.
	BatchBlocking bool
}

// Mux is a Resolver for bulk work: the same questions, checks and outcomes
// as a Stub (it calls the Stub's reply checks and its TCP exchange), made
// for hundreds of thousands of queries a second. Instead of a socket per
// query it keeps a few connected UDP sockets per server, each with one
// reader goroutine that matches replies to the queries in flight by ID and
// question (RFC 5452 §9.1) through a table of the IDs in flight; many queries
// share a socket. A lookup runs on its caller's goroutine with a pooled
// record (the message, its packed form, a time.Timer reset per attempt and
// a one-slot channel the reader signals), so it starts no goroutine and
// allocates nothing but the parsed reply.
//
// Per server, a lookup retries a time-out or SERVFAIL up to Attempts times
// with exponential backoff and jitter, then fails over to the next server,
// as does a REFUSED or malformed reply. (A Stub fails over at once on
// SERVFAIL, and does not pause.) A truncated reply is asked again over TCP
// (RFC 7766 §5), and a FORMERR or NOTIMP without OPT again without EDNS
// (RFC 6891 §7). An ICMP port unreachable read on a socket fails the
// queries in flight on it, which are retried like time-outs, so a server
// that is down costs a few pauses rather than Attempts time-outs. QPS
// rate-limits each server; MaxInFlight bounds the lookups at once, making
// callers wait beyond it (a lookup holds its slot through its retries).
//
// Source ports: a Stub opens a socket, and so gets a random source port,
// per query; a Mux keeps its ports for its lifetime and spreads thousands
// of queries in flight over the 16-bit ID space of each, so a blind
// spoofer's guess is more likely to hit some query than against a Stub
// (RFC 5452 §9.2 asks resolvers to randomise ports for that reason). The
// Mux is meant for scanning through resolvers the user trusts on a path
// they control, typically loopback or the local network, and the risk
// stays small there: its sockets are connected, so the kernel drops any
// datagram not from the server's address and port; a reply must still
// match the ID and the question; and what it returns feeds one report,
// not a cache that answers other clients. Against untrusted paths, use a
// Stub, or a local validating resolver and the AD bit.
//
// LookupAsync (the Async interface) starts a lookup without any goroutine
// waiting on it: the reader calls back with the reply, queries started
// together leave together (padded to one size and segmented on Linux:
// padQuery, sendSegments), and a congestion window per server keeps
// the queries on the wire within what the server takes.
//
// Close releases the sockets and fails the lookups in flight with
// ErrClosed.
type Mux struct {
	cfg     Config
	servers []*server
	slots   chan struct{} // one per lookup in flight
	queries sync.Pool     // *query

	closeOnce sync.Once
	closed    atomic.Bool
	readers   sync.WaitGroup // and the sweeper and the flusher
	stop      chan struct{}  // closed by Close: ends the sweeper and the flusher
	// batching counts the readers handling a batch of replies; while one
	// is, asynchronous queries wait in the outboxes for the batch's end.
	batching atomic.Int32
	// flushSoon wakes the flusher: a batch's end left queries in an
	// outbox (see flushBatches).
	flushSoon chan struct{}
	// deferredSent counts the queries the flusher sent, and sendCalls
	// the system calls that sent queries (export_test.go).
	deferredSent, sendCalls atomic.Int64
	// segment is set when the kernel segments UDP sends (udpGSO): queries
	// are padded to one size (padQuery) and an outbox leaves in a few
	// segmented sends (sendSegments). Set by New before any lookup.
	segment bool
	// epoch starts the Mux's clock (now), on which the servers' health
	// is kept.
	epoch time.Time
}

// server is one server and its sockets.
type server struct {
	addr  string
	socks []*socket
	next  atomic.Uint32
	run   atomic.Uint32 // the socket of the asynchronous queries' current run (pick)
	limit *rate.Limiter // nil: no limit
	rtt   rttEstimator
	win   window // paces the asynchronous queries
	// health says whether the server answers at all (see
	// resolve/internal/upstream/health.go).
	health upstream.Health
}

// rttEstimator keeps a server's smoothed round-trip time and its variation
// (RFC 6298 §2), from which the retransmission interval is derived, so a
// lost datagram to a server answering in a millisecond costs tens of
// milliseconds, not the whole per-attempt time-out, while a server that
// is slow (a recursive resolver resolving cold) gets a longer interval.
type rttEstimator struct {
	mu          sync.Mutex
	srtt, rttvr time.Duration
	sampled     bool
}

// Bounds of the retransmission interval. The floor is Unbound's default
// minimum RTT for a server (infra-cache-min-rtt, 50 ms): below it, a
// loaded machine's scheduling jitter would cause retransmissions of
// queries that are only waiting their turn.
const (
	minRTO     = 50 * time.Millisecond
	initialRTO = time.Second // RFC 6298 §2.1, before the first sample
)

// sample adds one round-trip time (RFC 6298 §2.2, §2.3).
func (e *rttEstimator) sample(r time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.sampled {
		e.srtt, e.rttvr, e.sampled = r, r/2, true
		return
	}
	diff := e.srtt - r
	if diff < 0 {
		diff = -diff
	}
	e.rttvr = (3*e.rttvr + diff) / 4
	e.srtt = (7*e.srtt + r) / 8
}

// rto is the interval after which an unanswered query is sent again.
func (e *rttEstimator) rto() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.sampled {
		return initialRTO
	}
	return max(minRTO, e.srtt+4*e.rttvr)
}

// socket is one connected UDP socket and the queries waiting on it. The
// reader goroutine is the only one reading conn; table and the fields of
// the queries registered in it are guarded by mu.
type socket struct {
	conn  *net.UDPConn
	batch batchConn // conn's sendmmsg
	m     *Mux
	srv   *server
	out   outbox

	mu     sync.Mutex
	closed bool
	// inflight counts the queries in the table; written with mu held,
	// read without it to pick the least loaded socket (pick).
	inflight atomic.Int32
	// table holds the queries in flight by ID (idTable says why it is
	// neither a map nor an array of all 65536 IDs).
	table idTable
	// waiting lists the asynchronous queries in the order sent (and sent
	// again), for the sweeper.
	waiting fifo[pending]

	sent, timeouts, late, stray, tcp, retries, refused, resent atomic.Int64
}

// query is one lookup's reusable state: the query message and its
// packed form, and the rendezvous with the reader.
type query struct {
	msg     dns.Msg
	qs      [1]dns.Question
	opt     dns.OPT
	extra   [1]dns.RR // &opt
	out     []byte    // msg packed, ID patched per attempt; empty: not packed yet
	edns    bool      // out carries an OPT record
	packErr error     // why msg could not be packed
	timer   *time.Timer
	// done receives one value per registration, sent by whoever takes
	// the query out of the table (the reader with a reply, or Close).
	done chan struct{}

	// Guarded by the socket's mu while registered; read by the owner
	// once it is not.
	gen    uint64 // registration count, so a late reply cannot reach a reused query
	reply  *dns.Msg
	err    error
	stray  error // the last reply with this ID that did not answer it
	strays int
	// async, when set, is the callback of an asynchronous lookup: it is
	// called instead of a send on done. sent is when it was registered.
	async  func(*resolve.Answer, error)
	sent   time.Time
	resent bool // sent again: its reply is no RTT sample
}

// New checks cfg, opens the sockets and starts their readers. The caller
// must Close the Mux.
func New(cfg Config) (*Mux, error) {
	st, err := stub.New(cfg.Config)
	if err != nil {
		return nil, err
	}
	cfg.Config = st.Config() // with its defaults
	if cfg.Sockets <= 0 {
		cfg.Sockets = max(DefaultSockets, runtime.GOMAXPROCS(0))
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultInFlight
	}
	cfg.MaxInFlight = min(cfg.MaxInFlight, MaxInFlight)
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.QPS < 0 {
		return nil, fmt.Errorf("mux: negative QPS %v", cfg.QPS)
	}
	if cfg.QPS > 0 && cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.QPS/20))
	}
	m := &Mux{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), stop: make(chan struct{}), flushSoon: make(chan struct{}, 1), epoch: time.Now()}
	m.queries.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		p := &query{timer: t, done: make(chan struct{}, 1), out: make([]byte, 512)}
		// RFC 6891 §6.1.2: the OPT pseudo-record carries the UDP
		// payload size in its class field; DO stays clear (see
		// stub.Stub's query). Each query has its own: packing writes to it.
		p.opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
		p.opt.SetUDPSize(cfg.UDPSize)
		p.extra[0] = &p.opt
		return p
	}
	for _, addr := range st.Servers() {
		srv, err := m.open(addr)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.servers = append(m.servers, srv)
	}
	// The readers start once every server is there: a reader may look at
	// them all (health).
	for _, srv := range m.servers {
		for _, s := range srv.socks {
			m.readers.Go(s.read)
		}
	}
	m.readers.Go(m.sweep)
	m.readers.Go(m.flusher)
	return m, nil
}

// open connects the sockets of one server.
func (m *Mux) open(addr string) (*server, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr) // an IP literal: no lookup
	if err != nil {
		return nil, fmt.Errorf("mux: server %s: %w", addr, err)
	}
	srv := &server{addr: addr}
	if m.cfg.QPS > 0 {
		srv.limit = rate.NewLimiter(rate.Limit(m.cfg.QPS), m.cfg.Burst)
	}
	for range m.cfg.Sockets {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			for _, s := range srv.socks {
				s.conn.Close()
			}
			return nil, fmt.Errorf("mux: server %s: %w", addr, err)
		}
		if len(m.servers) == 0 && len(srv.socks) == 0 {
			m.segment = udpGSO(conn)
		}
		// Best effort: the kernel caps both at its maximum.
		_ = conn.SetReadBuffer(socketBuffer)
		_ = conn.SetWriteBuffer(socketBuffer)
		s := &socket{conn: conn, batch: newBatchConn(conn, raddr), m: m, srv: srv}
		s.out.segment = m.segment
		srv.socks = append(srv.socks, s)
	}
	// Registered only now, so Close (on a failure to open a later server)
	// sees either all of this server's sockets or none.
	return srv, nil
}

// Close closes the sockets, fails the lookups in flight with ErrClosed and
// waits for the readers. Lookups after Close fail with ErrClosed.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		for _, srv := range m.servers {
			for _, s := range srv.socks {
				s.close()
			}
			m.closeWindow(srv)
		}
		m.readers.Wait()
	})
	return nil
}

// Servers returns the servers asked, as "host:port".
func (m *Mux) Servers() []string {
	out := make([]string, len(m.servers))
	for i, srv := range m.servers {
		out[i] = srv.addr
	}
	return out
}

// Stats counts what a Mux did, summed over its sockets.
type Stats struct {
	Sent     int64 `json:"sent"`     // UDP queries sent (first tries and retries)
	Retries  int64 `json:"retries"`  // of which retries (after a time-out, SERVFAIL or ICMP unreachable)
	TCP      int64 `json:"tcp"`      // queries asked again over TCP after truncation
	Timeouts int64 `json:"timeouts"` // UDP tries that got no matching reply in time
	// Resent counts datagrams sent again within a try, after the server's
	// retransmission interval (its smoothed RTT and variation) passed.
	Resent int64 `json:"resent"`
	// Late counts datagrams for no query in flight: a reply after its
	// query timed out, a duplicate, or an ID never used.
	Late int64 `json:"late"`
	// Stray counts datagrams with the ID of a query in flight that did
	// not answer it (wrong question, no QR, malformed) and were dropped.
	Stray int64 `json:"stray"`
	// Refused counts ICMP destination-unreachable reports read on a
	// socket (port, host or network: ECONNREFUSED, EHOSTUNREACH,
	// ENETUNREACH, EHOSTDOWN); each fails the queries then in flight on
	// it.
	Refused int64 `json:"refused"`
	// Down counts the times a server stopped answering (silentLimit tries
	// in a row with nothing back) and was asked after the others for a
	// while (see resolve/internal/upstream/health.go).
	Down int64 `json:"down"`
	// Window is the congestion window of the asynchronous queries when
	// the counts were taken, summed over the servers: how many the
	// servers took at once without losing any (LookupAsync).
	Window int64 `json:"window"`
}

// Add adds o's counts to st.
func (st *Stats) Add(o Stats) {
	st.Sent += o.Sent
	st.Retries += o.Retries
	st.TCP += o.TCP
	st.Timeouts += o.Timeouts
	st.Resent += o.Resent
	st.Late += o.Late
	st.Stray += o.Stray
	st.Refused += o.Refused
	st.Down += o.Down
	st.Window += o.Window
}

// Stats returns the counters so far.
func (m *Mux) Stats() Stats {
	var st Stats
	for _, srv := range m.servers {
		for _, s := range srv.socks {
			st.Sent += s.sent.Load()
			st.Retries += s.retries.Load()
			st.TCP += s.tcp.Load()
			st.Timeouts += s.timeouts.Load()
			st.Late += s.late.Load()
			st.Stray += s.stray.Load()
			st.Refused += s.refused.Load()
			st.Resent += s.resent.Load()
		}
		st.Down += srv.health.Downs()
		srv.win.mu.Lock()
		st.Window += int64(srv.win.cwnd)
		srv.win.mu.Unlock()
	}
	return st
}

// Lookup implements Resolver with the semantics of stub.Stub.Lookup: servers in
// order, fail-over on a time-out, SERVFAIL, REFUSED or malformed reply;
// NXDOMAIN and NODATA settle the question. A server that has stopped
// answering is asked after the others for a while (upstream/health.go).
func (m *Mux) Lookup(ctx context.Context, q resolve.Question) (a *resolve.Answer, err error) {
	// A scan's logger drops debug records (it logs at warning level): the
	// record is built only for a logger that keeps it.
	if l := m.cfg.Logger; l != nil && l.Enabled(ctx, slog.LevelDebug) {
		start := time.Now()
		defer func() {
			l.Debug("dns lookup", "question", q.String(), "rcode", upstream.RcodeOf(a), "ad", a != nil && a.AD,
				"server", upstream.ServerOf(a, err), "elapsed", time.Since(start), "error", err)
		}()
	}
	if m.closed.Load() {
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: ErrClosed}
	}
	// Backpressure: wait for a slot.
	select {
	case m.slots <- struct{}{}:
	default:
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, &resolve.Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())}
		}
	}
	defer func() { <-m.slots }()

	p := m.queries.Get().(*query)
	p.start(q)
	defer m.queries.Put(p)
	return m.lookup(ctx, p, q, nil)
}

// resumed is the first exchange of a lookup made before lookup took it
// over (LookupAsync's): on the first server, its attempt number, the
// socket, and the reply or the error it ended with.
type resumed struct {
	attempt int
	s       *socket
	r       *dns.Msg
	err     error
}

// lookup asks the servers in order with p, going on from from when it is
// not nil.
func (m *Mux) lookup(ctx context.Context, p *query, q resolve.Question, from *resumed) (*resolve.Answer, error) {
	var last *resolve.Error
	var first *server
	if from != nil {
		first = from.s.srv
	}
	var buf [4]int
	for _, i := range m.order(buf[:0], first) {
		a, e := m.ask(ctx, m.servers[i], p, q, from)
		from = nil
		if e == nil {
			return a, nil
		}
		last = e
		if ctx.Err() != nil || errors.Is(e, ErrClosed) {
			break
		}
	}
	if last == nil {
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: resolve.ErrNoServers}
	}
	return nil, last
}

// ask asks one server as the stub's ask does, and also retries SERVFAIL on it,
// pausing with backoff before every retry.
func (m *Mux) ask(ctx context.Context, srv *server, p *query, q resolve.Question, from *resumed) (*resolve.Answer, *resolve.Error) {
	edns := true
	var last *resolve.Error
	attempt := 0
	if from != nil {
		attempt = from.attempt
	}
	for ; attempt < m.cfg.Attempts; attempt++ {
		var s *socket
		var r *dns.Msg
		var err error
		if from != nil {
			// The exchange was made; go on from its outcome.
			s, r, err, from = from.s, from.r, from.err, nil
		} else {
			if last != nil && m.leave(srv) {
				// Held down meanwhile: the next server, not a retry.
				return nil, last
			}
			if last != nil && !m.pause(ctx, p, attempt) {
				return nil, last
			}
			p.pack(m, edns)
			s, r, err = m.exchange(ctx, srv, p, last != nil)
		}
		r, tcp, err := upstream.RetryTruncated(ctx, srv.addr, &p.msg, m.cfg.Timeout, r, err)
		if tcp {
			s.tcp.Add(1)
		}
		if err != nil {
			last = &resolve.Error{Question: q, Server: srv.addr, Rcode: -1, Err: err, TCP: tcp}
			if (errors.Is(err, resolve.ErrTimeout) || errors.Is(err, syscall.ECONNREFUSED)) && ctx.Err() == nil {
				continue
			}
			return nil, last
		}
		if edns && upstream.EDNSUnknown(r) {
			// Ask again without EDNS; this does not count as an attempt.
			edns = false
			attempt--
			continue
		}
		a, e := resolve.FromReply(q, srv.addr, r)
		if e != nil && e.Rcode == dns.RcodeServerFailure {
			// SERVFAIL is often passing (a resolver that could not
			// reach an authority in time): ask again after a pause.
			last = e
			continue
		}
		return a, e
	}
	return nil, last
}

// pause waits before retry number attempt (1, 2, ...): Backoff·2ⁿ⁻¹ scaled
// by a random factor in [0.5, 1.5), so the retries of many lookups that
// failed together do not arrive together. It reports false if ctx ended.
func (m *Mux) pause(ctx context.Context, p *query, attempt int) bool {
	if m.cfg.Backoff < 0 {
		return ctx.Err() == nil
	}
	d := min(m.cfg.Backoff<<min(attempt-1, 16), maxBackoff)
	d = d/2 + rand.N(d)
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return true
	case <-ctx.Done():
		p.timer.Stop()
		return false
	}
}

// start prepares p for a lookup of q.
func (p *query) start(q resolve.Question) {
	p.qs[0] = dns.Question{Name: q.Name, Qtype: q.Type, Qclass: dns.ClassINET}
	p.out, p.packErr = p.out[:0], nil
}

// pack builds the query into p.out, with the flags of stub.Stub's query: RD unless
// NoRecursion, AD to ask for the validation result (RFC 6840 §5.7), CD if
// configured, and an OPT record unless the server refused EDNS. The ID is
// set per attempt by register.
func (p *query) pack(m *Mux, edns bool) {
	if (len(p.out) > 0 || p.packErr != nil) && p.edns == edns {
		return
	}
	p.msg = dns.Msg{Question: p.qs[:]}
	p.msg.Opcode = dns.OpcodeQuery
	p.msg.RecursionDesired = !m.cfg.NoRecursion
	p.msg.AuthenticatedData = true
	p.msg.CheckingDisabled = m.cfg.CheckingDisabled
	if edns {
		p.msg.Extra = p.extra[:]
	}
	if out, ok := appendQuery(p.out[:0], p.qs[0].Name, p.qs[0].Qtype, p.msg.RecursionDesired,
		p.msg.CheckingDisabled, edns, m.cfg.UDPSize); ok {
		if edns && m.segment {
			out = padQuery(out)
		}
		p.out, p.edns, p.packErr = out, edns, nil
		return
	}
	out, err := p.msg.PackBuffer(p.out[:cap(p.out)])
	if err != nil {
		// Not a valid name (NewQuestion checks; Q does not): the
		// exchange fails, as Stub's does.
		out = p.out[:0]
	}
	p.out, p.edns, p.packErr = out, edns, err
}

// exchange sends p once over one of srv's sockets and waits for the reply
// that answers it, the attempt's time-out, or the end of ctx. The reply has
// passed upstream.ParseReply. It returns the socket used.
func (m *Mux) exchange(ctx context.Context, srv *server, p *query, retry bool) (*socket, *dns.Msg, error) {
	timeout := m.cfg.Timeout
	d, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = min(timeout, time.Until(d))
	}
	s := srv.socks[srv.next.Add(1)%uint32(len(srv.socks))]
	if err := ctx.Err(); err != nil {
		return s, nil, fmt.Errorf("%w: %w", resolve.ErrTimeout, err)
	}
	if timeout <= 0 {
		return s, nil, fmt.Errorf("%w: %w", resolve.ErrTimeout, context.DeadlineExceeded)
	}
	if p.packErr != nil {
		return s, nil, fmt.Errorf("%w: packing the query: %w", resolve.ErrBadResponse, p.packErr)
	}
	if srv.limit != nil {
		if err := srv.limit.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return s, nil, fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())
			}
			// The limiter knows at once that the wait would outlast
			// the deadline.
			return s, nil, fmt.Errorf("%w: rate limit: %w", resolve.ErrTimeout, context.DeadlineExceeded)
		}
	}
	id, ok := s.register(p)
	if !ok {
		return s, nil, ErrClosed
	}
	s.sent.Add(1)
	if retry {
		s.retries.Add(1)
	}
	var err error
	if m.cfg.BatchBlocking {
		// A failed send leaves the query registered: the retransmission
		// below sends it again, as if the datagram were lost.
		s.queue(p.out)
		m.sendSoon(s)
	} else {
		err = s.write(p.out)
	}
	if err != nil {
		if s.unregister(p, id) {
			return s, nil, upstream.NetError(ctx, err)
		}
		<-p.done // completed meanwhile (closed)
		return s, nil, p.result(ctx)
	}
	// Wait for the reply until the attempt's time-out, sending the same
	// datagram (same ID, so a reply to any copy answers the query) again
	// after the server's retransmission interval, doubled each time
	// (RFC 6298 §5.5). Only a reply to an unrepeated query is an RTT
	// sample (Karn's algorithm, RFC 6298 §3).
	sent := time.Now()
	deadline := sent.Add(timeout)
	wait, resent := srv.rtt.rto(), false
wait:
	for {
		p.timer.Reset(min(wait, time.Until(deadline)))
		select {
		case <-p.done:
			p.timer.Stop()
			if p.err != nil {
				return s, nil, p.err
			}
			if !resent {
				srv.rtt.sample(time.Since(sent))
			}
			return s, p.reply, nil
		case <-p.timer.C:
			if !time.Now().Before(deadline) {
				break wait
			}
			if err := s.write(p.out); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				break wait
			}
			s.resent.Add(1)
			wait, resent = 2*wait, true
		case <-ctx.Done():
			p.timer.Stop()
			break wait
		}
	}
	if !s.unregister(p, id) {
		// The reader (or Close) took it out first: its result stands.
		<-p.done
		if p.err != nil {
			return s, nil, p.err
		}
		return s, p.reply, nil
	}
	s.timeouts.Add(1)
	if ctx.Err() == nil && (!hasDeadline || time.Now().Before(d)) {
		// The try ran its course, not cut short by the caller.
		m.silence(srv, sent)
	}
	return s, nil, p.result(ctx)
}

// write sends one datagram on s with a system call of its own.
func (s *socket) write(b []byte) error {
	s.m.sendCalls.Add(1)
	_, err := s.conn.Write(b)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The socket reports an ICMP error left by an earlier query,
		// perhaps another lookup's (RFC 1122 §4.1.3.3); send once more,
		// so only a server refusing now fails this one.
		s.m.sendCalls.Add(1)
		_, err = s.conn.Write(b)
	}
	return err
}

// sendSoon sends a blocking lookup's datagram just queued on s
// (Config.BatchBlocking): at once when it is alone in flight on s, else
// with flushBatch others, or at the end of a reader's batch under way, or
// by the flusher.
func (m *Mux) sendSoon(s *socket) {
	if m.batching.Load() > 0 {
		return // the batch's end sends it (flushBatches)
	}
	least := flushBatch
	if s.inflight.Load() <= 1 {
		least = 1
	}
	if _, left := s.flushAtLeast(least); left {
		select {
		case m.flushSoon <- struct{}{}:
		default: // already signalled
		}
	}
}

// result is the error of an attempt that got no reply: the context's end,
// or a time-out that says what was dropped meanwhile.
func (p *query) result(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", resolve.ErrTimeout, err)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		// The attempt's timer fired at the caller's deadline, a moment
		// before the context's own: say it was the deadline.
		return fmt.Errorf("%w: %w", resolve.ErrTimeout, context.DeadlineExceeded)
	}
	if p.stray != nil {
		return fmt.Errorf("%w (and dropped a reply: %w)", resolve.ErrTimeout, p.stray)
	}
	return resolve.ErrTimeout
}

// register puts p in the table under a free random ID (RFC 5452 §9.1:
// IDs must not be predictable) and sets its ID; it reports false if the
// socket is closed. With at most MaxInFlight queries per socket the
// table is at most half full, so the probe is short.
func (s *socket) register(p *query) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, false
	}
	return s.claim(p), true
}

// claim is register with s.mu held and the socket open.
func (s *socket) claim(p *query) uint16 {
	id := uint16(rand.Uint32())
	for s.table.get(id) != nil {
		id++
	}
	s.table.put(id, p)
	s.inflight.Add(1)
	p.gen++
	p.reply, p.err, p.stray, p.strays = nil, nil, nil, 0
	p.msg.Id = id
	binary.BigEndian.PutUint16(p.out, id)
	return id
}

// unregister takes p out of the table and reports whether it was still
// there; if not, whoever took it out has sent on p.done.
func (s *socket) unregister(p *query, id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table.get(id) != p {
		return false
	}
	s.table.remove(id)
	s.inflight.Add(-1)
	return true
}

// read is the socket's reader goroutine: it hands every datagram to demux
// until the socket is closed.
func (s *socket) read() {
	// Buffers for the reader's life: upstream.ParseReply copies what it keeps.
	// A datagram longer than its buffer arrives cut and is dropped as
	// malformed; replies fit in the EDNS0 size asked (RFC 6891 §6.2.5).
	size := max(int(s.m.cfg.UDPSize), dns.MinMsgSize) + 512
	r := newDatagramReader(s.conn, asyncBatch, size)
	var probe dns.Msg
	var qs [1]dns.Question
	var reply wireMsg
	batch := func(datagrams [][]byte) {
		// The asynchronous lookups started by this batch's callbacks
		// wait in the outboxes and leave together at its end.
		s.m.batching.Add(1)
		heard := false
		for _, b := range datagrams {
			heard = s.demux(b, &probe, &qs, &reply) || heard
		}
		if heard {
			s.m.heard(s.srv)
		}
		s.m.batching.Add(-1)
		s.m.flushBatches()
	}
	refused := func(err error) {
		// An ICMP error for some query on this connected socket (RFC
		// 1122 §4.1.3.3): nothing listens at the server's port, or no
		// route reaches it, so fail the queries in flight, which a
		// Stub's sockets would each learn, rather than let them time
		// out. The lookups retry after a pause, then fail over.
		s.refused.Add(1)
		s.m.silence(s.srv, time.Now()) // whenever it was sent: nothing listens
		s.failAll(fmt.Errorf("%w: %w", resolve.ErrUnreachable, err))
	}
	var pause time.Duration
	last := time.Now()
	for {
		err := r.run(batch, refused)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// Any other failure of the read explains nothing about the
		// queries: read again, after a pause that grows while the
		// failures repeat, so a lasting one cannot spin a core. A Close
		// meanwhile ends the loop at the next read.
		now := time.Now()
		pause = readPause(pause, now.Sub(last))
		last = now
		if l := s.m.cfg.Logger; l != nil {
			l.Debug("dns socket read failed", "server", s.srv.addr, "error", err, "pause", pause)
		}
		time.Sleep(pause)
	}
}

// Bounds of the pause before a socket is read again after a failed read.
const (
	minReadPause = time.Millisecond
	maxReadPause = 100 * time.Millisecond
)

// readPause is the pause after a failed read: minReadPause after a while
// without failures (since the last one), twice the last pause up to
// maxReadPause while they repeat.
func readPause(last, since time.Duration) time.Duration {
	if since > time.Second {
		return minReadPause
	}
	return min(max(2*last, minReadPause), maxReadPause)
}

// demux matches one datagram to the query in flight with its ID and hands
// it over if it answers that query (parseReplyFast, which checks as
// upstream.ParseReply does: QR, the question, the header counts). Anything else is
// dropped, and counted; the query goes on waiting, so a stray datagram
// cannot stand in for the answer. probe, qs and reply are the reader's
// scratch space: a reply to an asynchronous lookup is built in reply
// (parseReplyInto), whose callback runs before demux returns. It reports
// whether the datagram was an answer from the server, late or not
// (health).
func (s *socket) demux(b []byte, probe *dns.Msg, qs *[1]dns.Question, reply *wireMsg) bool {
	if len(b) < 2 {
		s.late.Add(1)
		return false
	}
	id := binary.BigEndian.Uint16(b)
	s.mu.Lock()
	p := s.table.get(id)
	if p == nil {
		s.mu.Unlock()
		s.late.Add(1)
		s.srv.win.needless()
		return true // late, but an answer
	}
	gen := p.gen
	qs[0] = p.qs[0]
	var into *wireMsg
	if p.async != nil {
		into = reply
	}
	s.mu.Unlock()

	// Parse outside the lock, against a copy of the question: the
	// query may time out meanwhile and its record be reused (then the
	// reply is dropped below, so into's choice does not matter).
	*probe = dns.Msg{Question: qs[:]}
	probe.Id = id
	r, err := parseReplyInto(b, probe, into)

	s.mu.Lock()
	if s.table.get(id) != p || p.gen != gen {
		s.mu.Unlock()
		s.late.Add(1)
		return true // answered or timed out meanwhile: late
	}
	if err != nil {
		s.stray.Add(1)
		p.stray = err
		p.strays++
		if p.strays < upstream.MaxStrayReplies {
			s.mu.Unlock()
			return false
		}
		// As upstream.Exchange: a flood of non-matching replies ends the
		// attempt rather than keeping the reader busy with it.
		p.err = fmt.Errorf("%w: %d replies that do not match the query (last: %w)", resolve.ErrBadResponse, upstream.MaxStrayReplies, err)
	}
	p.reply = r
	s.table.remove(id)
	s.inflight.Add(-1)
	s.mu.Unlock()
	if p.async != nil {
		s.m.finishAsync(s, p, into)
		return err == nil
	}
	p.done <- struct{}{} // buffered: one send per registration
	return err == nil
}

// close fails the queries in flight with ErrClosed and closes the socket,
// which ends the reader.
func (s *socket) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.failAll(ErrClosed)
	s.conn.Close()
}

// failAll ends every query in flight on s with err.
func (s *socket) failAll(err error) {
	var async []*query
	s.mu.Lock()
	if s.inflight.Load() > 0 {
		s.table.drain(func(_ uint16, p *query) {
			p.err = err
			if p.async != nil {
				async = append(async, p)
			} else {
				p.done <- struct{}{}
			}
		})
		s.inflight.Store(0)
	}
	s.mu.Unlock()
	// Outside the lock: the callbacks may start lookups.
	for _, p := range async {
		s.m.finishAsync(s, p, nil)
	}
}

package mux

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// asyncBatch is how many datagrams one sendmmsg or recvmmsg moves.
const asyncBatch = 64

// sweepInterval is how often the sweeper looks for asynchronous queries
// whose retransmission interval passed (a fifth of the smallest one).
const sweepInterval = minRTO / 5

// batchConn is the batch I/O of golang.org/x/net/ipv4 and ipv6 (sendmmsg
// and recvmmsg on Linux, one datagram per call elsewhere).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c *net.UDPConn, raddr *net.UDPAddr) batchConn {
	if raddr.IP.To4() == nil {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// pending is an asynchronous query waiting on a socket: when to send it
// again (due, after interval) and when its attempt ends (deadline), as
// Mux.exchange does for a waiting caller (RFC 6298 §5.5).
type pending struct {
	p             *query
	id            uint16
	gen           uint64
	due, deadline time.Time
	interval      time.Duration
}

// outbox holds the packed queries not yet sent on a socket, so that the
// queries started while the reader handles one batch of replies leave
// together (a few segmented sends on Linux, see gso_linux.go, else one
// sendmmsg): fewer system calls here, and a server that reads its socket
// in batches (Knot, Unbound) wakes once for all of them.
type outbox struct {
	mu   sync.Mutex
	buf  []byte // the datagrams back to back
	ends []int  // where each ends in buf

	flushMu   sync.Mutex // one flush at a time; guards the rest
	spare     []byte
	spareEnds []int
	msgs      []ipv4.Message
	bufs      [][]byte
	// segment: send runs of datagrams of one size with sendSegments;
	// cleared for good when that fails for want of support (EIO:
	// a device that cannot segment).
	segment bool
}

// LookupAsync implements Async with the semantics of Lookup. The common
// case — the first server answers the first attempt with NOERROR or
// NXDOMAIN — takes no goroutine: the query waits in the socket's table,
// the sweeper sends it again after the server's retransmission interval,
// and the reader passes the reply to done. Anything else (the attempt's
// time-out, SERVFAIL, REFUSED, truncation, a server that does not know
// EDNS, a rate limit) goes on in a goroutine exactly as Lookup would go on
// from there: retries with backoff, TCP, fail-over.
//
// The asynchronous queries on the wire to a server are paced by its
// congestion window (see window): those beyond it wait in a queue, and
// leave as replies come back.
func (m *Mux) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	srv := m.preferred()
	if srv.limit != nil {
		m.background(q, done)
		return
	}
	ok, busy := srv.win.admit(m, asyncStart{q, done})
	if !ok {
		return // queued
	}
	// With replies on their way, the reader's next batch end sends this
	// query with the ones its replies start: one system call for many
	// (as Nagle's algorithm holds small segments while data is
	// unacknowledged, RFC 896). The sweeper sends it if none comes.
	m.startAsync(srv, q, done, !busy)
}

// asyncRun is how many asynchronous queries in a row go to the same
// socket of a server.
const asyncRun = 16

// nagle is how many asynchronous queries in flight to a server let a new
// one wait for the next batch of replies instead of being sent at once.
const nagle = 16

// startAsync puts one asynchronous query, admitted by the window, on the
// wire.
func (m *Mux) startAsync(srv *server, q resolve.Question, done func(*resolve.Answer, error), flush bool) {
	p := m.queries.Get().(*query)
	p.start(q)
	p.pack(m, true)
	if p.packErr != nil {
		m.queries.Put(p)
		m.release(srv, false)
		m.background(q, done)
		return
	}
	s := srv.pick()
	p.async = done
	if !s.registerAsync(p) {
		p.async = nil
		m.queries.Put(p)
		m.release(srv, false)
		m.background(q, done)
		return
	}
	s.sent.Add(1)
	if flush && m.batching.Load() == 0 {
		// No reader is handling replies, whose end would send it.
		s.flush()
	}
}

// pick chooses the socket for the next asynchronous query. Runs of
// asyncRun queries share a socket, so that a batch leaves in one send
// rather than one per socket; each run goes to the socket with the fewest
// queries in flight. The server gives each of our source ports to one of
// its threads (see DefaultSockets), and that split is rarely even: a
// thread with more sockets than its share falls behind, its sockets' queries
// wait longer, and so hold more places in the window. Sending each run to
// the least loaded socket ("join the shortest queue") moves the work to the
// threads that keep up, as a load balancer's least-connections rule does.
func (srv *server) pick() *socket {
	k := srv.next.Add(1) - 1
	if k%asyncRun == 0 {
		n := uint32(len(srv.socks))
		best := (k / asyncRun) % n // ties go round the sockets
		for i := range n {
			j := (k/asyncRun + i) % n
			if srv.socks[j].inflight.Load() < srv.socks[best].inflight.Load() {
				best = j
			}
		}
		srv.run.Store(best)
	}
	return srv.socks[srv.run.Load()]
}

// asyncStart is an asynchronous lookup waiting for room in the window.
type asyncStart struct {
	q    resolve.Question
	done func(*resolve.Answer, error)
}

// window paces the asynchronous queries to one server as TCP paces its
// segments (RFC 5681 §3.1): slow start, then one more query in flight per
// round trip, and half as many when a datagram was lost (sent again after
// the retransmission interval). A server's socket buffer holds a few
// hundred datagrams (Knot's and Unbound's default, 208 KiB on Linux);
// thousands of queries sent at once overflow it, and every datagram lost
// costs a retransmission interval. Sending only what the server keeps up
// with avoids that, and keeps a server far away busy as well.
//
// A datagram sent again is not always a loss: a recursive resolver may take
// longer than the retransmission interval over one name and then answer
// both copies (through a cold Unbound every one of the 100–300 datagrams a
// scan sent again was answered twice). As TCP learns from a duplicate
// acknowledgement that a retransmission was needless and undoes the cut
// (RFC 3708 detection, RFC 4015 response), a reply to a query already
// answered (a late reply) proves one of the cut's datagrams needless; when
// all are, the window before the cut comes back.
type window struct {
	mu             sync.Mutex
	cwnd, ssthresh float64
	inflight       int
	lastCut        time.Time
	// undoCwnd and undoSsthresh are the window before the last cut;
	// unproven counts the datagrams sent again since it that no late
	// reply has shown needless.
	undoCwnd, undoSsthresh float64
	unproven               int
	backlog                fifo[asyncStart]
	closed                 bool
}

// Bounds of a window, in queries.
const (
	initialWindow = 64
	minWindow     = 8
)

// admit takes a place in the window for a, or queues a and reports false.
// busy reports that at least nagle other queries are in flight.
func (w *window) admit(m *Mux, a asyncStart) (ok, busy bool) {
	w.mu.Lock()
	if w.closed || m.closed.Load() {
		w.mu.Unlock()
		m.background(a.q, a.done) // fails with ErrClosed
		return false, false
	}
	if w.cwnd == 0 {
		w.cwnd, w.ssthresh = initialWindow, float64(m.cfg.MaxInFlight)
	}
	if w.inflight < int(w.cwnd) {
		busy = w.inflight >= nagle
		w.inflight++
		w.mu.Unlock()
		return true, busy
	}
	w.backlog.push(a)
	w.mu.Unlock()
	return false, false
}

// release gives back the place of a query that ended (answered, or handed
// to Lookup), opening the window by one round trip's share when it was
// answered, and starts the queued queries that now fit.
func (m *Mux) release(srv *server, answered bool) {
	w := &srv.win
	w.mu.Lock()
	w.inflight--
	if answered {
		if w.cwnd < w.ssthresh {
			w.cwnd++
		} else {
			w.cwnd += 1 / w.cwnd
		}
		w.cwnd = min(w.cwnd, float64(m.cfg.MaxInFlight))
	}
	if w.backlog.len() > 0 && m.leave(srv) {
		// Held down since they were queued (see
		// resolve/internal/upstream/health.go): another
		// server takes them.
		w.mu.Unlock()
		m.redirect(srv)
		return
	}
	var next []asyncStart
	for w.backlog.len() > 0 && w.inflight < int(w.cwnd) {
		next = append(next, w.backlog.pop())
		w.inflight++
	}
	w.mu.Unlock()
	for _, a := range next {
		m.startAsync(srv, a.q, a.done, true)
	}
}

// lost halves the window after a datagram was lost (sent again, or its
// try timed out), at most once per retransmission interval (one loss
// event, RFC 5681 §3.1).
func (w *window) lost(now time.Time, rto time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.lastCut) < rto {
		w.unproven++
		return
	}
	w.lastCut = now
	w.undoCwnd, w.undoSsthresh, w.unproven = w.cwnd, w.ssthresh, 1
	w.ssthresh = max(w.cwnd/2, minWindow)
	w.cwnd = w.ssthresh
}

// needless notes a late reply: one datagram counted lost since the last
// cut was answered after all. When every one of them was, the cut was
// needless and the window before it comes back (what grew since stays).
// A datagram lost for real is never answered twice, so a cut with a real
// loss in it stays; the sockets are connected, so only the server (or
// someone on the path) can send a late reply.
func (w *window) needless() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.unproven == 0 {
		return
	}
	if w.unproven--; w.unproven == 0 {
		w.cwnd, w.ssthresh = max(w.cwnd, w.undoCwnd), max(w.ssthresh, w.undoSsthresh)
	}
}

// closeWindow fails the queued lookups with ErrClosed, through Lookup.
func (m *Mux) closeWindow(srv *server) {
	for _, a := range srv.win.drain(true) {
		m.background(a.q, a.done)
	}
}

// drain empties the backlog and returns what it held; with closing, no
// lookup is admitted after.
func (w *window) drain(closing bool) []asyncStart {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = w.closed || closing
	var queued []asyncStart
	for w.backlog.len() > 0 {
		queued = append(queued, w.backlog.pop())
	}
	return queued
}

// background runs Lookup on a goroutine and passes its outcome to done.
func (m *Mux) background(q resolve.Question, done func(*resolve.Answer, error)) {
	go func() {
		a, err := m.Lookup(context.Background(), q)
		deliver(done, a, err)
	}()
}

// deliver passes a lookup's outcome to done as exactly one of an answer
// and an error (Async's contract).
func deliver(done func(*resolve.Answer, error), a *resolve.Answer, err error) {
	if err != nil {
		done(nil, err)
		return
	}
	done(a, nil)
}

// registerAsync is register for an asynchronous query: it also notes it
// for the sweeper and puts the datagram in the outbox. The copy is made
// with s.mu held: once p is in the table a reply may end it (a late reply
// to an earlier query with the same ID, say), and the goroutine that goes
// on from there may pack p again. It reports false if the socket is
// closed or holds as many queries as MaxInFlight, so the ID table stays
// at most half full.
func (s *socket) registerAsync(p *query) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.inflight.Load() >= MaxInFlight {
		return false
	}
	id := s.claim(p)
	p.sent, p.resent = time.Now(), false
	rto := s.srv.rtt.rto()
	// Due at the first of the retransmission interval and the try's end,
	// so a try shorter than the interval (initialRTO, before the first
	// sample) ends on time.
	s.waiting.push(pending{p: p, id: id, gen: p.gen,
		due: p.sent.Add(min(rto, s.m.cfg.Timeout)), interval: rto, deadline: p.sent.Add(s.m.cfg.Timeout)})
	s.queue(p.out)
	return true
}

// queue adds one packed query to the outbox.
func (s *socket) queue(b []byte) {
	o := &s.out
	o.mu.Lock()
	o.buf = append(o.buf, b...)
	o.ends = append(o.ends, len(o.buf))
	o.mu.Unlock()
}

// flush sends what the outbox holds, in batches, and returns how many
// queries it took from it. A failed send leaves the queries registered:
// the sweeper sends them again after their retransmission interval, as if
// the datagrams were lost.
func (s *socket) flush() int {
	n, _ := s.flushAtLeast(1)
	return n
}

// flushAtLeast is flush when the outbox holds at least least queries; it
// returns how many it took, and whether it left some (fewer than least)
// waiting.
func (s *socket) flushAtLeast(least int) (taken int, left bool) {
	o := &s.out
	o.flushMu.Lock()
	defer o.flushMu.Unlock()
	o.mu.Lock()
	if n := len(o.ends); n < least {
		o.mu.Unlock()
		return 0, n > 0
	}
	buf, ends := o.buf, o.ends
	o.buf, o.ends = o.spare[:0], o.spareEnds[:0]
	o.mu.Unlock()
	for start, i := 0, 0; i < len(ends); {
		// A run of two or more of one size leaves segmented; anything
		// else (no segmentation, or a stretch of mixed sizes up to the
		// next such run) with sendmmsg.
		j, run := len(ends), false
		if o.segment {
			j = sameSize(ends, start, i)
			run = j-i > 1
			for !run && j < len(ends) && sameSize(ends, ends[j-1], j)-j < 2 {
				j++
			}
		}
		var err error
		if run {
			err = s.sendSegmented(buf[start:ends[j-1]], ends[i]-start)
		} else {
			err = s.sendBatch(buf, ends, start, i, j)
		}
		if err != nil {
			// The rest waits for the sweeper's resend, as a
			// datagram the network lost would.
			break
		}
		start, i = ends[j-1], j
	}
	o.spare, o.spareEnds = buf[:0], ends[:0]
	return len(ends), false
}

// sameSize returns the end (exclusive) of the run of datagrams from i on
// that have the size of datagram i, at most maxSegments of them; ends are
// where the datagrams end in the buffer, the first starting at start.
func sameSize(ends []int, start, i int) int {
	size := ends[i] - start
	j := i + 1
	for j < len(ends) && j-i < maxSegments && ends[j]-ends[j-1] == size {
		j++
	}
	return j
}

// sendSegmented sends b, datagrams of size octets back to back, in one
// segmented send. Where the system cannot segment it (EIO), it sends them
// with sendmmsg instead and does so from then on.
func (s *socket) sendSegmented(b []byte, size int) error {
	s.m.sendCalls.Add(1)
	err := sendSegments(s.conn, b, size)
	if upstream.Unreachable(err) {
		// An ICMP error left by an earlier query (see exchange): send
		// again.
		s.m.sendCalls.Add(1)
		err = sendSegments(s.conn, b, size)
	}
	if err == nil || !errors.Is(err, syscall.EIO) {
		return err
	}
	s.out.segment = false
	var ends []int
	for end := size; end < len(b)+size; end += size {
		ends = append(ends, min(end, len(b)))
	}
	return s.sendBatch(b, ends, 0, 0, len(ends))
}

// sendBatch sends datagrams i to j-1 of buf (ends as for sameSize, the
// first of them starting at start) with sendmmsg, asyncBatch at a time.
func (s *socket) sendBatch(buf []byte, ends []int, start, i, j int) error {
	o := &s.out
	o.bufs = o.bufs[:0]
	for _, end := range ends[i:j] {
		o.bufs = append(o.bufs, buf[start:end])
		start = end
	}
	defer clear(o.msgs) // no references to buf kept
	for len(o.bufs) > 0 {
		k := min(len(o.bufs), asyncBatch)
		if cap(o.msgs) < k {
			o.msgs = make([]ipv4.Message, asyncBatch)
		}
		ms := o.msgs[:k]
		for i := range ms {
			ms[i].Buffers = o.bufs[i : i+1]
		}
		s.m.sendCalls.Add(1)
		n, err := s.batch.WriteBatch(ms, 0)
		if upstream.Unreachable(err) {
			// An ICMP error left by an earlier query (see exchange):
			// send again.
			s.m.sendCalls.Add(1)
			n, err = s.batch.WriteBatch(ms, 0)
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("mux: sendmmsg sent nothing")
		}
		o.bufs = o.bufs[n:]
	}
	return nil
}

// Deferred sends: at a batch's end an outbox with fewer than flushBatch
// queries is left for the flusher, which sends it flushDelay later with
// whatever joined it. Replies from a busy recursive resolver come one at a
// time, each starting a query or two; sending those one sendmmsg each (and
// waking the resolver for each) cost more CPU than the rest of the reply's
// handling. Two milliseconds are little beside a cold recursive lookup's
// time, and a server that answers fast sends replies in batches, whose
// queries fill outboxes past flushBatch and leave at once. A recursive
// resolver's CPU per query falls with the size of the batches it is sent;
// the values were chosen by interleaved scans (docs/performance.md).
const (
	flushBatch = 16
	flushDelay = 2 * time.Millisecond
)

// flushBatches ends a reader's batch: it sends the outboxes holding at
// least flushBatch queries and leaves the others to the flusher.
func (m *Mux) flushBatches() {
	deferred := false
	for _, srv := range m.servers {
		for _, s := range srv.socks {
			if _, left := s.flushAtLeast(flushBatch); left {
				deferred = true
			}
		}
	}
	if deferred {
		select {
		case m.flushSoon <- struct{}{}:
		default: // already signalled
		}
	}
}

// flusher sends the outboxes flushDelay after a batch's end left queries
// in them, until the Mux closes.
func (m *Mux) flusher() {
	t := time.NewTimer(flushDelay)
	t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.flushSoon:
		}
		t.Reset(flushDelay)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
		m.flushAll()
	}
}

// flushAll flushes every socket's outbox, for the flusher.
func (m *Mux) flushAll() {
	for _, srv := range m.servers {
		for _, s := range srv.socks {
			m.deferredSent.Add(int64(s.flush()))
		}
	}
}

// finishAsync ends an asynchronous query that the reader, the sweeper or
// Close took out of the table, with its reply or its error. The reply may
// be built in scratch (the reader's, see demux), which is reused once
// finishAsync returns.
func (m *Mux) finishAsync(s *socket, p *query, scratch *wireMsg) {
	done, r, err := p.async, p.reply, p.err
	q := resolve.Question{Name: p.qs[0].Name, Type: p.qs[0].Qtype}
	p.async, p.reply = nil, nil
	m.release(s.srv, err == nil)
	if err == nil && !r.Truncated && (r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError) {
		if !p.resent {
			s.srv.rtt.sample(time.Since(p.sent)) // Karn: first sends only
		}
		m.queries.Put(p)
		a, _ := resolve.FromReply(q, s.srv.addr, r)
		done(a, nil)
		return
	}
	if errors.Is(err, ErrClosed) {
		m.queries.Put(p)
		done(nil, &resolve.Error{Question: q, Server: s.srv.addr, Rcode: -1, Err: err})
		return
	}
	if err != nil && m.leave(s.srv) {
		// No reply, and the server is held down meanwhile (upstream/health.go):
		// start over on the server preferred now, paced by its window,
		// rather than all at once as blocking lookups.
		m.queries.Put(p)
		m.LookupAsync(q, done)
		return
	}
	// Lookup's business from here on, on a goroutine that owns p.
	r = own(r, scratch)
	go func() {
		a, err := m.lookup(context.Background(), p, q, &resumed{s: s, r: r, err: err})
		m.queries.Put(p)
		deliver(done, a, err)
	}()
}

// sweep runs until the Mux closes: every sweepInterval it sends again the
// asynchronous queries whose retransmission interval passed, ends those
// whose attempt timed out, and sends anything left in an outbox.
func (m *Mux) sweep() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			for _, srv := range m.servers {
				for _, s := range srv.socks {
					for _, p := range s.expired(now) {
						s.timeouts.Add(1)
						m.silence(srv, p.sent)
						p.err = resolve.ErrTimeout
						m.finishAsync(s, p, nil)
					}
					s.flush()
				}
			}
		}
	}
}

// expired looks at the asynchronous queries due by now: those answered
// are forgotten, those past their attempt's deadline are taken out of the
// table and returned, the others are queued again (same datagram, same
// ID, so a reply to any copy answers) and wait twice as long.
func (s *socket) expired(now time.Time) []*query {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost []*query
	for s.waiting.len() > 0 {
		w := s.waiting.peek()
		// The table first: a record answered may be reused on another
		// socket, whose lock guards its gen then.
		if s.table.get(w.id) != w.p || w.p.gen != w.gen {
			s.waiting.pop() // answered (and perhaps reused)
			continue
		}
		if w.due.After(now) {
			break
		}
		s.waiting.pop()
		if !now.Before(w.deadline) {
			s.srv.win.lost(now, w.interval)
			s.table.remove(w.id)
			s.inflight.Add(-1)
			lost = append(lost, w.p)
			continue
		}
		s.queue(w.p.out)
		s.resent.Add(1)
		s.srv.win.lost(now, w.interval)
		w.p.resent = true
		w.interval *= 2
		w.due = now.Add(min(w.interval, w.deadline.Sub(now)))
		s.waiting.push(w)
	}
	return lost
}

// fifo is a queue in a slice whose consumed front is reclaimed once it is
// half the slice, so a queue that never empties (a server slower than the
// lookups started) stays as long as what it holds, not what went through.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

func (q *fifo[T]) len() int { return len(q.items) - q.head }

// peek returns the oldest item; the queue must not be empty.
func (q *fifo[T]) peek() T { return q.items[q.head] }

// pop takes the oldest item; the queue must not be empty.
func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head > len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v
}

package resolve

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
)

// Async is a Resolver that can also start a lookup without waiting for it.
// A bulk caller (a scan) uses it to keep thousands of questions in flight
// without a goroutine blocked on each one.
type Async interface {
	Resolver
	// LookupAsync starts a lookup of q and returns at once. done is
	// called exactly once with what Lookup would have returned; it may be
	// called before LookupAsync returns, or on another goroutine (a
	// socket's reader), so it must not block: it may start more lookups.
	LookupAsync(q Question, done func(*Answer, error))
}

// AsyncOf returns r as an Async when its lookups can really start without
// a goroutine waiting: a Mux, or a Cache in front of one. Anything else
// (a Stub, zone files) reports false, and callers simply call Lookup.
func AsyncOf(r Resolver) (Async, bool) {
	switch v := r.(type) {
	case *Mux:
		return v, true
	case *Cache:
		if _, ok := AsyncOf(v.next); ok {
			return v, true
		}
	}
	return nil, false
}

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

// pending is an asynchronous query waiting on a socket, in the order sent.
type pending struct {
	p    *muxQuery
	id   uint16
	gen  uint64
	sent time.Time
}

// outbox holds the packed queries not yet sent on a socket, so that the
// queries started while the reader handles one batch of replies leave in
// one sendmmsg: fewer system calls here, and a server that reads its
// socket in batches (Knot, Unbound) wakes once for all of them.
type outbox struct {
	mu   sync.Mutex
	buf  []byte // the datagrams back to back
	ends []int  // where each ends in buf

	flushMu   sync.Mutex // one flush at a time; guards the rest
	spare     []byte
	spareEnds []int
	msgs      []ipv4.Message
	bufs      [][]byte
}

// LookupAsync implements Async with the Mux's semantics: the common case
// — the first server answers within its retransmission interval with
// NOERROR or NXDOMAIN — is handled by the socket's reader, with no
// goroutine; anything else (a lost datagram, SERVFAIL, REFUSED, truncation,
// a server that does not know EDNS, a rate limit) is handed to Lookup on a
// goroutine of its own, which retries, falls back and fails over exactly
// as Lookup does.
func (m *Mux) LookupAsync(q Question, done func(*Answer, error)) {
	srv := m.servers[0]
	if m.closed.Load() || srv.limit != nil {
		m.background(q, done)
		return
	}
	p := m.queries.Get().(*muxQuery)
	p.start(q)
	p.pack(m, true)
	if p.packErr != nil {
		m.queries.Put(p)
		m.background(q, done)
		return
	}
	s := srv.socks[srv.next.Add(1)%uint32(len(srv.socks))]
	p.async = done
	if !s.registerAsync(p) {
		p.async = nil
		m.queries.Put(p)
		m.background(q, done)
		return
	}
	s.sent.Add(1)
	s.queue(p.out)
	if m.batching.Load() == 0 {
		// No reader is handling replies, whose end would send it.
		s.flush()
	}
}

// background runs Lookup on a goroutine and passes its outcome to done.
func (m *Mux) background(q Question, done func(*Answer, error)) {
	go func() {
		a, err := m.Lookup(context.Background(), q)
		if err != nil {
			done(nil, err)
			return
		}
		done(a, nil)
	}()
}

// registerAsync is register for an asynchronous query: it also notes it
// for the sweeper. It reports false if the socket is closed or holds as
// many queries as MaxMuxInFlight, so the ID table stays at most half full.
func (s *muxSocket) registerAsync(p *muxQuery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.inflight >= MaxMuxInFlight {
		return false
	}
	id := s.claim(p)
	p.sent = time.Now()
	s.waiting = append(s.waiting, pending{p: p, id: id, gen: p.gen, sent: p.sent})
	return true
}

// queue adds one packed query to the outbox.
func (s *muxSocket) queue(b []byte) {
	o := &s.out
	o.mu.Lock()
	o.buf = append(o.buf, b...)
	o.ends = append(o.ends, len(o.buf))
	o.mu.Unlock()
}

// flush sends what the outbox holds, in batches. A failed send leaves the
// queries registered: the sweeper hands them to Lookup after their
// retransmission interval, as if the datagrams were lost.
func (s *muxSocket) flush() {
	o := &s.out
	o.flushMu.Lock()
	defer o.flushMu.Unlock()
	o.mu.Lock()
	buf, ends := o.buf, o.ends
	o.buf, o.ends = o.spare[:0], o.spareEnds[:0]
	o.mu.Unlock()
	if len(ends) > 0 {
		o.bufs = o.bufs[:0]
		start := 0
		for _, end := range ends {
			o.bufs = append(o.bufs, buf[start:end])
			start = end
		}
		for len(o.bufs) > 0 {
			k := min(len(o.bufs), asyncBatch)
			if cap(o.msgs) < k {
				o.msgs = make([]ipv4.Message, asyncBatch)
			}
			ms := o.msgs[:k]
			for i := range ms {
				ms[i].Buffers = o.bufs[i : i+1]
			}
			n, err := s.batch.WriteBatch(ms, 0)
			if errors.Is(err, syscall.ECONNREFUSED) {
				// An ICMP error left by an earlier query (see
				// exchange): send again.
				n, err = s.batch.WriteBatch(ms, 0)
			}
			if err != nil || n <= 0 {
				break
			}
			o.bufs = o.bufs[n:]
		}
		clear(o.msgs) // no references to buf kept
	}
	o.spare, o.spareEnds = buf[:0], ends[:0]
}

// flushAll flushes every socket's outbox.
func (m *Mux) flushAll() {
	for _, srv := range m.servers {
		for _, s := range srv.socks {
			s.flush()
		}
	}
}

// finishAsync ends an asynchronous query that the reader (or Close) took
// out of the table: its reply is the answer, or the question goes to
// Lookup for what only Lookup handles.
func (m *Mux) finishAsync(s *muxSocket, p *muxQuery) {
	done, q, r, err, sent := p.async, Question{Name: p.qs[0].Name, Type: p.qs[0].Qtype}, p.reply, p.err, p.sent
	p.async, p.reply = nil, nil
	m.queries.Put(p)
	switch {
	case errors.Is(err, ErrClosed):
		done(nil, &Error{Question: q, Server: s.srv.addr, Rcode: -1, Err: err})
		return
	case err != nil, r.Truncated, r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError:
		// A flood of stray replies, truncation (TCP), FORMERR or NOTIMP
		// (EDNS), SERVFAIL (retried), REFUSED (fail-over): Lookup's.
		s.retries.Add(1)
		m.background(q, done)
		return
	}
	s.srv.rtt.sample(time.Since(sent))
	a, e := answerOf(q, s.srv.addr, r)
	if e != nil {
		done(nil, e)
		return
	}
	done(a, nil)
}

// sweep runs until the Mux closes: every sweepInterval it hands the
// asynchronous queries that got no reply within their server's
// retransmission interval to Lookup, which sends them again (and retries
// and fails over), and sends anything left in an outbox.
func (m *Mux) sweep() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			for _, srv := range m.servers {
				rto := srv.rtt.rto()
				for _, s := range srv.socks {
					for _, p := range s.expired(now.Add(-rto)) {
						s.resent.Add(1)
						m.finishAsyncLost(p)
					}
					s.flush()
				}
			}
		}
	}
}

// expired takes out of the table the asynchronous queries sent before
// cutoff and still unanswered, and forgets those answered.
func (s *muxSocket) expired(cutoff time.Time) []*muxQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost []*muxQuery
	i := s.waitHead
	for ; i < len(s.waiting); i++ {
		w := s.waiting[i]
		if w.p.gen != w.gen || s.table[w.id] != w.p {
			continue // answered (and perhaps reused)
		}
		if w.sent.After(cutoff) {
			break
		}
		s.table[w.id] = nil
		s.inflight--
		lost = append(lost, w.p)
	}
	// The rest is kept; the front is reclaimed once it is half the slice.
	s.waitHead = i
	if s.waitHead > len(s.waiting)/2 {
		n := copy(s.waiting, s.waiting[s.waitHead:])
		clear(s.waiting[n:])
		s.waiting, s.waitHead = s.waiting[:n], 0
	}
	return lost
}

// finishAsyncLost hands an unanswered asynchronous query to Lookup.
func (m *Mux) finishAsyncLost(p *muxQuery) {
	done, q := p.async, Question{Name: p.qs[0].Name, Type: p.qs[0].Qtype}
	p.async = nil
	m.queries.Put(p)
	m.background(q, done)
}

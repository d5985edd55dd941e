package resolve

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server health: a Mux passes over a server that has stopped answering.
//
// Fail-over per lookup is not enough for a long scan. A server that is
// down costs every lookup its tries there first: a time-out (2 s by
// default) when its host is gone, an ICMP report and a pause when nothing
// listens. Asked first by thousands of lookups, a dead first --resolver
// took a scan from 21,700 domains/s to 3,000 (port closed) and below 100
// (host silent). So, as a recursive resolver keeps a server's state in
// its infrastructure cache (Unbound marks a server that keeps timing out
// and asks it again only to probe it), and as CoreDNS's forward plugin
// takes an upstream out of rotation after failed health checks:
//
//   - silentLimit tries in a row (a Stub: one lookup's tries, at least
//     two) that got nothing back (time-outs, ICMP
//     unreachable reports), each sent after the server's last reply,
//     mark it down (a burst that overflows a live server's socket buffer
//     loses queries sent before replies that still come: not silence);
//   - the lookups waiting for it then start over at once on the next
//     server, asynchronous ones paced by that server's window: those in
//     flight and those queued;
//   - a server that is down is asked after the others, not before, and
//     a lookup stops retrying it for one that is up;
//   - when its hold-down ends, the Mux probes it with a query of its own
//     (". NS"; no lookup waits on the probe); a reply of any kind (even
//     REFUSED: it answers) marks it up, and silence marks it down again
//     for twice as long, up to maxHoldDown.
//
// With a single server, or all of them down, every lookup still asks them
// all: being passed over only changes the order.
const (
	silentLimit     = 3
	initialHoldDown = 2 * time.Second
	maxHoldDown     = time.Minute
)

// health is one server's state. Times are on the Mux's clock (Mux.now).
type health struct {
	// silent counts the tries in a row that got nothing back.
	silent atomic.Int32
	// lastHeard is when a reply last came (a batch of them, read).
	lastHeard atomic.Int64
	// downUntil is the end of the hold-down; 0 while the server is up.
	// Once passed, the server is probed.
	downUntil atomic.Int64
	// probeUntil is when the probe under way may be given up for another
	// (probeDue).
	probeUntil atomic.Int64
	// hold is the next hold-down (initialHoldDown after a reply).
	hold atomic.Int64
	// downs counts the times the server was marked down.
	downs atomic.Int64
}

// heard notes replies from the server read at now (the reader's path, for
// every batch: a store and two loads when nothing changes). It reports
// whether the server was down and is up again.
func (h *health) heard(now int64) bool {
	h.lastHeard.Store(now)
	if h.silent.Load() != 0 {
		h.silent.Store(0)
	}
	if h.downUntil.Load() == 0 {
		return false
	}
	h.hold.Store(int64(initialHoldDown))
	return h.downUntil.Swap(0) != 0
}

// silence notes a try sent at sent that got nothing back, at now. It
// reports the hold-down when it marks the server down (0 if not): at
// limit tries in a row, or when the probe after a hold-down got
// nothing either. A try sent before the last reply is not silence (the
// server was alive then: the datagram was lost, or is slow), and tries
// ending while the server is held down change nothing. wasUp reports
// that it was up before.
func (h *health) silence(now, sent int64, limit int32) (hold time.Duration, wasUp bool) {
	if sent < h.lastHeard.Load() {
		return 0, false
	}
	if h.silent.Add(1) < limit {
		return 0, false
	}
	for {
		until := h.downUntil.Load()
		if until != 0 && now < until {
			return 0, false
		}
		hold := h.hold.Load()
		if hold == 0 {
			hold = int64(initialHoldDown)
		}
		if h.downUntil.CompareAndSwap(until, now+hold) {
			h.hold.Store(min(2*hold, int64(maxHoldDown)))
			h.downs.Add(1)
			return time.Duration(hold), until == 0
		}
	}
}

// up reports whether the server is up (not held down, nor waiting for a
// probe to answer).
func (h *health) up() bool { return h.downUntil.Load() == 0 }

// probeDue reports, for a server that is down, whether its hold-down is
// over at now and no probe is under way; then the caller starts one, and
// no other is due for the next probeFor.
func (h *health) probeDue(now int64, probeFor time.Duration) bool {
	until := h.downUntil.Load()
	if until == 0 || now < until {
		return false
	}
	p := h.probeUntil.Load()
	return now >= p && h.probeUntil.CompareAndSwap(p, now+int64(probeFor))
}

// now is the time on the Mux's clock.
func (m *Mux) now() int64 { return int64(time.Since(m.epoch)) }

// heard notes replies from srv, read now.
func (m *Mux) heard(srv *muxServer) {
	if srv.health.heard(m.now()) && m.cfg.Logger != nil {
		m.cfg.Logger.Info("dns server answers again", "server", srv.addr)
	}
}

// silence notes a try to srv, sent at sent, that got nothing back. When
// that marks it down, the lookups waiting for it go elsewhere.
func (m *Mux) silence(srv *muxServer, sent time.Time) {
	hold, wasUp := srv.health.silence(m.now(), int64(sent.Sub(m.epoch)), silentLimit)
	if hold == 0 || len(m.servers) == 1 {
		return
	}
	if m.cfg.Logger != nil && wasUp {
		m.cfg.Logger.Warn("dns server not answering: asked after the others until it does", "server", srv.addr, "probe in", hold)
	}
	// Those in flight fail as their tries would and start over elsewhere
	// (finishAsync; ask and leave for blocking lookups); those queued in
	// its window start over with LookupAsync.
	for _, s := range srv.socks {
		s.failAll(fmt.Errorf("%w: the server stopped answering", ErrTimeout))
	}
	m.redirect(srv)
}

// redirect hands the lookups queued in srv's window to another server,
// when srv is held down and another is up.
func (m *Mux) redirect(srv *muxServer) {
	if !m.leave(srv) {
		return
	}
	for _, a := range srv.win.drain(false) {
		m.LookupAsync(a.q, a.done)
	}
}

// due starts a probe of srv, down, if one is due.
func (m *Mux) due(srv *muxServer, now int64) {
	if srv.health.probeDue(now, 2*m.cfg.Timeout) {
		go m.probe(srv)
	}
}

// probe asks srv a question of the Mux's own (". NS": every server
// answers it somehow, a recursive resolver from its root hints, an
// authoritative one with a referral or REFUSED). The reply marks srv up
// (demux, heard); silence marks it down again (exchange, silence).
func (m *Mux) probe(srv *muxServer) {
	p := m.queries.Get().(*muxQuery)
	defer m.queries.Put(p)
	p.start(Question{Name: ".", Type: dns.TypeNS})
	p.pack(m, true)
	m.exchange(context.Background(), srv, p, false)
}

// preferred is the server an asynchronous lookup starts with: the first
// one up, else the first.
func (m *Mux) preferred() *muxServer {
	first := m.servers[0]
	if first.health.up() {
		return first // no clock read in the usual case
	}
	now := m.now()
	for _, srv := range m.servers {
		if srv.health.up() {
			return srv
		}
		m.due(srv, now)
	}
	return first
}

// order appends to buf the indexes of the servers a lookup asks, in
// order: first's (the server of the asynchronous try it goes on from) if
// set, then the others (askOrder), starting a probe of each one down that
// is due for it.
func (m *Mux) order(buf []int, first *muxServer) []int {
	return askOrder(buf, len(m.servers), slices.Index(m.servers, first), func(i int) bool {
		srv := m.servers[i]
		if srv.health.up() {
			return true
		}
		m.due(srv, m.now())
		return false
	})
}

// leave reports whether a lookup asking srv should go on to the next
// server instead of retrying it (passOver).
func (m *Mux) leave(srv *muxServer) bool {
	if srv.health.up() {
		return false // the usual case: no search
	}
	return passOver(len(m.servers), slices.Index(m.servers, srv), func(i int) bool { return m.servers[i].health.up() })
}

// askOrder appends to buf the indexes of a resolver's n servers in the
// order a lookup asks them: first if it is not negative, then those
// usable in the configured order, then the others, so every server is
// still asked when none is usable. Each is judged once.
func askOrder(buf []int, n, first int, usable func(int) bool) []int {
	if first >= 0 {
		buf = append(buf, first)
	}
	var downBuf [4]int
	down := downBuf[:0]
	for i := range n {
		switch {
		case i == first:
		case usable(i):
			buf = append(buf, i)
		default:
			down = append(down, i)
		}
	}
	return append(buf, down...)
}

// passOver reports whether a lookup asking server i of n should go on to
// the next instead of retrying it: i is not usable and another is.
func passOver(n, i int, usable func(int) bool) bool {
	if n == 1 || usable(i) {
		return false
	}
	for j := range n {
		if j != i && usable(j) {
			return true
		}
	}
	return false
}

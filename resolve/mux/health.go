package mux

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// now is the time on the Mux's clock.
func (m *Mux) now() int64 { return int64(time.Since(m.epoch)) }

// heard notes replies from srv, read now.
func (m *Mux) heard(srv *server) {
	if srv.health.Heard(m.now()) && m.cfg.Logger != nil {
		m.cfg.Logger.Info("dns server answers again", "server", srv.addr)
	}
}

// silence notes a try to srv, sent at sent, that got nothing back. When
// that marks it down, the lookups waiting for it go elsewhere.
func (m *Mux) silence(srv *server, sent time.Time) {
	hold, wasUp := srv.health.Silence(m.now(), int64(sent.Sub(m.epoch)), upstream.SilentLimit)
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
		s.failAll(fmt.Errorf("%w: the server stopped answering", resolve.ErrTimeout))
	}
	m.redirect(srv)
}

// redirect hands the lookups queued in srv's window to another server,
// when srv is held down and another is up.
func (m *Mux) redirect(srv *server) {
	if !m.leave(srv) {
		return
	}
	for _, a := range srv.win.drain(false) {
		m.LookupAsync(a.q, a.done)
	}
}

// due starts a probe of srv, down, if one is due.
func (m *Mux) due(srv *server, now int64) {
	if srv.health.ProbeDue(now, 2*m.cfg.Timeout) {
		go m.probe(srv)
	}
}

// probe asks srv a question of the Mux's own (". NS": every server
// answers it somehow, a recursive resolver from its root hints, an
// authoritative one with a referral or REFUSED). The reply marks srv up
// (demux, heard); silence marks it down again (exchange, silence).
func (m *Mux) probe(srv *server) {
	p := m.queries.Get().(*query)
	defer m.queries.Put(p)
	p.start(resolve.Question{Name: ".", Type: dns.TypeNS})
	p.pack(m, true)
	m.exchange(context.Background(), srv, p, false)
}

// preferred is the server an asynchronous lookup starts with: the first
// one up, else the first.
func (m *Mux) preferred() *server {
	first := m.servers[0]
	if first.health.Up() {
		return first // no clock read in the usual case
	}
	now := m.now()
	for _, srv := range m.servers {
		if srv.health.Up() {
			return srv
		}
		m.due(srv, now)
	}
	return first
}

// order appends to buf the indexes of the servers a lookup asks, in
// order: first's (the server of the asynchronous try it goes on from) if
// set, then the others (upstream.AskOrder), starting a probe of each one down that
// is due for it.
func (m *Mux) order(buf []int, first *server) []int {
	return upstream.AskOrder(buf, len(m.servers), slices.Index(m.servers, first), func(i int) bool {
		srv := m.servers[i]
		if srv.health.Up() {
			return true
		}
		m.due(srv, m.now())
		return false
	})
}

// leave reports whether a lookup asking srv should go on to the next
// server instead of retrying it (upstream.PassOver).
func (m *Mux) leave(srv *server) bool {
	if srv.health.Up() {
		return false // the usual case: no search
	}
	return upstream.PassOver(len(m.servers), slices.Index(m.servers, srv), func(i int) bool { return m.servers[i].health.Up() })
}

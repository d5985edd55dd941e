package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// What --mode check needs beyond route mode's DNS core, for bulk work
// (docs/performance.md, "The audit"): its lookups leave in the Mux's
// batches, and the nameserver audit's direct questions go through Muxes
// too instead of a socket per question.

// waitAsync is a blocking Resolver over an Async one: a lookup that the
// cache cannot answer at once starts on the asynchronous path and waits
// for its callback. The audit's gatherers ask through blocking lookups;
// on the Mux's blocking path each query is a write system call of its
// own, on the asynchronous path it leaves with the others in the
// readers' batches, in segmented sends (resolve/mux). A profile of the
// audit straight at Knot had 15 % of its CPU in those writes.
type waitAsync struct {
	async resolve.Async
	// waiters holds the waiters of lookups answered, for the next ones:
	// a channel and its callback per lookup were 3 % of a scan's
	// allocations (docs/performance.md, "The audit"). A pool, because
	// a waiter is reused only when its reply was received: one whose
	// caller gave up may still get its callback, and is left to the GC.
	waiters *sync.Pool
}

func newWaitAsync(async resolve.Async) waitAsync {
	return waitAsync{async: async, waiters: &sync.Pool{New: func() any { return newWaiter() }}}
}

// reply is one answer handed from an asynchronous callback to the waiter.
type reply struct {
	a   *resolve.Answer
	err error
}

// waiter is a lookup's channel and the callback that sends on it.
type waiter struct {
	ch   chan reply
	done func(*resolve.Answer, error)
}

func newWaiter() *waiter {
	// Buffered: a callback after the caller gave up does not block the
	// socket's reader.
	ch := make(chan reply, 1)
	return &waiter{ch: ch, done: func(a *resolve.Answer, err error) { ch <- reply{a, err} }}
}

func (w waitAsync) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if a, ok := resolve.CachedAnswer(w.async, q); ok {
		return a, nil
	}
	wt := w.waiters.Get().(*waiter)
	w.async.LookupAsync(q, wt.done)
	select {
	case r := <-wt.ch:
		w.waiters.Put(wt)
		return r.a, r.err
	case <-ctx.Done():
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())}
	}
}

// Cached passes the question on, so the planner's fast path still sees
// the cache.
func (w waitAsync) Cached(q resolve.Question) (*resolve.Answer, bool) {
	return resolve.CachedAnswer(w.async, q)
}

// LookupAsync passes the question on.
func (w waitAsync) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	w.async.LookupAsync(q, done)
}

// maxDirectServers bounds the Muxes muxDirect keeps: one per server
// address, each with a socket and its reader. A scan of many zones meets
// thousands of nameservers; those past the bound are asked as
// nameserver.StubDirect asks, a socket per question.
const maxDirectServers = 256

// muxDirect is the nameserver audit's Direct for a scan: each server
// address gets a Mux with one socket and recursion off (RFC 1034 §4.3.1),
// so that the direct questions of thousands of domains share sockets. The
// answers and errors are a Stub's (a Mux runs the Stub's reply checks),
// which is what nameserver classifies. StubDirect, the default, opens and
// closes a socket per question: in a profile of the audit straight at
// Knot, 23 % of the CPU.
//
// The questions take the Mux's blocking path, not the asynchronous one:
// the asynchronous path paces a server that stops answering by a
// congestion window (resolve/mux), which suits the one resolver a scan
// asks but not a stranger's nameserver that many domains share and that
// is down. Through the window, 200 questions to a silent server took
// 7.8 s (eight at a time, each waiting its time-out); blocking, 0.3 s,
// all at once, as StubDirect does (TestMuxDirectSilentServer). Their
// datagrams still leave together (mux.Config.BatchBlocking: sendmmsg or a
// segmented send for the questions asked while others are in flight, not
// a write each), without the window.
type muxDirect struct {
	cfg stub.Config // Servers and NoRecursion are set per server

	mu       sync.Mutex
	servers  map[netip.AddrPort]*mux.Mux
	fallback nameserver.StubDirect
	closed   bool
}

func newMuxDirect(cfg stub.Config) *muxDirect {
	return &muxDirect{cfg: cfg, servers: map[netip.AddrPort]*mux.Mux{},
		fallback: nameserver.StubDirect{Timeout: cfg.Timeout, Attempts: cfg.Attempts}}
}

// Ask implements nameserver.Direct.
func (d *muxDirect) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	m, err := d.server(server)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return d.fallback.Ask(ctx, server, q)
	}
	return m.Lookup(ctx, q)
}

// server returns the Mux of server, made on first use; nil past
// maxDirectServers or after Close.
func (d *muxDirect) server(server netip.AddrPort) (*mux.Mux, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.servers[server]; ok || d.closed || len(d.servers) >= maxDirectServers {
		return m, nil
	}
	cfg := d.cfg
	cfg.Servers, cfg.NoRecursion = []string{server.String()}, true
	m, err := mux.New(mux.Config{Config: cfg, Sockets: 1, BatchBlocking: true})
	if err != nil {
		return nil, fmt.Errorf("nameserver: %w", err)
	}
	d.servers[server] = m
	return m, nil
}

// Close closes the Muxes; later questions are asked as StubDirect asks.
func (d *muxDirect) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for _, m := range d.servers {
		m.Close()
	}
	d.servers = map[netip.AddrPort]*mux.Mux{}
}

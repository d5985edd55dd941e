package nameserver

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// DefaultSOAMaxAge is how long an SOACache shares a server's SOA answer
// when its TTL allows longer.
const DefaultSOAMaxAge = 30 * time.Second

// maxSOAEntries bounds an SOACache: one entry per server address and
// zone. Past it, answers are not kept (expired entries are dropped first).
const maxSOAEntries = 4096

// SOACache is a Direct that shares another Direct's answers to SOA
// questions among the audits that ask within MaxAge (or the answer's
// TTL, when lower), and asks everything else every time.
//
// A scan audits thousands of domains that sit in the same zone (a
// registry's, a hoster's): each audit asks every server of the zone for
// the zone's SOA to compare the serials, and without sharing the same
// question went to the same server once per domain. In the audit bench
// world that was 1.36 of the 2.36 direct questions Knot answered per
// domain, where a perfect cache asks 1.0 (docs/performance.md, "The
// audit"). The MX question is the domain's own and is never shared.
//
// Only answers are shared: an audit that joins a question in flight and
// gets an error asks again itself (the first asker's error may be its own
// context's), so a server that does not answer is still found so by each
// audit, as without the cache. An SOACache is safe for concurrent use.
type SOACache struct {
	next   Direct
	maxAge time.Duration
	now    func() time.Time // time.Now; tests set it

	mu      sync.Mutex
	entries map[soaKey]*soaEntry
}

type soaKey struct {
	server netip.AddrPort
	q      resolve.Question
}

// soaEntry is one question: in flight until done is closed, then a (nil
// after an error, which is not kept) valid until expires.
type soaEntry struct {
	done    chan struct{}
	a       *resolve.Answer
	expires time.Time
}

// NewSOACache returns an SOACache over next; maxAge 0 means
// DefaultSOAMaxAge.
func NewSOACache(next Direct, maxAge time.Duration) *SOACache {
	if maxAge <= 0 {
		maxAge = DefaultSOAMaxAge
	}
	return &SOACache{next: next, maxAge: maxAge, now: time.Now, entries: map[soaKey]*soaEntry{}}
}

// Ask implements Direct.
func (c *SOACache) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	if q.Type != dns.TypeSOA {
		return c.next.Ask(ctx, server, q)
	}
	k := soaKey{server, q}
	c.mu.Lock()
	e, ok := c.entries[k]
	if ok {
		select {
		case <-e.done:
			if e.a == nil || !c.now().Before(e.expires) {
				ok = false // failed or expired: ask again
			}
		default: // in flight: join it
		}
	}
	if ok {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return c.next.Ask(ctx, server, q) // its error, in the Direct's words
		}
		if e.a != nil {
			return e.a, nil
		}
		return c.next.Ask(ctx, server, q)
	}
	e = &soaEntry{done: make(chan struct{})}
	keep := c.room()
	if keep {
		c.entries[k] = e
	}
	c.mu.Unlock()

	a, err := c.next.Ask(ctx, server, q)
	c.mu.Lock()
	if err == nil && a != nil {
		age := min(c.maxAge, time.Duration(a.TTL())*time.Second)
		e.a, e.expires = a, c.now().Add(age)
	}
	if keep && e.a == nil {
		delete(c.entries, k)
	}
	close(e.done)
	c.mu.Unlock()
	return a, err
}

// room reports whether one more entry may be kept, dropping the expired
// ones when the cache is full. c.mu is held.
func (c *SOACache) room() bool {
	if len(c.entries) < maxSOAEntries {
		return true
	}
	now := c.now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
	return len(c.entries) < maxSOAEntries
}

package resolve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheEntries bounds a Cache built with maxEntries 0. At a few
// hundred bytes an entry this is some tens of megabytes at most, so a scan
// of millions of domains keeps a flat memory profile.
const DefaultCacheEntries = 200_000

// Cache bounds on how long an answer is kept, whatever its TTL says.
const (
	// RFC 2308 §5: negative answers should not be cached for more than a
	// few hours; 3 hours is the common cap (BIND's max-ncache-ttl).
	maxNegativeTTL = 3 * time.Hour
	// RFC 8767 §4 suggests capping positive TTLs at 7 days; one run never
	// needs more than a day.
	maxPositiveTTL = 24 * time.Hour
)

// Cache is a TTL-aware cache in front of a Resolver, shared by every lookup
// of one run: positive answers are kept for their lowest TTL, NXDOMAIN and
// NODATA for the negative TTL of their SOA (RFC 2308 §5), and concurrent
// lookups of the same question wait for one query (in-flight
// de-duplication), so a thousand domains hosted by one provider resolve the
// provider's exchanges once.
//
// Errors (SERVFAIL, time-outs) are shared with the lookups waiting for the
// same query but never cached: the next lookup asks again.
//
// Answers are shared between callers and must not be modified.
type Cache struct {
	next Resolver
	max  int

	// epoch starts the cache's clock: expiry times are durations since
	// it, read with time.Since, one monotonic clock read (time.Now also
	// reads the wall clock, and a cache is asked several times per
	// domain: 14 % of planning from the cache went to time.Now).
	epoch time.Time

	mu       sync.Mutex
	entries  map[Question]cacheEntry
	inflight map[Question]*call

	hits, misses, joined atomic.Int64
}

type cacheEntry struct {
	answer  *Answer
	expires time.Duration // on the cache's clock (Cache.now)
}

// call is one query in flight; done is closed when answer/err are set.
type call struct {
	done   chan struct{}
	answer *Answer
	err    error
	// waiters are the asynchronous lookups joined to it (LookupAsync),
	// called when it ends; guarded by c.mu while the call is in flight.
	waiters []func(*Answer, error)
}

// NewCache returns a cache in front of next holding at most maxEntries
// answers (0 means DefaultCacheEntries).
func NewCache(next Resolver, maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cache{next: next, max: maxEntries, epoch: time.Now(), entries: map[Question]cacheEntry{}, inflight: map[Question]*call{}}
}

// now is the time on the cache's clock.
func (c *Cache) now() time.Duration { return time.Since(c.epoch) }

// CacheStats counts how lookups were served.
type CacheStats struct {
	Hits   int64 `json:"hits"`   // answered from the cache
	Joined int64 `json:"joined"` // waited for a query already in flight
	Misses int64 `json:"misses"` // caused a query to the next resolver
}

// Stats returns the counters so far.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Joined: c.joined.Load(), Misses: c.misses.Load()}
}

// Lookup implements Resolver.
func (c *Cache) Lookup(ctx context.Context, q Question) (*Answer, error) {
	for {
		c.mu.Lock()
		if a, ok := c.cached(q); ok {
			c.mu.Unlock()
			c.hits.Add(1)
			return a, nil
		}
		if cl, ok := c.inflight[q]; ok {
			c.mu.Unlock()
			c.joined.Add(1)
			select {
			case <-cl.done:
			case <-ctx.Done():
				return nil, &Error{Question: q, Rcode: -1, Err: errors.Join(ErrTimeout, ctx.Err())}
			}
			// The leader's own deadline or cancellation ended its query;
			// ours may still have time, so ask again.
			if cl.err != nil && ctx.Err() == nil && isContextError(cl.err) {
				continue
			}
			return cl.answer, cl.err
		}
		cl := &call{done: make(chan struct{})}
		c.inflight[q] = cl
		c.mu.Unlock()
		c.misses.Add(1)

		a, err := c.next.Lookup(ctx, q)
		c.complete(q, cl, a, err)
		return a, err
	}
}

// Ready implements the Ready interface: a fresh answer to q is cached.
func (c *Cache) Ready(q Question) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.cached(q)
	return ok
}

// cached returns the fresh answer to q, dropping an expired one; c.mu is
// held.
func (c *Cache) cached(q Question) (*Answer, bool) {
	e, ok := c.entries[q]
	if !ok {
		return nil, false
	}
	if c.now() >= e.expires {
		delete(c.entries, q)
		return nil, false
	}
	return e.answer, true
}

// complete ends the call cl for q: it keeps a successful answer and
// passes the outcome to the lookups waiting for it.
func (c *Cache) complete(q Question, cl *call, a *Answer, err error) {
	cl.answer, cl.err = a, err
	c.mu.Lock()
	delete(c.inflight, q)
	if err == nil {
		c.store(q, a)
	}
	c.mu.Unlock()
	close(cl.done)
	// No lookup can join cl any more: it left the in-flight map.
	for _, w := range cl.waiters {
		w(a, err)
	}
}

// store keeps a for its TTL; c.mu is held.
func (c *Cache) store(q Question, a *Answer) {
	ttl := time.Duration(a.TTL()) * time.Second
	if len(a.Answer) == 0 || a.NXDomain() {
		ttl = min(ttl, maxNegativeTTL)
	}
	ttl = min(ttl, maxPositiveTTL)
	if ttl <= 0 {
		return
	}
	if len(c.entries) >= c.max {
		c.evict()
	}
	c.entries[q] = cacheEntry{answer: a, expires: c.now() + ttl}
}

// evict drops expired entries and, if that is not enough, an arbitrary
// eighth of the cache (Go's map order is randomised), so eviction costs are
// amortised over many stores.
func (c *Cache) evict() {
	now := c.now()
	for q, e := range c.entries {
		if now >= e.expires {
			delete(c.entries, q)
		}
	}
	drop := len(c.entries) - c.max + c.max/8 + 1
	for q := range c.entries {
		if drop <= 0 {
			break
		}
		delete(c.entries, q)
		drop--
	}
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

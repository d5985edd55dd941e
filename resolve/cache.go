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
	// domain; docs/performance.md).
	epoch time.Time

	mu sync.Mutex
	// entries holds one entry per question, in flight or answered: one
	// map, so a miss costs one probe to find out, one to insert the
	// query in flight and one to put its answer in its place (a scan asks
	// two or three questions per domain that miss). An answer's expiry is
	// in the map itself, so eviction reads no other memory.
	entries map[Question]cacheEntry
	answers int // entries that hold an answer (bounded by max)

	hits, misses, joined atomic.Int64
}

// cacheEntry is a question's entry: a query in flight (call), or an answer
// kept until it expires (on the cache's clock, Cache.now).
type cacheEntry struct {
	answer  *Answer
	expires time.Duration
	call    *call
}

// call is one query in flight. done, answer and err are set by complete,
// waiter and waiters guarded by the Cache's mu.
type call struct {
	// done is closed when the query ends; made only when a blocking
	// Lookup joins it (LookupAsync joins with a callback instead).
	done   chan struct{}
	answer *Answer
	err    error
	// waiter and waiters are the asynchronous lookups joined to it
	// (LookupAsync), called when it ends: the first one apart, so that
	// the usual single one needs no slice.
	waiter  func(*Answer, error)
	waiters []func(*Answer, error)
}

// NewCache returns a cache in front of next holding at most maxEntries
// answers (0 means DefaultCacheEntries).
func NewCache(next Resolver, maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cache{next: next, max: maxEntries, epoch: time.Now(), entries: map[Question]cacheEntry{}}
}

// now is the time on the cache's clock.
func (c *Cache) now() time.Duration { return time.Since(c.epoch) }

// CacheStats counts how lookups were served.
type CacheStats struct {
	Hits   int64 `json:"hits"`   // answered from the cache (by Lookup or Cached)
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
		e, ok := c.get(q)
		if ok && e.call == nil {
			c.mu.Unlock()
			c.hits.Add(1)
			return e.answer, nil
		}
		if ok {
			cl := e.call
			if cl.done == nil {
				cl.done = make(chan struct{})
			}
			done := cl.done
			c.mu.Unlock()
			c.joined.Add(1)
			select {
			case <-done:
			case <-ctx.Done():
				return nil, &Error{Question: q, Rcode: -1, Err: errors.Join(ErrTimeout, ctx.Err())}
			}
			// Set before done was closed, and not changed since.
			a, err := cl.answer, cl.err
			// The leader's own deadline or cancellation ended its query;
			// ours may still have time, so ask again.
			if err != nil && ctx.Err() == nil && isContextError(err) {
				continue
			}
			return a, err
		}
		cl := &call{}
		c.entries[q] = cacheEntry{call: cl}
		c.mu.Unlock()
		c.misses.Add(1)

		a, err := c.next.Lookup(ctx, q)
		c.complete(q, cl, a, err)
		return a, err
	}
}

// Cached implements the Ready interface: the fresh answer to q, if it is
// cached (a hit; a miss here is not counted, since nothing is asked).
func (c *Cache) Cached(q Question) (*Answer, bool) {
	c.mu.Lock()
	e, ok := c.get(q)
	c.mu.Unlock()
	if !ok || e.call != nil {
		return nil, false
	}
	c.hits.Add(1)
	return e.answer, true
}

// get returns the entry of q, in flight or answered, dropping an expired
// answer; c.mu is held.
func (c *Cache) get(q Question) (cacheEntry, bool) {
	e, ok := c.entries[q]
	if ok && e.call == nil && c.now() >= e.expires {
		delete(c.entries, q)
		c.answers--
		return cacheEntry{}, false
	}
	return e, ok
}

// complete ends the query cl for q: it keeps a successful answer for its
// TTL in cl's place (or drops the entry) and passes the outcome to the
// lookups waiting for it.
func (c *Cache) complete(q Question, cl *call, a *Answer, err error) {
	c.mu.Lock()
	cl.answer, cl.err = a, err
	ttl := time.Duration(0)
	if err == nil {
		ttl = keepFor(a)
	}
	if ttl > 0 {
		if c.answers >= c.max {
			c.evict()
		}
		c.entries[q] = cacheEntry{answer: a, expires: c.now() + ttl}
		c.answers++
	} else {
		// Errors are shared with the waiters but never cached.
		delete(c.entries, q)
	}
	done, waiter, waiters := cl.done, cl.waiter, cl.waiters
	cl.waiter, cl.waiters = nil, nil
	c.mu.Unlock()
	// No lookup can join cl any more: it left the map.
	if done != nil {
		close(done)
	}
	if waiter != nil {
		waiter(a, err)
	}
	for _, w := range waiters {
		w(a, err)
	}
}

// keepFor is how long a is kept: its TTL, within the caps.
func keepFor(a *Answer) time.Duration {
	ttl := time.Duration(a.TTL()) * time.Second
	if len(a.Answer) == 0 || a.NXDomain() {
		ttl = min(ttl, maxNegativeTTL)
	}
	return min(ttl, maxPositiveTTL)
}

// evict drops expired answers and, if that is not enough, an arbitrary
// eighth of them (Go's map order is randomised), so eviction costs are
// amortised over many stores. Queries in flight stay. c.mu is held.
func (c *Cache) evict() {
	now := c.now()
	for q, e := range c.entries {
		if e.call == nil && now >= e.expires {
			delete(c.entries, q)
			c.answers--
		}
	}
	drop := c.answers - c.max + c.max/8 + 1
	for q, e := range c.entries {
		if drop <= 0 {
			break
		}
		if e.call == nil {
			delete(c.entries, q)
			c.answers--
			drop--
		}
	}
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

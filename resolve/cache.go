package resolve

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Default bounds of a Cache (CacheLimits' zero fields).
const (
	// DefaultCacheEntries bounds the answers held.
	DefaultCacheEntries = 200_000
	// DefaultCacheBytes bounds their estimated size (answerSize): at
	// some hundreds of bytes an answer, the two bounds meet.
	DefaultCacheBytes = 64 << 20
)

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
// It holds at most a number of answers and at most a number of bytes
// (CacheLimits), and when either is reached it drops the answer used least
// recently (LRU): what a run asks again and again (a provider's exchanges)
// stays, what it asked once (a domain's own MX set, in a scan of distinct
// domains) goes first. A large cache is split in up to 16 shards by the
// question's name, each with its lock and its share of both bounds, and
// the order is kept per shard (cacheShards).
//
// Errors (SERVFAIL, time-outs) are shared with the lookups waiting for the
// same query but never cached: the next lookup asks again.
//
// Answers are shared between callers and must not be modified.
type Cache struct {
	next Resolver

	// epoch starts the cache's clock: expiry times are durations since
	// it, read with time.Since, one monotonic clock read (time.Now also
	// reads the wall clock, and a cache is asked several times per
	// domain; docs/performance.md).
	epoch time.Time

	// shards split the entries by a hash of the question's name, each
	// with its own lock and its share of the bounds (cacheShards). One
	// lock for the whole cache was taken by every socket reader and every
	// lookup of a scan: its contended paths were 2.5 % of an audit's CPU
	// straight at Knot (docs/performance.md, "The cache's shards").
	shards []cacheShard // a power of two
	seed   maphash.Seed

	// calls recycles the calls of queries that ended with no blocking
	// Lookup joined to them (nothing else holds one then): a scan's
	// cache starts a call for nearly every query it sends, and a call
	// allocated for each was 64 of the 160 octets a miss allocated
	// (alloc_space profile of a route scan, docs/performance.md).
	calls sync.Pool // *call
}

// cacheShard holds the entries of the questions whose names hash to it.
type cacheShard struct {
	mu sync.Mutex
	// entries holds one entry per question, in flight or answered: one
	// map, so a miss costs one probe to find out, one to insert the
	// query in flight and one to put its answer in its place (a scan asks
	// two or three questions per domain that miss).
	entries map[Question]*cacheEntry
	// lru links the answered entries in a ring through this sentinel,
	// the most recently used first (lru.next), the next to drop last
	// (lru.prev). Queries in flight are not in it: they are never dropped.
	lru      cacheEntry
	answers  int   // entries that hold an answer (at most max)
	bytes    int64 // their estimated size (at most maxBytes)
	max      int
	maxBytes int64
	// hits, misses and joined count the lookups served (Cache.Stats),
	// under mu: counters that all the shards shared were written from
	// both cores on every probe, one cache line passed back and forth.
	hits, misses, joined int64
	// The shards sit side by side: padding keeps one shard's lock off
	// the cache line of its neighbour's.
	_ [64]byte
}

// cacheEntry is a question's entry: a query in flight (call), or an answer
// kept until it expires (on the cache's clock, Cache.now), linked in the
// Cache's lru ring.
type cacheEntry struct {
	q          Question
	shard      *cacheShard
	call       *call
	answer     *Answer
	expires    time.Duration
	size       int64 // answerSize(answer)
	prev, next *cacheEntry
}

// call is one query in flight. done, answer and err are set by complete,
// waiter and waiters guarded by its shard's mu.
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

// CacheLimits bounds a Cache; a zero field takes its default.
type CacheLimits struct {
	// Entries is the number of answers held at most
	// (DefaultCacheEntries).
	Entries int
	// Bytes is their estimated size at most (DefaultCacheBytes): what
	// the answers, their records and the cache's own bookkeeping take on
	// the heap, within some tens of percent.
	Bytes int64
}

// NewCache returns a cache in front of next holding at most maxEntries
// answers (0 means DefaultCacheEntries) of DefaultCacheBytes at most.
func NewCache(next Resolver, maxEntries int) *Cache {
	return NewCacheLimits(next, CacheLimits{Entries: maxEntries})
}

// NewCacheLimits returns a cache in front of next within limits.
func NewCacheLimits(next Resolver, limits CacheLimits) *Cache {
	if limits.Entries <= 0 {
		limits.Entries = DefaultCacheEntries
	}
	if limits.Bytes <= 0 {
		limits.Bytes = DefaultCacheBytes
	}
	n := cacheShards(limits)
	c := &Cache{next: next, epoch: time.Now(), shards: make([]cacheShard, n), seed: maphash.MakeSeed()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.entries = map[Question]*cacheEntry{}
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.max = (limits.Entries + n - 1) / n
		sh.maxBytes = limits.Bytes / int64(n)
	}
	return c
}

// Shards: at most maxCacheShards, and only as many as leave each shard
// minShardEntries answers and minShardBytes. A small cache stays one
// shard, so its least recently used answer is the cache's, exactly; a
// large one drops the least recently used of the shard it adds to, and
// holds an answer only up to a shard's share of the bytes.
const (
	maxCacheShards  = 16
	minShardEntries = 1024
	minShardBytes   = 512 << 10
)

// cacheShards is the number of shards for limits: a power of two.
func cacheShards(limits CacheLimits) int {
	n := 1
	for 2*n <= maxCacheShards && limits.Entries/(2*n) >= minShardEntries && limits.Bytes/int64(2*n) >= minShardBytes {
		n *= 2
	}
	return n
}

// shard is the shard of q's entry.
func (c *Cache) shard(q Question) *cacheShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, q.Name)&uint64(len(c.shards)-1)]
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
	return c.totals().CacheStats
}

// Lookup implements Resolver.
func (c *Cache) Lookup(ctx context.Context, q Question) (*Answer, error) {
	sh := c.shard(q)
	for {
		sh.mu.Lock()
		e, ok := c.get(sh, q)
		if ok && e.call == nil {
			a := e.answer
			sh.hits++
			sh.mu.Unlock()
			return a, nil
		}
		if ok {
			cl := e.call
			if cl.done == nil {
				cl.done = make(chan struct{})
			}
			done := cl.done
			sh.joined++
			sh.mu.Unlock()
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
		e = &cacheEntry{q: q, shard: sh, call: c.newCall(nil)}
		sh.entries[q] = e
		sh.misses++
		sh.mu.Unlock()

		a, err := c.next.Lookup(ctx, q)
		c.complete(e, a, err)
		return a, err
	}
}

// Cached implements the Ready interface: the fresh answer to q, if it is
// cached (a hit; a miss here is not counted, since nothing is asked).
func (c *Cache) Cached(q Question) (*Answer, bool) {
	sh := c.shard(q)
	sh.mu.Lock()
	e, ok := c.get(sh, q)
	// e's fields change under sh.mu (complete): read them before letting go.
	var a *Answer
	if ok && e.call == nil {
		a = e.answer
		sh.hits++
	}
	sh.mu.Unlock()
	return a, a != nil
}

// get returns the entry of q, in flight or answered, dropping an expired
// answer; an answer found becomes the most recently used. q's shard sh
// is locked.
func (c *Cache) get(sh *cacheShard, q Question) (*cacheEntry, bool) {
	e, ok := sh.entries[q]
	switch {
	case !ok || e.call != nil:
		return e, ok
	case c.now() >= e.expires:
		sh.drop(e)
		return nil, false
	}
	if sh.lru.next != e {
		sh.unlink(e)
		sh.pushFront(e)
	}
	return e, true
}

// complete ends the query in flight of e: it keeps a successful answer
// for its TTL in e, the most recently used (or drops e), and passes the
// outcome to the lookups waiting for it.
func (c *Cache) complete(e *cacheEntry, a *Answer, err error) {
	sh := e.shard
	sh.mu.Lock()
	cl := e.call
	cl.answer, cl.err = a, err
	ttl, size := time.Duration(0), int64(0)
	if err == nil {
		ttl, size = keepFor(a), answerSize(a)
	}
	if ttl > 0 && size <= sh.maxBytes {
		e.answer, e.expires, e.size = a, c.now()+ttl, size
		sh.pushFront(e)
		sh.answers++
		sh.bytes += size
		for sh.answers > sh.max || sh.bytes > sh.maxBytes {
			sh.drop(sh.lru.prev)
		}
	} else {
		// Errors are shared with the waiters but never cached, and
		// neither is an answer larger than its shard.
		delete(sh.entries, e.q)
	}
	e.call = nil
	done, waiter, waiters := cl.done, cl.waiter, cl.waiters
	cl.waiter, cl.waiters = nil, nil
	sh.mu.Unlock()
	// No lookup can join cl any more: it left the map.
	if done != nil {
		// The blocking lookups joined to it read its outcome once done
		// is closed: cl is theirs from now on.
		close(done)
	} else {
		*cl = call{}
		c.calls.Put(cl)
	}
	if waiter != nil {
		waiter(a, err)
	}
	for _, w := range waiters {
		w(a, err)
	}
}

// newCall returns an empty call, recycled if one is (see calls), with
// waiter as its first asynchronous lookup.
func (c *Cache) newCall(waiter func(*Answer, error)) *call {
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = new(call)
	}
	cl.waiter = waiter
	return cl
}

// keepFor is how long a is kept: its TTL, within the caps.
func keepFor(a *Answer) time.Duration {
	ttl := time.Duration(a.TTL()) * time.Second
	if len(a.Answer) == 0 || a.NXDomain() {
		ttl = min(ttl, maxNegativeTTL)
	}
	return min(ttl, maxPositiveTTL)
}

// Estimates of what an answer takes on the heap (answerSize), from the
// sizes of the Go values on amd64 (unsafe.Sizeof, rounded up to the
// allocator's size classes).
const (
	// entryOverhead: the map's slot (question and pointer, 32 octets,
	// with the map's own share), the cacheEntry (80), the Answer (112).
	entryOverhead = 48 + 80 + 112
	// recordOverhead: a record's place in the section's []dns.RR (an
	// interface) and its struct without the strings and slices it
	// points to: 56 octets for dns.A, AAAA and MX, a scan's usual ones.
	recordOverhead = 16 + 56
)

// answerSize estimates what a takes on the heap: the overheads above, the
// question's name, and each record's uncompressed wire length (RFC 1035
// §4.1.3), which counts its names and data about as their Go strings and
// slices hold them. It errs high where names are shared between records
// (a reply's names are decoded once), so the cache holds a bit less than
// its bound rather than more.
func answerSize(a *Answer) int64 {
	n := entryOverhead + len(a.Question.Name)
	for _, rr := range a.Answer {
		n += recordOverhead + dns.Len(rr)
	}
	for _, rr := range a.Authority {
		n += recordOverhead + dns.Len(rr)
	}
	return int64(n)
}

// pushFront links e as the most recently used answer. sh.mu is held.
func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	e.next.prev = e
	sh.lru.next = e
}

// unlink takes e out of the lru ring. sh.mu is held.
func (sh *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// drop removes the answered entry e. sh.mu is held.
func (sh *cacheShard) drop(e *cacheEntry) {
	sh.unlink(e)
	delete(sh.entries, e.q)
	sh.answers--
	sh.bytes -= e.size
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	return c.totals().answers
}

// Bytes returns the estimated size of the cached answers (see
// CacheLimits.Bytes).
func (c *Cache) Bytes() int64 {
	return c.totals().bytes
}

// cacheTotals are the shards' counters added up.
type cacheTotals struct {
	CacheStats
	answers int
	bytes   int64
}

// totals adds up the shards' counters in one pass, each shard read under
// its lock.
func (c *Cache) totals() cacheTotals {
	var t cacheTotals
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		t.Hits += sh.hits
		t.Joined += sh.joined
		t.Misses += sh.misses
		t.answers += sh.answers
		t.bytes += sh.bytes
		sh.mu.Unlock()
	}
	return t
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

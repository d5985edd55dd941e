// Package clientlimit holds the per-client limits of mxtrace's servers
// that strangers reach (serve's HTTP API, relay's SMTP listener): which
// client a limit counts against, and a token bucket per client in
// bounded memory.
package clientlimit

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Key is the client a limit counts against: an IPv4 address, or an IPv6
// /64, since one end site is normally given at least a /64 (RFC 6177 §2,
// RFC 7421) and so holds any number of addresses inside it, each of which
// would otherwise get a fresh allowance. A v4-mapped address counts as
// its IPv4 address, and a zone is ignored. The zero Addr (a peer that is
// not TCP) is the zero Prefix.
func Key(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// MaxBuckets is the bound servers give Buckets: a bucket is about 200
// bytes, so about 13 MB however many addresses a flood comes from.
const MaxBuckets = 1 << 16

// Buckets is a token bucket per client Key, in bounded memory.
//
// A bucket idle long enough to have filled up again is the same as a new
// one, so forgetting it changes nothing: such buckets are dropped as new
// clients arrive, and at the bound the least recently seen bucket goes
// too, whatever its state. A flood from more distinct clients than that
// costs each a fresh bucket, which a flood from one client would not get;
// a server's concurrency bound still holds.
type Buckets struct {
	rate   rate.Limit
	burst  int
	refill time.Duration // an empty bucket is full again after this
	max    int

	mu    sync.Mutex
	byKey map[netip.Prefix]*list.Element
	lru   list.List // of *bucket, most recently seen first
}

type bucket struct {
	key  netip.Prefix
	lim  *rate.Limiter
	seen time.Time
}

// New gives perSecond tokens (more than 0) up to burst (at least 1) per
// client, keeping at most max buckets (at least 1).
func New(perSecond float64, burst, max int) *Buckets {
	burst = atLeast1(burst)
	return &Buckets{
		rate:   rate.Limit(perSecond),
		burst:  burst,
		refill: time.Duration(float64(burst) / perSecond * float64(time.Second)),
		max:    atLeast1(max),
		byKey:  make(map[netip.Prefix]*list.Element),
	}
}

func atLeast1(n int) int { return max(n, 1) }

// Take spends one of key's tokens at now and returns 0. When there is
// none it spends nothing and returns how long until there is one (a
// Retry-After).
func (b *Buckets) Take(key netip.Prefix, now time.Time) (wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.byKey[key]
	if ok {
		b.lru.MoveToFront(el)
	} else {
		b.evict(now)
		el = b.lru.PushFront(&bucket{key: key, lim: rate.NewLimiter(b.rate, b.burst)})
		b.byKey[key] = el
	}
	bk := el.Value.(*bucket)
	bk.seen = now
	if bk.lim.AllowN(now, 1) {
		return 0
	}
	missing := 1 - bk.lim.TokensAt(now)
	return time.Duration(missing / float64(b.rate) * float64(time.Second))
}

// evict makes room for one more bucket: it drops the buckets that have
// filled up again since last seen, and the least recently seen one while
// the bound is reached. b.mu is held.
func (b *Buckets) evict(now time.Time) {
	for b.lru.Len() > 0 {
		back := b.lru.Back()
		bk := back.Value.(*bucket)
		if b.lru.Len() < b.max && now.Sub(bk.seen) < b.refill {
			return
		}
		b.lru.Remove(back)
		delete(b.byKey, bk.key)
	}
}

// Len is the number of buckets kept.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

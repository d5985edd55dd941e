package resolve

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestCacheShards: a small cache is one shard (its LRU order exact), the
// default one sixteen, a scan's a share that leaves each shard at least
// minShardEntries answers and minShardBytes.
func TestCacheShards(t *testing.T) {
	for _, tt := range []struct {
		limits CacheLimits
		want   int
	}{
		{CacheLimits{Entries: 3, Bytes: DefaultCacheBytes}, 1},
		{CacheLimits{Entries: DefaultCacheEntries, Bytes: 60 << 10}, 1},
		{CacheLimits{Entries: DefaultCacheEntries, Bytes: DefaultCacheBytes}, 16},
		{CacheLimits{Entries: DefaultCacheEntries, Bytes: 2<<20 + 256*(8<<10)}, 8},   // a route scan's
		{CacheLimits{Entries: DefaultCacheEntries, Bytes: 2<<20 + 256*(32<<10)}, 16}, // a check scan's
		{CacheLimits{Entries: 4096, Bytes: DefaultCacheBytes}, 4},
		{CacheLimits{Entries: 4095, Bytes: DefaultCacheBytes}, 2},
	} {
		if got := cacheShards(tt.limits); got != tt.want {
			t.Errorf("cacheShards(%+v) = %d, want %d", tt.limits, got, tt.want)
		}
		c := NewCacheLimits(nil, tt.limits)
		var entries int
		var bytes int64
		for i := range c.shards {
			entries += c.shards[i].max
			bytes += c.shards[i].maxBytes
		}
		if entries < tt.limits.Entries || entries >= tt.limits.Entries+len(c.shards) || bytes > tt.limits.Bytes {
			t.Errorf("%+v: the shards hold %d answers and %d bytes in all", tt.limits, entries, bytes)
		}
	}
}

// anyHost answers every A question with one address.
type anyHost struct{}

func (anyHost) Lookup(_ context.Context, q Question) (*Answer, error) {
	rr, err := dns.NewRR(q.Name + " 3600 A 192.0.2.1")
	if err != nil {
		return nil, err
	}
	return &Answer{Question: q, Answer: []dns.RR{rr}}, nil
}

// TestCacheShardedBounds: over sixteen shards, many goroutines asking
// more names than the cache holds keep both bounds, every shard gets
// its share of the names, and what is held is found again.
func TestCacheShardedBounds(t *testing.T) {
	limits := CacheLimits{Entries: 16 * minShardEntries, Bytes: DefaultCacheBytes}
	c := NewCacheLimits(anyHost{}, limits)
	if len(c.shards) != 16 {
		t.Fatalf("%d shards, want 16", len(c.shards))
	}
	const names = 40000
	name := func(i int) Question { return Q(fmt.Sprintf("h%05d.test.", i), dns.TypeA) }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < names; i += 8 {
				if _, err := c.Lookup(t.Context(), name(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > limits.Entries || n < limits.Entries*3/4 {
		t.Errorf("%d answers held, want at most %d and most of them used", n, limits.Entries)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		if sh.answers > sh.max || sh.answers < sh.max/2 || len(sh.entries) != sh.answers {
			t.Errorf("shard %d: %d answers (%d entries), bound %d", i, sh.answers, len(sh.entries), sh.max)
		}
	}
	// A thousand more, asked one after another, are the most recently
	// used of their shards (some sixty each): held.
	for i := names; i < names+1000; i++ {
		if _, err := c.Lookup(t.Context(), name(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := names; i < names+1000; i++ {
		if _, ok := c.Cached(name(i)); !ok {
			t.Fatalf("%s dropped, though among the last asked", name(i).Name)
		}
	}
}

// BenchmarkCacheCached: a hit among 100,000 held answers (a scan's
// provider hosts and its domains' answers), from two goroutines, as a
// scan's workers and readers probe the cache.
func BenchmarkCacheCached(b *testing.B) {
	const held = 100_000
	c := NewCache(anyHost{}, 2*held)
	qs := make([]Question, held)
	for i := range qs {
		qs[i] = Q(fmt.Sprintf("mx%d.provider%d.example.", i%7, i), dns.TypeA)
		if _, err := c.Lookup(b.Context(), qs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 7919) % held
			if _, ok := c.Cached(qs[i]); !ok {
				b.Error("not held")
				return
			}
		}
	})
}

// BenchmarkCacheMiss: a question not held, asked and answered at once,
// in a cache kept full (each answer drops the least recently used), as
// a scan of distinct domains asks each domain's own questions.
func BenchmarkCacheMiss(b *testing.B) {
	c := NewCacheLimits(anyHost{}, CacheLimits{Entries: 16 * minShardEntries})
	qs := make([]Question, 1<<16)
	for i := range qs {
		qs[i] = Q(fmt.Sprintf("domain%d.example.", i), dns.TypeMX)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Lookup(b.Context(), qs[i&(len(qs)-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

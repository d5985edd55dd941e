package resolve_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// manyHosts is a zone of n names h0000.test. … with one A record each, all
// of one length, so every answer has the same estimated size; the address
// of hI is 10.0.I/256.I%256. Every name has TTL 3600 but h0000, whose TTL is
// 60.
func manyHosts(t *testing.T, n int) *resolve.Zones {
	t.Helper()
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n@ 3600 SOA a. b. 1 2 3 4 300\n")
	for i := range n {
		ttl := 3600
		if i == 0 {
			ttl = 60
		}
		fmt.Fprintf(&b, "h%04d %d A 10.0.%d.%d\n", i, ttl, i/256, i%256)
	}
	z, err := resolve.ParseZones(strings.NewReader(b.String()), "many")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func host(i int) resolve.Question { return resolve.Q(fmt.Sprintf("h%04d.test.", i), dns.TypeA) }

// oneSize is the estimated size of one answer of manyHosts.
func oneSize(t *testing.T, z resolve.Resolver) int64 {
	t.Helper()
	c := resolve.NewCache(z, 0)
	if _, err := c.Lookup(t.Context(), host(1)); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 || c.Bytes() <= 0 {
		t.Fatalf("one answer: %d entries of %d bytes", c.Len(), c.Bytes())
	}
	return c.Bytes()
}

// TestCacheLRU: when the cache is full it drops the answer used least
// recently, not the one stored first, nor a random one.
func TestCacheLRU(t *testing.T) {
	next := &counting{next: manyHosts(t, 10)}
	c := resolve.NewCache(next, 3)
	ask := func(i int) {
		t.Helper()
		if _, err := c.Lookup(t.Context(), host(i)); err != nil {
			t.Fatal(err)
		}
	}
	ask(1)
	ask(2)
	ask(3)
	ask(1) // a hit: 1 is now the most recently used, 2 the least
	if _, ok := c.Cached(host(3)); !ok {
		t.Fatal("h0003 not cached") // and now 3 is more recent than 2
	}
	ask(4) // drops 2
	if n := next.n.Load(); n != 4 {
		t.Fatalf("%d queries, want 4", n)
	}
	for _, i := range []int{1, 3, 4} {
		if _, ok := c.Cached(host(i)); !ok {
			t.Errorf("h%04d was dropped; the least recently used was h0002", i)
		}
	}
	if _, ok := c.Cached(host(2)); ok {
		t.Error("h0002, the least recently used, is still cached")
	}
	if c.Len() != 3 {
		t.Errorf("%d answers, limit 3", c.Len())
	}
}

// TestCacheByteBound: the cache holds no more than its bound in
// (estimated) bytes, and exactly as many answers as fit: the most recent.
func TestCacheByteBound(t *testing.T) {
	z := manyHosts(t, 1000)
	size := oneSize(t, z)
	next := &counting{next: z}
	c := resolve.NewCacheLimits(next, resolve.CacheLimits{Bytes: 10*size + size/2})
	for i := 1; i < 1000; i++ {
		if _, err := c.Lookup(t.Context(), host(i)); err != nil {
			t.Fatal(err)
		}
		if c.Bytes() > 10*size+size/2 {
			t.Fatalf("after %d lookups the cache holds %d bytes, bound %d", i, c.Bytes(), 10*size+size/2)
		}
	}
	if c.Len() != 10 || c.Bytes() != 10*size {
		t.Errorf("%d answers of %d bytes, want 10 of %d", c.Len(), c.Bytes(), 10*size)
	}
	for i := 990; i < 1000; i++ {
		if _, ok := c.Cached(host(i)); !ok {
			t.Errorf("h%04d, one of the last 10 asked, is not cached", i)
		}
	}
}

// TestCacheTooLarge: an answer larger than the whole cache is passed on
// but not kept, and it does not empty the cache.
func TestCacheTooLarge(t *testing.T) {
	z := manyHosts(t, 10)
	size := oneSize(t, z)
	c := resolve.NewCacheLimits(z, resolve.CacheLimits{Bytes: size})
	if _, err := c.Lookup(t.Context(), host(1)); err != nil {
		t.Fatal(err)
	}
	// The SOA of the negative answer makes it larger than one A record.
	a, err := c.Lookup(t.Context(), resolve.Q("nope.test.", dns.TypeA))
	if err != nil || !a.NXDomain() {
		t.Fatalf("nope.test.: %v, %v", a, err)
	}
	if _, ok := c.Cached(resolve.Q("nope.test.", dns.TypeA)); ok {
		t.Error("an answer larger than the cache was kept")
	}
	if _, ok := c.Cached(host(1)); !ok || c.Len() != 1 || c.Bytes() != size {
		t.Errorf("the cache lost h0001 to an answer it did not keep: %d answers, %d bytes", c.Len(), c.Bytes())
	}
}

// TestCacheLRUExpiry: an answer past its TTL is not served, even when it
// is the most recently used, and its bytes are given back.
func TestCacheLRUExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := manyHosts(t, 10)
		size := oneSize(t, z)
		next := &counting{next: z}
		c := resolve.NewCacheLimits(next, resolve.CacheLimits{Bytes: 5 * size})
		for _, i := range []int{1, 0} { // h0000 has TTL 60
			if _, err := c.Lookup(t.Context(), host(i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(61 * time.Second)
		if _, ok := c.Cached(host(0)); ok {
			t.Error("h0000 served 61 s after it was stored with TTL 60")
		}
		if c.Len() != 1 || c.Bytes() != size {
			t.Errorf("after the expiry: %d answers of %d bytes, want 1 of %d", c.Len(), c.Bytes(), size)
		}
		if _, ok := c.Cached(host(1)); !ok {
			t.Error("h0001 (TTL 3600) is gone")
		}
	})
}

// TestCacheConcurrentBound: many goroutines asking, through Lookup,
// LookupAsync and Cached, more names than the cache holds: every answer is
// the right one, the bounds hold, and the byte count is exactly the sum of
// what is held (checked with -race for the bookkeeping under the lock).
func TestCacheConcurrentBound(t *testing.T) {
	const names, goroutines, rounds = 500, 16, 400
	z := manyHosts(t, names)
	size := oneSize(t, z)
	c := resolve.NewCacheLimits(z, resolve.CacheLimits{Entries: 100, Bytes: 60 * size})
	check := func(i int, a *resolve.Answer, err error) {
		if err != nil {
			t.Error(err)
			return
		}
		want := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		if len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("h%04d: answer %v, want %s", i, a.Answer, want)
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				// A hot set every goroutine shares, and names of its own.
				i := 1 + (g*rounds+r)%(names-1)
				if r%3 == 0 {
					i = 1 + r%20
				}
				switch r % 4 {
				case 0:
					a, err := c.Lookup(t.Context(), host(i))
					check(i, a, err)
				case 1:
					done := make(chan struct{})
					c.LookupAsync(host(i), func(a *resolve.Answer, err error) {
						check(i, a, err)
						close(done)
					})
					<-done
				default:
					if a, ok := c.Cached(host(i)); ok {
						check(i, a, nil)
					}
				}
			}
		})
	}
	wg.Wait()
	n, b := c.Len(), c.Bytes()
	if n > 60 || b > 60*size || b != int64(n)*size {
		t.Errorf("%d answers of %d bytes (each %d): want at most 60, and the bytes their sum", n, b, size)
	}
}

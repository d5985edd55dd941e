package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// counting wraps a Resolver, counts the questions that reach it and can
// delay or fail them.
type counting struct {
	next  resolve.Resolver
	delay time.Duration
	fail  atomic.Bool
	n     atomic.Int64
}

func (c *counting) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.n.Add(1)
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return nil, &resolve.Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())}
		}
	}
	if c.fail.Load() {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return c.next.Lookup(ctx, q)
}

// TestCacheTTL: answers are kept for their TTL, negative answers for the
// SOA's negative TTL (RFC 2308 §5), and asked again after.
func TestCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &counting{next: loadTestZones(t)}
		c := resolve.NewCache(next, 0)
		ask := func(name string, qtype uint16) {
			t.Helper()
			if _, err := c.Lookup(t.Context(), resolve.Q(name, qtype)); err != nil {
				t.Fatal(err)
			}
		}
		ask("d.test.", dns.TypeMX)    // TTL 3600
		ask("nope.test.", dns.TypeMX) // negative TTL 300
		ask("d.test.", dns.TypeMX)    // hit
		ask("nope.test.", dns.TypeMX) // hit
		if n := next.n.Load(); n != 2 {
			t.Fatalf("%d queries for 2 questions asked twice, want 2", n)
		}
		time.Sleep(301 * time.Second)
		ask("d.test.", dns.TypeMX)    // still cached
		ask("nope.test.", dns.TypeMX) // expired
		if n := next.n.Load(); n != 3 {
			t.Errorf("after 301 s: %d queries, want 3 (the negative answer expired)", n)
		}
		time.Sleep(3300 * time.Second)
		ask("d.test.", dns.TypeMX)
		if n := next.n.Load(); n != 4 {
			t.Errorf("after 3601 s: %d queries, want 4 (the MX expired)", n)
		}
		if s := c.Stats(); s.Hits != 3 || s.Misses != 4 {
			t.Errorf("stats %+v, want 3 hits and 4 misses", s)
		}
	})
}

// TestCacheReady: Ready says whether a lookup would be answered from the
// cache, and stops saying it when the answer expires; IsReady is false for
// a resolver that cannot tell.
func TestCacheReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := loadTestZones(t)
		c := resolve.NewCache(z, 0)
		q := resolve.Q("nope.test.", dns.TypeMX) // negative TTL 300
		if resolve.IsReady(c, q) {
			t.Fatal("ready before any lookup")
		}
		if _, err := c.Lookup(t.Context(), q); err != nil {
			t.Fatal(err)
		}
		if !resolve.IsReady(c, q) {
			t.Error("not ready after the lookup")
		}
		if resolve.IsReady(c, resolve.Q("nope.test.", dns.TypeA)) {
			t.Error("another type is ready")
		}
		time.Sleep(301 * time.Second)
		if resolve.IsReady(c, q) {
			t.Error("still ready after the negative TTL")
		}
		if resolve.IsReady(z, q) {
			t.Error("zones without Ready say they are ready")
		}
	})
}

// TestCacheInFlight: concurrent lookups of one question cause one query.
func TestCacheInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &counting{next: loadTestZones(t), delay: time.Second}
		c := resolve.NewCache(next, 0)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				a, err := c.Lookup(t.Context(), resolve.Q("mx.d.test.", dns.TypeA))
				if err != nil || len(a.Answer) != 2 {
					t.Errorf("lookup = %v, %v", a, err)
				}
			})
		}
		wg.Wait()
		if n := next.n.Load(); n != 1 {
			t.Errorf("100 concurrent lookups caused %d queries, want 1", n)
		}
		if s := c.Stats(); s.Joined != 99 {
			t.Errorf("stats %+v, want 99 joined", s)
		}
	})
}

// TestCacheErrorsNotCached: a SERVFAIL is shared with the lookups waiting
// for it but never stored: the next lookup asks again.
func TestCacheErrorsNotCached(t *testing.T) {
	next := &counting{next: loadTestZones(t)}
	next.fail.Store(true)
	c := resolve.NewCache(next, 0)
	q := resolve.Q("d.test.", dns.TypeMX)
	if _, err := c.Lookup(t.Context(), q); !errors.Is(err, resolve.ErrServerFailure) {
		t.Fatalf("err = %v, want SERVFAIL", err)
	}
	next.fail.Store(false)
	if a, err := c.Lookup(t.Context(), q); err != nil || len(a.Answer) != 2 {
		t.Errorf("after the failure cleared: %v, %v", a, err)
	}
	if n := next.n.Load(); n != 2 {
		t.Errorf("%d queries, want 2", n)
	}
}

// TestCacheLeaderCanceled: when the lookup that started a query is
// canceled, a waiting lookup with time left asks again instead of taking
// the other's cancellation as its answer.
func TestCacheLeaderCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &counting{next: loadTestZones(t), delay: time.Second}
		c := resolve.NewCache(next, 0)
		q := resolve.Q("d.test.", dns.TypeMX)
		leader, cancel := context.WithCancel(t.Context())
		var leaderErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, leaderErr = c.Lookup(leader, q) })
		synctest.Wait()
		var a *resolve.Answer
		var err error
		wg.Go(func() { a, err = c.Lookup(t.Context(), q) })
		synctest.Wait()
		cancel()
		wg.Wait()
		if !errors.Is(leaderErr, context.Canceled) {
			t.Errorf("leader: err = %v, want canceled", leaderErr)
		}
		if err != nil || len(a.Answer) != 2 {
			t.Errorf("follower: %v, %v; want the answer", a, err)
		}
	})
}

// TestCacheBounded: the cache never holds more than its limit.
func TestCacheBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n@ 3600 SOA a. b. 1 2 3 4 300\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "h%d 3600 A 192.0.2.1\n", i)
	}
	z, err := resolve.ParseZones(strings.NewReader(b.String()), "many")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 100)
	for i := range 1000 {
		if _, err := c.Lookup(t.Context(), resolve.Q(fmt.Sprintf("h%d.test.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 100 {
			t.Fatalf("after %d lookups the cache holds %d answers, limit 100", i+1, c.Len())
		}
	}
	if c.Len() < 50 {
		t.Errorf("the cache holds only %d answers after 1000 lookups: eviction drops too much", c.Len())
	}
}

// gated holds the lookups of one name until gate is closed.
type gated struct {
	next resolve.Resolver
	name string
	gate chan struct{}
	n    atomic.Int64 // lookups of name that reached it
}

func (g *gated) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Name == g.name {
		g.n.Add(1)
		<-g.gate
	}
	return g.next.Lookup(ctx, q)
}

// TestCacheEvictKeepsInFlight: eviction drops answers, never a query in
// flight, so a lookup that comes while the cache is full still joins it
// instead of asking again.
func TestCacheEvictKeepsInFlight(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n@ 3600 SOA a. b. 1 2 3 4 300\n")
	for i := range 100 {
		fmt.Fprintf(&b, "h%d 3600 A 192.0.2.%d\n", i, i)
	}
	z, err := resolve.ParseZones(strings.NewReader(b.String()), "many")
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{next: z, name: "h0.test.", gate: make(chan struct{})}
	c := resolve.NewCache(g, 10)
	q0 := resolve.Q("h0.test.", dns.TypeA)
	leader := make(chan error, 1)
	go func() {
		a, err := c.Lookup(t.Context(), q0)
		if err == nil && (len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "192.0.2.0") {
			err = fmt.Errorf("answer %v", a.Answer)
		}
		leader <- err
	}()
	for g.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < 100; i++ { // many evictions meanwhile
		if _, err := c.Lookup(t.Context(), resolve.Q(fmt.Sprintf("h%d.test.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	joined := make(chan *resolve.Answer, 1)
	c.LookupAsync(q0, func(a *resolve.Answer, err error) {
		if err != nil {
			t.Error(err)
		}
		joined <- a
	})
	close(g.gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-joined:
		if a == nil || len(a.Answer) != 1 {
			t.Errorf("the joined lookup got %v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the joined lookup was not called")
	}
	if n := g.n.Load(); n != 1 {
		t.Errorf("h0 was asked %d times, want once (the query in flight was evicted)", n)
	}
	if st := c.Stats(); st.Joined != 1 {
		t.Errorf("stats %+v: want 1 joined", st)
	}
	if c.Len() > 10 {
		t.Errorf("the cache holds %d answers, limit 10", c.Len())
	}
}

// TestCacheCachedWhileAnswering: Cached asked while the same question is
// being answered sees no answer or the whole one, and reads the entry
// only under the cache's lock (go test -race found Cached reading an
// entry that complete was filling in).
func TestCacheCachedWhileAnswering(t *testing.T) {
	z := loadTestZones(t)
	q := resolve.Q("nope.test.", dns.TypeMX)
	for range 200 {
		c := resolve.NewCache(z, 0)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := c.Lookup(t.Context(), q); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			for range 10_000 {
				if a, ok := c.Cached(q); ok {
					if a == nil || a.Rcode != dns.RcodeNameError {
						t.Errorf("Cached: %v", a)
					}
					return
				}
			}
		})
		wg.Wait()
	}
}

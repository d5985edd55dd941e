package resolve_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// TestCacheAsync: through a Cache over a Mux, concurrent asynchronous
// lookups of one question cause one query and all get its answer; a
// synchronous lookup meanwhile joins the same query; once answered, the
// callback comes at once, before LookupAsync returns, with no query.
func TestCacheAsync(t *testing.T) {
	srv := dnstest.NewZone(t, testZones, dnstest.WithDelay(50*time.Millisecond))
	m, err := mux.New(mux.Config{Config: stub.Config{Servers: []string{srv.Addr}, Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c := resolve.NewCache(m, 0)
	if _, ok := resolve.AsyncOf(c); !ok {
		t.Fatal("a Cache over a Mux is not Async")
	}
	q := resolve.Q("d.test.", dns.TypeMX)
	const n = 20
	var wg sync.WaitGroup
	wg.Add(n)
	var good atomic.Int32
	for range n {
		c.LookupAsync(q, func(a *resolve.Answer, err error) {
			if err == nil && len(a.Answer) > 0 {
				good.Add(1)
			}
			wg.Done()
		})
	}
	a, err := c.Lookup(t.Context(), q)
	if err != nil || len(a.Answer) == 0 {
		t.Fatalf("synchronous lookup beside them: %v, %v", a, err)
	}
	wg.Wait()
	if good.Load() != n {
		t.Errorf("%d of %d callbacks got the answer", good.Load(), n)
	}
	if s := m.Stats(); s.Sent != 1 {
		t.Errorf("%d queries sent for one question, want 1", s.Sent)
	}
	if s := c.Stats(); s.Misses != 1 || s.Joined != n {
		t.Errorf("cache stats %+v, want 1 miss and %d joined", s, n)
	}

	inline := false
	c.LookupAsync(q, func(a *resolve.Answer, err error) { inline = err == nil && a != nil })
	if !inline {
		t.Error("a cached answer was not passed on before LookupAsync returned")
	}

	// A failure reaches the callback and is not cached.
	nx := resolve.Q("d.test.", dns.TypeTXT)
	got := make(chan error, 1)
	srv.Close()
	c.LookupAsync(nx, func(_ *resolve.Answer, err error) { got <- err })
	select {
	case err := <-got:
		if err == nil {
			t.Error("lookup at a closed server succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no callback for a server that is gone")
	}
	if resolve.IsReady(c, nx) {
		t.Error("a failure was cached")
	}
}

// TestCacheAsyncOverZones: a Cache over a resolver that cannot start
// lookups without waiting is not Async, but its LookupAsync still works.
func TestCacheAsyncOverZones(t *testing.T) {
	c := resolve.NewCache(loadTestZones(t), 0)
	if _, ok := resolve.AsyncOf(c); ok {
		t.Error("a Cache over zone files claims to be Async")
	}
	got := make(chan *resolve.Answer, 1)
	c.LookupAsync(resolve.Q("d.test.", dns.TypeMX), func(a *resolve.Answer, err error) {
		if err != nil {
			t.Error(err)
		}
		got <- a
	})
	if a := <-got; a == nil || len(a.Answer) == 0 {
		t.Errorf("answer %v", a)
	}
}

// atOnce is an Async that answers every lookup before returning, with one
// NXDOMAIN answer without SOA: TTL 0, so a Cache keeps nothing.
type atOnce struct{ a *resolve.Answer }

func (r atOnce) Lookup(context.Context, resolve.Question) (*resolve.Answer, error) { return r.a, nil }

func (r atOnce) LookupAsync(_ resolve.Question, done func(*resolve.Answer, error)) { done(r.a, nil) }

// TestCacheAsyncRecyclesCalls: a miss that no blocking Lookup joined
// gives its call back for the next miss: two allocations a miss (the
// entry and the callback that completes it), not three.
func TestCacheAsyncRecyclesCalls(t *testing.T) {
	q := resolve.Q("nx.test.", dns.TypeMX)
	c := resolve.NewCache(atOnce{&resolve.Answer{Question: q, Rcode: dns.RcodeNameError}}, 0)
	answered := 0
	done := func(a *resolve.Answer, err error) {
		if err == nil && a.NXDomain() {
			answered++
		}
	}
	allocs := testing.AllocsPerRun(1000, func() { c.LookupAsync(q, done) })
	if allocs > 2 {
		t.Errorf("%v allocations a miss, want 2", allocs)
	}
	if s := c.Stats(); answered != 1001 || s.Misses != 1001 {
		t.Errorf("%d answered, stats %+v: want every lookup a miss, answered", answered, s)
	}
}

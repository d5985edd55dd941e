package route_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// benchDelay is the fixed delay of every answer in the latency benchmarks:
// large against the loopback round trip and scheduling noise, small enough
// for quick runs.
const benchDelay = 50 * time.Millisecond

// fiveExchanges is a domain with five exchanges in two tiers, each with an
// IPv4 and an IPv6 address.
const fiveExchanges = `
$ORIGIN test.
$TTL 3600
@ SOA ns.test. h.test. 1 7200 900 1209600 300
d MX 10 mx1.d.test.
d MX 10 mx2.d.test.
d MX 10 mx3.d.test.
d MX 20 mx4.d.test.
d MX 20 mx5.d.test.
mx1.d A 192.0.2.1
mx1.d AAAA 2001:db8::1
mx2.d A 192.0.2.2
mx2.d AAAA 2001:db8::2
mx3.d A 192.0.2.3
mx3.d AAAA 2001:db8::3
mx4.d A 192.0.2.4
mx4.d AAAA 2001:db8::4
mx5.d A 192.0.2.5
mx5.d AAAA 2001:db8::5
`

// BenchmarkRouteLatency plans a five-exchange domain through the stub
// resolver against a server that delays every answer by benchDelay, with a
// fresh cache each time. The planner asks for the MX set, then for the A
// and AAAA records of all five exchanges at once: two round trips, so the
// "delays/op" metric should stay under 2.2 (the target).
func BenchmarkRouteLatency(b *testing.B) {
	srv := dnstest.NewZone(b, fiveExchanges, dnstest.WithDelay(benchDelay))
	stub, err := stub.New(stub.Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	domain := dnsname.MustParse("d.test")
	var worst time.Duration
	for b.Loop() {
		start := time.Now()
		p := &route.Planner{Resolver: resolve.NewCache(stub, 0)}
		plan, err := p.Plan(b.Context(), domain)
		if err != nil || len(plan.Hosts()) != 5 || len(plan.Hosts()[4].Addresses) != 2 {
			b.Fatalf("plan %+v, %v", plan, err)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(benchDelay), "delays/op")
	b.ReportMetric(float64(worst)/float64(benchDelay), "worst-delays")
}

// BenchmarkPlanCached plans the five-exchange domain with every answer in
// the cache, as a scan plans the domains of a large provider: the
// planner's own cost, without the network ("allocs/op" is what a scan's
// garbage collector sees of it).
func BenchmarkPlanCached(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(fiveExchanges), "five")
	if err != nil {
		b.Fatal(err)
	}
	p := &route.Planner{Resolver: resolve.NewCache(z, 0), Seed: 1, HasSeed: true}
	domain := dnsname.MustParse("d.test")
	b.ReportAllocs()
	for b.Loop() {
		if plan, err := p.Plan(b.Context(), domain); err != nil || len(plan.Order) != 5 {
			b.Fatalf("plan %+v, %v", plan, err)
		}
	}
}

// sharedProvider builds n customer domains whose MX records all point at
// one provider's k exchanges.
func sharedProvider(n, k int) string {
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n$TTL 3600\n@ SOA ns.test. h.test. 1 7200 900 1209600 300\n")
	for i := range k {
		fmt.Fprintf(&b, "mx%d.provider A 192.0.2.%d\nmx%d.provider AAAA 2001:db8::%d\n", i, i+1, i, i+1)
	}
	for c := range n {
		for i := range k {
			fmt.Fprintf(&b, "customer%d MX %d mx%d.provider.test.\n", c, 10*(i/2+1), i)
		}
	}
	return b.String()
}

// BenchmarkSharedProvider plans N domains hosted by one provider with k
// exchanges, concurrently, through one cache: the provider's exchanges are
// resolved once, so the server sees about N + 2k queries, not N × (1 + 2k).
// "queries/op" is what the server received for all N domains.
func BenchmarkSharedProvider(b *testing.B) {
	for _, tt := range []struct{ n, k int }{{100, 5}, {1000, 5}, {1000, 10}} {
		b.Run(fmt.Sprintf("N=%d/k=%d", tt.n, tt.k), func(b *testing.B) {
			srv := dnstest.NewZone(b, sharedProvider(tt.n, tt.k))
			stub, err := stub.New(stub.Config{Servers: []string{srv.Addr}, Timeout: 2 * time.Second, Attempts: 3})
			if err != nil {
				b.Fatal(err)
			}
			names := make([]dnsname.Name, tt.n)
			for i := range names {
				names[i] = dnsname.MustParse(fmt.Sprintf("customer%d.test", i))
			}
			var queries int64
			for b.Loop() {
				before := srv.Queries()
				p := &route.Planner{Resolver: resolve.NewCache(stub, 0)}
				var wg sync.WaitGroup
				sem := make(chan struct{}, 64)
				for _, n := range names {
					wg.Go(func() {
						sem <- struct{}{}
						defer func() { <-sem }()
						plan, err := p.Plan(b.Context(), n)
						if err != nil || len(plan.Hosts()) != tt.k {
							b.Errorf("%s: %+v, %v", n, plan, err)
						}
					})
				}
				wg.Wait()
				queries += srv.Queries() - before
			}
			b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
			b.ReportMetric(float64(tt.n+2*tt.k), "N+2k")
			b.ReportMetric(float64(tt.n*(1+2*tt.k)), "uncached")
		})
	}
}

// TestPlanCachedAllocs bounds what planning a five-exchange domain from
// the cache puts on the heap, as a scan does for nearly every domain: the
// plan itself, its hosts, their addresses as text and the findings; the
// questions, their Results and the readiness flags stay on the stack
// (FollowCached inlines). An escape there adds two allocations per
// exchange, and this fails; so does the MX lookup's Result escaping
// (lookupMX returns it by value).
func TestPlanCachedAllocs(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(fiveExchanges), "five")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 0)
	p := &route.Planner{Resolver: c, Seed: 1, HasSeed: true}
	domain := dnsname.MustParse("d.test")
	if _, err := p.Plan(t.Context(), domain); err != nil {
		t.Fatal(err)
	}
	misses := c.Stats().Misses
	n := testing.AllocsPerRun(50, func() {
		if plan, err := p.Plan(t.Context(), domain); err != nil || len(plan.Order) != 5 {
			t.Fatalf("plan %+v, %v", plan, err)
		}
	})
	if n > 22 && !raceEnabled {
		t.Errorf("planning from the cache: %.0f allocations, want at most 22", n)
	}
	if st := c.Stats(); st.Misses != misses {
		t.Errorf("planning from the cache asked the zone %d more times", st.Misses-misses)
	}
}

// BenchmarkPlanHugeMX plans a domain with 200,000 MX records, half of them
// duplicates (hugeMX), from an in-process resolver: the cost of the
// bounded plan (docs/routing.md#bounded-work), which must stay linear in
// the records served.
func BenchmarkPlanHugeMX(b *testing.B) {
	p := &route.Planner{Resolver: newHugeMX(200_000), Seed: 1, HasSeed: true}
	b.ReportAllocs()
	for b.Loop() {
		if plan, err := p.Plan(b.Context(), "huge.test"); err != nil || len(plan.Order) != route.DefaultMaxExchanges {
			b.Fatalf("plan %s, %v", plan.Result, err)
		}
	}
}

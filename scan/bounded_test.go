package scan

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// wildZone answers for any name under scan.test: two exchanges of one
// provider, with addresses (a wildcard, RFC 4592), so a list of any
// length needs no zone of that length.
const wildZone = `$ORIGIN scan.test.
$TTL 3600
@             SOA ns.scan.test. hostmaster.scan.test. 1 7200 900 1209600 300
@             NS  ns.scan.test.
ns            A   192.0.2.53
*             MX  10 mx1.provider.test.
*             MX  20 mx2.provider.test.
$ORIGIN provider.test.
@             SOA ns.provider.test. hostmaster.provider.test. 1 7200 900 1209600 300
mx1           A   192.0.2.1
mx2           A   192.0.2.2
mx2           AAAA 2001:db8::2
`

// generated yields n names under scan.test without holding the list.
func generated(n int) Source {
	return func(yield func(Item, error) bool) {
		for i := range n {
			if !yield(item(int64(i+1), fmt.Sprintf("d%d.scan.test", i)), nil) {
				return
			}
		}
	}
}

// lineCounter counts the lines written to it, keeping none.
type countingWriter struct {
	lines atomic.Int64
	bytes atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	w.bytes.Add(int64(len(p)))
	return len(p), nil
}

// TestBounded: scanning 200k domains holds no more entries than the window
// (reorder buffer) and the workers (in flight), and the number of
// goroutines does not grow with the input: the pipeline's memory is flat.
func TestBounded(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	z, err := resolve.ParseZones(strings.NewReader(wildZone), "wild")
	if err != nil {
		t.Fatal(err)
	}
	// A small cache: its bound, not the input, sets its size.
	p := &route.Planner{Resolver: resolve.NewCache(z, 5000)}
	const concurrency, window = 64, 256

	// Sample the goroutines while the scan runs.
	stop := make(chan struct{})
	sampled := make(chan int)
	go func() {
		peak := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				peak = max(peak, runtime.NumGoroutine())
			case <-stop:
				sampled <- peak
				return
			}
		}
	}()
	before := runtime.NumGoroutine()
	out := &countingWriter{}
	start := time.Now()
	sum, err := Run(t.Context(), generated(n), out, Config{Job: Route(p), Concurrency: concurrency, Window: window})
	close(stop)
	peak := <-sampled
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d domains in %v (%.0f/s), %d MB written; in flight at most %d, reordered at most %d, goroutines %d → peak %d",
		n, time.Since(start).Round(time.Millisecond), sum.PerSecond, out.bytes.Load()>>20, sum.MaxInFlight, sum.MaxReordered, before, peak)
	if out.lines.Load() != int64(n) || sum.Written != int64(n) || sum.Results[route.ResultOK] != int64(n) {
		t.Fatalf("%d lines, %d ok, for %d domains", out.lines.Load(), sum.Results[route.ResultOK], n)
	}
	if sum.MaxInFlight > concurrency {
		t.Errorf("%d domains in flight, bound %d", sum.MaxInFlight, concurrency)
	}
	if sum.MaxReordered > window {
		t.Errorf("%d entries held for reordering, bound %d", sum.MaxReordered, window)
	}
	// Each worker's plan runs one goroutine per exchange (2 here) and one
	// per exchange and family (2 × 2) beside it; the pipeline adds a few
	// of its own.
	if bound := before + concurrency*(1+2+4) + 16; peak > bound {
		t.Errorf("peak of %d goroutines, bound %d: something grows with the input", peak, bound)
	}
	if sum.Providers[0] != (Provider{"provider.test", int64(n)}) {
		t.Errorf("providers %v", sum.Providers)
	}
}

// BenchmarkScanRoute measures the pipeline and planner per domain against
// an in-memory zone (no network): the scan's own overhead, the ceiling of
// what a resolver can feed it.
func BenchmarkScanRoute(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(wildZone), "wild")
	if err != nil {
		b.Fatal(err)
	}
	const n = 20_000
	b.ReportAllocs()
	var elapsed time.Duration
	for b.Loop() {
		p := &route.Planner{Resolver: resolve.NewCache(z, 0)}
		start := time.Now()
		if _, err := Run(b.Context(), generated(n), &countingWriter{}, Config{Job: Route(p)}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "domains/s")
}

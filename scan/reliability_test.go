package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// world generates a zone of n domains, the mix a real list has: about
// half on a few shared providers with several exchanges each, a third
// with their own one to three exchanges, and the rest implicit MX, Null
// MX, a dangling exchange, and names that do not exist. It returns the
// zone text and the list.
func world(n int) (zone, list string) {
	var z, l strings.Builder
	z.WriteString("$ORIGIN w.test.\n$TTL 3600\n@ SOA ns.w.test. hostmaster.w.test. 1 7200 900 1209600 300\n@ NS ns.w.test.\nns A 192.0.2.53\n")
	for p := range 3 {
		for k := range 3 {
			fmt.Fprintf(&z, "mx%d.p%d A 192.0.2.%d\nmx%d.p%d AAAA 2001:db8::%d:%d\n", k, p, 10*p+k+1, k, p, p, k)
		}
	}
	for i := range n {
		d := fmt.Sprintf("d%d", i)
		fmt.Fprintf(&l, "%s.w.test\n", d)
		switch r := i % 12; {
		case r < 6: // a shared provider
			p := i % 3
			for k := range 3 {
				fmt.Fprintf(&z, "%s MX %d mx%d.p%d.w.test.\n", d, 10*(k/2+1), k, p)
			}
		case r < 10: // its own exchanges
			for k := range i%3 + 1 {
				fmt.Fprintf(&z, "%s MX %d mx%d.%s.w.test.\nmx%d.%s A 198.51.100.%d\n", d, 10*(k+1), k, d, k, d, (i+k)%250+1)
			}
		case r == 10:
			switch i % 4 {
			case 0:
				fmt.Fprintf(&z, "%s A 203.0.113.%d\n", d, i%250+1) // implicit MX
			case 1:
				fmt.Fprintf(&z, "%s MX 0 .\n", d) // Null MX
			default:
				fmt.Fprintf(&z, "%s MX 10 gone.%s.w.test.\n", d, d) // dangling exchange
			}
		default:
			// Not in the zone: NXDOMAIN.
		}
	}
	return z.String(), l.String()
}

// lossy drops a share of the queries and answers another share with
// SERVFAIL, at random.
func lossy(drop, servfail float64) func(dns.Handler) dns.Handler {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	return func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			mu.Lock()
			x := rng.Float64()
			mu.Unlock()
			switch {
			case x < drop:
			case x < drop+servfail:
				m := dnstest.Reply(req)
				m.Rcode = dns.RcodeServerFailure
				w.WriteMsg(m)
			default:
				next.ServeDNS(w, req)
			}
		})
	}
}

// TestReliability (issue item 8): against DNS servers that drop 30% of
// the queries and answer 10% with SERVFAIL, a scan of 2000 domains writes
// exactly one line per entry, in input order; every line that is not an
// explicit error (result "error", or an mx-lookup-failed finding) is
// exactly what a clean run writes; and the whole scan ends in bounded
// time. With retries and fail-over almost every domain gets through;
// without, many do not, and each of those says so. It runs over a Stub,
// and over a Mux with Prefetch and Cached as mxtrace scan wires it
// (asynchronous lookups, lost datagrams found by the sweeper, plans made
// where the prefetch ends).
func TestReliability(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 400
	}
	zone, in := world(n)

	// The truth: the same planner over the zone, with no network.
	z, err := resolve.ParseZones(strings.NewReader(zone), "world")
	if err != nil {
		t.Fatal(err)
	}
	clean := runToString(t, in, Config{Job: Route(&route.Planner{Resolver: resolve.NewCache(z, 0), Seed: 7, HasSeed: true})})
	want := strings.Split(stable(clean), "\n")
	if strings.Contains(clean, `"result":"error"`) || strings.Contains(clean, "mx-lookup-failed") {
		t.Fatal("the clean run has errors")
	}

	type setup struct {
		name       string
		servers    int
		retries    int
		maxErrors  int
		someErrors bool
		mux        bool
	}
	var setups []setup
	for _, withMux := range []bool{false, true} {
		setups = append(setups,
			setup{"retries and fail-over", 2, 4, n / 20, false, withMux},
			setup{"one try, one server", 1, 0, n, true, withMux})
	}
	for _, tt := range setups {
		name := tt.name + "/stub"
		if tt.mux {
			name = tt.name + "/mux+prefetch"
		}
		t.Run(name, func(t *testing.T) {
			var servers []string
			for range tt.servers {
				servers = append(servers, dnstest.NewZone(t, zone, dnstest.WithMiddleware(lossy(0.3, 0.1))).Addr)
			}
			cfg := stub.Config{Servers: servers, Timeout: 100 * time.Millisecond, Attempts: 2, NoRecursion: true}
			var next resolve.Resolver
			var mx *mux.Mux
			if tt.mux {
				m, err := mux.New(mux.Config{Config: cfg, Backoff: 5 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				next, mx = m, m
			} else {
				st, err := stub.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				next = st
			}
			p := &route.Planner{Resolver: resolve.NewCache(next, 0), Seed: 7, HasSeed: true}
			var prefetch func(dnsname.Name, func())
			var cached CachedJob
			if tt.mux {
				prefetch, cached = p.Prefetch, RouteCached(p)
			}

			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			var out bytes.Buffer
			sum, err := Run(ctx, Lines(strings.NewReader(in)), &out, Config{Job: Route(p), Prefetch: prefetch, Cached: cached, Concurrency: 128, Retries: tt.retries, Backoff: 5 * time.Millisecond, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
			got := strings.Split(stable(out.String()), "\n")
			if len(got) != len(want) {
				t.Fatalf("%d lines for %d entries", len(got)-1, n)
			}
			same, explicit := 0, 0
			for i := range got[:n] {
				if got[i] == want[i] {
					same++
					continue
				}
				var line struct {
					Domain   string
					Result   route.Result
					Findings []struct{ ID string }
				}
				if err := json.Unmarshal([]byte(got[i]), &line); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				if wantDomain := fmt.Sprintf("d%d.w.test", i); line.Domain != wantDomain {
					t.Fatalf("line %d is %s, want %s: lost, duplicated or out of order", i+1, line.Domain, wantDomain)
				}
				lookupFailed := false
				for _, f := range line.Findings {
					lookupFailed = lookupFailed || f.ID == "mx-lookup-failed"
				}
				if line.Result != route.ResultError && !lookupFailed {
					t.Errorf("line %d differs from the clean run without saying a lookup failed:\n got %s\nwant %s", i+1, got[i], want[i])
					continue
				}
				explicit++
			}
			t.Logf("%d domains in %v: %d as in the clean run, %d explicit errors; %d retried; errors %v, incomplete %d",
				n, time.Since(start).Round(time.Millisecond), same, explicit, sum.Retried, sum.Errors, sum.Incomplete)
			if sum.Written != int64(n) || int64(explicit) != sum.Results[route.ResultError]+sum.Incomplete {
				t.Errorf("summary: written %d, errors %d, incomplete %d; counted %d explicit", sum.Written, sum.Results[route.ResultError], sum.Incomplete, explicit)
			}
			if explicit > tt.maxErrors || (tt.someErrors && explicit == 0) {
				t.Errorf("%d of %d domains ended in errors", explicit, n)
			}
			switch {
			case mx != nil:
				// The Mux asks again itself (lost datagrams, SERVFAIL),
				// so a domain rarely needs a second attempt.
				if st := mx.Stats(); st.Retries == 0 || st.Resent == 0 {
					t.Errorf("the Mux retried nothing through 30%% loss and 10%% SERVFAIL: %+v", st)
				}
			case tt.retries > 0 && sum.Retried == 0:
				t.Error("nothing was retried through 30% loss")
			}
		})
	}
}

package serve_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/serve"
)

const benchDelay = 50 * time.Millisecond

// BenchmarkCheckLatencyAPI audits dnstest.AuditZone's domain without SMTP
// twice per iteration, each time with a fresh cache over the stub resolver
// against a server that delays every answer by benchDelay: once as the
// command line does (check.Auditor.Audit, then the JSON written), and once
// through the API (GET /api/v1/check/d.test?smtp=0 over loopback HTTP to a
// Server built on the same engine, body read to the end). The two alternate
// which goes first, so that the machine's drift hits both.
//
// It reports each path's wall time in round trips ("cli-delays/op",
// "api-delays/op"; check's critical path is three, see check's
// BenchmarkCheckLatency) and their ratio ("api/cli"): the API adds no
// round trip, so the ratio should stay under 1.1.
func BenchmarkCheckLatencyAPI(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "audit")
	if err != nil {
		b.Fatal(err)
	}
	srv := dnstest.New(b, dnstest.Authoritative(z), dnstest.WithDelay(benchDelay))
	st, err := stub.New(stub.Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	_, p, _ := strings.Cut(srv.Addr, ":")
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		b.Fatal(err)
	}
	domain := dnsname.MustParse("d.test")
	auditor := func(r resolve.Resolver) *check.Auditor {
		return &check.Auditor{
			Resolver:       r,
			Planner:        &route.Planner{Resolver: r},
			Nameservers:    &nameserver.Options{Port: uint16(port), IPv4: true},
			DKIMSelectors:  []string{"mail"},
			SMTPSkipReason: "--no-smtp",
		}
	}

	// The handler is built once; each request gets a fresh cache through
	// the Server it is routed to.
	var cur http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.ServeHTTP(w, r) }))
	b.Cleanup(hs.Close)
	client := hs.Client()

	cli := func() time.Duration {
		r := resolve.NewCache(st, 0)
		a := auditor(r)
		start := time.Now()
		rep := a.Audit(b.Context(), domain)
		if errs := rep.Errors(); len(errs) > 0 {
			b.Fatal(errs)
		}
		if err := report.WriteJSON(io.Discard, rep); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	api := func() time.Duration {
		r := resolve.NewCache(st, 0)
		a := auditor(r)
		s, err := serve.New(serve.Config{
			Resolver:  r,
			Planner:   a.Planner,
			Auditor:   a,
			Timeout:   10 * time.Second,
			MaxChecks: 4,
			Rate:      1e6,
			Burst:     1e6,
		})
		if err != nil {
			b.Fatal(err)
		}
		cur = s.Handler()
		start := time.Now()
		resp, err := client.Get(hs.URL + "/api/v1/check/d.test?smtp=0")
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET check: %d %s %v", resp.StatusCode, body, err)
		}
		var v struct {
			Schema int    `json:"schema"`
			Domain string `json:"domain"`
			Result string `json:"result"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Schema != 1 || v.Result != "ok" {
			b.Fatalf("GET check: %s (%v)", body, err)
		}
		return elapsed
	}

	var cliTotal, apiTotal time.Duration
	n := 0
	for b.Loop() {
		if n%2 == 0 {
			cliTotal += cli()
			apiTotal += api()
		} else {
			apiTotal += api()
			cliTotal += cli()
		}
		n++
	}
	b.ReportMetric(float64(cliTotal)/float64(n)/float64(benchDelay), "cli-delays/op")
	b.ReportMetric(float64(apiTotal)/float64(n)/float64(benchDelay), "api-delays/op")
	b.ReportMetric(float64(apiTotal)/float64(cliTotal), "api/cli")
}

// BenchmarkRouteCached answers GET /api/v1/route/{domain} from the cache
// through the whole handler (security headers, rate limit, metrics, the
// access log as serve writes it, at info in text, to io.Discard), without
// the network: the server's own CPU per request, which bench/serve.sh
// measures under wrk with the load generator beside it.
func BenchmarkRouteCached(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "audit")
	if err != nil {
		b.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}}
	s, err := serve.New(serve.Config{
		Resolver: r, Planner: a.Planner, Auditor: a,
		Rate: 1e9, Burst: 1e9,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/route/d.test", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

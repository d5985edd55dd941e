package serve

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

const guardZone = `$ORIGIN example.test.
@ 3600 IN SOA ns.example.test. host.example.test. 1 3600 600 86400 300
@ 3600 IN MX 10 mx1
mx1 3600 IN A 192.0.2.1
`

// testConfig is a Config over an in-memory zone, behind a DNS cache.
func testConfig(t testing.TB) Config {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(guardZone), "test.zone")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 1000)
	p := &route.Planner{Resolver: c}
	return Config{Resolver: c, Planner: p, Auditor: &check.Auditor{Resolver: c, Planner: p}}
}

// serveTest starts s on a real loopback listener through Serve, with the
// handlers of the patterns in override replaced (for handlers that block
// or panic), and returns its base URL. The server is shut down at cleanup.
func serveTest(t *testing.T, cfg Config, override map[string]http.Handler) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eps := s.endpoints()
	for i, e := range eps {
		if h, ok := override[e.Pattern]; ok {
			eps[i].Handler = h
			delete(override, e.Pattern)
		}
	}
	if len(override) > 0 {
		t.Fatalf("no such patterns: %v", override)
	}
	s.handler = s.build(eps)
	// The grace bounds the shutdown at cleanup: a connection net/http is
	// still closing (after a 431 it waits up to half a second for the
	// client's close, RST avoidance) must fit in it on a loaded machine.
	base, stop := startServe(t, s, 5*time.Second)
	t.Cleanup(func() {
		// A connection the client's Transport dialed but never used
		// (its request took an idle one meanwhile) is, to the server,
		// new and unread, and Shutdown waits 5 s before it counts such a
		// connection as idle: the whole grace. Closing the client's idle
		// connections lets the server see their end at once.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, base
}

// startServe runs s.Serve on a loopback port with grace, and returns its
// base URL and a stop that ends it and returns Serve's error; stop may be
// called more than once.
func startServe(t *testing.T, s *Server, grace time.Duration) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, grace) }()
	var once sync.Once
	var serveErr error
	return "http://" + ln.Addr().String(), func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
}

// fetch sends a GET with the given headers (key, value, ...).
func fetch(t *testing.T, url string, hv ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hv); i += 2 {
		req.Header.Add(hv[i], hv[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// wantProblem checks an answer is status as problem+json, with a
// Retry-After of at least one second when retry is set.
func wantProblem(t *testing.T, resp *http.Response, status int, retry bool) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	ra := resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); retry && (err != nil || n < 1) {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", ra)
	} else if !retry && ra != "" {
		t.Errorf("Retry-After %q, want none", ra)
	}
}

// block is a handler that signals it started and waits for release.
func block(started chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.Write([]byte("done\n"))
	})
}

func TestSecurityHeaders(t *testing.T) {
	_, base := serveTest(t, testConfig(t), nil)
	for _, path := range []string{"/healthz", "/api/v1/route/example.test", "/no/such/page", "/metrics"} {
		resp := fetch(t, base+path)
		want := map[string]string{
			"Content-Security-Policy":    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "no-referrer",
			"X-Frame-Options":            "DENY",
			"Cross-Origin-Opener-Policy": "same-origin",
			"Server":                     "",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s: %q, want %q", path, k, got, v)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rate, cfg.Burst = 0.5, 3
	cfg.TrustProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	_, base := serveTest(t, cfg, nil)
	url := base + "/api/v1/openapi.json"
	from := func(client string) *http.Response { return fetch(t, url, "X-Forwarded-For", client) }

	for i := range 3 {
		if resp := from("2001:db8:1:2::1"); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	// Another address of the same /64 shares the bucket.
	resp := from("2001:db8:1:2::ffff")
	wantProblem(t, resp, http.StatusTooManyRequests, true)
	// At 0.5 tokens a second, the next one is about 2 s away.
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	// Another /64 has its own bucket.
	if resp := from("2001:db8:1:3::1"); resp.StatusCode == http.StatusTooManyRequests {
		t.Error("a different /64 was limited")
	}
	// Static assets, /healthz and /metrics spend no tokens.
	for _, path := range []string{"/healthz", "/metrics", "/static/x.css"} {
		if resp := fetch(t, base+path, "X-Forwarded-For", "2001:db8:1:2::1"); resp.StatusCode == http.StatusTooManyRequests {
			t.Errorf("%s was rate-limited", path)
		}
	}
}

func TestRateLimitIgnoresUntrustedForwardedFor(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rate, cfg.Burst = 0.5, 2
	cfg.TrustProxy = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // not the test's peer
	_, base := serveTest(t, cfg, nil)
	url := base + "/api/v1/openapi.json"
	// Each request claims another client; the peer is still one client.
	fetch(t, url, "X-Forwarded-For", "198.51.100.1")
	fetch(t, url, "X-Forwarded-For", "198.51.100.2")
	wantProblem(t, fetch(t, url, "X-Forwarded-For", "198.51.100.3"), http.StatusTooManyRequests, true)
}

func TestSaturation(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxChecks = 1
	started, release := make(chan struct{}, 2), make(chan struct{})
	_, base := serveTest(t, cfg, map[string]http.Handler{"/api/v1/check/{domain}": block(started, release)})

	first := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(base + "/api/v1/check/example.test")
		if err != nil {
			t.Error(err)
			close(first)
			return
		}
		resp.Body.Close()
		first <- resp
	}()
	<-started
	// Every expensive route shares the bound; cheap ones do not take it.
	wantProblem(t, fetch(t, base+"/api/v1/check/example.test"), http.StatusServiceUnavailable, true)
	wantProblem(t, fetch(t, base+"/api/v1/probe/example.test"), http.StatusServiceUnavailable, true)
	if resp := fetch(t, base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz during saturation: %d", resp.StatusCode)
	}
	close(release)
	if resp := <-first; resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the held request: %v", resp)
	}
	// The slot is free again.
	if resp := fetch(t, base+"/api/v1/check/example.test"); resp.StatusCode == http.StatusServiceUnavailable {
		t.Error("slot not released")
	}
}

func TestBodyTooLarge(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxScanBytes = 100
	read := func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			if limitProblem(w, r, err) {
				return
			}
			t.Errorf("read: %v", err)
		}
		w.Write([]byte("read\n"))
	}
	_, base := serveTest(t, cfg, map[string]http.Handler{"/api/v1/scan": http.HandlerFunc(read)})
	post := func(body io.Reader, length int64) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/v1/scan", body)
		req.ContentLength = length
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Declared too long: refused before the handler.
	wantProblem(t, post(strings.NewReader(strings.Repeat("a.test\n", 20)), 140), http.StatusRequestEntityTooLarge, false)
	// Chunked, no length: the handler's read fails and limitProblem answers.
	wantProblem(t, post(io.MultiReader(strings.NewReader(strings.Repeat("a.test\n", 20))), -1), http.StatusRequestEntityTooLarge, false)
	if resp := post(strings.NewReader("a.test\n"), 7); resp.StatusCode != http.StatusOK {
		t.Errorf("small body: %d", resp.StatusCode)
	}
}

func TestRequestDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = 100 * time.Millisecond
	wait := func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		if !limitProblem(w, r, r.Context().Err()) {
			t.Error("limitProblem did not answer a passed deadline")
		}
	}
	silent := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	_, base := serveTest(t, cfg, map[string]http.Handler{
		"/api/v1/route/{domain}": http.HandlerFunc(wait),
		"/api/v1/spf/{domain}":   http.HandlerFunc(silent),
	})
	wantProblem(t, fetch(t, base+"/api/v1/route/example.test"), http.StatusGatewayTimeout, false)
	// A handler that writes nothing past its deadline gets the 504 too.
	wantProblem(t, fetch(t, base+"/api/v1/spf/example.test"), http.StatusGatewayTimeout, false)
}

func TestPanicRecovered(t *testing.T) {
	_, base := serveTest(t, testConfig(t), map[string]http.Handler{
		"/api/v1/route/{domain}": http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
	})
	resp, err := http.Get(base + "/api/v1/route/example.test")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Status != 500 {
		t.Errorf("panic answered %d %+v (%v)", resp.StatusCode, p, err)
	}
}

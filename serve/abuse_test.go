package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// TestHeadersTooLarge: headers over maxHeaderBytes get 431 (RFC 6585 §5)
// and the connection is closed.
func TestHeadersTooLarge(t *testing.T) {
	_, base := serveTest(t, testConfig(t), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// net/http allows 4 KB past MaxHeaderBytes; send four times the cap.
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 4*maxHeaderBytes) + "\r\n\r\n"
	go conn.Write([]byte(req))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

// TestSlowHeaders: a client that sends its headers a line at a time, never
// finishing them, is cut off after HeaderTimeout (slowloris), although it
// never stops sending.
func TestSlowHeaders(t *testing.T) {
	cfg := testConfig(t)
	cfg.HeaderTimeout = 200 * time.Millisecond
	_, base := serveTest(t, cfg, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Bounded: the test fails rather than hang if the server waits on.
	const bound = 5 * time.Second
	conn.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			<-tick.C
			if _, err := io.WriteString(conn, "X-Drip-"+strconv.Itoa(i)+": a\r\n"); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	b, err := io.ReadAll(conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", bound)
	}
	if bytes.Contains(b, []byte("200 OK")) {
		t.Fatalf("the unfinished request was answered: %q", b)
	}
	t.Logf("closed after %v (%v); read %q", time.Since(start).Round(time.Millisecond), err, b)
}

// TestGracefulShutdown: once Serve's context ends, new connections are
// refused while a request in flight runs to its end and is answered.
func TestGracefulShutdown(t *testing.T) {
	s, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	eps := s.endpoints()
	for i := range eps {
		if eps[i].Pattern == "/api/v1/check/{domain}" {
			eps[i].Handler = block(started, release)
		}
	}
	s.handler = s.build(eps)
	base, stop := startServe(t, s, 10*time.Second)
	defer stop()
	addr := strings.TrimPrefix(base, "http://")

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/api/v1/check/example.test")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 5 s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if res := <-inflight; res.err != nil || res.status != http.StatusOK || res.body != "done\n" {
		t.Errorf("the request in flight: %d %q %v", res.status, res.body, res.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestAccessLog: one line per request, at Info, with the route pattern,
// status, size and client.
func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	_, base := serveTest(t, cfg, nil)
	fetch(t, base+"/healthz?x=1")
	fetch(t, base+"/nowhere")
	var lines []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2: %s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "INFO", "method": "GET", "pattern": "GET /healthz", "path": "/healthz", "status": 200.0, "bytes": 3.0, "client": "127.0.0.1"},
		{"level": "INFO", "method": "GET", "pattern": "", "path": "/nowhere", "status": 404.0, "client": "127.0.0.1"},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i+1, k, lines[i][k], v)
			}
		}
		if _, ok := lines[i]["duration"]; !ok {
			t.Errorf("line %d: no duration", i+1)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gateResolver holds every lookup until open is closed, telling entered
// (once) that one is waiting.
type gateResolver struct {
	next    resolve.Resolver
	entered chan struct{}
	once    sync.Once
	open    chan struct{}
}

func (g *gateResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.next.Lookup(ctx, q)
}

// TestSaturationSlowDNS: with MaxChecks 1, a real check held up by a slow
// resolver takes the one slot, so the next check, probe or report page is
// 503 with Retry-After at once; the held check then completes.
func TestSaturationSlowDNS(t *testing.T) {
	cfg := testConfig(t)
	gate := &gateResolver{next: cfg.Resolver, entered: make(chan struct{}), open: make(chan struct{})}
	cfg.Planner = &route.Planner{Resolver: gate}
	cfg.Auditor = &check.Auditor{Resolver: gate, Planner: cfg.Planner}
	cfg.MaxChecks = 1
	_, base := serveTest(t, cfg, nil)

	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/api/v1/check/example.test")
		if err != nil {
			t.Error(err)
			first <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-gate.entered
	for _, path := range []string{"/api/v1/check/example.test?smtp=0", "/d/example.test", "/api/v1/check/example.test/events"} {
		wantProblem(t, fetch(t, base+path), http.StatusServiceUnavailable, true)
	}
	close(gate.open)
	if status := <-first; status != http.StatusOK {
		t.Errorf("the held check: %d", status)
	}
}

package watch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dial"
)

var testSecret = []byte("s3cret-for-tests")

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"schema":1,"id":7}`)
	h := http.Header{}
	h.Set(HeaderTimestamp, "1800000000")
	h.Set(HeaderSignature, Sign(testSecret, now, body))
	// The value a receiver computes by hand: HMAC-SHA256 over
	// "1800000000." + body (checked against openssl in
	// TestSignatureShell).
	if got := h.Get(HeaderSignature); !strings.HasPrefix(got, "sha256=") || len(got) != len("sha256=")+64 {
		t.Fatalf("signature %q is not sha256=<64 hex>", got)
	}
	if err := Verify(testSecret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	bad := []struct {
		name   string
		secret []byte
		h      func(http.Header)
		body   []byte
		now    time.Time
	}{
		{"other secret", []byte("other"), nil, body, now},
		{"body changed", testSecret, nil, []byte(`{"schema":1,"id":8}`), now},
		{"timestamp changed", testSecret, func(h http.Header) { h.Set(HeaderTimestamp, "1800000001") }, body, now},
		{"replayed later", testSecret, nil, body, now.Add(DefaultTolerance + time.Second)},
		{"from the future", testSecret, nil, body, now.Add(-DefaultTolerance - time.Second)},
		{"no timestamp", testSecret, func(h http.Header) { h.Del(HeaderTimestamp) }, body, now},
		{"no signature", testSecret, func(h http.Header) { h.Del(HeaderSignature) }, body, now},
		{"other algorithm", testSecret, func(h http.Header) {
			h.Set(HeaderSignature, "sha1="+strings.TrimPrefix(h.Get(HeaderSignature), "sha256="))
		}, body, now},
		{"not hex", testSecret, func(h http.Header) { h.Set(HeaderSignature, "sha256=zz") }, body, now},
	}
	for _, c := range bad {
		h2 := h.Clone()
		if c.h != nil {
			c.h(h2)
		}
		if err := Verify(c.secret, h2, c.body, c.now, 0); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", c.name, err)
		}
	}
}

// TestSignatureShell runs the receiver's shell one-liner of docs/watch.md
// (openssl) and compares it with Sign.
func TestSignatureShell(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing")
		}
		t.Skip("openssl is missing")
	}
	dir := t.TempDir()
	body := []byte("{\"schema\":1,\"message\":\"tr\u00e8s\"}\n")
	file := filepath.Join(dir, "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_123, 0)
	// The line as docs/watch.md prints it.
	line := `{ printf '%s.' "$TS"; cat body.json; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1`
	cmd := exec.CommandContext(t.Context(), "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TS=1800000123", "SECRET="+string(testSecret))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if got, want := "sha256="+strings.TrimSpace(string(out)), Sign(testSecret, now, body); got != want {
		t.Errorf("shell says %s, Sign says %s", got, want)
	}
}

// receiver is a test webhook receiver: it verifies every request and
// fails the first failFirst ones with status.
type receiver struct {
	t         *testing.T
	failFirst int
	status    int
	header    http.Header // extra headers on failures

	mu       sync.Mutex
	requests int
	bodies   [][]byte
	ids      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("receiver: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if err := Verify(testSecret, r.Header, body, time.Now(), 0); err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.requests <= rc.failFirst {
		for k, v := range rc.header {
			w.Header()[k] = v
		}
		http.Error(w, "not now", rc.status)
		return
	}
	rc.bodies = append(rc.bodies, body)
	rc.ids = append(rc.ids, r.Header.Get(HeaderAlertID))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) received() ([][]byte, []string, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.bodies, rc.ids, rc.requests
}

func startReceiver(t *testing.T, rc *receiver) Target {
	t.Helper()
	rc.t = t
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	tg, err := ParseTarget(srv.URL + "/hook")
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestWebhookSend(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	body := []byte(`{"schema":1,"id":3,"kind":"change","domain":"example.org"}`)
	send := func(rc *receiver) error {
		t.Helper()
		tg := startReceiver(t, rc)
		w := &Webhook{Secret: testSecret}
		return w.Send(t.Context(), tg, 3, body, now)
	}

	rc := &receiver{}
	if err := send(rc); err != nil {
		t.Fatalf("2xx: %v", err)
	}
	if bodies, ids, _ := rc.received(); len(bodies) != 1 || string(bodies[0]) != string(body) || ids[0] != "3" {
		t.Errorf("received %q with IDs %q", bodies, ids)
	}

	for _, c := range []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{http.StatusServiceUnavailable, nil, false, 0},
		{http.StatusServiceUnavailable, http.Header{"Retry-After": {"120"}}, false, 2 * time.Minute},
		{http.StatusTooManyRequests, http.Header{"Retry-After": {now.Add(time.Hour).UTC().Format(http.TimeFormat)}}, false, time.Hour},
		{http.StatusRequestTimeout, nil, false, 0},
		{http.StatusInternalServerError, http.Header{"Retry-After": {"soon"}}, false, 0},
		{http.StatusNotFound, nil, true, 0},
		{http.StatusForbidden, nil, true, 0},
		{http.StatusGone, nil, true, 0},
		{http.StatusFound, http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}, true, 0},
	} {
		err := send(&receiver{failFirst: 1, status: c.status, header: c.header})
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Errorf("%d: %v, want an *Error", c.status, err)
			continue
		}
		if e.Permanent != c.permanent || e.RetryAfter.Round(time.Second) != c.retryAfter {
			t.Errorf("%d %v: %v permanent %v retry after %s, want %v %s", c.status, c.header, e, e.Permanent, e.RetryAfter, c.permanent, c.retryAfter)
		}
		if !strings.Contains(e.Error(), strconv.Itoa(c.status)) {
			t.Errorf("%d: error %q does not say the status", c.status, e)
		}
	}
}

func TestWebhookFailures(t *testing.T) {
	body := []byte(`{}`)
	tg := startReceiver(t, &receiver{})

	// Without a secret nothing is sent, for good.
	err := (&Webhook{}).Send(t.Context(), tg, 1, body, time.Now())
	if e, ok := errors.AsType[*Error](err); !ok || !e.Permanent {
		t.Errorf("no secret: %v, want a permanent error", err)
	}

	// A dialer whose policy refuses loopback: permanent, the policy will
	// not change its mind.
	w := &Webhook{Secret: testSecret, Dialer: &dial.Net{Policy: &dial.Policy{}}}
	err = w.Send(t.Context(), tg, 1, body, time.Now())
	if e, ok := errors.AsType[*Error](err); !ok || !e.Permanent || !errors.Is(err, dial.ErrForbidden) {
		t.Errorf("forbidden address: %v, want a permanent ErrForbidden", err)
	}

	// Nobody listening: retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gone := Target{Kind: TargetWebhook, URL: &url.URL{Scheme: "http", Host: addr, Path: "/"}}
	err = (&Webhook{Secret: testSecret}).Send(t.Context(), gone, 1, body, time.Now())
	if e, ok := errors.AsType[*Error](err); !ok || e.Permanent {
		t.Errorf("connection refused: %v, want a temporary error", err)
	}

	// A receiver that never answers: the time-out ends the attempt,
	// retried.
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) })
	stg, _ := ParseTarget(stuck.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = (&Webhook{Secret: testSecret, Timeout: 200 * time.Millisecond}).Send(ctx, stg, 1, body, time.Now())
	if e, ok := errors.AsType[*Error](err); !ok || e.Permanent || ctx.Err() != nil {
		t.Errorf("stuck receiver: %v, want a temporary error within the time-out", err)
	}
}

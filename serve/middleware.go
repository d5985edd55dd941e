package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/mxtrace/mxtrace/clientlimit"
)

// securityHeaders are set on every response. The page lives within the
// policy: no inline script, style or event handler, nothing from another
// host, no framing (CSP Level 3, frame-ancestors; RFC 7034 for
// X-Frame-Options, which older browsers still read). The keys are in
// canonical form and each value slice is shared by every response, which
// is safe since it is full (an Add copies it) and never written into.
var securityHeaders = http.Header{
	"Content-Security-Policy": {"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"},
	"X-Content-Type-Options":     {"nosniff"},
	"Referrer-Policy":            {"no-referrer"},
	"X-Frame-Options":            {"DENY"},
	"Cross-Origin-Opener-Policy": {"same-origin"},
}

// policy is what the server enforces on one route before its handler runs.
type policy struct {
	// limited: the request spends a token of its client's bucket.
	limited bool
	// expensive: the request holds a MaxChecks slot until it ends.
	expensive bool
	// body caps the request body.
	body int64
	// timeout is the time its work is given (Config.Timeout, which
	// handlers bound their work with); the request's own deadline is
	// answerSlack later, so that a handler answers its own 504 or ends
	// its stream with an "error" event before the request is cut.
	timeout time.Duration
}

// scanTimeFactor: a scan does many domains, each within Config.Timeout
// (scan's own per-domain deadline), so its request as a whole gets this
// many times Timeout; a longer list is cut there, and the client resumes
// with the rest.
const scanTimeFactor = 15

// answerSlack is how long past its work's time a request may take to
// answer; ioSlack how long past the request's deadline reads and writes
// on its connection may still take, to send the 504 or the end of a
// stream.
const (
	answerSlack = 2 * time.Second
	ioSlack     = 5 * time.Second
)

// policyOf is each route's policy. The API and the pages spend tokens;
// static assets, /healthz, /metrics and the not-found page do not, so that a page's own
// assets, the orchestrator's probes and the scraper are never refused.
// Checks, probes, scans, events streams and report pages are the
// expensive work bounded by MaxChecks, one slot a request: requests that
// join a check already running (the hub) count too, which errs on the
// safe side.
func (s *Server) policyOf(pattern string) policy {
	p := policy{limited: true, timeout: s.cfg.Timeout}
	switch pattern {
	case "/static/", "/healthz", "/metrics", notFoundPattern:
		p.limited = false
	case "/api/v1/check/{domain}", "/api/v1/check/{domain}/events", "/api/v1/probe/{domain}",
		"/d/{domain}", "/d/{domain}/events", "/api/v1/history/{domain}":
		p.expensive = true
	case "/api/v1/watches", "/watches", "/watches/remove":
		p.body = maxWatchBody
	case "/api/v1/scan":
		p.expensive = true
		p.body = cmp.Or(s.cfg.MaxScanBytes, DefaultMaxScanBytes)
		p.timeout = scanTimeFactor * s.cfg.Timeout
	}
	return p
}

// guard runs e's handler under its policy: rate limit, body cap, deadline,
// concurrency bound, in that order, so that a refused request costs
// nothing else.
func (s *Server) guard(e endpoint) http.Handler {
	p := s.policyOf(e.Pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.limited && !s.allow(w, r) {
			return
		}
		if r.ContentLength > p.body {
			writeProblem(w, r, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("the request body is over its limit of %d bytes", p.body), 0)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.body)
		ctx, cancel := context.WithTimeout(r.Context(), p.timeout+answerSlack)
		defer cancel()
		// The server has no ReadTimeout or WriteTimeout, which would cut
		// long event streams and scans, or cancel them (a read deadline
		// passing cancels the request's context): each request's own
		// deadline bounds its connection instead.
		deadline, _ := ctx.Deadline()
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(deadline.Add(ioSlack))
		rc.SetWriteDeadline(deadline.Add(ioSlack))
		if p.expensive {
			release, ok := s.acquire(w, r)
			if !ok {
				return
			}
			defer release()
		}
		e.Handler.ServeHTTP(w, r.WithContext(ctx))
		if rec, ok := w.(*recorder); ok && rec.status == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			limitProblem(w, r.WithContext(ctx), ctx.Err())
		}
	})
}

// allow spends a token of the request's client, or answers 429 with the
// time until the next token as Retry-After (RFC 6585 §4) and returns false.
func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	if s.limiter == nil {
		return true
	}
	wait := s.limiter.Take(clientlimit.Key(clientAddr(r, s.cfg.TrustProxy)), time.Now())
	if wait <= 0 {
		return true
	}
	s.metrics.rateLimited.Inc()
	writeProblem(w, r, http.StatusTooManyRequests, "too many requests from your address; slow down", wait)
	return false
}

// outer wraps the whole mux: security headers on every response, a
// recovered panic answered 500 and counted, the request measured and
// logged once, at Info, when it ends.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		for k, v := range securityHeaders {
			h[k] = v
		}
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.metrics.panics.Inc()
				s.log.Error("handler panicked", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, http.StatusInternalServerError, "", 0)
				}
			}
			s.observe(r, rec, start)
		}()
		next.ServeHTTP(rec, r)
	})
}

// observe counts and logs one finished request. The mux has set
// r.Pattern, the route (never the path, whose values are unbounded);
// a request no route matched has none.
func (s *Server) observe(r *http.Request, rec *recorder, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	pattern := r.Pattern
	if pattern == notFoundPattern {
		pattern = "" // the not-found page: no route matched
	}
	s.metrics.request(pattern, status, elapsed)
	s.log.Info("request", "method", r.Method, "pattern", pattern, "path", r.URL.Path, "status", status,
		"bytes", rec.bytes, "duration", elapsed, "client", clientAddr(r, s.cfg.TrustProxy).String())
}

// recorder notes the status and size of a response. It passes Flush on
// and unwraps for http.ResponseController, so event streams work through
// it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

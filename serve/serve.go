// Package serve is mxtrace's HTTP face: a JSON API whose bodies are the
// very objects the command line prints with --json, server-sent events for
// a check in progress, a bulk scan endpoint, and a server-rendered web page
// (templates and assets in web/, embedded). It calls route, check, probe,
// spf and scan as cmd/mxtrace does and has no mail logic of its own.
//
// A server is meant to be exposed to strangers, who may name any domain,
// and so any host, since an MX record is a pointer its owner controls: the
// outbound dialer it is given refuses non-public addresses at connect time
// (package dial), clients are rate-limited, concurrent checks are bounded,
// and every request has a deadline (docs/serve.md).
package serve

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/clientlimit"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/store"
)

// Config is what a Server is built from: the engine, wired by the caller
// exactly as the command line wires it, and the limits.
type Config struct {
	// Resolver is the one DNS cache every request shares, so a popular
	// domain is resolved once per TTL however many people ask.
	Resolver resolve.Resolver
	// Planner computes delivery plans through Resolver.
	Planner *route.Planner
	// Auditor runs checks; its Probe, when set, dials through a dialer
	// whose policy refuses non-public addresses.
	Auditor *check.Auditor
	// Prober audits a domain's exchanges over SMTP (GET /api/v1/probe).
	Prober *probe.Auditor
	// SPF evaluates check_host for GET /api/v1/spf.
	SPF *spf.Checker

	// Timeout is the deadline of one request's work (504 past it);
	// zero means DefaultTimeout.
	Timeout time.Duration
	// MaxChecks bounds the checks, probes and scans running at once;
	// beyond it requests get 503 with Retry-After. Zero: no bound.
	MaxChecks int
	// Rate and Burst are each client's token bucket: requests per second
	// and the burst allowed, per IPv4 address and per IPv6 /64. Zero
	// Rate: no rate limit.
	Rate  float64
	Burst int
	// TrustProxy lists the reverse proxies whose X-Forwarded-For is
	// believed; a client elsewhere is its own address.
	TrustProxy []netip.Prefix
	// MaxScanDomains and MaxScanBytes bound a POST /api/v1/scan body.
	MaxScanDomains int
	MaxScanBytes   int64
	// HeaderTimeout bounds the reading of a request's headers, against
	// clients that send them a byte at a time (slowloris). Zero: 5 seconds.
	HeaderTimeout time.Duration

	// Store is the database of mxtrace watch; with it the server shows
	// each domain's history (GET /api/v1/history/{domain}, the timeline
	// on the report page) and the watched domains (/watches). nil: no
	// watch features, and their routes answer 404.
	Store store.Store
	// AdminToken is the bearer token that adding and removing watches
	// needs (RFC 6750 §2.1); "" turns both off (403). Reading never needs
	// it.
	AdminToken string

	// Queue is a relay's mail queue (mxtrace relay --http): with it the
	// server shows it, read-only (GET /queue, GET /api/v1/queue). nil:
	// both routes answer 404.
	Queue Queue
	// Metrics are more metrics served on /metrics beside the server's
	// own, such as the relay's (relay.NewMetrics on a registry of its
	// own). nil: none.
	Metrics prometheus.Gatherer

	Logger *slog.Logger // nil: silent
}

// DefaultTimeout is a request's deadline when Config.Timeout is zero, as
// the command line's --timeout.
const DefaultTimeout = 20 * time.Second

// Server serves the API and the page. Build it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	hub     hub                  // the checks running and recently finished
	index   apiIndex             // the API's paths, for 404 and 405
	limiter *clientlimit.Buckets // nil: no rate limit
	slots   chan struct{}        // MaxChecks; nil: no bound
	metrics *metrics
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Resolver == nil || cfg.Planner == nil || cfg.Auditor == nil {
		return nil, errors.New("serve: Resolver, Planner and Auditor are required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Resolver, cfg.Metrics)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = DefaultTimeout
	}
	s.cfg.HeaderTimeout = cmp.Or(s.cfg.HeaderTimeout, defaultHeaderTimeout)
	if cfg.Rate > 0 {
		s.limiter = clientlimit.New(cfg.Rate, cfg.Burst, clientlimit.MaxBuckets)
	}
	if cfg.MaxChecks > 0 {
		s.slots = make(chan struct{}, cfg.MaxChecks)
	}
	s.handler = s.build(s.endpoints())
	s.index = newAPIIndex(s.endpoints())
	return s, nil
}

// build makes the whole handler: the mux of endpoints, each behind its
// policy (guard), inside the middleware every response goes through.
func (s *Server) build(endpoints []endpoint) http.Handler {
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.Handle(strings.TrimSpace(e.Method+" "+e.Pattern), s.guard(e))
	}
	return s.outer(mux)
}

// Handler is the server's whole HTTP handler, for tests and for mounting.
func (s *Server) Handler() http.Handler { return s.handler }

// endpoint is one route served.
type endpoint struct {
	Method, Pattern string
	// API: the route is part of the JSON API and so of openapi.json.
	API     bool
	Handler http.Handler
}

// endpoints lists every route the server answers, in one place: the mux
// is built from it and openapi.json is tested against it.
func (s *Server) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/api/v1/route/{domain}", true, http.HandlerFunc(s.apiRoute)},
		{"GET", "/api/v1/check/{domain}", true, http.HandlerFunc(s.apiCheck)},
		{"GET", "/api/v1/check/{domain}/events", true, http.HandlerFunc(s.apiCheckEvents)},
		{"GET", "/api/v1/probe/{domain}", true, http.HandlerFunc(s.apiProbe)},
		{"GET", "/api/v1/spf/{domain}", true, http.HandlerFunc(s.apiSPF)},
		{"POST", "/api/v1/scan", true, http.HandlerFunc(s.apiScan)},
		{"GET", "/api/v1/history/{domain}", true, http.HandlerFunc(s.apiHistory)},
		{"GET", "/api/v1/watches", true, http.HandlerFunc(s.apiWatches)},
		{"POST", "/api/v1/watches", true, http.HandlerFunc(s.apiAddWatch)},
		{"DELETE", "/api/v1/watches/{domain}", true, http.HandlerFunc(s.apiRemoveWatch)},
		{"GET", "/api/v1/queue", true, http.HandlerFunc(s.apiQueue)},
		{"GET", "/api/v1/openapi.json", true, http.HandlerFunc(s.apiOpenAPI)},
		{"GET", "/{$}", false, http.HandlerFunc(s.pageHome)},
		{"GET", "/d", false, http.HandlerFunc(s.pageSearch)},
		{"GET", "/d/{domain}", false, http.HandlerFunc(s.pageDomain)},
		{"GET", "/d/{domain}/events", false, http.HandlerFunc(s.pageEvents)},
		{"GET", "/watches", false, http.HandlerFunc(s.pageWatches)},
		{"POST", "/watches", false, http.HandlerFunc(s.formAddWatch)},
		{"POST", "/watches/remove", false, http.HandlerFunc(s.formRemoveWatch)},
		{"GET", "/queue", false, http.HandlerFunc(s.pageQueue)},
		{"GET", "/static/", false, http.HandlerFunc(s.pageStatic)},
		{"GET", "/healthz", false, http.HandlerFunc(s.healthz)},
		{"GET", "/metrics", false, s.metrics.handler()},
		// Any other path under /api/: a problem, not the page's 404.
		{"", "/api/", false, http.HandlerFunc(s.apiNotFound)},
		{"", notFoundPattern, false, http.HandlerFunc(s.pageNotFound)},
	}
}

// notFoundPattern matches every path no other route serves: it answers
// the page saying so, and is counted and logged as no route.
const notFoundPattern = "/"

const (
	defaultHeaderTimeout = 5 * time.Second
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout = 60 * time.Second
	// maxHeaderBytes caps a request's headers (net/http answers 431,
	// RFC 6585 §5): a browser's are a few KB.
	maxHeaderBytes = 16 << 10
)

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish for up to grace, and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	// No ReadTimeout or WriteTimeout: they would cut event streams and
	// scans; each request's deadline bounds its connection (guard).
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Past grace: cut what is still running (its context ends).
		srv.Close()
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// healthz answers 200 "ok" while the server runs.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

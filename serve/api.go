package serve

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/scan"
	"github.com/mxtrace/mxtrace/spf"
)

// The API handlers; each body is the object the CLI prints with --json,
// written by report.WriteJSON as the CLI writes it. A lookup that failed
// temporarily is part of that object (result "error", an area with status
// "error"), answered 200 as the command prints it; only a job cut short
// by the request deadline is a 504.

// Defaults for the limits a Config leaves at zero.
const (
	DefaultMaxScanDomains = 1000
	DefaultMaxScanBytes   = 256 << 10
	// maxSelectors bounds the dkim_selector parameters of one request:
	// each is one more TXT lookup.
	maxSelectors = 16
	// scanConcurrency is the domains of one scan request worked on at
	// once.
	scanConcurrency = 32
	// heartbeat is how often an idle events stream sends a comment, so
	// proxies and browsers keep the connection (HTML Living Standard
	// §9.2.7 suggests one every 15 seconds or so).
	heartbeat = 15 * time.Second
)

func (s *Server) apiRoute(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r, "give a mail domain instead")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	plan, err := s.cfg.Planner.Plan(ctx, name)
	if err != nil && expired(ctx) {
		s.cutShort(w, r, ErrDeadline)
		return
	}
	s.metrics.observePlan(plan)
	writeJSON(w, r, plan)
}

func (s *Server) apiCheck(w http.ResponseWriter, r *http.Request) {
	name, opts, ok := checkRequest(w, r)
	if !ok {
		return
	}
	rep, err := s.checkRun(r.Context(), name, opts).Wait(r.Context())
	if err != nil {
		s.cutShort(w, r, err)
		return
	}
	writeJSON(w, r, rep)
}

// apiCheckEvents streams a check as server-sent events (HTML Living
// Standard §9.2): each step as an event whose data is one line of JSON
// (Event), comments as heartbeats, and the stream ends after the
// "result" (or "error") event. A late joiner of a running or recent
// check gets every event from the first.
func (s *Server) apiCheckEvents(w http.ResponseWriter, r *http.Request) {
	name, opts, ok := checkRequest(w, r)
	if !ok {
		return
	}
	run := s.checkRun(r.Context(), name, opts)
	rc := startStream(w)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var buf []byte
	for i := 0; ; {
		evs, changed, ended := run.next(i)
		i += len(evs)
		buf = buf[:0]
		for _, e := range evs {
			b, err := sseEvent(buf, e)
			if err != nil {
				s.log.Error("serve: encoding an event", "event", e.Name, "error", err)
				return
			}
			buf = b
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil || ended {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// sseEvent appends e as a server-sent event whose data is e's JSON.
func sseEvent(b []byte, e Event) ([]byte, error) {
	data, err := report.AppendJSON(nil, e.Data)
	return appendEvent(b, e.Name, data), err
}

func (s *Server) apiProbe(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r, "the API probes a mail domain's exchanges: give a mail domain instead")
	if !ok {
		return
	}
	if s.cfg.Prober == nil {
		writeProblem(w, r, http.StatusNotImplemented, "this server does not probe exchanges", 0)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	rep, err := s.cfg.Prober.Audit(ctx, probe.Target{Domain: name})
	if err != nil && expired(ctx) {
		s.cutShort(w, r, ErrDeadline)
		return
	}
	s.metrics.observeProbe(rep)
	writeJSON(w, r, rep)
}

// apiSPF evaluates the domain's SPF policy for the client address ip
// (required), the sender (empty: the null sender; absent:
// postmaster@domain) and the HELO name, as mxtrace spf does.
func (s *Server) apiSPF(w http.ResponseWriter, r *http.Request) {
	if _, ok := pathDomain(w, r, "the client address goes in ip"); !ok {
		return
	}
	q := r.URL.Query()
	req := spf.Request{Domain: r.PathValue("domain"), IP: q.Get("ip"), Sender: q.Get("sender"), HELO: q.Get("helo")}
	if q.Has("sender") && req.Sender == "" {
		req.Sender = "<>" // sender= given empty: the null sender
	}
	query, tree, err := req.Query()
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, report.Plain(err.Error()), 0)
		return
	}
	c := s.cfg.SPF
	if c == nil {
		c = &spf.Checker{Resolver: s.cfg.Resolver, Logger: s.cfg.Logger, Timeout: s.cfg.Timeout}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	out := spf.Evaluate(ctx, c, query, tree, spf.Options{Logger: s.cfg.Logger})
	if expired(ctx) && (out.AnalysisErr != nil || out.Status == spf.TempError) {
		s.cutShort(w, r, ErrDeadline)
		return
	}
	writeJSON(w, r, out)
}

// apiScan answers a list of domains, one a line as scan reads a file, with
// the JSON Lines scan writes: one line per entry in input order, each the
// object route --json (mode=route, the default) or check --json --no-smtp
// (mode=check) prints, or scan's error object. The body is read whole
// first, so that one too large is a 413 before any line is written.
func (s *Server) apiScan(w http.ResponseWriter, r *http.Request) {
	mode := cmp.Or(r.URL.Query().Get("mode"), "route")
	if mode != "route" && mode != "check" {
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("mode %q: want route or check", mode), 0)
		return
	}
	maxBytes := cmp.Or(s.cfg.MaxScanBytes, DefaultMaxScanBytes)
	maxDomains := cmp.Or(s.cfg.MaxScanDomains, DefaultMaxScanDomains)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over its limit of %d bytes", maxBytes), 0)
		return
	}
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "reading the body: "+err.Error(), 0)
		return
	}
	n, err := scan.Count(r.Context(), scan.Lines(bytes.NewReader(body)), scan.Shard{})
	switch {
	case err != nil:
		writeProblem(w, r, http.StatusBadRequest, report.Plain(err.Error()), 0)
		return
	case n == 0:
		writeProblem(w, r, http.StatusBadRequest, "no domain in the body: give one domain or e-mail address a line", 0)
		return
	case n > int64(maxDomains):
		writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d domains in the body: at most %d a request", n, maxDomains), 0)
		return
	}
	cfg := scan.Config{Mode: mode, Timeout: s.cfg.Timeout, Retries: 2, Concurrency: scanConcurrency, Logger: s.log}
	if mode == "route" {
		cfg.Job, cfg.Prefetch = s.metrics.observeJob(scan.Route(s.cfg.Planner)), s.cfg.Planner.Prefetch
	} else {
		cfg.Job = s.metrics.observeJob(scan.Check(s.auditor(checkOptions{NoSMTP: true})))
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	// The lines are a valid prefix of the answer whenever the stream
	// ends; the trailer says whether it is all of it (RFC 9110 §6.5).
	h.Set("Trailer", scanEndTrailer)
	w.WriteHeader(http.StatusOK)
	_, err = scan.Run(r.Context(), scan.Lines(bytes.NewReader(body)), flusher{w, rc}, cfg)
	if err != nil {
		h.Set(scanEndTrailer, "interrupted")
		if r.Context().Err() == nil {
			s.log.Warn("serve: scan ended early", "error", err)
		}
		return
	}
	h.Set(scanEndTrailer, "complete")
}

// scanEndTrailer ends a scan stream: "complete" when every entry has its
// line, "interrupted" when the request's deadline (or the server's stop)
// cut it after the lines sent, which a client resumes from.
const scanEndTrailer = "Mxtrace-Scan-End"

// flusher sends each write on at once: scan writes whole lines, in
// batches at most a second old.
type flusher struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flusher) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

//go:embed openapi.json
var openAPI []byte

func (s *Server) apiOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.Write(openAPI)
}

// apiNotFound answers a path under /api/ that no route serves: 405 with
// Allow when the path is served for other methods (RFC 9110 §15.5.6),
// else 404.
func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowed(r); allow != "" {
		w.Header().Set("Allow", allow)
		writeProblem(w, r, http.StatusMethodNotAllowed, r.Method+" is not served here; "+allow+" is", 0)
		return
	}
	writeProblem(w, r, http.StatusNotFound, "no such API route (GET /api/v1/openapi.json lists them)", 0)
}

// apiIndex finds the API routes served at a path, whatever the method.
type apiIndex struct {
	paths *http.ServeMux
	allow map[string]string // pattern → its methods, for Allow
}

func newAPIIndex(es []endpoint) apiIndex {
	x := apiIndex{paths: http.NewServeMux(), allow: map[string]string{}}
	for _, e := range es {
		if !e.API {
			continue
		}
		if x.allow[e.Pattern] == "" {
			x.paths.Handle(e.Pattern, http.NotFoundHandler())
			x.allow[e.Pattern] = e.Method
		} else {
			x.allow[e.Pattern] += ", " + e.Method
		}
	}
	return x
}

// allowed is the methods the API serves at r's path, or "".
func (s *Server) allowed(r *http.Request) string {
	_, pattern := s.index.paths.Handler(&http.Request{Method: http.MethodGet, Host: r.Host, URL: r.URL})
	return s.index.allow[pattern]
}

// checkRequest reads a check's domain and options: smtp=0 skips the SMTP
// areas, dkim_selector (repeatable) adds selectors, checked as the
// command line checks --dkim-selector.
func checkRequest(w http.ResponseWriter, r *http.Request) (dnsname.Name, checkOptions, bool) {
	name, ok := pathDomain(w, r, "give a mail domain instead")
	if !ok {
		return "", checkOptions{}, false
	}
	q := r.URL.Query()
	var opts checkOptions
	if v := q.Get("smtp"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("smtp %q: want 0 or 1", v), 0)
			return "", checkOptions{}, false
		}
		opts.NoSMTP = !on
	}
	opts.Selectors = q["dkim_selector"]
	if len(opts.Selectors) > maxSelectors {
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("%d dkim_selector parameters: at most %d", len(opts.Selectors), maxSelectors), 0)
		return "", checkOptions{}, false
	}
	for _, sel := range opts.Selectors {
		// RFC 6376 §3.1: a selector is a sequence of labels.
		if !dkim.ValidSelector(strings.Trim(sel, ".")) {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("dkim_selector %q: not a selector (labels of letters, digits, hyphens and underscores, RFC 6376 §3.1)", sel), 0)
			return "", checkOptions{}, false
		}
	}
	return name, opts, true
}

// pathDomain reads {domain} as the command line reads a domain argument
// (a domain or an e-mail address; IDN to A-labels): an invalid one
// answers 400 with the command line's message, and an IP address the
// hint of what to give instead.
func pathDomain(w http.ResponseWriter, r *http.Request, ipHint string) (dnsname.Name, bool) {
	name, err := dnsname.Parse(r.PathValue("domain"))
	if err == nil {
		return name, true
	}
	detail := report.Plain(err.Error())
	if e, ok := errors.AsType[*dnsname.Error](err); ok && e.Address {
		detail += "; " + ipHint
	}
	writeProblem(w, r, http.StatusBadRequest, detail, 0)
	return "", false
}

// cutShort answers a job that ended without its answer: nothing when the
// client went away (no one reads it), else 504.
func (s *Server) cutShort(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	p := deadlineProblem(err)
	writeProblem(w, r, p.Status, p.Detail, 0)
}

// expired reports whether ctx has ended or its deadline has passed. A
// lookup cut at the deadline (a socket deadline set to the context's) can
// return a moment before the context's own timer ends it, and a job it
// failed was cut short all the same: a 504, not a DNS failure of the
// domain answered 200.
func expired(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// deadlineProblem is the problem of a job cut short by err.
func deadlineProblem(err error) *Problem {
	detail := "the work did not finish within the server's deadline; try again later"
	if !errors.Is(err, ErrDeadline) {
		detail = "the work was stopped: " + err.Error()
	}
	return &Problem{Title: http.StatusText(http.StatusGatewayTimeout), Status: http.StatusGatewayTimeout, Detail: detail}
}

// writeJSON answers v as the command line prints it with --json.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := report.AppendJSON(nil, v)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "encoding the answer failed", 0)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

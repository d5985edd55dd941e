package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/scan"
	"github.com/mxtrace/mxtrace/spf"
)

const testZone = "testdata/serve.zone"

// env is a server on loopback answering from a zone file, with the
// planner and auditor it was built from, to compute what the command
// line prints for the same zone.
type env struct {
	srv     *Server
	url     string
	planner *route.Planner
	auditor *check.Auditor
}

// newEnv starts a server over r (nil: the test zone), as the command
// line wires it offline (--zone without --resolver), with a fixed seed so
// that the plans' attempt orders can be compared.
func newEnv(t *testing.T, r resolve.Resolver, edit ...func(*Config)) *env {
	return newEnvIn(t, false, r, edit...)
}

// newEnvIn is newEnv, without the HTTP server in a synctest bubble.
func newEnvIn(t *testing.T, inBubble bool, r resolve.Resolver, edit ...func(*Config)) *env {
	t.Helper()
	if r == nil {
		zones, err := resolve.LoadZones(testZone)
		if err != nil {
			t.Fatal(err)
		}
		r = resolve.NewCache(zones, 0)
	}
	p := &route.Planner{Resolver: r, Seed: 1, HasSeed: true}
	a := &check.Auditor{Resolver: r, Planner: p, SkipReason: "they need the network: --zone without --resolver"}
	cfg := Config{Resolver: r, Planner: p, Auditor: a, Timeout: 10 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: s, planner: cfg.Planner, auditor: cfg.Auditor}
	// A listener is never durably blocked: no server in a synctest
	// bubble, whose clock would then stand still.
	if !inBubble {
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		e.url = ts.URL
	}
	return e
}

// get asks path and returns the status, the content type and the body.
func (e *env) get(t *testing.T, path string) (int, string, []byte) {
	t.Helper()
	return e.do(t, http.MethodGet, path, nil)
}

func (e *env) do(t *testing.T, method, path string, body io.Reader) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// normalized decodes one JSON object with every elapsed_ms member
// removed (the one thing two runs of the same job differ in).
func normalized(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	var strip func(any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "elapsed_ms")
			for _, x := range v {
				strip(x)
			}
		case []any:
			for _, x := range v {
				strip(x)
			}
		}
	}
	strip(v)
	return v
}

// jsonOf is v as the command line prints it with --json.
func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := report.AppendJSON(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRouteJSON: the body of GET /api/v1/route is the object route
// --json prints, for every kind of result and for an address.
func TestRouteJSON(t *testing.T) {
	e := newEnv(t, nil)
	for _, in := range []string{"tiers.example", "nullmx.example", "implicit.example", "nomail.example", "nosuch.example", "postmaster@Tiers.Example."} {
		status, ctype, body := e.get(t, "/api/v1/route/"+url.PathEscape(in))
		if status != http.StatusOK || ctype != "application/json" {
			t.Errorf("%s: %d %s, want 200 application/json\n%s", in, status, ctype, body)
			continue
		}
		plan, _ := e.planner.Plan(t.Context(), dnsname.MustParse(in))
		if diff := cmp.Diff(normalized(t, jsonOf(t, plan)), normalized(t, body)); diff != "" {
			t.Errorf("%s: body differs from route --json (-cli +api):\n%s", in, diff)
		}
	}
}

// TestCheckJSON: the body of GET /api/v1/check is the object check
// --json prints, with the DKIM selectors asked for.
func TestCheckJSON(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		query     string
		selectors []string
	}{
		{"", nil},
		{"?dkim_selector=sel", []string{"sel"}},
		{"?dkim_selector=sel&dkim_selector=other&smtp=0", []string{"sel", "other"}},
	} {
		status, ctype, body := e.get(t, "/api/v1/check/tiers.example"+tt.query)
		if status != http.StatusOK || ctype != "application/json" {
			t.Fatalf("%q: %d %s\n%s", tt.query, status, ctype, body)
		}
		a := *e.auditor
		a.DKIMSelectors = tt.selectors
		rep := a.Audit(t.Context(), dnsname.MustParse("tiers.example"))
		if diff := cmp.Diff(normalized(t, jsonOf(t, rep)), normalized(t, body)); diff != "" {
			t.Errorf("%q: body differs from check --json (-cli +api):\n%s", tt.query, diff)
		}
	}
}

// TestInvalidDomain: a name the command line refuses is a 400 problem
// with the command line's message, before anything is asked.
func TestInvalidDomain(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ path, want string }{
		{"/api/v1/route/a..example", `invalid domain name "a..example": has an empty label`},
		{"/api/v1/check/-lead.example", "starts with a hyphen"},
		{"/api/v1/check/" + strings.Repeat("a", 64) + ".example/events", "64 octets"},
		{"/api/v1/probe/bad%20name.example", "white space"},
		{"/api/v1/route/192.0.2.1", "192.0.2.1 is an IP address, not a domain name; give a mail domain instead"},
		{"/api/v1/probe/2001:db8::25", "2001:db8::25 is an IP address, not a domain name; the API probes a mail domain's exchanges"},
		{"/api/v1/check/tiers.example?dkim_selector=a..b", `dkim_selector "a..b": not a selector`},
		{"/api/v1/check/tiers.example?smtp=maybe", `smtp "maybe": want 0 or 1`},
	} {
		status, ctype, body := e.get(t, tt.path)
		if status != http.StatusBadRequest || ctype != "application/problem+json" {
			t.Errorf("%s: %d %s, want 400 application/problem+json", tt.path, status, ctype)
		}
		var p Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Status != 400 || !strings.Contains(p.Detail, tt.want) {
			t.Errorf("%s: %s, want a 400 problem saying %q", tt.path, body, tt.want)
		}
	}
}

// TestUnknownAPIRoute: a path under /api/ that is not served is a 404
// problem; a served path asked with another method, a 405 with Allow.
func TestUnknownAPIRoute(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nothing", 404, ""},
		{"GET", "/api/v2/route/tiers.example", 404, ""},
		{"GET", "/api/", 404, ""},
		{"POST", "/api/v1/route/tiers.example", 405, "GET"},
		{"GET", "/api/v1/scan", 405, "POST"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, e.url+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p Problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tt.status || p.Status != tt.status || err != nil ||
			resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %q Allow %q (%v), want %d problem+json Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), err, tt.status, tt.allow)
		}
	}
}

// TestOpenAPI: openapi.json is an OpenAPI 3.1 document listing exactly
// the API routes served, method and path, both ways.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, nil)
	status, ctype, body := e.get(t, "/api/v1/openapi.json")
	if status != 200 || ctype != "application/json" {
		t.Fatalf("%d %s", status, ctype)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, ep := range e.srv.endpoints() {
		if ep.API {
			served = append(served, ep.Method+" "+ep.Pattern)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("openapi.json's routes differ from the served ones (-served +documented):\n%s", diff)
	}
}

// sse is one server-sent event.
type sse struct{ name, data string }

// readEvents reads an event stream to its end.
func readEvents(t *testing.T, r io.Reader) []sse {
	t.Helper()
	var evs []sse
	var cur sse
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur != (sse{}) {
				evs = append(evs, cur)
			}
			cur = sse{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if cur.data != "" {
				t.Errorf("event %q has two data lines", cur.name)
			}
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestCheckEvents: the events stream sends the plan, each area once
// (judged or skipped), then the result, which is the check object.
func TestCheckEvents(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/api/v1/check/tiers.example/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, ct)
	}
	evs := readEvents(t, resp.Body)
	if len(evs) == 0 || evs[len(evs)-1].name != "result" {
		t.Fatalf("the stream does not end with a result event: %v", evs)
	}
	rep := e.auditor.Audit(t.Context(), dnsname.MustParse("tiers.example"))
	if diff := cmp.Diff(normalized(t, jsonOf(t, rep)), normalized(t, []byte(evs[len(evs)-1].data))); diff != "" {
		t.Errorf("the result event differs from check --json (-cli +events):\n%s", diff)
	}
	seen := map[string]int{}
	for _, ev := range evs[:len(evs)-1] {
		switch ev.name {
		case "area":
			var ar check.AreaResult
			if err := json.Unmarshal([]byte(ev.data), &ar); err != nil {
				t.Fatal(err)
			}
			seen[string(ar.Area)]++
		case "skip":
			var sk check.Skip
			if err := json.Unmarshal([]byte(ev.data), &sk); err != nil || sk.Reason == "" {
				t.Fatalf("skip %s: %v", ev.data, err)
			}
			seen[string(sk.Area)]++
		case "route":
			if !json.Valid([]byte(ev.data)) {
				t.Errorf("route event: %s", ev.data)
			}
		default:
			t.Errorf("unexpected event %q", ev.name)
		}
	}
	var want = map[string]int{}
	for _, ar := range rep.Areas {
		want[string(ar.Area)]++
	}
	for _, sk := range rep.Skipped {
		want[string(sk.Area)]++
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("areas seen in the stream differ from the report's, each once (-want +got):\n%s", diff)
	}
}

// blocking is a resolver that answers nothing until the lookup's context
// ends: every job runs into the request deadline.
type blocking struct{}

func (blocking) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	<-ctx.Done()
	return nil, &resolve.Error{Question: q, Rcode: -1, Err: ctx.Err()}
}

// TestDeadline: a job that does not finish within Config.Timeout is a
// 504 problem, and its events stream ends with an error event.
func TestDeadline(t *testing.T) {
	e := newEnv(t, blocking{}, func(c *Config) {
		c.Timeout = 50 * time.Millisecond
		c.Prober = &probe.Auditor{Prober: &probe.Prober{}, Resolver: blocking{}, Planner: c.Planner}
	})
	for _, path := range []string{"/api/v1/route/tiers.example", "/api/v1/check/tiers.example", "/api/v1/probe/tiers.example", "/api/v1/spf/tiers.example?ip=192.0.2.1"} {
		status, ctype, body := e.get(t, path)
		if status != http.StatusGatewayTimeout || ctype != "application/problem+json" {
			t.Errorf("%s: %d %s, want 504 problem+json\n%s", path, status, ctype, body)
		}
	}
	_, _, body := e.get(t, "/api/v1/check/tiers.example/events")
	evs := readEvents(t, strings.NewReader(string(body)))
	if len(evs) == 0 || evs[len(evs)-1].name != "error" || !strings.Contains(evs[len(evs)-1].data, `"status":504`) {
		t.Errorf("events: %v, want the last an error event with status 504", evs)
	}
}

// failing answers every question with SERVFAIL.
type failing struct{}

func (failing) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	return nil, &resolve.Error{Question: q, Rcode: 2, Err: resolve.ErrServerFailure}
}

// TestTemporaryFailure: a DNS failure is not "no MX": the plan's result
// is "error", answered as route --json prints it.
func TestTemporaryFailure(t *testing.T) {
	e := newEnv(t, failing{})
	status, _, body := e.get(t, "/api/v1/route/tiers.example")
	var plan struct {
		Result route.Result `json:"result"`
		Error  string       `json:"error"`
	}
	if err := json.Unmarshal(body, &plan); status != 200 || err != nil || plan.Result != route.ResultError || plan.Error == "" {
		t.Errorf("%d %s, want 200 with result error", status, body)
	}
}

// scanLines runs scan as mxtrace scan --json does, over input.
func scanLines(t *testing.T, job scan.Job, input string) []string {
	t.Helper()
	var out strings.Builder
	if _, err := scan.Run(t.Context(), scan.Lines(strings.NewReader(input)), &out, scan.Config{Job: job}); err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(out.String(), "\n")
}

// TestScan: POST /api/v1/scan answers the JSON Lines scan writes for the
// same list, in input order, invalid entries included.
func TestScan(t *testing.T) {
	e := newEnv(t, nil)
	input := "# customers\ntiers.example\n\nnullmx.example\nbad..name\npostmaster@implicit.example\nnosuch.example\n"
	for _, tt := range []struct {
		mode string
		job  scan.Job
	}{
		{"", scan.Route(e.planner)},
		{"?mode=check", scan.Check(e.auditor)},
	} {
		resp, err := http.Post(e.url+"/api/v1/scan"+tt.mode, "text/plain", strings.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ctype := resp.Header.Get("Content-Type"); err != nil || resp.StatusCode != 200 || ctype != "application/x-ndjson" {
			t.Fatalf("%q: %d %s %v\n%s", tt.mode, resp.StatusCode, ctype, err, body)
		}
		if end := resp.Trailer.Get("Mxtrace-Scan-End"); end != "complete" {
			t.Errorf("%q: trailer Mxtrace-Scan-End %q, want complete", tt.mode, end)
		}
		got := strings.SplitAfter(string(body), "\n")
		want := scanLines(t, tt.job, input)
		if len(got) != len(want) {
			t.Fatalf("%q: %d lines, want %d:\n%s", tt.mode, len(got), len(want), body)
		}
		for i := range want {
			if want[i] == "" && got[i] == "" {
				continue
			}
			if diff := cmp.Diff(normalized(t, []byte(want[i])), normalized(t, []byte(got[i]))); diff != "" {
				t.Errorf("%q line %d differs from scan's (-scan +api):\n%s", tt.mode, i+1, diff)
			}
		}
	}
}

// TestScanLimits: a body over the size or the domain count is a 413
// before any line is written; no domain, or an unknown mode, a 400.
func TestScanLimits(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MaxScanDomains, c.MaxScanBytes = 3, 100 })
	for _, tt := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/api/v1/scan", "tiers.example\nnullmx.example\nimplicit.example\n# not counted\n\n", 200, ""},
		{"/api/v1/scan", "a.example\nb.example\nc.example\nd.example\n", 413, "4 domains in the body: at most 3"},
		{"/api/v1/scan", strings.Repeat("x", 101), 413, "over its limit of 100 bytes"},
		{"/api/v1/scan", "chunked:" + strings.Repeat("x", 101), 413, "over its limit of 100 bytes"},
		{"/api/v1/scan", "\n# only a comment\n", 400, "no domain in the body"},
		{"/api/v1/scan?mode=probe", "a.example\n", 400, `mode "probe": want route or check`},
	} {
		var in io.Reader = strings.NewReader(tt.body)
		if rest, ok := strings.CutPrefix(tt.body, "chunked:"); ok {
			// No length known in advance: sent chunked, cut while read.
			in = io.MultiReader(strings.NewReader(rest))
		}
		status, ctype, body := e.do(t, http.MethodPost, tt.path, in)
		if status != tt.status {
			t.Errorf("%q: %d, want %d\n%s", tt.body, status, tt.status, body)
			continue
		}
		if tt.status == 200 {
			if n := strings.Count(string(body), "\n"); n != 3 {
				t.Errorf("%q: %d lines, want 3", tt.body, n)
			}
			continue
		}
		var p Problem
		if err := json.Unmarshal(body, &p); err != nil || ctype != "application/problem+json" || !strings.Contains(p.Detail, tt.want) {
			t.Errorf("%q: %s %s, want a problem saying %q", tt.body, ctype, body, tt.want)
		}
	}
}

// TestSPF: GET /api/v1/spf answers what spf --json prints for the same
// request; the parameters are checked as the command line checks them.
func TestSPF(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		path string
		req  spf.Request
	}{
		{"tiers.example?ip=192.0.2.20", spf.Request{Domain: "tiers.example", IP: "192.0.2.20"}},
		{"tiers.example?ip=198.51.100.1&helo=mail.example", spf.Request{Domain: "tiers.example", IP: "198.51.100.1", HELO: "mail.example"}},
		{"joe@tiers.example?ip=2001:db8::10", spf.Request{Domain: "joe@tiers.example", IP: "2001:db8::10"}},
		{"tiers.example?ip=192.0.2.10&sender=", spf.Request{Domain: "tiers.example", IP: "192.0.2.10", Sender: "<>"}},
		{"nomail.example?ip=192.0.2.10&sender=bounce@nomail.example", spf.Request{Domain: "nomail.example", IP: "192.0.2.10", Sender: "bounce@nomail.example"}},
		{"nosuch.example?ip=192.0.2.10", spf.Request{Domain: "nosuch.example", IP: "192.0.2.10"}},
	} {
		status, ctype, body := e.get(t, "/api/v1/spf/"+tt.path)
		if status != 200 || ctype != "application/json" {
			t.Errorf("%s: %d %s\n%s", tt.path, status, ctype, body)
			continue
		}
		q, tree, err := tt.req.Query()
		if err != nil {
			t.Fatal(err)
		}
		c := &spf.Checker{Resolver: e.planner.Resolver}
		want := spf.Evaluate(t.Context(), c, q, tree, spf.Options{})
		if diff := cmp.Diff(normalized(t, jsonOf(t, want)), normalized(t, body)); diff != "" {
			t.Errorf("%s: differs from spf --json (-cli +api):\n%s", tt.path, diff)
		}
	}
	for _, tt := range []struct{ path, want string }{
		{"tiers.example", "ip is required"},
		{"tiers.example?ip=nope", `ip: "nope" is not an IP address`},
		{"tiers.example?ip=192.0.2.1&sender=joe", `sender: "joe" is not an e-mail address`},
		{"192.0.2.1?ip=192.0.2.1", "192.0.2.1 is an IP address, not a domain name; the client address goes in ip"},
		{"a..b?ip=192.0.2.1", "empty label"},
	} {
		status, _, body := e.get(t, "/api/v1/spf/"+tt.path)
		var p Problem
		if err := json.Unmarshal(body, &p); status != 400 || err != nil || !strings.Contains(p.Detail, tt.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", tt.path, status, body, tt.want)
		}
	}
}

// probeZone sends tiers.example's mail to a loopback address, where a
// test SMTP server listens.
const probeZone = `$ORIGIN example.
@        3600 SOA ns hostmaster 1 3600 600 86400 300
tiers    3600 MX 10 mx.tiers
mx.tiers 3600 A  127.0.0.2
`

// probeEnv is a server whose prober dials through policy, and the SMTP
// server its test domain's exchange points to.
func probeEnv(t *testing.T, allowPrivate bool) (*env, *probe.Auditor, *smtptest.Raw) {
	t.Helper()
	zones, err := resolve.ParseZones(strings.NewReader(probeZone), "probe.zone")
	if err != nil {
		t.Fatal(err)
	}
	port := smtptest.Port(t)
	mx := smtptest.StartRaw(t, smtptest.RawOptions{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)).String(), Behaviour: smtptest.NoSTARTTLS, Hostname: "mx.tiers.example"})
	r := resolve.NewCache(zones, 0)
	pa := &probe.Auditor{
		Prober:   &probe.Prober{Port: port, HelloName: "serve.example", Dialer: &dial.Net{Policy: &dial.Policy{AllowPrivate: allowPrivate}}},
		Resolver: r,
		Planner:  &route.Planner{Resolver: r},
	}
	e := newEnv(t, r, func(c *Config) { c.Prober = pa })
	return e, pa, mx
}

// probeSummary is what two probes of the same server agree on: the
// target and, per result, the address, whether it connected, the kind
// of failure and the findings.
func probeSummary(t *testing.T, b []byte) string {
	t.Helper()
	var rep struct {
		Schema  int    `json:"schema"`
		Target  string `json:"target"`
		Kind    string `json:"kind"`
		Results []struct {
			Host      string `json:"host"`
			Addr      string `json:"address"`
			Connected bool   `json:"connected"`
			Kind      string `json:"kind"`
		} `json:"results"`
		Findings []struct {
			ID string `json:"id"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return fmt.Sprintf("%+v", rep)
}

// TestProbe: GET /api/v1/probe answers what probe --json prints for the
// domain, through the server's dialer: with private addresses allowed the
// exchange is probed; without, it is refused (a finding) and never
// connected to.
func TestProbe(t *testing.T) {
	e, pa, mx := probeEnv(t, true)
	status, ctype, body := e.get(t, "/api/v1/probe/tiers.example")
	if status != 200 || ctype != "application/json" {
		t.Fatalf("%d %s\n%s", status, ctype, body)
	}
	want, _ := pa.Audit(t.Context(), probe.Target{Domain: tiers})
	if got, want := probeSummary(t, body), probeSummary(t, jsonOf(t, want)); got != want {
		t.Errorf("the API's probe differs from probe --json's:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(body), "smtp-starttls-missing") || mx.Connections() != 2 {
		t.Errorf("%d connections, body %s: want the server probed twice (API, CLI), no STARTTLS found", mx.Connections(), body)
	}

	e, _, mx = probeEnv(t, false)
	status, _, body = e.get(t, "/api/v1/probe/tiers.example")
	if status != 200 || !strings.Contains(string(body), `"smtp-target-refused"`) || mx.Connections() != 0 {
		t.Errorf("refused: %d, %d connections, body %s: want 200, smtp-target-refused and no connection", status, mx.Connections(), body)
	}
}

// holdDMARC answers from next, holding the DMARC question until open is
// closed.
type holdDMARC struct {
	next resolve.Resolver
	open chan struct{}
}

func (h holdDMARC) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if strings.HasPrefix(q.Name, "_dmarc.") {
		select {
		case <-h.open:
		case <-ctx.Done():
			return nil, &resolve.Error{Question: q, Rcode: -1, Err: ctx.Err()}
		}
	}
	return h.next.Lookup(ctx, q)
}

// TestCheckEventsLive: the stream sends each area as it is decided, not
// when the whole check is done: the routing area arrives while the DMARC
// answer is held back, and the DMARC area and the result after it.
func TestCheckEventsLive(t *testing.T) {
	zones, err := resolve.LoadZones(testZone)
	if err != nil {
		t.Fatal(err)
	}
	hold := holdDMARC{next: zones, open: make(chan struct{})}
	e := newEnv(t, hold)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/api/v1/check/tiers.example/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan sse)
	go func() {
		defer close(events)
		var cur sse
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				events <- cur
				cur = sse{}
			case strings.HasPrefix(line, "event: "):
				cur.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[len("data: "):]
			}
		}
	}()
	area := func(ev sse) string {
		var ar check.AreaResult
		json.Unmarshal([]byte(ev.data), &ar)
		return string(ar.Area)
	}
	for ev := range events {
		if ev.name == "result" || ev.name == "area" && area(ev) == "DMARC" {
			t.Fatalf("%s event before the DMARC answer came", ev.name)
		}
		if ev.name == "area" && area(ev) == "routing" {
			break
		}
	}
	close(hold.open)
	var dmarc, result bool
	for ev := range events {
		dmarc = dmarc || ev.name == "area" && area(ev) == "DMARC"
		result = result || ev.name == "result"
	}
	if !dmarc || !result {
		t.Errorf("after the DMARC answer: DMARC area %v, result %v; want both", dmarc, result)
	}
}

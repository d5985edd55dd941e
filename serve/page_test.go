package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// exampleZones are the repository's example zones, the offline site of
// "mxtrace serve --zone examples/example.zone --zone examples/reverse.zone".
var exampleZones = []string{"../examples/example.zone", "../examples/reverse.zone"}

// exampleDomains are the example zone's domains, one for each case the
// README walks through.
var exampleDomains = []string{
	"tiers.example", "multihomed.example", "bigtiers.example", "nullmx.example", "implicit.example",
	"nomail.example", "alias.example", "cname-mx.example", "ip-mx.example", "dangling.example",
	"private.example", "mixed-null.example", "good.example", "nosuch.example",
}

// newPageServer is a Server over r (the example zones when nil), wired as
// "mxtrace serve --zone" wires it: offline, the network areas skipped.
func newPageServer(t testing.TB, r resolve.Resolver, timeout time.Duration) *Server {
	t.Helper()
	if r == nil {
		z, err := resolve.LoadZones(exampleZones...)
		if err != nil {
			t.Fatal(err)
		}
		r = resolve.NewCache(z, 0)
	}
	p := &route.Planner{Resolver: r, Seed: 1, HasSeed: true}
	a := &check.Auditor{Resolver: r, Planner: p, SkipReason: "they need the network: --zone without --resolver"}
	s, err := New(Config{Resolver: r, Planner: p, Auditor: a, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get answers one request to s.
func get(t testing.TB, s *Server, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", target, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// cspSafe fails t for anything the page's Content-Security-Policy
// (script-src 'self'; style-src 'self') would block: inline scripts,
// event handler attributes, style attributes and style elements.
func cspSafe(t *testing.T, page, body string) {
	t.Helper()
	for _, m := range scriptTag.FindAllStringIndex(body, -1) {
		tag := body[m[0]:m[1]]
		if !strings.Contains(tag, ` src="/static/`) || !strings.HasPrefix(body[m[1]:], "</script>") {
			t.Errorf("%s: %q is an inline script or loads one from elsewhere", page, tag)
		}
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\sstyle\s*=`),                     // a style attribute
		regexp.MustCompile(`(?i)<style[\s>]`),                     // a style element
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),                  // an event handler attribute
		regexp.MustCompile(`(?i)(?:href|src)\s*=\s*"javascript:`), // a javascript: URL
	} {
		if m := re.FindString(body); m != "" {
			t.Errorf("%s: %q would be blocked by the CSP", page, m)
		}
	}
}

var scriptTag = regexp.MustCompile(`(?i)<script\b[^>]*>`)

func TestHome(t *testing.T) {
	s := newPageServer(t, nil, 0)
	res, body := get(t, s, "/")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<html lang="en">`,
		`<form class="search" action="/d" method="get" role="search">`,
		`<label for="q">Domain or e-mail address</label>`,
		`<input id="q" name="domain"`,
		`<a class="skip" href="#main">`,
		`<main id="main"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	cspSafe(t, "/", body)
}

func TestSearchRedirects(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for _, c := range []struct{ target, location string }{
		{"/d?domain=good.example", "/d/good.example"},
		{"/d?domain=Postmaster%40Good.Example.", "/d/good.example"},
		{"/d?domain=b%C3%BCcher.example", "/d/xn--bcher-kva.example"},
	} {
		res, _ := get(t, s, c.target)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != c.location {
			t.Errorf("%s: %d to %q, want 303 to %q", c.target, res.StatusCode, res.Header.Get("Location"), c.location)
		}
	}
	// A report's address is canonical: anything else is moved there.
	res, _ := get(t, s, "/d/Good.Example")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/d/good.example" {
		t.Errorf("/d/Good.Example: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestInvalidName(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for _, c := range []struct{ target, message string }{
		{"/d?domain=", "is empty"},
		{"/d?domain=192.0.2.1", "give a mail domain instead"},
		{"/d?domain=a..b", "has an empty label"},
		{"/d/exa%20mple.com", "contains white space"},
		{"/d/" + strings.Repeat("a", 64) + ".example", "label"},
	} {
		res, body := get(t, s, c.target)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", c.target, res.StatusCode)
		}
		if !strings.Contains(body, c.message) || !strings.Contains(body, `aria-invalid="true"`) {
			t.Errorf("%s: the page does not say %q at the input", c.target, c.message)
		}
		cspSafe(t, c.target, body)
	}
}

func TestReportPages(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for _, d := range exampleDomains {
		res, body := get(t, s, "/d/"+d)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", d, res.StatusCode)
			continue
		}
		for _, want := range []string{
			`<html lang="en">`,
			`<h1>` + d + `</h1>`,
			`class="verdict `,
			`<svg class="route route-wide" xmlns="http://www.w3.org/2000/svg"`,
			`<svg class="route route-narrow" xmlns="http://www.w3.org/2000/svg"`,
			`role="img" aria-label="`,
			`href="/api/v1/check/` + d + `"`,
			`id="report"`,
			`</html>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the report lacks %q", d, want)
			}
		}
		// A quick check comes whole: no "checking" block, no script.
		if strings.Contains(body, `id="progress"`) {
			t.Errorf("%s: a check done at once still shows the progress block", d)
		}
		cspSafe(t, d, body)
	}
}

func TestReportContent(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for _, c := range []struct {
		domain string
		want   []string
	}{
		{"good.example", []string{
			"Mail for good.example is set up right",
			`class="verdict v-ok"`,
			"1 of 10 DNS lookups", // the SPF tree's count
			`<code class="spf-rec">v=spf1 mx -all</code>`,
			"Not checked", // the skipped areas, and why
			"they need the network: --zone without --resolver",
		}},
		{"bigtiers.example", []string{
			"Mail gets through, with 13 warnings",
			"5 exchanges at equal preference: each sender tries them in random order",
			"If every exchange at preference 10 is down, senders try preference 20.",
			`<code class="f-id">ptr-missing</code> <span class="f-subject">× 11</span>`, // grouped, one fix
			`<a href="https://www.rfc-editor.org/rfc/rfc1912#section-2.1">RFC 1912 §2.1</a>`,
			"Publish a TXT record starting with <code>v=spf1</code>", // the fix, with its code
		}},
		{"nullmx.example", []string{"nullmx.example accepts no mail", `class="verdict v-info"`, "Null MX: nullmx.example accepts no mail"}},
		{"nosuch.example", []string{"nosuch.example does not exist", `class="verdict v-error"`, "(NXDOMAIN)"}},
		{"nomail.example", []string{"Mail to nomail.example bounces", "No MX and no address for nomail.example"}},
		{"implicit.example", []string{"No MX records: implicit MX", "has no MX records: mail goes to its own address"}},
		{"dangling.example", []string{"Mail for dangling.example goes to mx.dangling.example, since nothing at preference 10 can take it.", "✗ the name does not exist", "Nothing at preference 10 can take mail: senders go straight to preference 20."}},
		{"cname-mx.example", []string{"→ alias (CNAME) of host.cname-mx.example"}},
		{"private.example", []string{"No exchange of private.example can take mail", "✗ not reachable from the Internet", "No exchange can take mail"}},
		{"alias.example", []string{"alias.example is an alias (CNAME) of tiers.example"}},
		{"xn--bcher-kva.example", []string{ // an IDN: the name as people write it, and its A-label
			`<h1>bücher.example <span class="alabel">xn--bcher-kva.example</span></h1>`, "<title>bücher.example · mxtrace</title>"}},
	} {
		_, body := get(t, s, "/d/"+c.domain)
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the report lacks %q", c.domain, w)
			}
		}
	}
	// Without an SPF record there is no tree to draw.
	if _, body := get(t, s, "/d/bigtiers.example"); strings.Contains(body, "Include tree") {
		t.Error("bigtiers.example has no SPF record, but the page draws its include tree")
	}
}

// TestReportSize: a report page, with its style sheet and script, stays
// under 100 KB on the biggest example domain.
func TestReportSize(t *testing.T) {
	s := newPageServer(t, nil, 0)
	biggest, size := "", 0
	for _, d := range exampleDomains {
		_, body := get(t, s, "/d/"+d)
		if len(body) > size {
			biggest, size = d, len(body)
		}
	}
	total := size
	for _, name := range []string{"style.css", "live.js", "icon.svg"} {
		_, b := get(t, s, assets[name])
		total += len(b)
	}
	t.Logf("biggest report: %s, %d bytes; with its assets %d bytes", biggest, size, total)
	if total >= 100_000 {
		t.Errorf("the report of %s weighs %d bytes with its assets, over 100 KB", biggest, total)
	}
}

// blockingResolver answers nothing until the context ends.
type blockingResolver struct{}

func (blockingResolver) Lookup(ctx context.Context, _ resolve.Question) (*resolve.Answer, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestReportDeadline: when the server's deadline passes, the report says
// what ran out of time (after the "checking" line it flushed first).
func TestReportDeadline(t *testing.T) {
	s := newPageServer(t, blockingResolver{}, pageWait+200*time.Millisecond)
	res, body := get(t, s, "/d/good.example")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{
		`id="progress"`, "Checking good.example…", // flushed before the check ended
		`<script src="/static/live.js?v=`,
		"The check ran out of time",
		"Timed out before it finished:",
		`id="report"`, "</html>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if i, j := strings.Index(body, `id="progress"`), strings.Index(body, `id="report"`); i > j {
		t.Error("the report comes before the progress block")
	}
	cspSafe(t, "deadline", body)
}

func TestPageEvents(t *testing.T) {
	s := newPageServer(t, nil, 0)
	res, body := get(t, s, "/d/good.example/events")
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, want := range []string{
		"event: route\ndata: <section class=\"route-sec\"",
		"event: area\ndata: <section class=\"area s-pass\" id=\"area-spf\" data-order=\"3\"",
		"event: done\ndata:\n\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the stream lacks %q", want)
		}
	}
	// The route comes before the badges' facts: no legend for them yet.
	_, route, _ := strings.Cut(body, "event: route\n")
	if route, _, _ = strings.Cut(route, "\n\n"); !strings.Contains(route, "<svg") || strings.Contains(route, "Point at a badge") {
		t.Error("the live route explains badges it does not have")
	}
	if _, page := get(t, s, "/d/good.example"); !strings.Contains(page, "Point at a badge for details.") {
		t.Error("the report does not explain its badges")
	}
	if !strings.HasSuffix(body, "event: done\ndata:\n\n") {
		t.Error("the stream does not end with done")
	}
	res, _ = get(t, s, "/d/192.0.2.1/events")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("an invalid name's stream: status %d", res.StatusCode)
	}
}

func TestStatic(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for name, ct := range map[string]string{"style.css": "text/css; charset=utf-8", "live.js": "text/javascript; charset=utf-8", "icon.svg": "image/svg+xml"} {
		res, body := get(t, s, assets[name])
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ct || body == "" {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s with its hash: Cache-Control %q", name, cc)
		}
		res, _ = get(t, s, "/static/"+name+"?v=old")
		if cc := res.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("%s with another hash is cached for good", name)
		}
	}
	for _, p := range []string{"/static/nothing.css", "/static/", "/static/templates/home.html"} {
		if res, _ := get(t, s, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
}

func TestRefLinks(t *testing.T) {
	for ref, want := range map[string]string{
		"RFC 5321 §5.1":           "RFC 5321 §5.1=https://www.rfc-editor.org/rfc/rfc5321#section-5.1",
		"RFC 5321 §4.1.1.1, §3.2": "RFC 5321 §4.1.1.1=https://www.rfc-editor.org/rfc/rfc5321#section-4.1.1.1|, |§3.2=https://www.rfc-editor.org/rfc/rfc5321#section-3.2",
		"RFC 1912 §2.1; RFC 8499": "RFC 1912 §2.1=https://www.rfc-editor.org/rfc/rfc1912#section-2.1|; |RFC 8499=https://www.rfc-editor.org/rfc/rfc8499",
		"docs/routing.md#null-mx": "docs/routing.md#null-mx",
		"":                        "",
	} {
		var parts []string
		for _, p := range refLinks(ref) {
			if p.URL != "" {
				parts = append(parts, p.Text+"="+p.URL)
			} else {
				parts = append(parts, p.Text)
			}
		}
		if got := strings.Join(parts, "|"); got != want {
			t.Errorf("refLinks(%q) = %q, want %q", ref, got, want)
		}
	}
}

// countingResolver counts the questions asked.
type countingResolver struct {
	resolve.Resolver
	n atomic.Int64
}

func (c *countingResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.n.Add(1)
	return c.Resolver.Lookup(ctx, q)
}

// TestPageSharesCheck: the report page, its events stream and its JSON
// link are one check (the hub's), not three.
func TestPageSharesCheck(t *testing.T) {
	z, err := resolve.LoadZones(exampleZones...)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingResolver{Resolver: z}
	s := newPageServer(t, c, 0)
	get(t, s, "/d/good.example")
	once := c.n.Load()
	if once == 0 {
		t.Fatal("the page asked nothing")
	}
	_, events := get(t, s, "/d/good.example/events")
	res, _ := get(t, s, "/api/v1/check/good.example")
	if res.StatusCode != 200 || !strings.Contains(events, "event: area") {
		t.Fatalf("API %d, events %q", res.StatusCode, events)
	}
	if n := c.n.Load(); n != once {
		t.Errorf("the page's check asked %d questions, and its events and JSON %d more", once, n-once)
	}
}

// TestSPFTree: the SPF area draws the include tree with each record's
// lookups and the total against the limit of ten (RFC 7208 §4.6.4).
func TestSPFTree(t *testing.T) {
	z, err := resolve.LoadZones("testdata/route.zone")
	if err != nil {
		t.Fatal(err)
	}
	s := newPageServer(t, resolve.NewCache(z, 0), 0)
	_, body := get(t, s, "/d/spf.test")
	for _, want := range []string{
		`<meter min="0" max="10" high="10" optimum="0" value="5" aria-hidden="true"></meter> <span><span>5 of 10 DNS lookups</span>, 1 void (at most 2)</span>`,
		`<li><span class="spf-name">spf.test</span> <span class="spf-n">3 lookups, 5 with includes</span><br><code class="spf-rec">v=spf1 include:_spf.a.spf.test include:_spf.b.spf.test mx -all</code><ul>`,
		`<li><span class="spf-name">include:_spf.a.spf.test</span> <span class="spf-n">1 lookup</span><br><code class="spf-rec">v=spf1 ip4:192.0.2.0/24 include:_spf.c.spf.test ~all</code><ul>`,
		`<li><span class="spf-name">include:_spf.c.spf.test</span> <span class="spf-n">0 lookups</span>`,
		`<li><span class="spf-name">include:_spf.b.spf.test</span> <span class="spf-n">1 lookup, 1 void lookup</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the SPF tree lacks %q", want)
		}
	}
}

// gatedResolver holds every question until its gate is opened.
type gatedResolver struct {
	resolve.Resolver
	gate chan struct{}
}

func (g gatedResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Resolver.Lookup(ctx, q)
}

// TestReportFlushesProgress: over a real connection, through the server's
// middleware, the head and the "checking" line reach the browser while
// the check is still held, and the report follows when it ends.
func TestReportFlushesProgress(t *testing.T) {
	z, err := resolve.LoadZones(exampleZones...)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	s := newPageServer(t, gatedResolver{resolve.NewCache(z, 0), gate}, 0)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, err := ts.Client().Get(ts.URL + "/d/good.example")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	// Read until the progress block; the check cannot end before the
	// gate opens, so whatever arrives was flushed ahead of it.
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(b.String(), `<script src="/static/live.js`) {
			n, err := res.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	var head string
	select {
	case head = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing of the page arrived while the check was held")
	}
	if !strings.Contains(head, "Checking good.example…") || strings.Contains(head, `id="report"`) {
		t.Fatalf("before the check ended the page had %q", head)
	}
	close(gate)
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), "Mail for good.example is set up right") || !strings.HasSuffix(string(rest), "</html>\n") {
		t.Errorf("after the check the page ended with %q", rest)
	}
}

// TestReportSizeWorstCase: the most a route can hold (64 exchanges of 16
// addresses, route.DefaultMaxExchanges and DefaultMaxAddresses), each in
// its own tier, still makes a page under 100 KB: the picture draws the
// first tiers and says how many more there are.
func TestReportSizeWorstCase(t *testing.T) {
	var zone strings.Builder
	zone.WriteString("$ORIGIN worst.test.\n$TTL 3600\n@ SOA ns.worst.test. h.worst.test. 1 7200 900 1209600 300\n@ NS ns.worst.test.\n")
	for i := range 64 {
		fmt.Fprintf(&zone, "@ MX %d mx-exchange-number-%02d.worst.test.\n", i, i)
		for j := range 16 {
			fmt.Fprintf(&zone, "mx-exchange-number-%02d AAAA 2001:db8:%x:%x::1234:5678\n", i, i, j)
		}
	}
	path := filepath.Join(t.TempDir(), "worst.zone")
	if err := os.WriteFile(path, []byte(zone.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := resolve.LoadZones(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newPageServer(t, resolve.NewCache(z, 0), 0)
	_, body := get(t, s, "/d/worst.test")
	if !strings.Contains(body, "… and 58 more tiers with 58 exchanges behind, listed in the table below.") {
		t.Errorf("the page does not say it left tiers out of the picture")
	}
	t.Logf("%d bytes", len(body))
	if len(body) >= 100_000 {
		t.Errorf("the page of 64 exchanges of 16 addresses weighs %d bytes, over 100 KB", len(body))
	}
}

func TestInlineCode(t *testing.T) {
	for in, want := range map[string]string{
		"Publish `MX 0 .` now.": "Publish <code>MX 0 .</code> now.",
		"<b>`<i>`</b>":          "&lt;b&gt;<code>&lt;i&gt;</code>&lt;/b&gt;",
		"an odd ` quote <x>":    "an odd ` quote &lt;x&gt;",
		"`a` and `b & c`":       "<code>a</code> and <code>b &amp; c</code>",
	} {
		if got := string(inlineCode(in)); got != want {
			t.Errorf("inlineCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFindingGroups: the findings of one ID are one item with one fix; a
// long list shows its first ten and counts the rest, a short one all.
func TestFindingGroups(t *testing.T) {
	for n, want := range map[int][2]int{1: {1, 0}, 11: {11, 0}, 12: {12, 0}, 13: {10, 3}, 1000: {10, 990}} {
		a := check.AreaResult{Area: finding.AreaPTR, Status: check.StatusProblems}
		for i := range n {
			a.Findings = append(a.Findings, finding.Newf(finding.PTRMissing, fmt.Sprintf("192.0.2.%d", i), "192.0.2.%d has no PTR record.", i))
		}
		a.Findings = append(a.Findings, finding.New(finding.MXNoIPv6, "x.test", "No exchange of x.test has an IPv6 address."))
		v := newAreaView(a, 2)
		if len(v.Findings) != 2 {
			t.Fatalf("%d findings of one ID and one of another: %d groups", n, len(v.Findings))
		}
		if g := v.Findings[0]; g.ID != finding.PTRMissing || len(g.Items) != want[0] || g.More != want[1] {
			t.Errorf("%d findings: %s with %d items and %d more, want %d and %d", n, g.ID, len(g.Items), g.More, want[0], want[1])
		}
	}
}

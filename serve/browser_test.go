package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// The page in a real browser: headless Chromium (Debian's chromium),
// driven over the DevTools protocol with chromedp, against the server on
// 127.0.0.1 with the example zones, offline. The browser is kept to
// loopback: no background or component traffic, no proxy, and every host
// name resolves to nothing.

// browserCSP is the policy the server's security headers set; the test
// sets it too, so the page is held to it whichever middleware runs.
const browserCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// browserTimeout bounds the whole browser test: start, every page, stop.
const browserTimeout = 2 * time.Minute

// chromium finds the browser; without it the test fails on CI (CI=true)
// and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium): the browser test cannot run")
	}
	t.Skip("chromium is not installed; CI=true makes this a failure")
	return ""
}

// pageSite is a Server on 127.0.0.1:0 with the CSP, counting the
// requests for the live page's event stream.
type pageSite struct {
	url    string
	events atomic.Int32
	// release ends the /live-test page.
	release chan struct{}
}

func startSite(t *testing.T, s *Server, opened chan<- struct{}) *pageSite {
	t.Helper()
	site := &pageSite{release: make(chan struct{})}
	var openedOnce sync.Once
	inner := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", browserCSP)
		switch r.URL.Path {
		case "/live-test", "/live-test/events":
			liveTest(t, s, site.release, w, r)
			return
		}
		if r.URL.Path == "/canary" {
			// A page the CSP must block, to show that violations are seen.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><html lang="en"><title>canary</title><p style="color: red">inline style</p><script>document.title = "ran"</script></html>`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/events") {
			site.events.Add(1)
			if opened != nil {
				openedOnce.Do(func() { close(opened) })
			}
		}
		inner.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	site.url = "http://" + ln.Addr().String()
	return site
}

// liveTest serves a report page whose check never ends until release is
// closed, and its events stream: the route, then two areas out of order,
// so live.js is seen filling the page in.
func liveTest(t *testing.T, s *Server, release <-chan struct{}, w http.ResponseWriter, r *http.Request) {
	name := dnsname.MustParse("good.example")
	rc := http.NewResponseController(w)
	if strings.HasSuffix(r.URL.Path, "/events") {
		w.Header().Set("Content-Type", "text/event-stream")
		rep := s.cfg.Auditor.Audit(r.Context(), name)
		var route, dkim, routing bytes.Buffer
		if err := errors.Join(
			pages.ExecuteTemplate(&route, "route", newReportView(name, &check.Report{Plan: rep.Plan}, nil)),
			pages.ExecuteTemplate(&dkim, "area", newAreaView(rep.Areas[4], 5)),
			pages.ExecuteTemplate(&routing, "area", newAreaView(rep.Areas[0], 0)),
		); err != nil {
			t.Error(err)
			return
		}
		for _, e := range []struct {
			name string
			html []byte
		}{{"route", route.Bytes()}, {"area", dkim.Bytes()}, {"area", routing.Bytes()}} {
			w.Write(appendEvent(nil, e.name, e.html))
			rc.Flush()
			time.Sleep(50 * time.Millisecond)
		}
		<-release
		w.Write(appendEvent(nil, "done", nil))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := pageData{Title: "live", SkipTo: "the report", Domain: name.String(), Events: "/live-test/events"}
	if err := errors.Join(pages.ExecuteTemplate(w, "report-head", data), pages.ExecuteTemplate(w, "progress", data)); err != nil {
		t.Error(err)
	}
	rc.Flush()
	select {
	case <-release:
	case <-r.Context().Done():
	}
	pages.ExecuteTemplate(w, "bottom", data)
}

// slowResolver delays every answer, so a check outlasts pageWait and the
// report page streams; the answers about names under held wait, besides,
// until opened is closed (the page's event stream was asked for), so that
// live.js is seen at work however slowly the browser runs.
type slowResolver struct {
	resolve.Resolver
	delay  time.Duration
	held   string
	opened <-chan struct{}
}

func (r slowResolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if r.held != "" && dns.IsSubDomain(r.held, q.Name) {
		select {
		case <-r.opened:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return r.Resolver.Lookup(ctx, q)
}

// browser starts headless Chromium for the test, bounded by
// browserTimeout.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Loopback only: the pages are on 127.0.0.1, and any name the
		// browser would look up resolves to nothing.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx
}

// tab opens a tab that records every runtime exception, console error and
// browser error (CSP violations among them); t fails at its end for any.
func tab(t *testing.T, b context.Context) (context.Context, func() []string) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				p += " " + ex.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				p = "console." + string(ev.Type)
				for _, a := range ev.Args {
					p += " " + string(a.Value) + a.Description
				}
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				p = fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
	return ctx, seen
}

// clean fails t for every problem the tab saw.
func clean(t *testing.T, seen func() []string) {
	t.Helper()
	for _, p := range seen() {
		t.Errorf("browser: %s", p)
	}
}

// screenshot saves the whole page under the test's artifact directory,
// and a copy at /tmp/mxtrace-serve-NAME.png to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	if err := os.WriteFile(filepath.Join(os.TempDir(), "mxtrace-serve-"+name+".png"), png, 0o644); err != nil {
		t.Log(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// do runs browser actions, failing t on an error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// seesReport checks the finished report of domain is on the page: the
// route picture and the findings.
func seesReport(t *testing.T, ctx context.Context, domain string, findings bool) {
	t.Helper()
	do(t, ctx, "waiting for the report", chromedp.WaitVisible(chromedp.CSS("#report svg.route")))
	if got := eval[string](t, ctx, "location.pathname"); got != "/d/"+domain {
		t.Errorf("the report is at %s, want /d/%s", got, domain)
	}
	if n := eval[int](t, ctx, "document.querySelectorAll('#report svg.route .rt-tier').length"); n == 0 {
		t.Error("the route picture has no tier")
	}
	if n := eval[int](t, ctx, "document.querySelectorAll('#report .area').length"); n == 0 {
		t.Error("no area on the report")
	}
	if n := eval[int](t, ctx, "document.querySelectorAll('#report .finding').length"); findings && n == 0 {
		t.Error("no finding on the report")
	}
	if w := eval[int](t, ctx, "document.querySelector('#report svg.route').getBoundingClientRect().width"); w < 300 {
		t.Errorf("the route picture is %d pixels wide", w)
	}
}

func TestBrowser(t *testing.T) {
	// The servers stop after the browser (cleanups run last first), so
	// no connection of the browser's is left open at their shutdown.
	site := startSite(t, newPageServer(t, nil, 0), nil)
	// A check slower than pageWait: the page streams, and live.js fills
	// it in from the event stream until the report arrives. The check of
	// tiers.example waits for live.js to ask for the stream.
	liveOpened := make(chan struct{})
	slow := startSite(t, newPageServer(t, slowResolver{exampleResolver(t), 150 * time.Millisecond, "tiers.example.", liveOpened}, 0), liveOpened)
	// A server with a store: tiers.example has a history.
	st := openStore(t)
	histServer := historyServer(t, st, testToken)
	now := time.Now().UTC()
	old := snapshotOf(t, histServer, "tiers.example", now.Add(9*24*time.Hour+time.Hour))
	record(t, st, now.Add(-48*time.Hour), old, nil, false)
	record(t, st, now.Add(-24*time.Hour), without(old), old, false)
	record(t, st, now.Add(-time.Hour), without(old), nil, true)
	hist := startSite(t, histServer, nil)
	b := browser(t)

	t.Run("canary", func(t *testing.T) {
		// The checks below count on seeing CSP violations: a page that
		// has them must be seen to.
		ctx, seen := tab(t, b)
		do(t, ctx, "canary", chromedp.Navigate(site.url+"/canary"))
		deadline := time.Now().Add(5 * time.Second)
		for len(seen()) < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := seen(); len(got) < 2 || !strings.Contains(strings.Join(got, "\n"), "Content Security Policy") {
			t.Fatalf("the CSP violations of the canary page went unseen: %q", got)
		}
	})

	t.Run("javascript", func(t *testing.T) {
		ctx, seen := tab(t, b)
		do(t, ctx, "search", chromedp.Navigate(site.url+"/"),
			chromedp.WaitVisible(chromedp.CSS("#q")),
			chromedp.SendKeys(chromedp.CSS("#q"), "bigtiers.example"),
			chromedp.Click(chromedp.CSS("form.search button")),
		)
		seesReport(t, ctx, "bigtiers.example", true)
		if v := eval[string](t, ctx, "document.getElementById('verdict-h').textContent"); !strings.Contains(v, "13 warnings") {
			t.Errorf("verdict %q", v)
		}
		screenshot(t, ctx, "report")
		clean(t, seen)
	})

	t.Run("no-javascript", func(t *testing.T) {
		ctx, seen := tab(t, b)
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "search", chromedp.Navigate(site.url+"/"),
			chromedp.WaitVisible(chromedp.CSS("#q")),
			chromedp.SendKeys(chromedp.CSS("#q"), "postmaster@dangling.example"),
			chromedp.Click(chromedp.CSS("form.search button")),
		)
		seesReport(t, ctx, "dangling.example", true)
		screenshot(t, ctx, "nojs")
		clean(t, seen)
	})

	t.Run("keyboard", func(t *testing.T) {
		ctx, seen := tab(t, b)
		do(t, ctx, "home", chromedp.Navigate(site.url+"/"), chromedp.WaitVisible(chromedp.CSS("#q")))
		// The first Tab shows the skip link, with a focus ring.
		do(t, ctx, "tab", chromedp.KeyEvent("\t"))
		if c := eval[string](t, ctx, "document.activeElement.className"); c != "skip" {
			t.Errorf("the first Tab focuses %q, want the skip link", c)
		}
		if top := eval[float64](t, ctx, "document.activeElement.getBoundingClientRect().top"); top < 0 {
			t.Error("the focused skip link is off screen")
		}
		if o := eval[string](t, ctx, "getComputedStyle(document.activeElement).outlineStyle"); o == "none" {
			t.Error("the focused skip link has no focus ring")
		}
		for range 5 {
			if eval[string](t, ctx, "document.activeElement.id") == "q" {
				break
			}
			do(t, ctx, "tab", chromedp.KeyEvent("\t"))
		}
		if id := eval[string](t, ctx, "document.activeElement.id"); id != "q" {
			t.Fatalf("Tab never reached the search box (at %q)", id)
		}
		do(t, ctx, "type", chromedp.KeyEvent("good.example"), chromedp.KeyEvent("\r"))
		seesReport(t, ctx, "good.example", false)
		// On the report, the skip link leads past the header's search.
		do(t, ctx, "skip", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r"))
		if id := eval[string](t, ctx, "document.activeElement.id"); id != "main" {
			t.Errorf("the skip link moved the focus to %q, want main", id)
		}
		clean(t, seen)
	})

	t.Run("dark", func(t *testing.T) {
		ctx, seen := tab(t, b)
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "report", chromedp.Navigate(site.url+"/d/good.example"))
		seesReport(t, ctx, "good.example", false)
		if bg := eval[string](t, ctx, "getComputedStyle(document.body).backgroundColor"); bg != "rgb(17, 20, 24)" {
			t.Errorf("dark background %s", bg)
		}
		screenshot(t, ctx, "dark")
		clean(t, seen)
	})

	t.Run("history", func(t *testing.T) {
		// The timeline is drawn and listed, and the countdown shown,
		// within the CSP; /watches is linked from the header.
		ctx, seen := tab(t, b)
		do(t, ctx, "report", chromedp.Navigate(hist.url+"/d/tiers.example"))
		seesReport(t, ctx, "tiers.example", true)
		do(t, ctx, "history", chromedp.WaitVisible(chromedp.CSS("#history svg.axis circle")))
		if n := eval[int](t, ctx, "document.querySelectorAll('#history svg.axis circle').length"); n != 3 {
			t.Errorf("%d marks on the axis, want 3", n)
		}
		if w := eval[int](t, ctx, "document.querySelector('#history svg.axis').getBoundingClientRect().width"); w < 300 {
			t.Errorf("the axis is %d pixels wide", w)
		}
		if text := eval[string](t, ctx, "document.querySelector('#history').innerText"); !strings.Contains(text, "9 days left") || !strings.Contains(text, "exchange-removed") {
			t.Errorf("the history section says:\n%s", text)
		}
		if c := eval[string](t, ctx, "getComputedStyle(document.querySelector('#history svg.axis circle.ax-warning')).fill"); c == "rgb(0, 0, 0)" || c == "" {
			t.Errorf("a warning mark is filled %q: the style sheet does not reach the SVG", c)
		}
		screenshot(t, ctx, "history")
		do(t, ctx, "watches", chromedp.Click(chromedp.CSS(`header a[href="/watches"]`)), chromedp.WaitVisible(chromedp.CSS("form.watch-form")))
		if n := eval[int](t, ctx, "document.querySelectorAll('.watches tbody tr').length"); n != 0 {
			t.Errorf("%d watches listed, want none", n)
		}
		screenshot(t, ctx, "watches")
		clean(t, seen)
	})

	t.Run("live", func(t *testing.T) {
		ctx, seen := tab(t, b)
		do(t, ctx, "report", chromedp.Navigate(slow.url+"/d/tiers.example"))
		seesReport(t, ctx, "tiers.example", true)
		if slow.events.Load() == 0 {
			t.Error("live.js did not open the event stream")
		}
		if eval[bool](t, ctx, "document.getElementById('progress') !== null") {
			t.Error("the progress block stayed after the report came")
		}
		clean(t, seen)
	})
	t.Run("live-fill-in", func(t *testing.T) {
		// While the page is still loading, live.js puts the route and the
		// areas in, in the report's order whatever the events' order.
		ctx, seen := tab(t, b)
		if _, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: site.url + "/live-test"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for eval[int](t, ctx, "document.querySelectorAll('#live-areas > .area').length") < 2 {
			if time.Now().After(deadline) {
				t.Fatal("live.js did not fill in the areas")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ids := eval[string](t, ctx, "Array.from(document.querySelectorAll('#live-areas > .area'), a => a.id).join(' ')"); ids != "area-routing area-dkim" {
			t.Errorf("live areas in the order %q", ids)
		}
		if s := eval[string](t, ctx, "document.getElementById('live-status').textContent"); s != "2 areas checked so far." {
			t.Errorf("the live status says %q", s)
		}
		if n := eval[int](t, ctx, "document.querySelectorAll('#live-route svg.route').length"); n == 0 {
			t.Error("live.js did not draw the route")
		}
		screenshot(t, ctx, "live")
		close(site.release)
		do(t, ctx, "finish", chromedp.WaitReady(chromedp.CSS("footer.site")))
		clean(t, seen)
	})
	t.Run("live-no-javascript", func(t *testing.T) {
		ctx, seen := tab(t, b)
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "report", chromedp.Navigate(slow.url+"/d/good.example"))
		seesReport(t, ctx, "good.example", false)
		if d := eval[string](t, ctx, "getComputedStyle(document.getElementById('progress')).display"); d != "none" {
			t.Errorf("without JavaScript the progress block is still shown (display %s)", d)
		}
		clean(t, seen)
	})
}

// exampleResolver is the example zones behind a cache.
func exampleResolver(t *testing.T) resolve.Resolver {
	t.Helper()
	z, err := resolve.LoadZones(exampleZones...)
	if err != nil {
		t.Fatal(err)
	}
	return resolve.NewCache(z, 0)
}

package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// testToken is the admin token of the watch tests.
const testToken = "s3cret-admin-token-0123456789"

// openStore is a new SQLite store in a temporary directory.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "watch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// historyServer is a page server over the example zones with st and
// token.
func historyServer(t testing.TB, st store.Store, token string) *Server {
	t.Helper()
	r := exampleResolverTB(t)
	p := &route.Planner{Resolver: r, Seed: 1, HasSeed: true}
	a := &check.Auditor{Resolver: r, Planner: p, SkipReason: "they need the network: --zone without --resolver"}
	s, err := New(Config{Resolver: r, Planner: p, Auditor: a, Store: st, AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshotOf is the facts of a check of domain on the example zones, with
// an exchange whose certificate ends at certEnd.
func snapshotOf(t testing.TB, s *Server, domain string, certEnd time.Time) *watch.Snapshot {
	t.Helper()
	rep := s.cfg.Auditor.Audit(t.Context(), dnsname.MustParse(domain))
	snap := watch.SnapshotOf(rep)
	snap.SMTP = []watch.SMTP{
		{Host: "mx1." + domain, Address: "192.0.2.10", Reached: true, StartTLS: true,
			Cert: &watch.Cert{Fingerprint: "aa", Subject: "CN=mx1." + domain, NotAfter: certEnd, Verified: true}},
		{Host: "mx1." + domain, Address: "2001:db8::10", Reached: true, StartTLS: true,
			Cert: &watch.Cert{Fingerprint: "aa", Subject: "CN=mx1." + domain, NotAfter: certEnd, Verified: true}},
	}
	return snap
}

// without is snap with its first MX record removed and an address added
// to its first exchange: a state to diff against.
func without(snap *watch.Snapshot) *watch.Snapshot {
	b, _ := json.Marshal(snap)
	c, _ := watch.ParseSnapshot(b)
	c.Records = c.Records[1:]
	c.Hosts[0].Addresses = append(slices.Clone(c.Hosts[0].Addresses), "192.0.2.99")
	return c
}

// storedReport stands for a check's --json object in the store: opaque
// to serve, which never reads it, but as large as a real one (some 8 KB
// offline, more with SMTP), so that reading results costs what it does.
var storedReport = []byte(`{"schema":1,"padding":"` + strings.Repeat("x", 16<<10) + `"}`)

// record stores a result of snap at at, with its changes since prev (nil:
// none), as the watch runner does; temporary stores a failed check.
func record(t testing.TB, st store.Store, at time.Time, snap, prev *watch.Snapshot, temporary bool) int {
	t.Helper()
	snap.At = at
	facts, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var changes []store.Change
	if prev != nil && !temporary {
		for _, c := range watch.Diff(prev, snap) {
			changes = append(changes, watch.StoreChange(c))
		}
	}
	status := store.StatusOK
	if temporary {
		status = store.StatusError
	}
	_, err = st.Record(t.Context(), "", store.Result{Domain: snap.Domain, At: at, Status: status, Report: storedReport,
		Facts: facts, Temporary: temporary}, changes, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return len(changes)
}

// send sends one request to s with an optional bearer token and body.
func send(t testing.TB, s *Server, method, target, token, ctype, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

// historyOf decodes a history answer.
func historyOf(t *testing.T, body string) historyJSON {
	t.Helper()
	var h historyJSON
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("not a history: %v\n%s", err, body)
	}
	return h
}

// TestHistoryAPI: the timeline of stored results, newest first: the
// failed check, the check with changes (each with its kind, severity and
// message), the first check; a check like the one before it is not an
// event. since and limit are bounded.
func TestHistoryAPI(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, st, "")
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a := snapshotOf(t, s, "tiers.example", t0.Add(90*24*time.Hour))
	b := without(a)
	record(t, st, t0, a, nil, false)
	n := record(t, st, t0.Add(time.Hour), b, a, false)
	if n == 0 {
		t.Fatal("the second snapshot differs in nothing")
	}
	record(t, st, t0.Add(2*time.Hour), b, b, false)
	record(t, st, t0.Add(3*time.Hour), b, nil, true)

	res, body := get(t, s, "/api/v1/history/TIERS.example")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	h := historyOf(t, body)
	if h.Domain != "tiers.example" || h.Checks != 4 || len(h.Events) != 3 || h.More {
		t.Fatalf("domain %q, %d checks, %d events, more %v; want tiers.example, 4, 3, false\n%s", h.Domain, h.Checks, len(h.Events), h.More, body)
	}
	if e := h.Events[0]; !e.Temporary || e.Status != "error" || !e.At.Equal(t0.Add(3*time.Hour)) || len(e.Changes) != 0 {
		t.Errorf("newest event %+v, want the failed check", e)
	}
	e := h.Events[1]
	if len(e.Changes) != n || e.First || !e.At.Equal(t0.Add(time.Hour)) {
		t.Errorf("second event %+v, want the %d changes of %v", e, n, t0.Add(time.Hour))
	}
	kinds := map[string]bool{}
	for _, c := range e.Changes {
		kinds[c.Kind] = true
		if c.Severity == "" || c.Message == "" || c.ResultID != e.ResultID {
			t.Errorf("change %+v: no severity, message or result", c)
		}
	}
	if !kinds["exchange-removed"] {
		t.Errorf("changes %v, want exchange-removed among them", kinds)
	}
	if e := h.Events[2]; !e.First || e.Changes == nil {
		t.Errorf("oldest event %+v, want the first check with changes []", e)
	}
	if !strings.Contains(body, `"changes":[]`) {
		t.Error(`an event without changes has no "changes":[]`)
	}

	_, body = get(t, s, "/api/v1/history/tiers.example?limit=1")
	if h := historyOf(t, body); len(h.Events) != 1 || !h.More {
		t.Errorf("limit=1: %d events, more %v", len(h.Events), h.More)
	}
	_, body = get(t, s, "/api/v1/history/tiers.example?since="+url.QueryEscape(t0.Add(30*time.Minute).Format(time.RFC3339)))
	if h := historyOf(t, body); h.Checks != 3 || len(h.Events) != 2 || h.Events[1].First {
		t.Errorf("since: %d checks, %+v", h.Checks, h.Events)
	}
	for target, want := range map[string]int{
		"/api/v1/history/tiers.example?limit=0":                400,
		"/api/v1/history/tiers.example?limit=1001":             400,
		"/api/v1/history/tiers.example?limit=x":                400,
		"/api/v1/history/tiers.example?since=last+tuesday":     400,
		"/api/v1/history/tiers.example?since=2100-01-01":       404,
		"/api/v1/history/good.example":                         404,
		"/api/v1/history/192.0.2.1":                            400,
		"/api/v1/history/" + url.PathEscape("bad..example"):    400,
		"/api/v1/history/tiers.example?since=7d&limit=1000000": 400,
	} {
		res, body := get(t, s, target)
		if res.StatusCode != want || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem\n%s", target, res.StatusCode, res.Header.Get("Content-Type"), want, body)
		}
	}
}

// TestNoStore: without a store every watch route is a 404 problem saying
// so, and no page links to /watches or shows a history.
func TestNoStore(t *testing.T) {
	s := newPageServer(t, nil, 0)
	for _, c := range []struct{ method, target string }{
		{"GET", "/api/v1/history/tiers.example"}, {"GET", "/api/v1/watches"}, {"POST", "/api/v1/watches"},
		{"DELETE", "/api/v1/watches/tiers.example"}, {"GET", "/watches"}, {"POST", "/watches"}, {"POST", "/watches/remove"},
	} {
		res, body := send(t, s, c.method, c.target, "Bearer "+testToken, "", "")
		if res.StatusCode != 404 || !strings.Contains(body, "--db") {
			t.Errorf("%s %s: %d, want 404 naming --db\n%s", c.method, c.target, res.StatusCode, body)
		}
	}
	for _, p := range []string{"/", "/d/tiers.example"} {
		_, body := get(t, s, p)
		if strings.Contains(body, `href="/watches"`) || strings.Contains(body, `id="history"`) {
			t.Errorf("%s links to /watches or shows a history without a store", p)
		}
	}
}

// TestWatchToken: adding and removing need the admin token: none is 401
// with a Bearer challenge, a wrong one (a prefix, longer, another scheme)
// 401 with error="invalid_token" (RFC 6750 §3.1), the right one works; a server without a token takes no
// changes (403 saying so). Reading needs none.
func TestWatchToken(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, st, testToken)
	add := `{"domain": "Tiers.Example", "every": "30m", "alerts": ["https://hooks.example/x?key=secret", "log"]}`
	for _, c := range []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer", 401},
		{"Basic " + testToken, 401},
		{"Bearer wrong", 401},
		{"Bearer " + testToken[:len(testToken)-1], 401},
		{"Bearer " + testToken + "x", 401},
		{"Bearer " + strings.ToUpper(testToken), 401},
	} {
		res, body := send(t, s, "POST", "/api/v1/watches", c.auth, "application/json", add)
		if res.StatusCode != c.want || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("POST with %q: %d, want %d problem\n%s", c.auth, res.StatusCode, c.want, body)
		}
		got := res.Header.Get("WWW-Authenticate")
		if (c.want == 401) != (got != "") {
			t.Errorf("POST with %q: WWW-Authenticate %q", c.auth, got)
		}
		// A token was given but is not the one: invalid_token (RFC 6750 §3.1);
		// none given: the bare challenge (§3).
		wrong := strings.HasPrefix(c.auth, "Bearer ") && len(c.auth) > len("Bearer ")
		if wrong != strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("POST with %q: WWW-Authenticate %q", c.auth, got)
		}
		res, _ = send(t, s, "DELETE", "/api/v1/watches/tiers.example", c.auth, "", "")
		if res.StatusCode != c.want {
			t.Errorf("DELETE with %q: %d, want %d", c.auth, res.StatusCode, c.want)
		}
	}
	if ws, _ := st.Watches(t.Context()); len(ws) != 0 {
		t.Fatalf("a refused request added %v", ws)
	}

	res, body := send(t, s, "POST", "/api/v1/watches", "bearer "+testToken, "application/json", add)
	if res.StatusCode != 201 || res.Header.Get("Location") != "/api/v1/history/tiers.example" {
		t.Fatalf("POST with the token: %d, Location %q\n%s", res.StatusCode, res.Header.Get("Location"), body)
	}
	var w watchJSON
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatal(err)
	}
	if w.Domain != "tiers.example" || w.Every != "30m" || w.EverySec != 1800 || len(w.Alerts) != 2 || w.AlertCount != 2 {
		t.Errorf("added %+v", w)
	}
	res, _ = send(t, s, "POST", "/api/v1/watches", "Bearer "+testToken, "application/json", `{"domain": "tiers.example", "every": "2h"}`)
	if res.StatusCode != 200 {
		t.Errorf("changing a watch: %d, want 200", res.StatusCode)
	}
	ws, err := st.Watches(t.Context())
	if err != nil || len(ws) != 1 || ws[0].Every != 2*time.Hour || len(ws[0].Alerts) != 0 || ws[0].Added.Sub(w.Added).Abs() > time.Millisecond {
		t.Fatalf("stored %+v, %v", ws, err)
	}

	// Reading needs no token, and shows no alert target.
	st.AddWatch(t.Context(), store.Watch{Domain: "good.example", Every: time.Hour, Alerts: []string{"mailto:someone@example.org"}})
	res, body = send(t, s, "GET", "/api/v1/watches", "", "", "")
	if res.StatusCode != 200 || strings.Contains(body, "someone@") || !strings.Contains(body, `"alert_count":1`) {
		t.Errorf("GET /api/v1/watches: %d\n%s", res.StatusCode, body)
	}
	var list struct{ Watches []watchJSON }
	json.Unmarshal([]byte(body), &list)
	if len(list.Watches) != 2 || list.Watches[0].Domain != "good.example" || list.Watches[1].Domain != "tiers.example" {
		t.Errorf("watches %+v", list.Watches)
	}

	res, _ = send(t, s, "DELETE", "/api/v1/watches/tiers.example", "Bearer "+testToken, "", "")
	if res.StatusCode != 204 {
		t.Errorf("DELETE with the token: %d, want 204", res.StatusCode)
	}
	res, body = send(t, s, "DELETE", "/api/v1/watches/tiers.example", "Bearer "+testToken, "", "")
	if res.StatusCode != 404 || !strings.Contains(body, "not watched") {
		t.Errorf("DELETE of a domain not watched: %d\n%s", res.StatusCode, body)
	}

	// A server without a token takes no changes, whatever is sent.
	off := historyServer(t, st, "")
	for _, auth := range []string{"", "Bearer " + testToken} {
		res, body := send(t, off, "POST", "/api/v1/watches", auth, "application/json", add)
		if res.StatusCode != 403 || !strings.Contains(body, "off on this server") {
			t.Errorf("no admin token, POST with %q: %d\n%s", auth, res.StatusCode, body)
		}
	}
}

// TestAddWatchInput: a watch is checked as watch add checks it.
func TestAddWatchInput(t *testing.T) {
	s := historyServer(t, openStore(t), testToken)
	for body, want := range map[string]string{
		`{"domain": "192.0.2.1"}`:                                                        "give a mail domain",
		`{"domain": "bad..example"}`:                                                     "domain",
		`{"domain": "a.example", "every": "30s"}`:                                        "at least 1m0s",
		`{"domain": "a.example", "every": "often"}`:                                      "want a period",
		`{"domain": "a.example", "alerts": ["ftp://x"]}`:                                 "scheme",
		`{"domain": "a.example", "alerts": ["https://u:p@x"]}`:                           "user name or password",
		`{"domain": "a.example", "alerts": ["mailto:a@b?cc=c@d"]}`:                       "one address",
		`{"domain": "a.example", "extra": 1}`:                                            "unknown field",
		`not json`:                                                                       "not a watch",
		`{"domain": "a.example", "alerts": [` + strings.Repeat(`"log",`, 16) + `"log"]}`: "at most 16",
	} {
		res, got := send(t, s, "POST", "/api/v1/watches", "Bearer "+testToken, "application/json", body)
		if res.StatusCode != 400 || !strings.Contains(got, want) {
			t.Errorf("%s: %d, want 400 with %q\n%s", body, res.StatusCode, want, got)
		}
	}
	res, _ := send(t, s, "POST", "/api/v1/watches", "Bearer "+testToken, "application/json", `{"domain": "`+strings.Repeat("a", maxWatchBody)+`"}`)
	if res.StatusCode != 413 {
		t.Errorf("a body over the limit: %d, want 413", res.StatusCode)
	}
}

func TestTokenEqual(t *testing.T) {
	for _, c := range []struct {
		given string
		want  bool
	}{
		{testToken, true}, {"", false}, {testToken[:1], false}, {testToken + testToken, false},
		{testToken[:len(testToken)-1] + "X", false}, {" " + testToken, false},
	} {
		if got := tokenEqual(c.given, testToken); got != c.want {
			t.Errorf("tokenEqual(%q) = %v", c.given, got)
		}
	}
}

// TestTimeline: a report page of a domain with history has the section:
// the axis with a mark per event, the events as text with their changes,
// and the certificate countdown; it stays within the CSP.
func TestTimeline(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, st, "")
	now := time.Now().UTC().Truncate(time.Second)
	a := snapshotOf(t, s, "tiers.example", now.Add(10*24*time.Hour+time.Hour))
	b := without(a)
	record(t, st, now.Add(-48*time.Hour), a, nil, false)
	record(t, st, now.Add(-24*time.Hour), b, a, false)
	// The latest check failed: the countdown is from the one before.
	record(t, st, now.Add(-time.Hour), b, nil, true)

	res, body := get(t, s, "/d/tiers.example")
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	cspSafe(t, "/d/tiers.example", body)
	sec := body[strings.Index(body, `<section class="history"`):]
	for _, want := range []string{
		`<svg class="axis"`, `aria-label="3 events from`, "could not be checked",
		`<ol class="timeline"`, "first check", "exchange-removed",
		"mx1.tiers.example</strong> (192.0.2.10 and 2001:db8::10): 10 days left, ends " + now.Add(10*24*time.Hour+time.Hour).Format(time.DateOnly),
		`class="cd-warning"`, `href="/api/v1/history/tiers.example"`,
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the history section lacks %q", want)
		}
	}
	if n := strings.Count(sec, "<circle "); n != 3 {
		t.Errorf("%d marks on the axis, want 3", n)
	}
	if !strings.Contains(body, `href="/watches"`) {
		t.Error("the header does not link to /watches")
	}
	// A domain with nothing stored has no section.
	if _, body := get(t, s, "/d/good.example"); strings.Contains(body, `id="history"`) {
		t.Error("good.example has a history section with nothing stored")
	}
}

// TestCertCountdown: days left as people read them.
func TestCertCountdown(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		end         time.Time
		text, class string
	}{
		{now.Add(40 * 24 * time.Hour), "40 days left", "ok"},
		{now.Add(14*24*time.Hour + time.Hour), "14 days left", "warning"},
		{now.Add(25 * time.Hour), "1 day left", "warning"},
		{now.Add(2 * time.Hour), "expires within a day", "error"},
		{now.Add(-2 * time.Hour), "expired today", "error"},
		{now.Add(-3*24*time.Hour - time.Hour), "expired 3 days ago", "error"},
	} {
		v := newCertView("mx.example", c.end, now)
		if v.Text != c.text || v.Class != c.class {
			t.Errorf("%v left: %q %s, want %q %s", c.end.Sub(now), v.Text, v.Class, c.text, c.class)
		}
	}
}

// TestTimelineSize: with 1,000 stored results, each with changes, the
// report page and its assets stay under 100 KB: the list is cut and says
// how many more.
func TestTimelineSize(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, st, "")
	now := time.Now().UTC()
	a := snapshotOf(t, s, "tiers.example", now.Add(90*24*time.Hour))
	b := without(a)
	prev := (*watch.Snapshot)(nil)
	for i := range 1000 {
		cur := a
		if i%2 == 1 {
			cur = b
		}
		record(t, st, now.Add(time.Duration(i-1000)*time.Hour), cur, prev, false)
		prev = cur
	}
	_, body := get(t, s, "/d/tiers.example")
	cspSafe(t, "/d/tiers.example", body)
	total := len(body)
	for _, name := range []string{"style.css", "live.js", "icon.svg"} {
		_, b := get(t, s, assets[name])
		total += len(b)
	}
	t.Logf("report with 1,000 stored results: %d bytes, %d with its assets", len(body), total)
	if total >= 100_000 {
		t.Errorf("%d bytes with its assets, over 100 KB", total)
	}
	for _, want := range []string{"The latest 200 stored checks (older ones are in", "And 180 older events", "the whole timeline as JSON"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	if n := strings.Count(body, "<circle "); n != axisMarks {
		t.Errorf("%d marks on the axis, want %d", n, axisMarks)
	}
}

// TestWatchesPage: /watches lists the watches with their last status and
// next check; its forms add and remove with the token, answered 303 back
// to the list, and are refused without it.
func TestWatchesPage(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, st, testToken)
	now := time.Now().UTC()
	st.AddWatch(t.Context(), store.Watch{Domain: "tiers.example", Every: time.Hour, NextRun: now.Add(time.Hour),
		Alerts: []string{"https://hooks.example/secret"}})
	record(t, st, now.Add(-time.Minute), snapshotOf(t, s, "tiers.example", now.Add(90*24*time.Hour)), nil, false)

	res, body := get(t, s, "/watches")
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	cspSafe(t, "/watches", body)
	for _, want := range []string{`href="/d/tiers.example#history"`, "tiers.example</a>", "1h", "✓</span> ok", `action="/watches"`, `action="/watches/remove"`, `type="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/watches lacks %q", want)
		}
	}
	if strings.Contains(body, "hooks.example") {
		t.Error("/watches shows an alert target")
	}

	form := func(path string, v url.Values) *http.Response {
		t.Helper()
		req := httptest.NewRequestWithContext(t.Context(), "POST", path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Result()
	}
	add := url.Values{"domain": {"good.example"}, "every": {"2h"}, "alerts": {"log\nmailto:pm@example.org"}}
	for _, token := range []string{"", "wrong"} {
		v := maps(add, "token", token)
		if res := form("/watches", v); res.StatusCode < 400 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("add with token %q: %d %s, want a refusal page", token, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	res = form("/watches", maps(add, "token", testToken))
	if res.StatusCode != 303 || res.Header.Get("Location") != "/watches?added=good.example" {
		t.Fatalf("add: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	ws, _ := st.Watches(t.Context())
	if len(ws) != 2 || ws[0].Domain != "good.example" || ws[0].Every != 2*time.Hour || len(ws[0].Alerts) != 2 {
		t.Fatalf("watches after the form: %+v", ws)
	}
	if _, body := get(t, s, "/watches?added=good.example"); !strings.Contains(body, "Now watching good.example.") {
		t.Error("the list does not say the watch was added")
	} else if !strings.Contains(body, "<td>2 targets</td>") || !strings.Contains(body, "<td>1 target</td>") {
		t.Error("the list does not count each watch's alert targets")
	}
	// A watch without a target alerts by a log line, as watch list says.
	if got := alertTargets(0); got != "a log line" {
		t.Errorf("no alert target: %q", got)
	}
	if _, body := get(t, s, "/watches?added=nosuch.example"); strings.Contains(body, "Now watching") {
		t.Error("the list says a domain it does not have was added")
	}
	res = form("/watches/remove", url.Values{"domain": {"good.example"}, "token": {testToken}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/watches?removed=good.example" {
		t.Fatalf("remove: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	if ws, _ := st.Watches(t.Context()); len(ws) != 1 {
		t.Errorf("watches after removing: %+v", ws)
	}

	// Without an admin token the page has no form.
	if _, body := get(t, historyServer(t, st, ""), "/watches"); strings.Contains(body, "<form class=\"watch-form\"") {
		t.Error("/watches has the forms on a server without an admin token")
	}
}

// maps is v with key set to value.
func maps(v url.Values, key, value string) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = vs
	}
	c.Set(key, value)
	return c
}

// exampleResolverTB is the example zones behind a cache.
func exampleResolverTB(t testing.TB) resolve.Resolver {
	t.Helper()
	z, err := resolve.LoadZones(exampleZones...)
	if err != nil {
		t.Fatal(err)
	}
	return resolve.NewCache(z, 0)
}

// wholeReads is a store that counts the results read whole.
type wholeReads struct {
	store.Store
	n *atomic.Int64
}

func (s wholeReads) Results(ctx context.Context, domain string, since time.Time, limit int) ([]store.Result, error) {
	rs, err := s.Store.Results(ctx, domain, since, limit)
	s.n.Add(int64(len(rs)))
	return rs, err
}

func (s wholeReads) Result(ctx context.Context, id int64) (*store.Result, error) {
	s.n.Add(1)
	return s.Store.Result(ctx, id)
}

// TestHistoryReadsLight: the history API and a report page's timeline read
// the stored results without their reports, and only the newest good one
// whole (for its certificates), however many are stored.
func TestHistoryReadsLight(t *testing.T) {
	st := openStore(t)
	var n atomic.Int64
	s := historyServer(t, wholeReads{st, &n}, "")
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a := snapshotOf(t, s, "tiers.example", t0.Add(90*24*time.Hour))
	for i := range 30 {
		record(t, st, t0.Add(time.Duration(i)*time.Hour), a, nil, i == 29)
	}
	if res, body := get(t, s, "/api/v1/history/tiers.example"); res.StatusCode != 200 || historyOf(t, body).Checks != 30 {
		t.Fatalf("%d\n%s", res.StatusCode, body)
	}
	if v := s.timeline(t.Context(), "tiers.example"); v == nil || v.Checks != 30 || len(v.Certs) == 0 {
		t.Fatalf("timeline: %+v", v)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("%d results read whole for two timelines of 30; want 2 (the newest good one, each time)", got)
	}
}

// listless fails the test when every watch is listed.
type listless struct {
	store.Store
	t *testing.T
}

func (s listless) Watches(ctx context.Context) ([]store.WatchStatus, error) {
	s.t.Error("every watch was listed")
	return s.Store.Watches(ctx)
}

// TestWatchAddReadsOne: adding or changing one watch over the API reads
// that domain's watch, not the whole list (with 100,000 watched, listing
// them took a second per POST), and still keeps an existing watch's Added
// time and answers 201 only for a new one.
func TestWatchAddReadsOne(t *testing.T) {
	st := openStore(t)
	s := historyServer(t, listless{st, t}, testToken)
	add := func(every string) *http.Response {
		res, body := send(t, s, "POST", "/api/v1/watches", "Bearer "+testToken, "application/json",
			`{"domain": "tiers.example", "every": "`+every+`"}`)
		if res.StatusCode >= 300 {
			t.Fatalf("POST: %d\n%s", res.StatusCode, body)
		}
		return res
	}
	if res := add("2h"); res.StatusCode != 201 {
		t.Errorf("a new watch: %d, want 201", res.StatusCode)
	}
	first, err := st.Watch(t.Context(), "tiers.example")
	if err != nil || first == nil {
		t.Fatalf("after the POST: %v, %v", first, err)
	}
	if res := add("30m"); res.StatusCode != 200 {
		t.Errorf("a changed watch: %d, want 200", res.StatusCode)
	}
	again, err := st.Watch(t.Context(), "tiers.example")
	if err != nil || again == nil || again.Every != 30*time.Minute || !again.Added.Equal(first.Added) {
		t.Errorf("after the change: %+v, %v; want every 30m, added %v", again, err, first.Added)
	}
}

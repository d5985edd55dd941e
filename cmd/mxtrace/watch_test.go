package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// shopZone is shop.example as it starts: two exchanges, SPF, and a DMARC
// policy that rejects.
const shopZone = `$ORIGIN example.
@            3600 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300
@            3600 IN NS  ns.example.
ns           3600 IN A   192.0.2.53
shop         3600 IN MX  10 mx1.shop.example.
shop         3600 IN MX  20 mx2.shop.example.
shop         3600 IN TXT "v=spf1 mx -all"
_dmarc.shop  3600 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@shop.example"
mx1.shop     3600 IN A   192.0.2.25
mx2.shop     3600 IN A   192.0.2.26
blog         3600 IN MX  10 mx1.shop.example.
blog         3600 IN TXT "v=spf1 mx -all"
`

// shopZoneLater is shop.example after a careless change: mx2 gone, and
// DMARC weakened to p=none. blog.example has not changed.
const shopZoneLater = `$ORIGIN example.
@            3600 IN SOA ns.example. hostmaster.example. 2 3600 600 86400 300
@            3600 IN NS  ns.example.
ns           3600 IN A   192.0.2.53
shop         3600 IN MX  10 mx1.shop.example.
shop         3600 IN TXT "v=spf1 mx -all"
_dmarc.shop  3600 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@shop.example"
mx1.shop     3600 IN A   192.0.2.25
mx2.shop     3600 IN A   192.0.2.26
blog         3600 IN MX  10 mx1.shop.example.
blog         3600 IN TXT "v=spf1 mx -all"
`

// watchEnv is a temporary database and zone file for the watch commands.
type watchEnv struct {
	db, zone string
}

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	dir := t.TempDir()
	e := &watchEnv{db: filepath.Join(dir, "watch.db"), zone: filepath.Join(dir, "shop.zone")}
	e.setZone(t, shopZone)
	return e
}

func (e *watchEnv) setZone(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(e.zone, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a command line with --db and --zone, and fails the test
// unless it exits with want.
func (e *watchEnv) run(t *testing.T, want int, args ...string) string {
	t.Helper()
	args = append([]string{"--zone", e.zone}, args...)
	args = append(args, "--db", e.db)
	code, out, errOut := mxtrace(t, args...)
	if code != want {
		t.Fatalf("mxtrace %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %v: %q", err, l)
		}
		objs = append(objs, m)
	}
	return objs
}

// TestWatchScenario: add, list, run, a zone change, run again; history
// and diff show the typed changes, in text and in JSON.
func TestWatchScenario(t *testing.T) {
	e := newWatchEnv(t)
	out := e.run(t, exitOK, "watch", "add", "Shop.Example.", "postmaster@blog.example", "--every", "30m", "--alert", "log", "--alert", "log")
	if !strings.Contains(out, "watching shop.example every 30m") || !strings.Contains(out, "watching blog.example every 30m") {
		t.Errorf("watch add:\n%s", out)
	}
	out = e.run(t, exitOK, "watch", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DOMAIN") || !strings.HasPrefix(lines[1], "blog.example") ||
		!strings.Contains(lines[2], "shop.example  30m    never") || !strings.Contains(lines[2], "now") {
		t.Errorf("watch list:\n%s", out)
	}

	out = e.run(t, exitOK, "watch", "run", "--once", "--all")
	if !strings.Contains(out, "shop.example  ok        0 changes, 0 alerts") {
		t.Errorf("first run:\n%s", out)
	}
	// Nothing is due until the period has passed.
	if out := e.run(t, exitOK, "watch", "run", "--once"); out != "nothing was due\n" {
		t.Errorf("a run with nothing due:\n%s", out)
	}
	objs := jsonLines(t, e.run(t, exitOK, "watch", "list", "--json"))
	if len(objs) != 2 || objs[1]["domain"] != "shop.example" || objs[1]["last_status"] != "ok" || objs[1]["every"] != "30m" ||
		objs[1]["every_seconds"] != 1800.0 || !slices.Equal(anyStrings(objs[1]["alerts"]), []string{"log"}) {
		t.Errorf("watch list --json: %v", objs)
	}

	e.setZone(t, shopZoneLater)
	between := time.Now().UTC()
	objs = jsonLines(t, e.run(t, exitOK, "watch", "run", "--once", "--all", "--json"))
	if len(objs) != 2 || objs[0]["domain"] != "blog.example" || len(objs[0]["changes"].([]any)) != 0 {
		t.Fatalf("second run --json: %v", objs)
	}
	shop := objs[1]
	// Two changes, each alerted to the watch's one target.
	if shop["domain"] != "shop.example" || shop["temporary"] != false || shop["result_id"] == nil || shop["alerts"] != 2.0 {
		t.Errorf("second run, shop.example: %v", shop)
	}
	kinds := changeKinds(shop["changes"])
	for _, k := range wantShopKinds {
		if !slices.Contains(kinds, k) {
			t.Errorf("second run: changes %v, want %s among them", kinds, k)
		}
	}

	out = e.run(t, exitOK, "history", "shop.example")
	if !strings.HasPrefix(out, "shop.example  2 checks, last ") || !strings.Contains(out, "first check") ||
		!strings.Contains(out, "mx2.shop.example") {
		t.Errorf("history:\n%s", out)
	}
	if i, j := strings.Index(out, "change"), strings.Index(out, "first check"); i < 0 || i > j {
		t.Errorf("history is not newest first:\n%s", out)
	}
	// --since: the second check only, with its changes.
	out = e.run(t, exitOK, "history", "shop.example", "--since", between.Format(time.RFC3339Nano))
	if !strings.HasPrefix(out, "shop.example  1 check, last ") || !strings.Contains(out, "problems  2 changes") || strings.Contains(out, "first check") {
		t.Errorf("history --since:\n%s", out)
	}
	var hist struct {
		Domain string
		Checks int
		Events []struct {
			At       time.Time
			ResultID int64 `json:"result_id"`
			Status   string
			First    bool
			Changes  []map[string]any
		}
	}
	if err := json.Unmarshal([]byte(e.run(t, exitOK, "history", "shop.example", "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	if hist.Domain != "shop.example" || hist.Checks != 2 || len(hist.Events) != 2 || hist.Events[1].First == false ||
		len(hist.Events[0].Changes) != len(kinds) || hist.Events[0].At.Before(hist.Events[1].At) {
		t.Errorf("history --json: %+v", hist)
	}

	// diff exits 1: a change is at --fail-on error (or below with never).
	out = e.run(t, exitFindings, "diff", "shop.example", "--fail-on", "warning")
	if !strings.HasPrefix(out, "shop.example  ") || !strings.Contains(out, "mx2.shop.example") {
		t.Errorf("diff:\n%s", out)
	}
	var d struct {
		Domain   string
		From, To struct {
			ResultID int64 `json:"result_id"`
			At       time.Time
			Status   string
		}
		Changes []map[string]any
	}
	if err := json.Unmarshal([]byte(e.run(t, exitOK, "diff", "shop.example", "--json", "--fail-on", "never")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Domain != "shop.example" || d.From.ResultID >= d.To.ResultID || !slices.Equal(changeKinds(anySlice(d.Changes)), kinds) {
		t.Errorf("diff --json: %+v", d)
	}
	// --since before the first check: the domain as it was then does not
	// exist in the store.
	if code, _, errOut := mxtrace(t, "diff", "shop.example", "--since", "2000-01-01", "--db", e.db); code != exitUsage || !strings.Contains(errOut, "no result stored for shop.example at or before 2000-01-01") {
		t.Errorf("diff --since before the first: exit %d, %s", code, errOut)
	}
	// --since now: the latest against itself, as it is now.
	if out := e.run(t, exitOK, "diff", "shop.example", "--since", "0s"); !strings.Contains(out, "no change") {
		t.Errorf("diff --since 0s:\n%s", out)
	}
	out = e.run(t, exitOK, "diff", "blog.example")
	if !strings.Contains(out, "no change") {
		t.Errorf("diff of an unchanged domain:\n%s", out)
	}

	e.run(t, exitOK, "watch", "remove", "shop.example")
	if out := e.run(t, exitOK, "watch", "list"); strings.Contains(out, "shop.example") {
		t.Errorf("list after remove:\n%s", out)
	}
	// The history stays.
	e.run(t, exitOK, "history", "shop.example")
}

// TestWatchRunRoute: with --mode route each watch is only routed: the
// stored result is the plan, and a zone change that removes an exchange
// and weakens DMARC gives the routing change alone.
func TestWatchRunRoute(t *testing.T) {
	e := newWatchEnv(t)
	e.run(t, exitOK, "watch", "add", "shop.example", "blog.example")
	out := e.run(t, exitOK, "watch", "run", "--once", "--all", "--mode", "route")
	if !strings.Contains(out, "shop.example  ok        0 changes, 0 alerts") {
		t.Errorf("first run:\n%s", out)
	}
	e.setZone(t, shopZoneLater)
	objs := jsonLines(t, e.run(t, exitOK, "watch", "run", "--once", "--all", "--mode", "route", "--json"))
	if len(objs) != 2 || objs[0]["domain"] != "blog.example" || len(objs[0]["changes"].([]any)) != 0 {
		t.Fatalf("second run --json: %v", objs)
	}
	if kinds := changeKinds(objs[1]["changes"]); objs[1]["domain"] != "shop.example" || objs[1]["temporary"] != false ||
		!slices.Equal(kinds, []string{"exchange-removed"}) {
		t.Errorf("second run, shop.example: %v, want exchange-removed alone", objs[1])
	}

	s, err := store.Open(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last, err := s.Last(t.Context(), "shop.example")
	if err != nil {
		t.Fatal(err)
	}
	var plan map[string]any
	if err := json.Unmarshal(last.Report, &plan); err != nil {
		t.Fatal(err)
	}
	if plan["domain"] != "shop.example" || plan["result"] != "ok" || plan["tiers"] == nil || plan["areas"] != nil {
		t.Errorf("stored report is not the plan: %s", last.Report)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func anySlice[T any](v []T) any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

func changeKinds(v any) []string {
	var out []string
	for _, c := range v.([]any) {
		out = append(out, c.(map[string]any)["kind"].(string))
	}
	return out
}

// TestWatchAddFrom: watch add --from reads a list (a file, or - for
// standard input) with comments, blank lines and duplicates, and adds it
// with the names given as arguments.
func TestWatchAddFrom(t *testing.T) {
	e := newWatchEnv(t)
	list := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(list, []byte("# our domains\nshop.example\n\n  blog.example  # the blog\nShop.Example.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.run(t, exitOK, "watch", "add", "--from", list, "a.example", "--every", "2h")
	if n := strings.Count(out, "watching "); n != 3 || !strings.Contains(out, "watching blog.example every 2h") {
		t.Errorf("watch add --from FILE:\n%s", out)
	}
	code, out, errOut := mxtraceInput(t, strings.NewReader("c.example\n# done\nshop.example\n"),
		"watch", "add", "--from", "-", "--every", "30m", "--db", e.db)
	if code != exitOK || strings.Count(out, "watching ") != 2 || !strings.Contains(out, "watching shop.example every 30m") {
		t.Errorf("watch add --from -: exit %d\n%s%s", code, out, errOut)
	}
	out = e.run(t, exitOK, "watch", "list")
	for _, d := range []string{"a.example", "blog.example", "c.example", "shop.example"} {
		if !strings.Contains(out, d) {
			t.Errorf("watch list lacks %s:\n%s", d, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("watch list: %d lines, want a header and 4 watches:\n%s", n, out)
	}
}

// wantShopKinds are the changes shopZoneLater makes.
var wantShopKinds = []string{"exchange-removed", "dmarc-weakened"}

// TestWatchUsage: bad input is exit status 2, before the database is
// touched.
func TestWatchUsage(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sub", "w.db")
	badList := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badList, []byte("# domains\na.example\n\nbad..example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"watch"}, "watch needs a command"},
		{[]string{"watch", "add"}, "watch add needs a domain"},
		{[]string{"watch", "add", "--from", badList}, "line 4: invalid domain name \"bad..example\""},
		{[]string{"watch", "add", "--from", filepath.Join(dir, "missing.txt")}, "--from: open"},
		{[]string{"watch", "add", "bad..example"}, "empty label"},
		{[]string{"watch", "add", "192.0.2.1"}, "is an IP address"},
		{[]string{"watch", "add", "a.example", "--every", "30s"}, "--every 30s: want at least 1m"},
		{[]string{"watch", "add", "a.example", "--every", "1"}, "--every \"1\": want a duration"},
		{[]string{"watch", "add", "a.example", "--alert", "ftp://x.example/"}, "--alert"},
		{[]string{"watch", "add", "a.example", "--alert", "mailto:a@b.example?cc=c@d.example"}, "--alert"},
		{[]string{"watch", "add", "a.example", "--alert", "https://user:pw@hooks.example/"}, "--alert"},
		{[]string{"watch", "run", "--all"}, "--all needs --once"},
		{[]string{"watch", "run", "--once", "--lease", "10s"}, "--lease 10s: want longer than --timeout 20s"},
		{[]string{"watch", "run", "--once", "--mail-from", "a@b.example"}, "need --mail-server"},
		{[]string{"watch", "run", "--once", "--mail-server", "smtp.example"}, "want HOST:PORT"},
		{[]string{"watch", "run", "--once", "--mail-server", "127.0.0.1:25", "--mail-from", "nobody"}, "--mail-from \"nobody\""},
		{[]string{"watch", "run", "--once", "--mail-server", "127.0.0.1:25", "--mail-from", "a@b.example", "--mail-user", "u", "--mail-plaintext"}, "in clear"},
		{[]string{"watch", "run", "--once", "--remind", "0s"}, "--remind 0"},
		{[]string{"watch", "run", "--once", "--base-url", "ftp://x"}, "--base-url"},
		{[]string{"watch", "run", "--once", "--webhook-secret-file", "/nonexistent/secret"}, "--webhook-secret-file"},
		{[]string{"watch", "run", "--once", "--concurrency", "0"}, "--concurrency 0"},
		{[]string{"watch", "run", "--once", "--mode", "scan"}, `--mode "scan": want check or route`},
		{[]string{"history", "a.example", "--since", "yesterday"}, "--since \"yesterday\""},
		{[]string{"diff"}, "accepts 1 arg"},
	} {
		code, out, errOut := mxtrace(t, append(tt.args, "--db", db)...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Dir(db)); err == nil {
		t.Errorf("bad usage created the database's directory")
	}
	// A watched domain's name is checked against the database: not
	// watched is bad input, and nothing is removed.
	mxtrace(t, "watch", "add", "a.example", "--db", db)
	code, _, errOut := mxtrace(t, "watch", "remove", "a.example", "b.example", "--db", db)
	if code != exitUsage || !strings.Contains(errOut, "b.example is not watched") {
		t.Errorf("remove of a domain not watched: exit %d, %s", code, errOut)
	}
	if _, out, _ := mxtrace(t, "watch", "list", "--db", db); !strings.Contains(out, "a.example") {
		t.Errorf("a failed remove removed a.example:\n%s", out)
	}
	for _, args := range [][]string{{"history", "b.example"}, {"diff", "b.example"}} {
		code, _, errOut := mxtrace(t, append(args, "--db", db)...)
		if code != exitUsage || !strings.Contains(errOut, "no result stored for b.example") {
			t.Errorf("%s of a domain never checked: exit %d, %s", args[0], code, errOut)
		}
	}
}

// TestParseSince: the forms --since takes.
func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-12-01":                time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-01T10:30:00Z":      time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
		"2026-12-01T10:30:00+01:00": time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		"2026-12-01 10:30":          time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
		"36h":                       time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC),
		"7d":                        time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-3h", "7days", "2026-13-01"} {
		if _, err := parseSince(in, now); exitStatus(err) != exitUsage {
			t.Errorf("parseSince(%q): %v, want a usage error", in, err)
		}
	}
}

// TestWatchChild is not a test: it is the watch run child process of
// TestWatchRunSIGTERM, run from the test binary.
func TestWatchChild(t *testing.T) {
	args := os.Getenv("MXTRACE_WATCH_CHILD")
	if args == "" {
		return
	}
	os.Exit(run(t.Context(), strings.Split(args, "\x1f"), strings.NewReader(""), os.Stdout, os.Stderr))
}

// startWatchRun starts watch run as a child process (this test binary)
// and returns it with its standard error as lines.
func startWatchRun(t *testing.T, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchChild$")
	cmd.Env = append(os.Environ(), "MXTRACE_WATCH_CHILD="+strings.Join(args, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 100000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

// waitLines reads lines until each of want has been in one, failing the
// test after limit.
func waitLines(t *testing.T, lines <-chan string, limit time.Duration, want ...string) []string {
	t.Helper()
	var seen []string
	deadline := time.After(limit)
	for len(want) > 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the daemon ended before logging %q:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			want = slices.DeleteFunc(want, func(w string) bool { return strings.Contains(l, w) })
		case <-deadline:
			t.Fatalf("no %q logged in %v:\n%s", want, limit, strings.Join(seen, "\n"))
		}
	}
	return seen
}

// silentUDP is a loopback UDP address where a socket takes queries and
// never answers: every lookup sent there waits for its time-out.
func silentUDP(t *testing.T) string {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.LocalAddr().String()
}

// TestWatchRunSIGTERM: SIGTERM stops the daemon with status 0 within the
// grace. A check that finished is stored whole; a check that cannot
// finish in the grace (its resolver never answers) is abandoned and
// nothing of it is stored.
func TestWatchRunSIGTERM(t *testing.T) {
	e := newWatchEnv(t)
	e.run(t, exitOK, "watch", "add", "shop.example", "blog.example")

	// Offline on the zone file: both domains are checked at once, and
	// the daemon waits for the next run.
	cmd, lines := startWatchRun(t, "--zone", e.zone, "watch", "run", "--db", e.db, "--grace", "2s")
	seen := waitLines(t, lines, 20*time.Second, "checked\" domain=blog.example", "checked\" domain=shop.example")
	sigterm(t, cmd, lines, 5*time.Second)
	rs := storeResults(t, e.db, "shop.example", "blog.example")
	for d, r := range rs {
		if len(r) != 1 || r[0].Status == store.StatusError || r[0].Temporary {
			t.Fatalf("%s: %d results, want 1 checked in full\n%s", d, len(r), strings.Join(seen, "\n"))
		}
		var rep struct{ Domain string }
		if err := json.Unmarshal(r[0].Report, &rep); err != nil || rep.Domain != d || !json.Valid(r[0].Facts) {
			t.Errorf("%s: stored report %v %q, facts valid %v", d, err, rep.Domain, json.Valid(r[0].Facts))
		}
	}

	// A domain outside the zone file, asked of a resolver that never
	// answers: its check outlasts the grace.
	e.run(t, exitOK, "watch", "add", "elsewhere.test")
	cmd, lines = startWatchRun(t, "--zone", e.zone, "--resolver", silentUDP(t), "--timeout", "1m", "-v",
		"watch", "run", "--db", e.db, "--grace", "1s")
	waitLines(t, lines, 20*time.Second, "watch: checking")
	rest := sigterm(t, cmd, lines, 5*time.Second)
	if !slices.ContainsFunc(rest, func(l string) bool { return strings.Contains(l, "abandoned") }) {
		t.Errorf("no check was abandoned:\n%s", strings.Join(rest, "\n"))
	}
	if rs := storeResults(t, e.db, "elsewhere.test"); len(rs["elsewhere.test"]) != 0 {
		t.Errorf("an abandoned check was stored: %+v", rs)
	}
}

// sigterm stops the daemon with SIGTERM and requires exit status 0 within
// limit, and the stop logged; it returns the lines logged meanwhile.
func sigterm(t *testing.T, cmd *exec.Cmd, lines <-chan string, limit time.Duration) []string {
	t.Helper()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	timeout := time.After(limit)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			rest = append(rest, l)
		case <-timeout:
			t.Fatalf("the daemon did not stop within %v of SIGTERM:\n%s", limit, strings.Join(rest, "\n"))
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the daemon exited with %v after SIGTERM:\n%s", err, strings.Join(rest, "\n"))
	}
	if !slices.ContainsFunc(rest, func(l string) bool { return strings.Contains(l, "watch: stopped") }) {
		t.Errorf("the stop was not logged:\n%s", strings.Join(rest, "\n"))
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	return rest
}

// storeResults opens db and returns every domain's stored results.
func storeResults(t *testing.T, db string, domains ...string) map[string][]store.Result {
	t.Helper()
	s, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string][]store.Result{}
	for _, d := range domains {
		rs, err := s.Results(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		out[d] = rs
	}
	return out
}

// TestReadmeWatch runs the commands of README.md's watch section, as
// written but on a database of the test's own, and requires status 0 and
// output from each.
func TestReadmeWatch(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## Watching domains")
	if !ok {
		t.Fatal("README.md has no watch section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	db := filepath.Join(t.TempDir(), "demo.db")
	var commands [][]string
	for line := range strings.Lines(section) {
		if line, ok := strings.CutPrefix(strings.TrimSpace(line), "go run ./cmd/mxtrace "); ok {
			commands = append(commands, strings.Fields(strings.ReplaceAll(line, "/tmp/demo.db", db)))
		}
	}
	if len(commands) < 3 {
		t.Fatalf("the watch section shows %d commands", len(commands))
	}
	t.Chdir("../..")
	for _, args := range commands {
		if code, out, errOut := mxtrace(t, args...); code != exitOK || out == "" {
			t.Errorf("mxtrace %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestWatchRunPostgresKill: three watch run daemons share one PostgreSQL;
// one is killed with SIGKILL while it checks. No domain is checked twice
// within its period, none is skipped (the dead worker's domains are taken
// over once its leases end), and the two others stop on SIGTERM with
// status 0.
func TestWatchRunPostgresKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and kills child processes")
	}
	const domains = 24
	pg := peers.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	// Every answer is delayed, so that a check lasts a while and the kill
	// finds checks in flight; every exchange is on loopback, where no
	// SMTP server listens on the closed --smtp-port.
	var zone strings.Builder
	zone.WriteString("$ORIGIN example.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n")
	var names []string
	for i := range domains {
		fmt.Fprintf(&zone, "d%02d 3600 IN MX 10 mx.d%02d\nmx.d%02d 3600 IN A 127.0.0.1\n", i, i, i)
		names = append(names, fmt.Sprintf("d%02d.example", i))
	}
	srv := dnstest.NewZone(t, zone.String(), dnstest.WithDelay(100*time.Millisecond))
	if code, _, errOut := mxtrace(t, append([]string{"watch", "add", "--db", dsn, "--every", "1m"}, names...)...); code != exitOK {
		t.Fatalf("watch add: %d %s", code, errOut)
	}
	smtpPort := strconv.Itoa(closedTCPPort(t))
	var workers []*exec.Cmd
	var logs []<-chan string
	for range 3 {
		cmd, lines := startWatchRun(t, "--resolver", srv.Addr, "--timeout", "3s", "--smtp-port", smtpPort, "-v",
			"watch", "run", "--db", dsn, "--concurrency", "2", "--lease", "4s", "--grace", "5s")
		workers, logs = append(workers, cmd), append(logs, lines)
	}
	// Kill the first as soon as it is checking.
	seen := waitLines(t, logs[0], 30*time.Second, "watch: checking")
	if err := workers[0].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = workers[0].Wait()
	go func() {
		for range logs[0] {
		}
	}()
	var dead string
	for _, l := range seen {
		if m := regexp.MustCompile(`"watch: running" worker=(\S+)`).FindStringSubmatch(l); m != nil {
			dead = m[1]
		}
	}
	s, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, err := s.Watches(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The domains the dead worker held, and until when.
	held := map[string]time.Time{}
	for _, w := range ws {
		if w.Worker == dead && w.LeaseUntil.After(time.Now()) {
			held[w.Domain] = w.LeaseUntil
		}
	}
	if dead == "" || len(held) == 0 {
		t.Fatalf("the killed worker %q held no lease", dead)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ws, err := s.Watches(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ws, func(w store.WatchStatus) bool { return w.LastRun.IsZero() }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("domains still not checked 60s after the kill: %+v", ws)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var rest []string
	for i := 1; i < 3; i++ {
		rest = append(rest, sigterm(t, workers[i], logs[i], 15*time.Second)...)
	}
	for _, d := range names {
		rs, err := s.Results(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 {
			t.Errorf("%s: %d results within its period of 1m, want 1", d, len(rs))
			continue
		}
		if until, ok := held[d]; ok && rs[0].At.Before(until) {
			t.Errorf("%s was leased to the dead worker until %v, and checked at %v", d, until, rs[0].At)
		}
	}
	t.Logf("the killed worker held %d domains; they were checked by the others after its leases ended", len(held))
}

// closedTCPPort is a loopback TCP port where nothing listens.
func closedTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkHistoryDiff measures history and diff of one domain with 1,000
// stored results (two real results of a check, alternating every ten, with
// their changes), on SQLite and on PostgreSQL (issue 18 item 9: each
// backend), as a person runs them: the whole command, from its arguments
// to the printed text, opening the database too.
func BenchmarkHistoryDiff(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchHistoryDiff(b, filepath.Join(b.TempDir(), "watch.db")) })
	b.Run("postgres", func(b *testing.B) { benchHistoryDiff(b, peers.StartPostgres(b).NewDatabase(b)) })
}

func benchHistoryDiff(b *testing.B, db string) {
	e := &watchEnv{db: db, zone: filepath.Join(b.TempDir(), "shop.zone")}
	ctx := b.Context()
	// Two real results: before and after the zone change.
	for i, z := range []string{shopZone, shopZoneLater} {
		if err := os.WriteFile(e.zone, []byte(z), 0o644); err != nil {
			b.Fatal(err)
		}
		args := [][]string{{"watch", "add", "shop.example"}, {"--zone", e.zone, "watch", "run", "--once", "--all"}}[i:]
		for _, a := range args {
			if code := run(ctx, append(a, "--db", e.db), strings.NewReader(""), io.Discard, io.Discard); code != exitOK {
				b.Fatalf("%s: exit %d", a, code)
			}
		}
	}
	s, err := store.Open(ctx, e.db)
	if err != nil {
		b.Fatal(err)
	}
	results, err := s.Results(ctx, "shop.example", time.Time{}, 0)
	if err != nil || len(results) != 2 {
		b.Fatal(len(results), err)
	}
	changes, err := s.Changes(ctx, "shop.example", time.Time{}, 0)
	if err != nil || len(changes) == 0 {
		b.Fatal(len(changes), err)
	}
	// 998 more before them, an hour apart, the two alternating every ten.
	start := results[1].At.Add(-1000 * time.Hour)
	for i := range 998 {
		r := results[1-(i/10)%2]
		r.At = start.Add(time.Duration(i) * time.Hour)
		var cs []store.Change
		if i%10 == 0 && i > 0 {
			cs = changes
		}
		if _, err := s.Record(ctx, "", r, cs, nil, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("1,000 results; a report of %d octets, its facts %d", len(results[0].Report), len(results[0].Facts))
	s.Close()
	for _, args := range [][]string{{"history", "shop.example"}, {"diff", "shop.example", "--fail-on", "never"}, {"diff", "shop.example", "--since", "500h", "--fail-on", "never"}} {
		b.Run(strings.Join(args, " "), func(b *testing.B) {
			for b.Loop() {
				var out, errOut strings.Builder
				if code := run(ctx, append(args, "--db", e.db), strings.NewReader(""), &out, &errOut); code != exitOK {
					b.Fatalf("exit %d: %s", code, errOut.String())
				}
			}
		})
	}
}

// TestWatchAlerts: watch run sends the alerts of a change to a webhook
// (signed) and through a submission server (STARTTLS), one per change
// and target, each once; an unchanged domain and a run without change
// send nothing.
func TestWatchAlerts(t *testing.T) {
	e := newWatchEnv(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := watch.Verify([]byte("s3cret"), r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var n map[string]any
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		hooks = append(hooks, n)
		mu.Unlock()
	}))
	defer hook.Close()
	received := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hooks)
	}
	ca := testpki.NewCA(t, "mxtrace test CA")
	leaf := ca.Leaf(t, testpki.LeafOptions{Names: []string{"127.0.0.1"}})
	sink := smtptest.Start(t, smtptest.Options{TLS: &tls.Config{Certificates: []tls.Certificate{leaf}}})

	e.run(t, exitOK, "watch", "add", "shop.example", "blog.example", "--alert", hook.URL+"/hook", "--alert", "mailto:ops@shop.example")
	runArgs := []string{"watch", "run", "--once", "--all", "--webhook-secret-file", secret, "--ca", ca.WriteCertFile(t),
		"--mail-server", sink.Addr().String(), "--mail-from", "mxtrace@shop.example"}
	e.run(t, exitOK, runArgs...)
	if len(received()) != 0 || len(sink.Messages()) != 0 {
		t.Fatalf("the first checks, with no error, alerted: %v, %d messages", received(), len(sink.Messages()))
	}
	e.setZone(t, shopZoneLater)
	e.run(t, exitOK, runArgs...)
	var kinds []string
	for _, n := range received() {
		if n["domain"] != "shop.example" || n["kind"] != "change" {
			t.Errorf("webhook got %v", n)
			continue
		}
		kinds = append(kinds, changeKinds(n["changes"])...)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"dmarc-weakened", "exchange-removed"}) {
		t.Errorf("webhook got the changes %v, want dmarc-weakened and exchange-removed, one each", kinds)
	}
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("the sink got %d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		if !m.TLS || m.From != "mxtrace@shop.example" || !slices.Equal(m.To, []string{"ops@shop.example"}) || !strings.Contains(string(m.Data), "shop.example") {
			t.Errorf("message: TLS %v, from %q to %q:\n%s", m.TLS, m.From, m.To, m.Data)
		}
	}
	// Nothing changed: nothing more is sent.
	e.run(t, exitOK, runArgs...)
	if len(received()) != 2 || len(sink.Messages()) != 2 {
		t.Errorf("a run without change sent more: %d webhooks, %d messages", len(received()), len(sink.Messages()))
	}
}

// TestWatchRunKill9 holds watch run to issue 18 item 7 on SQLite and on
// PostgreSQL: kill -9 at any point loses no committed result, and every
// alert reaches its receiver, once, or again only after a kill that cut
// its delivery between the receiver's 2xx and the store's mark, under the
// same X-Mxtrace-Alert-Id (docs/watch.md#delivery).
func TestWatchRunKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	t.Run("sqlite", func(t *testing.T) { testWatchRunKill9(t, "") })
	t.Run("postgres", func(t *testing.T) { testWatchRunKill9(t, peers.StartPostgres(t).NewDatabase(t)) })
}

// killReceiver is the webhook receiver of testWatchRunKill9: it verifies
// each alert, counts its deliveries by the ID receivers deduplicate on
// (X-Mxtrace-Alert-Id, the same as the body's "id") with the round each
// came in, and while hold is armed, keeps each request it took unanswered
// and says so on held, with the round: the test kills the sender then,
// once the receiver has the alert and before the sender has its 2xx.
type killReceiver struct {
	t     *testing.T
	round atomic.Int64
	hold  atomic.Bool
	held  chan int64
	done  chan struct{} // closed at the end of the test: held requests end
	// active counts the requests being handled: none once a killed
	// sender's last ones are counted.
	active atomic.Int64

	mu  sync.Mutex
	got map[int64][]int64 // alert ID: the round of each delivery
}

func (k *killReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.active.Add(1)
	defer k.active.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // cut by a kill while sending: not a delivery
	}
	var n struct{ ID int64 }
	if err := json.Unmarshal(body, &n); err != nil || watch.Verify([]byte("k"), r.Header, body, time.Now(), 0) != nil {
		k.t.Errorf("webhook: %v %s", err, body)
		http.Error(w, "bad alert", http.StatusBadRequest)
		return
	}
	id, err := strconv.ParseInt(r.Header.Get(watch.HeaderAlertID), 10, 64)
	if err != nil || id != n.ID {
		k.t.Errorf("webhook: %s %q, body id %d", watch.HeaderAlertID, r.Header.Get(watch.HeaderAlertID), n.ID)
	}
	k.mu.Lock()
	k.got[id] = append(k.got[id], k.round.Load())
	k.mu.Unlock()
	if k.hold.Load() {
		select {
		case k.held <- k.round.Load():
		default:
		}
		select {
		case <-r.Context().Done():
		case <-k.done:
		}
	}
}

// deliveries returns a copy of what the receiver counted, once the
// requests it was taking have been handled.
func (k *killReceiver) deliveries() map[int64][]int64 {
	k.t.Helper()
	// A request the dead sender wrote whole may still be on its way to
	// the handler.
	time.Sleep(50 * time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); k.active.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			k.t.Fatal("the webhook receiver is still handling requests 10s after the sender died")
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[int64][]int64, len(k.got))
	for id, rounds := range k.got {
		out[id] = slices.Clone(rounds)
	}
	return out
}

// testWatchRunKill9 kills watch run with SIGKILL in a loop, each run after
// a zone change that gives every domain one change and so one alert: in
// even rounds at a random moment once it has begun to check, in odd rounds
// while the webhook receiver holds an alert it has taken (delivered, not
// yet marked sent). After each kill it notes the alerts the receiver got
// that the store does not hold as sent: only these may come again. Then one
// run is let end, and a deliverer whose clock is past the alert leases of
// the dead runs delivers what they had taken. The store must then hold
// every result a killed run logged, whole, every change and alert with its
// result, and every alert sent; the receiver must have got every stored
// alert, nothing else, and an alert more than once only for a kill that
// left it received and unmarked, at most once per such kill.
func testWatchRunKill9(t *testing.T, dsn string) {
	const (
		domains = 12
		rounds  = 8
	)
	zoneOf := func(round int) string {
		var b strings.Builder
		b.WriteString("$ORIGIN example.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.53\n")
		for i := range domains {
			// Each round moves the second exchange's preference: one
			// change a domain a round.
			fmt.Fprintf(&b, "d%02d 3600 IN MX 10 mx1.d%02d\nd%02d 3600 IN MX %d mx2.d%02d\nmx1.d%02d 3600 IN A 192.0.2.1\nmx2.d%02d 3600 IN A 192.0.2.2\n",
				i, i, i, 20+round, i, i, i)
		}
		return b.String()
	}
	e := newWatchEnv(t)
	if dsn != "" {
		e.db = dsn
	}
	var names []string
	for i := range domains {
		names = append(names, fmt.Sprintf("d%02d.example", i))
	}
	rcv := &killReceiver{t: t, held: make(chan int64, 1), done: make(chan struct{}), got: map[int64][]int64{}}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	defer close(rcv.done)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.run(t, exitOK, append([]string{"watch", "add", "--alert", hook.URL}, names...)...)
	runArgs := []string{"--zone", e.zone, "--timeout", "500ms", "-v", "watch", "run", "--db", e.db, "--once", "--all",
		"--concurrency", "12", "--lease", "600ms", "--webhook-secret-file", secret}
	s, err := store.Open(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// leasesPassed waits until no dead run holds a watch: --all claims
	// every watch no one holds.
	leasesPassed := func() {
		for {
			ws, err := s.Watches(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ws, func(w store.WatchStatus) bool { return w.LeaseUntil.After(time.Now()) })
			if i < 0 {
				return
			}
			time.Sleep(time.Until(ws[i].LeaseUntil))
		}
	}
	// sentNow is the set of alerts the store holds as sent.
	sentNow := func() map[int64]bool {
		sent := map[int64]bool{}
		for _, d := range names {
			as, err := s.Alerts(t.Context(), d, time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				if !a.Sent.IsZero() {
					sent[a.ID] = true
				}
			}
		}
		return sent
	}
	logged := map[int64]bool{}
	// unmarked[id] are the rounds whose kill left alert id received by
	// the webhook and not marked sent in the store.
	unmarked := map[int64][]int64{}
	hits := 0 // kills that cut a delivery
	checkedLine := regexp.MustCompile(`"watch: checked" domain=\S+ result=(\d+)`)
	for round := range rounds {
		leasesPassed()
		e.setZone(t, zoneOf(round))
		rcv.round.Store(int64(round))
		atDelivery := round%2 == 1
		rcv.hold.Store(atDelivery)
		cmd, lines := startWatchRun(t, runArgs...)
		seen := waitLines(t, lines, 20*time.Second, "watch: checking")
		if atDelivery {
			// Killed while the receiver holds an alert it has taken; a
			// run with nothing to deliver ends by itself.
			exited := make(chan struct{})
			go func() {
				for l := range lines {
					seen = append(seen, l)
				}
				close(exited)
			}()
			timeout := time.After(20 * time.Second)
		wait:
			for {
				select {
				case r := <-rcv.held:
					if r == int64(round) { // not a late one of an earlier round
						break wait
					}
				case <-exited:
					break wait
				case <-timeout:
					t.Fatal("no alert reached the receiver in 20s")
				}
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			<-exited
		} else {
			time.Sleep(time.Duration(rand.N(60000)) * time.Microsecond)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			for l := range lines {
				seen = append(seen, l)
			}
		}
		rcv.hold.Store(false)
		for _, l := range seen {
			if m := checkedLine.FindStringSubmatch(l); m != nil {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				logged[id] = true
			}
		}
		// The dead process sends nothing more: what the receiver got in
		// this round and the store does not hold as sent will come again.
		sent, hit := sentNow(), false
		for id, rs := range rcv.deliveries() {
			if slices.Contains(rs, int64(round)) && !sent[id] {
				unmarked[id] = append(unmarked[id], int64(round))
				hit = true
			}
		}
		if hit {
			hits++
		}
	}
	// Once the dead runs' leases have passed, a run that is not killed
	// checks every domain and delivers what is due.
	leasesPassed()
	rcv.round.Store(rounds)
	if code, _, errOut := mxtrace(t, runArgs...); code != exitOK {
		t.Fatalf("the last run: exit %d\n%s", code, errOut)
	}
	// What the dead runs' deliverers had taken is due again once their
	// alert leases end (watch run's default: twice the webhook time-out
	// plus a minute); a deliverer whose clock is past them takes it now
	// instead of the test waiting two minutes.
	rcv.round.Store(rounds + 1)
	late := watch.Deliverer{Store: s, Webhook: &watch.Webhook{Secret: []byte("k")},
		Now: func() time.Time { return time.Now().Add(2*watch.DefaultWebhookTimeout + time.Minute + time.Second) }}
	for {
		n, err := late.Drain(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	stored := map[int64]bool{}
	var alerts []store.Alert
	for _, d := range names {
		rs, err := s.Results(t.Context(), d, time.Time{}, 0)
		if err != nil || len(rs) == 0 {
			t.Fatalf("%s: %d results, %v", d, len(rs), err)
		}
		for _, r := range rs {
			stored[r.ID] = true
			var rep struct{ Domain string }
			if err := json.Unmarshal(r.Report, &rep); err != nil || rep.Domain != d {
				t.Errorf("%s: result %d: report %v", d, r.ID, err)
			}
			if _, err := watch.ParseSnapshot(r.Facts); err != nil {
				t.Errorf("%s: result %d: facts %v", d, r.ID, err)
			}
		}
		cs, err := s.Changes(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if !stored[c.ResultID] {
				t.Errorf("%s: a change of result %d, which is not stored", d, c.ResultID)
			}
		}
		as, err := s.Alerts(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if !stored[a.ResultID] {
				t.Errorf("%s: alert %d of result %d, which is not stored", d, a.ID, a.ResultID)
			}
			if a.Sent.IsZero() {
				t.Errorf("%s: alert %d is still in the outbox: %d failed attempts, next %v, last error %q", d, a.ID, a.Attempts, a.NextAttempt, a.LastError)
			}
		}
		alerts = append(alerts, as...)
	}
	for id := range logged {
		if !stored[id] {
			t.Errorf("result %d was logged as stored and is not in the store", id)
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alert was stored")
	}
	got := rcv.deliveries()
	ids := map[int64]bool{}
	for _, a := range alerts {
		ids[a.ID] = true
		if len(got[a.ID]) == 0 {
			t.Errorf("alert %d (%s) never reached the webhook", a.ID, a.Domain)
		}
	}
	sends, dups := 0, 0
	for id, rs := range got {
		sends += len(rs)
		if !ids[id] {
			t.Errorf("the webhook got alert %d, which is not in the store", id)
			continue
		}
		// Every delivery but the last was cut by a kill before its mark,
		// one delivery of it a round.
		for _, r := range rs[:len(rs)-1] {
			if !slices.Contains(unmarked[id], r) {
				t.Errorf("alert %d was delivered in rounds %v: again after round %d, whose kill had not left it unmarked (unmarked after %v)", id, rs, r, unmarked[id])
			}
		}
		if len(slices.Compact(slices.Clone(rs))) != len(rs) {
			t.Errorf("alert %d was delivered twice in one round: %v", id, rs)
		}
		dups += len(rs) - 1
	}
	if hits == 0 {
		t.Error("no kill cut a delivery: the test did not test the resend")
	}
	t.Logf("%d results (%d logged by killed runs), %d alerts, %d webhook deliveries, %d of them repeats; %d of %d kills cut a delivery",
		len(stored), len(logged), len(alerts), sends, dups, hits, rounds)
}

// TestDiffPassesOverFailures: diff compares the two newest results of
// checks that were done, however many failed checks lie between them.
func TestDiffPassesOverFailures(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	s, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UTC()
	var ids []int64
	for i := range 30 {
		r := store.Result{Domain: "a.example", At: start.Add(time.Duration(i) * time.Minute), Status: store.StatusOK,
			Report: []byte(`{"domain":"a.example"}`), Facts: []byte(`{"version":1,"domain":"a.example"}`)}
		// Only the first and the last check were done.
		if i > 0 && i < 29 {
			r.Status, r.Temporary = store.StatusError, true
		}
		id, err := s.Record(t.Context(), "", r, nil, nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	s.Close()
	code, out, errOut := mxtrace(t, "diff", "a.example", "--json", "--db", db)
	var d struct {
		From, To struct {
			ResultID int64 `json:"result_id"`
		}
	}
	if code != exitOK || json.Unmarshal([]byte(out), &d) != nil || d.From.ResultID != ids[0] || d.To.ResultID != ids[29] {
		t.Errorf("diff: exit %d, %s%s; want results %d and %d compared", code, out, errOut, ids[0], ids[29])
	}
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

// TestHistoryDiffReadLight: history reads no result whole, diff and
// diff --since only the two they compare, however many are stored.
func TestHistoryDiffReadLight(t *testing.T) {
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now().Add(-time.Hour).UTC()
	for i := range 40 {
		r := store.Result{Domain: "a.example", At: start.Add(time.Duration(i) * time.Minute), Status: store.StatusOK,
			Report: []byte(`{"domain":"a.example"}`), Facts: []byte(`{"version":1,"domain":"a.example"}`), Temporary: i%3 == 1}
		if _, err := st.Record(t.Context(), "", r, nil, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var n atomic.Int64
	s := wholeReads{st, &n}
	g := &globals{stdout: io.Discard, stderr: io.Discard, failOn: "never"}
	if err := g.history(t.Context(), s, "a.example", time.Time{}, 100); err != nil || n.Load() != 0 {
		t.Errorf("history: %v; %d results read whole, want none", err, n.Load())
	}
	for _, since := range []time.Time{{}, start.Add(10 * time.Minute)} {
		n.Store(0)
		if err := g.diff(t.Context(), s, "a.example", since); err != nil || n.Load() != 2 {
			t.Errorf("diff since %v: %v; %d results read whole, want 2", since, err, n.Load())
		}
	}
}

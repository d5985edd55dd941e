package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// testQueue is a queue in a temporary directory with two messages: 1 for
// two recipients at example.com, 2 for one at example.org, received an
// hour and a minute ago.
func testQueue(t *testing.T) (string, *queue.Queue) {
	t.Helper()
	return testQueueAt(t, filepath.Join(t.TempDir(), "relay.db"))
}

// testQueueAt is testQueue in the database path names (a SQLite file, or
// postgres://...).
func testQueueAt(t *testing.T, path string) (string, *queue.Queue) {
	t.Helper()
	q, err := queue.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	now := time.Now()
	for _, m := range []*queue.Message{
		{Sender: "alice@sender.test", Recipients: []string{"bob@example.com", "carol@example.com"}, Received: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		{Sender: "", Recipients: []string{"dave@example.org"}, Received: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
	} {
		m.Data = []byte("Subject: test\r\n\r\nhello\r\n")
		if _, err := q.Enqueue(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	return path, q
}

// oneLine checks a refusal: exit status 2, nothing on stdout, one line on
// stderr containing want.
func oneLine(t *testing.T, args []string, want string) {
	t.Helper()
	code, out, errOut := mxtrace(t, args...)
	if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) {
		t.Errorf("mxtrace %s: exit %d, stdout %q, stderr %q; want 2 and one line with %q", strings.Join(args, " "), code, out, errOut, want)
	}
}

func TestRelayQueueList(t *testing.T) {
	path, _ := testQueue(t)
	code, out, errOut := mxtrace(t, "relay", "queue", "list", "--queue", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID  RECEIVED") {
		t.Fatalf("want a header and a line per recipient:\n%s", out)
	}
	for i, want := range []*regexp.Regexp{
		regexp.MustCompile(`^1 +\S+ \S+ +alice@sender\.test +bob@example\.com +queued +0 +now$`),
		regexp.MustCompile(`^ +carol@example\.com +queued +0 +now$`),
		regexp.MustCompile(`^2 +\S+ \S+ +<> +dave@example\.org +queued +0 +now$`),
	} {
		if !want.MatchString(lines[i+1]) {
			t.Errorf("line %d: %q does not match %s", i+1, lines[i+1], want)
		}
	}

	code, out, _ = mxtrace(t, "relay", "queue", "list", "--queue", path, "--domain", "Example.ORG.", "--json")
	var e relay.EntryJSON
	if err := json.Unmarshal([]byte(out), &e); code != exitOK || err != nil {
		t.Fatalf("--domain --json: exit %d, %v:\n%s", code, err, out)
	}
	if strings.Count(out, "\n") != 1 || e.ID != 2 || e.Sender != "" || len(e.Recipients) != 1 || e.Recipients[0].Address != "dave@example.org" ||
		e.Recipients[0].State != "queued" || e.Recipients[0].Next.IsZero() {
		t.Errorf("--domain example.org --json: %s", out)
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	if code, out, _ := mxtrace(t, "relay", "queue", "list", "--queue", empty); code != exitOK || out != "the queue is empty\n" {
		t.Errorf("empty queue: exit %d, %q", code, out)
	}
	// XDG_DATA_HOME decides the default queue, as it does watch's database.
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	if code, out, _ := mxtrace(t, "relay", "queue", "list"); code != exitOK || out != "the queue is empty\n" {
		t.Errorf("default queue: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_DATA_HOME"), "mxtrace", "relay.db")); err != nil {
		t.Errorf("the default queue is not $XDG_DATA_HOME/mxtrace/relay.db: %v", err)
	}
}

func TestRelayQueueShow(t *testing.T) {
	path, q := testQueue(t)
	// carol's first attempt is deferred for 10 minutes; bob is delivered.
	now := time.Now()
	ds, err := q.Claim(t.Context(), "test", now, time.Minute, 10, "example.com")
	if err != nil || len(ds) != 1 {
		t.Fatalf("Claim: %v, %v", ds, err)
	}
	if err := q.Finish(t.Context(), ds[0], queue.Outcome{Delivered: []string{"bob@example.com"},
		Deferred: map[string]string{"carol@example.com": "451 4.3.0 try later"}, Next: now.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := mxtrace(t, "relay", "queue", "show", "1", "--queue", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"message 1\n", "  sender    alice@sender.test\n", "  held      no\n", "recipients\n",
		"  bob@example.com: delivered after 1 attempt\n",
		"  carol@example.com: deferred after 1 attempt, next attempt " + timeText(now.Add(10*time.Minute).Truncate(time.Microsecond)),
		"    last error: 451 4.3.0 try later\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = mxtrace(t, "relay", "queue", "show", "2", "--queue", path, "--json")
	if code != exitOK || !strings.Contains(out, `"id":2`) || !strings.Contains(out, `"sender":""`) {
		t.Errorf("show --json: exit %d, %s", code, out)
	}

	oneLine(t, []string{"relay", "queue", "show", "99", "--queue", path}, "message 99 is not in the queue")
	oneLine(t, []string{"relay", "queue", "show", "x1", "--queue", path}, `"x1" is not a message ID`)
	oneLine(t, []string{"relay", "queue", "show", "--queue", path}, "accepts 1 arg")
}

// TestRelayQueueOperations: hold, release, flush and delete, on SQLite
// and on PostgreSQL (--queue postgres://...).
func TestRelayQueueOperations(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testQueueOperations(t, filepath.Join(t.TempDir(), "relay.db")) })
	t.Run("postgres", func(t *testing.T) { testQueueOperations(t, peers.StartPostgres(t).NewDatabase(t)) })
}

func testQueueOperations(t *testing.T, dsn string) {
	path, q := testQueueAt(t, dsn)
	show := func(id queue.ID) *queue.Entry {
		t.Helper()
		e, err := q.Show(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	// One unknown ID changes nothing, not even the known one before it.
	oneLine(t, []string{"relay", "queue", "hold", "1", "99", "--queue", path}, "message 99 is not in the queue")
	if show(1).Held {
		t.Fatal("hold 1 99 held 1")
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "hold", "1", "2", "--queue", path); code != exitOK || out != "1: held\n2: held\n" {
		t.Fatalf("hold: exit %d, %q", code, out)
	}
	if !show(1).Held || !show(2).Held {
		t.Fatal("hold did not hold")
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "list", "--queue", path); code != exitOK || !regexp.MustCompile(`bob@example\.com +held +0 *\n`).MatchString(out) {
		t.Errorf("list does not show the hold:\n%s", out)
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "release", "1", "--queue", path, "--json"); code != exitOK || out != `{"id":1,"released":true}`+"\n" {
		t.Errorf("release --json: exit %d, %q", code, out)
	}
	if show(1).Held || !show(2).Held {
		t.Error("release 1 did not release 1 alone")
	}

	// flush: a deferred recipient becomes due now.
	now := time.Now()
	ds, err := q.Claim(t.Context(), "test", now, time.Minute, 10, "example.com")
	if err != nil || len(ds) != 1 {
		t.Fatalf("Claim: %v, %v", ds, err)
	}
	later := now.Add(time.Hour)
	if err := q.Finish(t.Context(), ds[0], queue.Outcome{Deferred: map[string]string{"bob@example.com": "451", "carol@example.com": "451"}, Next: later}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "flush", "1", "--queue", path); code != exitOK || out != "1: its pending recipients are due now\n" {
		t.Errorf("flush 1: exit %d, %q", code, out)
	}
	for _, r := range show(1).Recipients {
		if r.Next.After(time.Now()) {
			t.Errorf("after flush, %s is next tried at %v", r.Address, r.Next)
		}
	}
	if err := q.Finish(t.Context(), ds[0], queue.Outcome{Deferred: map[string]string{"bob@example.com": "451", "carol@example.com": "451"}, Next: later}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "flush", "--domain", "EXAMPLE.com", "--queue", path); code != exitOK || out != "example.com: 1 message due now\n" {
		t.Errorf("flush --domain: exit %d, %q", code, out)
	}
	if code, out, _ := mxtrace(t, "relay", "queue", "flush", "--domain", "example.net", "--queue", path, "--json"); code != exitOK || out != `{"domain":"example.net","flushed":0}`+"\n" {
		t.Errorf("flush --domain of no mail: exit %d, %q", code, out)
	}
	oneLine(t, []string{"relay", "queue", "flush", "--queue", path}, "flush needs message IDs or --domain DOMAIN")
	oneLine(t, []string{"relay", "queue", "flush", "1", "--domain", "example.com", "--queue", path}, "not both")
	oneLine(t, []string{"relay", "queue", "flush", "--domain", "a..b", "--queue", path}, "empty label")

	if code, out, _ := mxtrace(t, "relay", "queue", "delete", "2", "--queue", path); code != exitOK || out != "2: deleted\n" {
		t.Errorf("delete: exit %d, %q", code, out)
	}
	if _, err := q.Show(t.Context(), 2); err == nil {
		t.Error("delete 2 left it in the queue")
	}
	oneLine(t, []string{"relay", "queue", "delete", "2", "--queue", path}, "message 2 is not in the queue")
	oneLine(t, []string{"relay", "queue", "release", "--queue", path}, "requires at least 1 arg")
	oneLine(t, []string{"relay", "queue", "--queue", path}, "queue needs a command")
	oneLine(t, []string{"relay", "queue", "list", "--queue", path, "extra"}, "unknown command")
}

// TestRelayQueueUnreadable: a queue that cannot be opened is a job that
// could not be done (3), one line.
func TestRelayQueueUnreadable(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := mxtrace(t, "relay", "queue", "list", "--queue", dir) // a directory
	if code != exitFailed || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--queue") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestRelayBadFlags: every bad flag is one line and exit status 2,
// before the queue is opened or a port taken.
func TestRelayBadFlags(t *testing.T) {
	dir := t.TempDir()
	qpath := filepath.Join(dir, "relay.db")
	recipients := filepath.Join(dir, "recipients")
	if err := os.WriteFile(recipients, []byte("bob@example.com\nnot an address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"relay", "--queue", qpath, "--listen", "127.0.0.1:0", "--hostname", "mx2.example.com"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "--domain is required"},
		{[]string{"--domain", "a..example"}, "empty label"},
		{[]string{"--domain", "user@example.com"}, "a domain, not an address"},
		{[]string{"--domain", "example.com", "--recipients", "x", "--callout"}, "exclude each other"},
		{[]string{"--domain", "example.com", "--down-policy", "accept"}, `--down-policy "accept": want tempfail or known`},
		{[]string{"--domain", "example.com", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--domain", "example.com", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")}, "--tls-cert, --tls-key"},
		{[]string{"--domain", "example.com", "--max-size", "0"}, "--max-size 0"},
		{[]string{"--domain", "example.com", "--max-conns", "5", "--max-conns-per-client", "6"}, "more than --max-conns"},
		{[]string{"--domain", "example.com", "--rate", "-1"}, "--rate -1"},
		{[]string{"--domain", "example.com", "--rate", "NaN"}, "--rate NaN"},
		{[]string{"--domain", "example.com", "--lifetime", "0s"}, "--lifetime 0s"},
		{[]string{"--domain", "example.com", "--lifetime", "1h", "--delay-notice", "2h"}, "less than --lifetime"},
		{[]string{"--domain", "example.com", "--retry-factor", "0.5"}, "--retry-factor a number at least 1"},
		{[]string{"--domain", "example.com", "--per-destination", "0"}, "--per-destination 0"},
		{[]string{"--domain", "example.com", "--probe-every", "0s"}, "--probe-every 0s"},
		{[]string{"--domain", "example.com", "--probe-every", "2"}, `--probe-every "2": want a duration`},
		{[]string{"--domain", "example.com", "--mta-sts-port", "0"}, "--mta-sts-port 0: not a TCP port"},
		{[]string{"--domain", "example.com", "--self", "-bad-.example.com"}, "--self"},
		{[]string{"--domain", "example.com", "--recipients", recipients}, "not an address"},
		{[]string{"--domain", "example.com", "--recipients", filepath.Join(dir, "missing")}, "--recipients"},
		{[]string{"--domain", "example.com", "--callout", "--zone", ""}, "--zone: an empty value"},
		// Issue 19 item 2: no verifier is backscatter, so it is asked for
		// in so many words, and then alone.
		{[]string{"--domain", "example.com"}, "no recipient verification: give --recipients FILE or --callout"},
		{[]string{"--domain", "example.com", "--down-policy", "known"}, "no recipient verification"},
		{[]string{"--domain", "example.com", "--accept-any-recipient", "--callout"}, "--accept-any-recipient excludes --recipients and --callout"},
		{[]string{"--domain", "example.com", "--accept-any-recipient", "--recipients", recipients}, "--accept-any-recipient excludes"},
		{[]string{"--domain", "example.com", "--no-such-flag"}, "unknown flag"},
		{[]string{"--domain", "example.com", "extra-argument"}, "unknown command"},
	} {
		oneLine(t, append(slices.Clone(base), tt.args...), tt.want)
	}
	if _, err := os.Stat(qpath); !os.IsNotExist(err) {
		t.Errorf("a refused command line created the queue: %v", err)
	}
}

// relayZone: relay.test's primary mx1 (MX 10) and the relay mx2 (MX 20),
// each on its own loopback address; the sender's domain has no SPF or
// DMARC record, so the sender policy lets its mail through (none).
const relayZone = `$ORIGIN test.
@             3600 IN SOA ns hostmaster 1 3600 600 86400 300
relay         3600 IN MX 10 mx1.relay
relay         3600 IN MX 20 mx2.relay
mx1.relay     3600 IN A 127.0.0.31
mx2.relay     3600 IN A 127.0.0.32
sender        3600 IN MX 10 mx.sender
mx.sender     3600 IN A 192.0.2.1
`

// relayListening is the relay's start line: its SMTP and HTTP addresses.
var relayListening = regexp.MustCompile(`msg="relay: listening" smtp=(\S+) .* http=(http://\S+/)`)

// startRelay runs mxtrace relay with args until ctx ends, and returns its
// SMTP address and site URL once it logs them, the channel of its exit
// status and its standard error.
func startRelay(t *testing.T, ctx context.Context, args ...string) (string, string, <-chan int, *lockedBuffer) {
	t.Helper()
	stderr := &lockedBuffer{}
	exit := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		exit <- run(ctx, append([]string{"relay"}, args...), strings.NewReader(""), io.Discard, stderr)
	}()
	// A relay on the test's context stops when the test ends; it is
	// waited for, so no relay outlives its test.
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Errorf("the relay did not stop:\n%s", stderr)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := relayListening.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], m[2], exit, stderr
		}
		select {
		case code := <-exit:
			t.Fatalf("relay exited with %d before listening:\n%s", code, stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("relay did not log its addresses:\n%s", stderr)
	return "", "", nil, nil
}

// TestRelayEndToEnd: a message sent to the relay (MX 20) while the
// primary (MX 10) answers is queued, delivered to the primary alone, and
// leaves the queue; a recipient of another domain and an unknown one are
// refused at RCPT; the queue page, the API and the metrics say so; and
// the relay stops cleanly on its context (SIGINT). On a SQLite queue,
// and on PostgreSQL.
func TestRelayEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRelayEndToEnd(t, filepath.Join(t.TempDir(), "relay.db")) })
	t.Run("postgres", func(t *testing.T) { testRelayEndToEnd(t, peers.StartPostgres(t).NewDatabase(t)) })
}

func testRelayEndToEnd(t *testing.T, qpath string) {
	dir := t.TempDir()
	zone, recipients := filepath.Join(dir, "test.zone"), filepath.Join(dir, "recipients")
	if err := os.WriteFile(zone, []byte(relayZone), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recipients, []byte("# the primary's users\nbob@relay.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: fmt.Sprintf("127.0.0.31:%d", port), Hostname: "mx1.relay.test"})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr, site, exit, stderr := startRelay(t, ctx, "--zone", zone, "--domain", "relay.test", "--hostname", "mx2.relay.test",
		"--listen", fmt.Sprintf("127.0.0.32:%d", port), "--smtp-port", strconv.Itoa(port), "--allow-private",
		"--queue", qpath, "--recipients", recipients, "--http", "127.0.0.1:0", "--timeout", "5s")

	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.sender.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	for _, refused := range []string{"someone@elsewhere.test", "nobody@relay.test"} {
		err := c.Rcpt(refused, nil)
		if e, ok := err.(*smtp.SMTPError); !ok || e.Code != 550 {
			t.Errorf("RCPT %s: %v, want 550", refused, err)
		}
	}
	if err := c.Rcpt("bob@relay.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "From: alice@sender.test\r\nTo: bob@relay.test\r\nSubject: through the backup\r\nMessage-ID: <e2e@sender.test>\r\n\r\nhello\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()

	// The relay wakes its deliverer at once: the primary has the message
	// (bounded wait, not a timed assertion).
	var got []smtptest.Message
	for deadline := time.Now().Add(20 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		got = primary.Messages()
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("the primary got %d messages:\n%s", len(got), stderr)
	}
	m := got[0]
	if m.From != "alice@sender.test" || len(m.To) != 1 || m.To[0] != "bob@relay.test" {
		t.Errorf("envelope %s → %v", m.From, m.To)
	}
	data := string(m.Data)
	if !strings.Contains(data, "Subject: through the backup") || !strings.Contains(data, "by mx2.relay.test") || !strings.Contains(data, "Received-SPF: none") {
		t.Errorf("delivered data lacks the original or the relay's fields:\n%s", data)
	}

	// Delivered, so the queue is empty once the outcome is recorded.
	var body queueBody
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		body = getQueue(t, site)
		if body.Stats.Messages == 0 {
			break
		}
	}
	if body.Stats.Messages != 0 || len(body.Messages) != 0 {
		t.Errorf("queue after delivery: %+v", body)
	}
	series := scrapeMetrics(t, site)
	for name, want := range map[string]float64{
		"mxtrace_relay_messages_accepted_total":                             1,
		`mxtrace_relay_deliveries_total{result="delivered"}`:                1,
		`mxtrace_relay_rcpt_refused_total{reason="not-our-domain"}`:         1,
		"mxtrace_relay_queue_messages":                                      0,
		"mxtrace_relay_queue_readable":                                      1,
		`mxtrace_http_requests_total{code="200",route="GET /api/v1/queue"}`: -1, // present
		`mxtrace_relay_rcpt_refused_total{reason="unknown-recipient"}`:      1,
	} {
		v, ok := series[name]
		if !ok || (want >= 0 && v != want) {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	resp, err := http.Get(site + "queue")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "The queue is empty") {
		t.Errorf("/queue: %d\n%s", resp.StatusCode, page)
	}

	cancel()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Errorf("relay exited with %d:\n%s", code, stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("relay did not stop:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), `msg="relay: stopped"`) {
		t.Errorf("no stop line:\n%s", stderr)
	}
}

// queueBody is GET /api/v1/queue.
type queueBody struct {
	Stats    relay.StatsJSON   `json:"stats"`
	Messages []relay.EntryJSON `json:"messages"`
}

func getQueue(t *testing.T, site string) queueBody {
	t.Helper()
	resp, err := http.Get(site + "api/v1/queue")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b queueBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/v1/queue: %d, %v", resp.StatusCode, err)
	}
	return b
}

// scrapeMetrics reads /metrics into series → value.
func scrapeMetrics(t *testing.T, site string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(site + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

// TestReadmeRelay runs README.md's relay demo as written, on a free port
// and a temporary queue: the relay, then the send and queue commands,
// which must exit 0 and show the message deferred, and the API address
// the section asks. Then it starts the primary the section says to start,
// and the message must reach it before its next retry is due: the
// out-of-band probe flushed it.
func TestReadmeRelay(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## Backup MX")
	if !ok {
		t.Fatal("README.md has no relay section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	port := strconv.Itoa(smtptest.Port(t))
	queuePath := filepath.Join(t.TempDir(), "relay-demo.db")
	edit := func(line string) []string {
		line = strings.ReplaceAll(line, "2525", port)
		line = strings.ReplaceAll(line, "/tmp/relay-demo.db", queuePath)
		line = strings.ReplaceAll(line, "127.0.0.1:8026", "127.0.0.1:0")
		return strings.Fields(line)[3:]
	}
	var relayArgs []string
	var commands [][]string
	var paths []string
	api := regexp.MustCompile(`http://127\.0\.0\.1:8026/(api/\S+)`)
	inCode := false
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
		case inCode && strings.HasPrefix(line, "go run ./cmd/mxtrace relay --"):
			relayArgs = edit(line)[1:]
		case inCode && strings.HasPrefix(line, "go run ./cmd/mxtrace "):
			commands = append(commands, edit(line))
		case inCode && api.MatchString(line):
			paths = append(paths, api.FindStringSubmatch(line)[1])
		}
	}
	if relayArgs == nil || len(commands) != 2 || len(paths) != 1 {
		t.Fatalf("the section shows relay %q, commands %q, API paths %q", relayArgs, commands, paths)
	}
	t.Chdir("../..")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, site, exit, stderr := startRelay(t, ctx, relayArgs...)
	q, err := queue.Open(t.Context(), queuePath)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var list string
	var es []queue.Entry
	for i, args := range commands {
		code, out, errOut := mxtrace(t, args...)
		if code != exitOK {
			t.Fatalf("mxtrace %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		list = out
		if i > 0 {
			continue
		}
		// A reader types the next command after the relay's first attempt
		// failed: wait for it (bounded).
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if es, err = q.List(t.Context(), queue.Filter{}); err == nil && len(es) == 1 && es[0].Recipients[0].State == queue.StateDeferred {
				break
			}
		}
	}
	if len(es) != 1 || len(es[0].Recipients) != 1 || es[0].Recipients[0].State != queue.StateDeferred {
		t.Fatalf("queue: %+v, %v\n%s", es, err, stderr)
	}
	if !regexp.MustCompile(`postmaster@relay\.example +deferred +1 `).MatchString(list) || !strings.Contains(list, "127.0.0.2") {
		t.Errorf("the queue does not show the message deferred for the primary:\n%s\n%s", list, stderr)
	}
	resp, err := http.Get(site + paths[0])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"deferred"`) {
		t.Errorf("%s: %d\n%s", paths[0], resp.StatusCode, body)
	}

	nextRetry := es[0].Recipients[0].Next
	primary := smtptest.Start(t, smtptest.Options{Addr: "127.0.0.2:" + port, Hostname: "mx1.relay.example"})
	for time.Now().Before(nextRetry) && len(primary.Messages()) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if got := primary.Messages(); len(got) != 1 || got[0].To[0] != "postmaster@relay.example" {
		t.Fatalf("by the next retry (%v) the primary had %d messages; the probe did not flush the queue:\n%s", nextRetry, len(got), stderr)
	}
	cancel()
	if code := <-exit; code != exitOK {
		t.Errorf("relay exited with %d:\n%s", code, stderr)
	}
}

// TestRelaySignals: SIGHUP reloads --recipients (a file that does not
// load keeps the list in use), STARTTLS is offered with --tls-cert and
// --tls-key, and SIGTERM stops the relay with status 0.
func TestRelaySignals(t *testing.T) {
	dir := t.TempDir()
	zone, recipients := filepath.Join(dir, "test.zone"), filepath.Join(dir, "recipients")
	if err := os.WriteFile(zone, []byte(relayZone), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(recipients, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bob@relay.test\n")
	ca := testpki.NewCA(t, "relay test root")
	certFile, keyFile := testpki.WriteKeyPair(t, ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx2.relay.test"}}))
	port := smtptest.Port(t)
	addr, _, exit, stderr := startRelay(t, t.Context(), "--zone", zone, "--domain", "relay.test", "--hostname", "mx2.relay.test",
		"--listen", fmt.Sprintf("127.0.0.33:%d", port), "--smtp-port", strconv.Itoa(port), "--allow-private",
		"--queue", filepath.Join(dir, "relay.db"), "--recipients", recipients, "--tls-cert", certFile, "--tls-key", keyFile,
		"--http", "127.0.0.1:0")

	// rcpt opens a session and answers the RCPT reply's code for to.
	rcpt := func(to string) int {
		t.Helper()
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.sender.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("STARTTLS is not offered")
		}
		if err := c.Mail("alice@sender.test", nil); err != nil {
			t.Fatal(err)
		}
		err = c.Rcpt(to, nil)
		if e, ok := err.(*smtp.SMTPError); ok {
			return e.Code
		} else if err != nil {
			t.Fatal(err)
		}
		return 250
	}
	hup := func(logged string) {
		t.Helper()
		before := strings.Count(stderr.String(), logged)
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); strings.Count(stderr.String(), logged) == before; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP:\n%s", logged, stderr)
			}
		}
	}

	if code := rcpt("carol@relay.test"); code != 550 {
		t.Errorf("carol before she is listed: %d, want 550", code)
	}
	write("bob@relay.test\ncarol@relay.test\n")
	hup("--recipients reloaded")
	if code := rcpt("carol@relay.test"); code != 250 {
		t.Errorf("carol after the reload: %d, want 250", code)
	}
	write("bob@relay.test\nthis line is not an address\n")
	hup("reloading --recipients failed")
	if code := rcpt("carol@relay.test"); code != 250 {
		t.Errorf("carol after a reload that failed: %d, want 250 (the list in use stays)", code)
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != exitOK || !strings.Contains(stderr.String(), "relay: stopped") {
			t.Errorf("exit %d, want 0 after logging the stop:\n%s", code, stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("relay did not stop on SIGTERM")
	}
}

// TestRelayCallout: with --callout the relay asks the primary (MX 10)
// about each recipient and answers as it does; with --down-policy known,
// while the primary is down, a recipient it accepted before is still
// accepted and an unknown one gets 451.
func TestRelayCallout(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "test.zone")
	if err := os.WriteFile(zone, []byte(strings.NewReplacer("127.0.0.31", "127.0.0.34", "127.0.0.32", "127.0.0.35").Replace(relayZone)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: fmt.Sprintf("127.0.0.34:%d", port), Hostname: "mx1.relay.test",
		Rcpt: func(to string) error {
			if to == "bob@relay.test" {
				return nil
			}
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}})
	addr, site, _, stderr := startRelay(t, t.Context(), "--zone", zone, "--domain", "relay.test", "--hostname", "mx2.relay.test",
		"--listen", fmt.Sprintf("127.0.0.35:%d", port), "--smtp-port", strconv.Itoa(port), "--allow-private",
		"--queue", filepath.Join(dir, "relay.db"), "--callout", "--down-policy", "known", "--http", "127.0.0.1:0")
	rcpt := func(to string) int {
		t.Helper()
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail("alice@sender.test", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(to, nil); err != nil {
			if e, ok := err.(*smtp.SMTPError); ok {
				return e.Code
			}
			t.Fatal(err)
		}
		return 250
	}
	if got := rcpt("bob@relay.test"); got != 250 {
		t.Errorf("bob, known to the primary: %d, want 250", got)
	}
	if got := rcpt("nobody@relay.test"); got != 550 {
		t.Errorf("nobody, refused by the primary: %d, want 550", got)
	}
	if primary.Transactions() == 0 {
		t.Error("the primary was never asked")
	}
	if got := rcpt("bob@relay.test"); got != 250 {
		t.Errorf("bob again: %d, want 250", got)
	}
	// Two callouts, one per address asked; bob's second answer came
	// from the cache.
	if n := scrapeMetrics(t, site)["mxtrace_relay_callouts_total"]; n != 2 {
		t.Errorf("mxtrace_relay_callouts_total = %v, want 2", n)
	}
	primary.Close()
	// bob, accepted before, still is (the positive cache, or the known
	// policy past it); carol is refused for now, never for good.
	if got := rcpt("bob@relay.test"); got != 250 {
		t.Errorf("bob while the primary is down (known): %d, want 250\n%s", got, stderr)
	}
	if got := rcpt("carol@relay.test"); got != 451 {
		t.Errorf("carol, never seen, while the primary is down: %d, want 451\n%s", got, stderr)
	}
}

// TestRelayAcceptAny: --accept-any-recipient, the explicit opt-out of
// recipient verification, starts the relay, warns of backscatter, and
// takes a local part nobody listed (the address rules still apply).
func TestRelayAcceptAny(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "test.zone")
	if err := os.WriteFile(zone, []byte(strings.NewReplacer("127.0.0.31", "127.0.0.36", "127.0.0.32", "127.0.0.37").Replace(relayZone)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := smtptest.Port(t)
	addr, _, _, stderr := startRelay(t, t.Context(), "--zone", zone, "--domain", "relay.test", "--hostname", "mx2.relay.test",
		"--listen", fmt.Sprintf("127.0.0.37:%d", port), "--smtp-port", strconv.Itoa(port), "--allow-private",
		"--queue", filepath.Join(dir, "relay.db"), "--accept-any-recipient", "--http", "127.0.0.1:0")
	for _, want := range []string{"recipients=\"any (--accept-any-recipient: backscatter risk)\"", "level=WARN msg=\"relay: --accept-any-recipient"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr)
		}
	}
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("alice@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("anyone@relay.test", nil); err != nil {
		t.Errorf("RCPT of an unlisted local part: %v, want 250", err)
	}
	if err := c.Rcpt("victim%elsewhere.test@relay.test", nil); err == nil {
		t.Error("RCPT of the percent hack: 250, want 550 5.7.1")
	}
}

// TestRelayDeliveryPolicy: mxtrace relay delivers under the destination's
// MTA-STS policy and DANE records, always (no flag turns them on). The
// primary offers STARTTLS with a certificate, so a relay that ignored
// either would deliver (opportunistic TLS); with an enforce policy that
// does not list it, or a TLSA record its certificate does not match, the
// message must stay in the queue, deferred, and the primary never get it.
func TestRelayDeliveryPolicy(t *testing.T) {
	ca := testpki.NewCA(t, "relay test root")
	// The DANE primary's certificate is from a CA nobody trusts (the
	// TLSA record alone would vouch for it), and the record is for
	// another key.
	untrusted := testpki.NewCA(t, "untrusted").Leaf(t, testpki.LeafOptions{Names: []string{"mx1.relay.test"}})
	const signed = "@ 3600 IN DNSKEY 257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==\n"
	for _, tt := range []struct {
		name, mx1, mx2 string
		records        string
		cert           tls.Certificate
		reason         string
	}{
		{"mta-sts", "127.0.0.38", "127.0.0.39", "_mta-sts.relay 3600 IN TXT \"v=STSv1; id=1\"\nmta-sts.relay 3600 IN A 127.0.0.1\n",
			ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.relay.test"}}), "MTA-STS policy in enforce mode"},
		{"dane", "127.0.0.40", "127.0.0.41", signed + "_25._tcp.mx1.relay 3600 IN TLSA 3 1 1 " + strings.Repeat("ab", 32) + "\n",
			untrusted, "no usable TLSA record matches"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			zone, recipients, qpath := filepath.Join(dir, "test.zone"), filepath.Join(dir, "recipients"), filepath.Join(dir, "relay.db")
			text := strings.NewReplacer("127.0.0.31", tt.mx1, "127.0.0.32", tt.mx2).Replace(relayZone) + tt.records
			if err := os.WriteFile(zone, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(recipients, []byte("bob@relay.test\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The policy lists an exchange that is not mx1; it is served
			// in both cases, so the DANE case shows DANE's refusal alone.
			policy := smtptest.StartPolicyHost(t, ca.Leaf(t, testpki.LeafOptions{Names: []string{"mta-sts.relay.test"}}),
				"version: STSv1\nmode: enforce\nmx: mx9.relay.test\nmax_age: 86400\n")
			port := smtptest.Port(t)
			primary := smtptest.Start(t, smtptest.Options{Addr: fmt.Sprintf("%s:%d", tt.mx1, port), Hostname: "mx1.relay.test",
				TLS: &tls.Config{Certificates: []tls.Certificate{tt.cert}}})
			addr, _, _, stderr := startRelay(t, t.Context(), "--zone", zone, "--domain", "relay.test", "--hostname", "mx2.relay.test",
				"--listen", fmt.Sprintf("%s:%d", tt.mx2, port), "--smtp-port", strconv.Itoa(port), "--allow-private",
				"--queue", qpath, "--recipients", recipients, "--http", "127.0.0.1:0", "--timeout", "5s",
				"--ca", ca.WriteCertFile(t), "--mta-sts-port", strconv.Itoa(policy.Port()))
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Mail("alice@sender.test", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("bob@relay.test", nil); err != nil {
				t.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(w, "From: alice@sender.test\r\nTo: bob@relay.test\r\nSubject: policy\r\n\r\nhello\r\n")
			if err := w.Close(); err != nil {
				t.Fatalf("DATA: %v", err)
			}
			q, err := queue.Open(t.Context(), qpath)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			var es []queue.Entry
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				es, err = q.List(t.Context(), queue.Filter{})
				if err == nil && len(es) == 1 && es[0].Recipients[0].State == queue.StateDeferred || len(primary.Messages()) > 0 {
					break
				}
			}
			if len(es) != 1 || es[0].Recipients[0].State != queue.StateDeferred {
				t.Fatalf("queue %+v (%v), want the message deferred; the primary has %d messages:\n%s", es, err, len(primary.Messages()), stderr)
			}
			if why := es[0].Recipients[0].LastError; !strings.Contains(why, tt.reason) {
				t.Errorf("deferred for %q, want %q", why, tt.reason)
			}
			if msgs := primary.Messages(); len(msgs) != 0 {
				t.Errorf("the primary got the message (TLS %v) against its domain's policy", msgs[0].TLS)
			}
		})
	}
}

package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// fakeQueue is a relay queue in memory: entries oldest first, as
// queue.List gives them.
type fakeQueue struct {
	entries []queue.Entry
	fail    error
	filters []queue.Filter // what List was asked
}

func (q *fakeQueue) List(_ context.Context, f queue.Filter) ([]queue.Entry, error) {
	q.filters = append(q.filters, f)
	if q.fail != nil {
		return nil, q.fail
	}
	var out []queue.Entry
	for _, e := range q.entries {
		if f.Domain != "" && !strings.Contains(e.Recipients[0].Domain, f.Domain) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

func (q *fakeQueue) Show(_ context.Context, id queue.ID) (*queue.Entry, error) {
	for _, e := range q.entries {
		if e.ID == id {
			return &e, nil
		}
	}
	return nil, queue.ErrNotFound
}

func (q *fakeQueue) Stats(context.Context) (queue.Stats, error) {
	if q.fail != nil {
		return queue.Stats{}, q.fail
	}
	st := queue.Stats{Messages: len(q.entries), Bytes: 2048}
	for _, e := range q.entries {
		if e.Held {
			st.Held++
		}
		if st.Oldest.IsZero() || e.Received.Before(st.Oldest) {
			st.Oldest = e.Received
		}
		for _, r := range e.Recipients {
			if relay.Pending(r.State) {
				st.Recipients++
			}
		}
	}
	return st, nil
}

// queueEntries are two messages: one deferred for a primary that is
// down, one on hold with a delivered and a failed recipient; a hostile
// sender tries markup.
func queueEntries(now time.Time) []queue.Entry {
	return []queue.Entry{
		{Message: queue.Message{ID: 41, Sender: "alice@sender.example", Client: netip.MustParseAddr("192.0.2.7"), Helo: "mail.sender.example",
			Received: now.Add(-90 * time.Minute), Expires: now.Add(119 * time.Hour)},
			Recipients: []queue.RecipientState{
				{Address: "bob@example.com", Domain: "example.com", State: "deferred", Attempts: 3, Next: now.Add(5 * time.Minute),
					LastError: "connect to mx1.example.com[192.0.2.1]:25: connection refused"},
			}},
		{Message: queue.Message{ID: 42, Sender: `<script>alert(1)</script>@evil.example`, Received: now.Add(-time.Minute), Expires: now.Add(5 * 24 * time.Hour)},
			Held: true,
			Recipients: []queue.RecipientState{
				{Address: "carol@example.com", Domain: "example.com", State: "delivered", Attempts: 1},
				{Address: "dave@example.com", Domain: "example.com", State: "failed", Attempts: 1, LastError: "550 5.1.1 no such user"},
				{Address: "erin@example.com", Domain: "example.com", State: "queued", Next: now.Add(-time.Second)},
			}},
	}
}

func queueServer(t *testing.T, q Queue) *Server {
	t.Helper()
	cfg := testConfig(t)
	cfg.Queue = q
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestQueueAPI(t *testing.T) {
	now := time.Now()
	fq := &fakeQueue{entries: queueEntries(now)}
	s := queueServer(t, fq)

	res, body := get(t, s, "/api/v1/queue")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var got queueJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Stats.Messages != 2 || got.Stats.Held != 1 || got.Stats.Recipients != 2 || got.More {
		t.Errorf("stats %+v, more %v", got.Stats, got.More)
	}
	if len(got.Messages) != 2 || got.Messages[0].ID != 41 || got.Messages[1].ID != 42 {
		t.Fatalf("messages %+v", got.Messages)
	}
	m0 := got.Messages[0]
	if m0.Sender != "alice@sender.example" || m0.Client != "192.0.2.7" || m0.Held || len(m0.Recipients) != 1 {
		t.Errorf("first message %+v", m0)
	}
	r0 := m0.Recipients[0]
	if d := r0.Next.Sub(now.Add(5 * time.Minute)); r0.State != "deferred" || r0.Attempts != 3 || d < -time.Second || d > time.Second {
		t.Errorf("deferred recipient %+v", r0)
	}
	// A recipient done with has no next attempt.
	if rs := got.Messages[1].Recipients; len(rs) != 3 || !rs[0].Next.IsZero() || !rs[1].Next.IsZero() || rs[1].LastError == "" {
		t.Errorf("held message's recipients %+v", rs)
	}
	if !strings.Contains(body, `"next_attempt"`) || strings.Count(body, `"next_attempt"`) != 2 {
		t.Errorf("next_attempt should appear for the 2 pending recipients only: %s", body)
	}

	// ?limit= cuts and says so; ?domain= is passed on in canonical form.
	_, body = get(t, s, "/api/v1/queue?limit=1&domain=EXAMPLE.com.")
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || !got.More {
		t.Errorf("limit=1: %d messages, more %v", len(got.Messages), got.More)
	}
	if f := fq.filters[len(fq.filters)-1]; f.Domain != "example.com" || f.Limit != 2 {
		t.Errorf("List asked with %+v, want domain example.com and limit 2 (one more, to know there are more)", f)
	}

	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "domain=-bad-.example", "domain=a..b"} {
		res, body := get(t, s, "/api/v1/queue?"+bad)
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: status %d, %s", bad, res.StatusCode, body)
		}
	}
}

func TestQueueNone(t *testing.T) {
	s := queueServer(t, nil)
	for _, path := range []string{"/api/v1/queue", "/queue"} {
		res, body := get(t, s, path)
		if res.StatusCode != 404 || !strings.Contains(body, "mxtrace relay --http") {
			t.Errorf("%s without a queue: status %d, %s", path, res.StatusCode, body)
		}
	}
	if _, body := get(t, s, "/"); strings.Contains(body, `href="/queue"`) {
		t.Error("the home page links to /queue on a server without one")
	}
}

func TestQueueFailed(t *testing.T) {
	s := queueServer(t, &fakeQueue{fail: errors.New("database is locked")})
	res, body := get(t, s, "/api/v1/queue")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || strings.Contains(body, "locked") {
		t.Errorf("status %d, Retry-After %q, body %s (the database's error stays in the log)", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
}

func TestQueuePage(t *testing.T) {
	now := time.Now()
	s := queueServer(t, &fakeQueue{entries: queueEntries(now)})
	res, body := get(t, s, "/queue")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	cspSafe(t, "/queue", body)
	for _, want := range []string{
		"<h1 id=\"queue-h\">Mail queue</h1>",
		"2 messages (1 on hold), 2 recipients to deliver, 2 KiB.",
		"The oldest was accepted on " + timeText(now.Add(-90*time.Minute)) + " (1h 30m ago).",
		`<tr class="q-held">`,
		`<br><span class="status s-warning">on hold</span>`,
		"bob@example.com",
		`<span class="status s-warning"><span aria-hidden="true">!</span> deferred</span>`,
		"3 attempts",
		"· next: " + timeText(now.Add(5*time.Minute)) + " (in 5m 0s)",
		"connection refused",
		`<span class="status s-pass"><span aria-hidden="true">✓</span> delivered</span>`,
		`<span class="status s-error"><span aria-hidden="true">✗</span> failed</span>`,
		"550 5.1.1 no such user",
		"next: on hold", // the held message's pending recipient waits for release
		"&lt;script&gt;alert(1)&lt;/script&gt;@evil.example",
		`<a href="/queue">Mail queue</a>`,
		"mxtrace relay queue flush|hold|release|delete ID",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("the sender's markup reached the page unescaped")
	}
	if strings.Contains(body, `href="/watches"`) {
		t.Error("the page links to /watches on a server without a store")
	}
}

func TestQueuePageEmpty(t *testing.T) {
	s := queueServer(t, &fakeQueue{})
	_, body := get(t, s, "/queue")
	if !strings.Contains(body, "The queue is empty") || strings.Contains(body, "<table") || strings.Contains(body, "oldest was accepted") {
		t.Errorf("empty queue page: %s", body)
	}
}

// TestQueuePageBounded: the page shows at most defaultQueueLimit
// messages and pageRecipients recipients each, and says how many more.
func TestQueuePageBounded(t *testing.T) {
	now := time.Now()
	var es []queue.Entry
	for i := range defaultQueueLimit + 5 {
		e := queue.Entry{Message: queue.Message{ID: queue.ID(i + 1), Received: now, Expires: now.Add(time.Hour)}}
		for j := range pageRecipients + 3 {
			e.Recipients = append(e.Recipients, queue.RecipientState{Address: "u" + string(rune('a'+j)) + "@example.com", Domain: "example.com", State: "queued"})
		}
		es = append(es, e)
	}
	s := queueServer(t, &fakeQueue{entries: es})
	_, body := get(t, s, "/queue")
	if n := strings.Count(body, "<tr>") + strings.Count(body, `<tr class="q-held">`) - 1; n != defaultQueueLimit { // less the header row
		t.Errorf("%d messages shown, want %d", n, defaultQueueLimit)
	}
	if !strings.Contains(body, "and 3 more recipients") || !strings.Contains(body, "The oldest 100 messages are shown") {
		t.Error("the page does not say what it left out")
	}
}

func TestAgeText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m 1s",
		2*time.Hour + 3*time.Minute + 4*time.Second: "2h 3m", 49 * time.Hour: "2d 1h",
	} {
		if got := ageText(d); got != want {
			t.Errorf("ageText(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB", 5 << 20: "5 MiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestMetricsMore: Config.Metrics are served on /metrics beside the
// server's own.
func TestMetricsMore(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := relay.NewMetrics(reg, nil)
	m.Accepted(100)
	cfg := testConfig(t)
	cfg.Metrics = reg
	_, base := serveTest(t, cfg, nil)
	series := scrape(t, base)
	if series["mxtrace_relay_messages_accepted_total"] != 1 {
		t.Errorf("relay metric missing or wrong: %v", series["mxtrace_relay_messages_accepted_total"])
	}
	if _, ok := series[`mxtrace_http_rate_limited_total`]; !ok {
		t.Error("the server's own metrics are gone")
	}
}

package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxtrace/mxtrace/clientlimit"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/spf"
)

// fakeQueue keeps what it is given; err, when set, fails every Enqueue.
type fakeQueue struct {
	mu   sync.Mutex
	msgs []*queue.Message
	err  error
}

func (q *fakeQueue) Enqueue(_ context.Context, m *queue.Message) (queue.ID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return 0, q.err
	}
	q.msgs = append(q.msgs, m)
	return queue.ID(len(q.msgs)), nil
}

func (q *fakeQueue) messages() []*queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*queue.Message(nil), q.msgs...)
}

// fakeVerifier refuses the addresses in refuse and records what it was
// asked.
type fakeVerifier struct {
	refuse map[string]Verdict
	mu     sync.Mutex
	asked  []string
}

func (v *fakeVerifier) VerifyRecipient(_ context.Context, a Address) Verdict {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.asked = append(v.asked, a.String())
	return v.refuse[a.String()]
}

// counterValue is the current value of a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

var testNow = time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)

// testConfig is a server for d.example with a fake queue, metrics on
// their own registry and a fixed clock.
func testConfig(q *fakeQueue) Config {
	return Config{
		Domains:  []dnsname.Name{"d.example"},
		Hostname: "relay.example",
		Queue:    q,
		Metrics:  NewMetrics(prometheus.NewRegistry(), nil),
		Now:      func() time.Time { return testNow },
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// startServer serves cfg on 127.0.0.1 until the test ends.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// client is a raw SMTP client that sends exactly what it is told.
type client struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

// clientDeadline bounds every test conversation, so that a server that
// does not answer fails the test instead of hanging it.
const clientDeadline = 20 * time.Second

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, clientDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(clientDeadline))
	c := &client{t: t, conn: conn, tp: textproto.NewConn(conn)}
	if code, msg := c.read(); code != 220 {
		t.Fatalf("banner: %d %s", code, msg)
	}
	return c
}

// read reads one reply; code 0 when the connection ended instead.
func (c *client) read() (int, string) {
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, err.Error()
	}
	return code, msg
}

// cmd sends line and reads the reply.
func (c *client) cmd(line string) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return 0, err.Error()
	}
	return c.read()
}

// want sends line and fails the test unless the reply has code.
func (c *client) want(line string, code int) string {
	c.t.Helper()
	got, msg := c.cmd(line)
	if got != code {
		c.t.Fatalf("%q: got %d %s, want %d", line, got, msg, code)
	}
	return msg
}

// send sends a whole transaction and returns the reply to the data.
func (c *client) send(from string, rcpts []string, body string) (int, string) {
	c.t.Helper()
	c.want("MAIL FROM:<"+from+">", 250)
	for _, r := range rcpts {
		c.want("RCPT TO:<"+r+">", 250)
	}
	c.want("DATA", 354)
	w := c.tp.DotWriter()
	if _, err := io.WriteString(w, body); err != nil {
		c.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

// TestOpenRelayBattery tries each classic open-relay trick at RCPT, each in
// a session of its own, and the legal forms beside them; what is accepted
// is queued for exactly the address the battery expects.
func TestOpenRelayBattery(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	s, addr := startServer(t, cfg)
	for _, tc := range []struct {
		name   string
		rcpt   string // the RCPT TO argument, sent as is
		code   int
		queued string // for 250: the recipient queued
		reason string // for 550: the metrics reason
	}{
		{"plain", "<user@d.example>", 250, "user@d.example", ""},
		{"case", "<USER@D.EXAMPLE>", 250, "USER@d.example", ""},
		{"quoted without @", `<"a b"@d.example>`, 250, `"a b"@d.example`, ""},
		{"quoted needless", `<"user"@d.example>`, 250, "user@d.example", ""},
		{"no brackets", "user@d.example", 250, "user@d.example", ""},
		{"source route to us", "<@other.example:user@d.example>", 250, "user@d.example", ""},
		{"source route elsewhere", "<@d.example:user@other.example>", 550, "", "not-our-domain"},
		{"source route list", "<@d.example,@x.example:user@other.example>", 550, "", "not-our-domain"},
		{"percent hack", "<user%other.example@d.example>", 550, "", "route-in-local-part"},
		{"quoted percent", `<"user%other.example"@d.example>`, 550, "", "route-in-local-part"},
		{"quoted at", `<"user@other.example"@d.example>`, 550, "", "route-in-local-part"},
		{"two at", "<user@other.example@d.example>", 550, "", "route-in-local-part"},
		{"bang path", "<other.example!user@d.example>", 550, "", "route-in-local-part"},
		{"ip literal", "<user@[192.0.2.1]>", 550, "", "address-literal"},
		{"loopback literal", "<user@[127.0.0.1]>", 550, "", "address-literal"},
		{"ipv6 literal", "<user@[IPv6:2001:db8::1]>", 550, "", "address-literal"},
		{"bare ip", "<user@192.0.2.1>", 550, "", "address-literal"},
		{"trailing dot", "<user@d.example.>", 550, "", "trailing-dot"},
		{"other domain", "<user@other.example>", 550, "", "not-our-domain"},
		{"suffix", "<user@d.example.evil.example>", 550, "", "not-our-domain"},
		{"subdomain", "<user@sub.d.example>", 550, "", "not-our-domain"},
		{"parent", "<user@example>", 550, "", "not-our-domain"},
		{"lookalike", "<user@d-example>", 550, "", "not-our-domain"},
		{"nul", "<us\x00er@d.example>", 550, "", "not-ascii"},
		{"8-bit", "<üser@d.example>", 550, "", "not-ascii"},
		{"8-bit domain", "<user@dä.example>", 550, "", "not-ascii"},
		{"long", "<" + strings.Repeat("a", 300) + "@d.example>", 550, "", "too-long"},
		{"long local", "<" + strings.Repeat("a", 65) + "@d.example>", 550, "", "too-long"},
		// go-smtp hands the local part over unquoted, so ".user" is
		// taken as the legal "\".user\"" it may have been.
		{"leading dot", "<.user@d.example>", 250, `".user"@d.example`, ""},
		{"null", "<>", 501, "", ""},
		{"empty", "", 501, "", ""},
		{"space", "<user @d.example>", 501, "", ""},
		{"unclosed", "<user@d.example", 501, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(q.messages())
			c := dial(t, addr)
			c.want("EHLO client.example", 250)
			c.want("MAIL FROM:<sender@sender.example>", 250)
			code, msg := c.cmd("RCPT TO:" + tc.rcpt)
			if code != tc.code {
				t.Fatalf("RCPT TO:%s: %d %s, want %d", tc.rcpt, code, msg, tc.code)
			}
			if code == 550 && !strings.HasPrefix(msg, "5.7.1 ") {
				t.Errorf("RCPT TO:%s: %d %s, want 5.7.1", tc.rcpt, code, msg)
			}
			if tc.reason != "" {
				if n := counterValue(s.cfg.Metrics.rcptRefused.WithLabelValues(tc.reason)); n < 1 {
					t.Errorf("rcpt_refused_total{reason=%q} = %v", tc.reason, n)
				}
			}
			if code != 250 {
				// The transaction has no recipient: nothing can be queued.
				c.want("DATA", 502)
				return
			}
			c.want("DATA", 354)
			c.want("Subject: t\r\n\r\nbody\r\n.", 250)
			msgs := q.messages()
			if len(msgs) != before+1 {
				t.Fatalf("%d messages queued, want %d", len(msgs), before+1)
			}
			if got := msgs[len(msgs)-1].Recipients; len(got) != 1 || got[0] != tc.queued {
				t.Errorf("queued for %q, want %q", got, tc.queued)
			}
		})
	}
}

// TestRecipientVerifier: a recipient the verifier refuses gets its reply,
// counted by its reason; the verifier is never asked about other domains.
func TestRecipientVerifier(t *testing.T) {
	q := &fakeQueue{}
	v := &fakeVerifier{refuse: map[string]Verdict{
		"nobody@d.example": {Code: 550, Enhanced: "5.1.1", Message: "No such user", Reason: "unknown-recipient"},
		"later@d.example":  {Code: 451, Enhanced: "4.4.1", Message: "Primary down", Reason: "callout-tempfail"},
		"broken@d.example": {Code: 550},
		"odd@d.example":    {Code: 300, Enhanced: "3.0.0", Message: "What", Reason: "odd"},
		"crlf@d.example":   {Code: 550, Enhanced: "5.1.1", Message: "No\r\n250 such user", Reason: "unknown-recipient"},
	}}
	cfg := testConfig(q)
	cfg.Recipients = v
	s, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	c.want("MAIL FROM:<>", 250)
	if msg := c.want("RCPT TO:<nobody@d.example>", 550); msg != "5.1.1 No such user" {
		t.Errorf("nobody: %q", msg)
	}
	if msg := c.want("RCPT TO:<later@d.example>", 451); msg != "4.4.1 Primary down" {
		t.Errorf("later: %q", msg)
	}
	// A refusal missing its parts, or not a 4xx or 5xx, fails safe,
	// for now.
	c.want("RCPT TO:<broken@d.example>", 451)
	c.want("RCPT TO:<odd@d.example>", 451)
	// The primary's words cannot break the reply.
	if msg := c.want("RCPT TO:<crlf@d.example>", 550); msg != "5.1.1 No250 such user" {
		t.Errorf("crlf: %q", msg)
	}
	c.want("RCPT TO:<user@other.example>", 550)
	c.want("RCPT TO:<user@d.example>", 250)
	for reason, want := range map[string]float64{"unknown-recipient": 2, "callout-tempfail": 1, "verify-error": 2, "not-our-domain": 1} {
		if got := counterValue(s.cfg.Metrics.rcptRefused.WithLabelValues(reason)); got != want {
			t.Errorf("rcpt_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if want := []string{"nobody@d.example", "later@d.example", "broken@d.example", "odd@d.example", "crlf@d.example", "user@d.example"}; fmt.Sprint(v.asked) != fmt.Sprint(want) {
		t.Errorf("verifier asked %q, want %q", v.asked, want)
	}
}

// TestReceived: the queued message starts with the relay's Received
// field, then the message as sent; the envelope is the client's.
func TestReceived(t *testing.T) {
	q := &fakeQueue{}
	var (
		mu       sync.Mutex
		accepted []queue.ID
	)
	cfg := testConfig(q)
	cfg.Accepted = func(id queue.ID) {
		mu.Lock()
		defer mu.Unlock()
		accepted = append(accepted, id)
	}
	_, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	body := "From: a@sender.example\r\nSubject: hi\r\n\r\nbody\r\n"
	code, msg := c.send("a@sender.example", []string{"user@d.example"}, body)
	if code != 250 || msg != "2.0.0 OK queued as 1" {
		t.Fatalf("data: %d %s", code, msg)
	}
	code, msg = c.send("", []string{"u1@d.example", "u2@D.example"}, body)
	if code != 250 {
		t.Fatalf("data: %d %s", code, msg)
	}
	msgs := q.messages()
	mu.Lock()
	if len(msgs) != 2 || fmt.Sprint(accepted) != "[1 2]" {
		t.Fatalf("%d queued, accepted %v", len(msgs), accepted)
	}
	mu.Unlock()
	re := regexp.MustCompile(`^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n` +
		`\tby relay\.example with ESMTP id ([0-9a-f]{12})\r\n` +
		`\tfor <user@d\.example>; Mon, 07 Dec 2026 03:04:05 \+0000\r\n` + regexp.QuoteMeta(body) + `$`)
	if !re.Match(msgs[0].Data) {
		t.Errorf("first message:\n%s", msgs[0].Data)
	}
	// Two recipients: neither is named.
	re2 := regexp.MustCompile(`^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n` +
		`\tby relay\.example with ESMTP id [0-9a-f]{12}; Mon, 07 Dec 2026 03:04:05 \+0000\r\n` + regexp.QuoteMeta(body) + `$`)
	if !re2.Match(msgs[1].Data) {
		t.Errorf("second message:\n%s", msgs[1].Data)
	}
	m := msgs[1]
	if m.Sender != "" || fmt.Sprint(m.Recipients) != "[u1@d.example u2@d.example]" || m.Helo != "client.example" ||
		m.Client.String() != "127.0.0.1" || !m.Received.Equal(testNow) || !m.Expires.Equal(testNow.Add(DefaultLifetime)) {
		t.Errorf("envelope %+v", m)
	}
}

// TestEnqueueFailure: when the queue fails, the client gets 451 4.3.0 and
// never a 250, and nothing counts as accepted.
func TestEnqueueFailure(t *testing.T) {
	q := &fakeQueue{err: errors.New("disk full")}
	cfg := testConfig(q)
	var called atomic.Bool
	cfg.Accepted = func(queue.ID) { called.Store(true) }
	s, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	code, msg := c.send("a@sender.example", []string{"user@d.example"}, "Subject: x\r\n\r\nx\r\n")
	if code != 451 || !strings.HasPrefix(msg, "4.3.0 ") {
		t.Errorf("data: %d %s, want 451 4.3.0", code, msg)
	}
	if called.Load() || counterValue(s.cfg.Metrics.accepted) != 0 {
		t.Errorf("Accepted called %v, accepted_total %v", called.Load(), counterValue(s.cfg.Metrics.accepted))
	}
	// The session goes on.
	c.want("NOOP", 250)
}

// TestSize: SIZE is offered and enforced at MAIL and while reading.
func TestSize(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	cfg.MaxSize = 1000
	s, addr := startServer(t, cfg)
	c := dial(t, addr)
	if msg := c.want("EHLO client.example", 250); !strings.Contains(msg, "\nSIZE 1000\n") {
		t.Errorf("EHLO reply does not offer SIZE 1000:\n%s", msg)
	}
	if code, msg := c.cmd("MAIL FROM:<a@sender.example> SIZE=1001"); code != 552 || !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("MAIL SIZE=1001: %d %s", code, msg)
	}
	line := strings.Repeat("x", 98) + "\r\n" // 100 octets
	if code, msg := c.send("a@sender.example", []string{"user@d.example"}, strings.Repeat(line, 9)); code != 250 {
		t.Errorf("900 octets: %d %s", code, msg)
	}
	if code, msg := c.send("a@sender.example", []string{"user@d.example"}, strings.Repeat(line, 200)); code != 552 || !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("20,000 octets: %d %s, want 552 5.3.4", code, msg)
	}
	if n := len(q.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	if n := counterValue(s.cfg.Metrics.msgRefused.WithLabelValues("size")); n != 1 {
		t.Errorf("messages_refused_total{size} = %v", n)
	}
	c.want("NOOP", 250)
}

// endless is a message that never ends: it counts what was read of it.
type endless struct{ n int64 }

func (e *endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'x'
	}
	e.n += int64(len(b))
	return len(b), nil
}

// TestReadDataBounded: a reader that does not stop at the limit (BDAT
// chunks reach Data through a pipe) is read only to MaxSize plus a buffer.
func TestReadDataBounded(t *testing.T) {
	s, err := NewServer(testConfig(&fakeQueue{}))
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.MaxSize = 100 << 10
	r := &endless{}
	_, err = (&session{s: s}).readData(r)
	if err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("readData: %v, want 552", err)
	}
	if r.n > s.cfg.MaxSize+64<<10 {
		t.Errorf("read %d octets for a limit of %d", r.n, s.cfg.MaxSize)
	}
}

// TestMaxRecipients: one more than MaxRecipients gets 452 4.5.3
// (RFC 5321 §4.5.3.1.10).
func TestMaxRecipients(t *testing.T) {
	cfg := testConfig(&fakeQueue{})
	cfg.MaxRecipients = 2
	_, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	c.want("MAIL FROM:<>", 250)
	c.want("RCPT TO:<a@d.example>", 250)
	c.want("RCPT TO:<b@d.example>", 250)
	if msg := c.want("RCPT TO:<c@d.example>", 452); !strings.HasPrefix(msg, "4.5.3 ") {
		t.Errorf("third recipient: %s", msg)
	}
}

// TestConnLimits: the connection over MaxConnsPerClient gets 421 4.7.0
// and is closed; the slot comes back when a connection closes.
func TestConnLimits(t *testing.T) {
	cfg := testConfig(&fakeQueue{})
	cfg.MaxConnsPerClient = 2
	s, addr := startServer(t, cfg)
	first := dial(t, addr)
	dial(t, addr)
	conn, err := net.DialTimeout("tcp", addr, clientDeadline)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(clientDeadline))
	all, err := io.ReadAll(conn)
	if err != nil || !strings.HasPrefix(string(all), "421 4.7.0 ") {
		t.Fatalf("third connection: %q, %v", all, err)
	}
	if n := counterValue(s.cfg.Metrics.connRefused.WithLabelValues("max-conns-per-client")); n != 1 {
		t.Errorf("connections_refused_total{max-conns-per-client} = %v", n)
	}
	first.want("QUIT", 221)
	if code, _ := first.read(); code != 0 {
		t.Fatalf("after QUIT: %d", code)
	}
	// The server closes its side after the 221; the slot is free once it
	// has, which the connection count shows.
	for i := 0; ; i++ {
		s.mu.Lock()
		n := len(s.open)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if i == 1000 {
			t.Fatalf("%d connections still open", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dial(t, addr).want("NOOP", 250)
}

func TestConnLimitsKeys(t *testing.T) {
	l := &connLimits{max: 3, perClient: 1, byClient: map[netip.Prefix]int{}}
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"2001:db8::1", ""},
		{"2001:db8::2", "max-conns-per-client"}, // the same /64
		{"2001:db8:0:1::1", ""},                 // the next /64
		{"192.0.2.1", ""},
		{"::ffff:192.0.2.1", "max-conns"}, // over the total first
	} {
		if got := l.acquire(clientlimit.Key(netip.MustParseAddr(tc.addr))); got != tc.want {
			t.Errorf("acquire(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	l.release(clientlimit.Key(netip.MustParseAddr("2001:db8::1")))
	if got := l.acquire(clientlimit.Key(netip.MustParseAddr("::ffff:192.0.2.1"))); got != "max-conns-per-client" {
		t.Errorf("mapped address: %q, want the IPv4 client's limit", got)
	}
	if got := l.acquire(clientlimit.Key(netip.MustParseAddr("2001:db8::99"))); got != "" {
		t.Errorf("after release: %q", got)
	}
}

// TestRate: past its burst, a client's MAIL gets 451 4.7.1.
func TestRate(t *testing.T) {
	cfg := testConfig(&fakeQueue{})
	cfg.Rate, cfg.Burst = 0.001, 2
	s, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	c.want("MAIL FROM:<>", 250)
	c.want("RSET", 250)
	c.want("MAIL FROM:<>", 250)
	c.want("RSET", 250)
	if msg := c.want("MAIL FROM:<>", 451); !strings.HasPrefix(msg, "4.7.1 ") {
		t.Errorf("third MAIL: %s", msg)
	}
	// Another connection from the same address shares the bucket.
	d := dial(t, addr)
	d.want("EHLO client.example", 250)
	d.want("MAIL FROM:<>", 451)
	if n := counterValue(s.cfg.Metrics.msgRefused.WithLabelValues("rate")); n != 2 {
		t.Errorf("messages_refused_total{rate} = %v", n)
	}
}

// TestSTARTTLS: STARTTLS is offered, the handshake uses the configured
// certificate, the session starts over (RFC 3207 §4.2) and the Received
// field says ESMTPS (RFC 3848).
func TestSTARTTLS(t *testing.T) {
	q := &fakeQueue{}
	cert := testpki.SelfSigned(t, "relay.example")
	cfg := testConfig(q)
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	_, addr := startServer(t, cfg)
	c := dial(t, addr)
	if msg := c.want("EHLO client.example", 250); !strings.Contains(msg, "\nSTARTTLS") {
		t.Fatalf("STARTTLS not offered:\n%s", msg)
	}
	c.want("MAIL FROM:<>", 250)
	c.want("STARTTLS", 220)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tc := tls.Client(c.conn, &tls.Config{ServerName: "relay.example", RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.tp = textproto.NewConn(tc)
	// The transaction before STARTTLS is gone, and so is the EHLO.
	c.want("RCPT TO:<user@d.example>", 502)
	if msg := c.want("EHLO client.example", 250); strings.Contains(msg, "STARTTLS") {
		t.Errorf("STARTTLS offered again over TLS:\n%s", msg)
	}
	if code, msg := c.send("a@sender.example", []string{"user@d.example"}, "Subject: tls\r\n\r\nx\r\n"); code != 250 {
		t.Fatalf("data: %d %s", code, msg)
	}
	if msgs := q.messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), " with ESMTPS id ") {
		t.Errorf("queued: %d messages, %q", len(msgs), msgs[0].Data)
	}
}

// TestHostileClients: garbage, an endless line, a silent client, a client
// that stops in the middle of its data and one that tries address after
// address all end their session, and none queues anything.
func TestHostileClients(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	cfg.Timeouts = Timeouts{Command: 300 * time.Millisecond, Data: 300 * time.Millisecond}
	_, addr := startServer(t, cfg)

	// readToEnd reads the rest of the session and returns its last line.
	readToEnd := func(t *testing.T, c *client) string {
		t.Helper()
		all, err := io.ReadAll(bufio.NewReader(c.tp.R))
		if err != nil {
			t.Fatalf("the server did not end the session: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(all)), "\r\n")
		return lines[len(lines)-1]
	}

	t.Run("garbage", func(t *testing.T) {
		// In lock step, so the server never closes with a line
		// unread (which would reset the connection).
		c := dial(t, addr)
		for range 4 {
			if code, msg := c.cmd("\x01\x02 garbage \xff"); code != 501 {
				t.Fatalf("garbage: %d %s", code, msg)
			}
		}
		if last := readToEnd(t, c); !strings.HasPrefix(last, "500 5.5.1 ") {
			t.Errorf("last reply %q", last)
		}
	})
	t.Run("endless line", func(t *testing.T) {
		c := dial(t, addr)
		go func() { _, _ = c.conn.Write([]byte("EHLO " + strings.Repeat("x", 1<<20))) }()
		// The server answers 500 5.4.0 and closes with the rest
		// unread, so the client may see a reset instead of the reply;
		// either way the session ends, where a time-out would not.
		all, err := io.ReadAll(c.tp.R)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the server did not end the session: %v", err)
		}
		if err == nil && !strings.Contains(string(all), "500 5.4.0 ") {
			t.Errorf("the session ended with %q", all)
		}
	})
	t.Run("silent", func(t *testing.T) {
		c := dial(t, addr)
		if last := readToEnd(t, c); !strings.HasPrefix(last, "421 4.4.2 ") {
			t.Errorf("last reply %q", last)
		}
	})
	t.Run("stalled data", func(t *testing.T) {
		c := dial(t, addr)
		c.want("EHLO client.example", 250)
		c.want("MAIL FROM:<>", 250)
		c.want("RCPT TO:<user@d.example>", 250)
		c.want("DATA", 354)
		if err := c.tp.PrintfLine("Subject: half a message"); err != nil {
			t.Fatal(err)
		}
		if code, msg := c.read(); code != 421 || !strings.HasPrefix(msg, "4.4.2 Timeout reading the message") {
			t.Errorf("reply %d %s", code, msg)
		}
		if last := readToEnd(t, c); last != "" && !strings.HasPrefix(last, "421 ") {
			t.Errorf("last reply %q", last)
		}
	})
	t.Run("address after address", func(t *testing.T) {
		c := dial(t, addr)
		c.want("EHLO client.example", 250)
		c.want("MAIL FROM:<>", 250)
		for i := range maxRefusedRcpt - 1 {
			c.want(fmt.Sprintf("RCPT TO:<u%d@other.example>", i), 550)
		}
		c.want("RCPT TO:<last@other.example>", 421)
		if last := readToEnd(t, c); !strings.HasPrefix(last, "421 4.4.2 ") {
			t.Errorf("last reply %q", last)
		}
	})
	if n := len(q.messages()); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}

// TestShutdown: an idle session ends at once with 421; one inside a
// transaction finishes it (its message is queued) and then ends.
func TestShutdown(t *testing.T) {
	q := &fakeQueue{}
	s, addr := startServer(t, testConfig(q))
	idle := dial(t, addr)
	idle.want("EHLO client.example", 250)
	busy := dial(t, addr)
	busy.want("EHLO client.example", 250)
	busy.want("MAIL FROM:<>", 250)
	busy.want("RCPT TO:<user@d.example>", 250)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if code, msg := idle.read(); code != 421 {
		t.Errorf("idle session: %d %s, want 421", code, msg)
	}
	// Shutdown has asked every session to end (under s.mu) by now.
	s.mu.Lock()
	s.mu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
	busy.want("DATA", 354)
	busy.want("Subject: x\r\n\r\nx\r\n.", 250)
	if code, msg := busy.cmd("MAIL FROM:<>"); code != 421 && code != 0 {
		t.Errorf("after its transaction: %d %s, want 421 or the end", code, msg)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(q.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

func TestNewServerChecks(t *testing.T) {
	base := testConfig(&fakeQueue{})
	for name, mod := range map[string]func(*Config){
		"no domains":   func(c *Config) { c.Domains = nil },
		"no queue":     func(c *Config) { c.Queue = nil },
		"bad hostname": func(c *Config) { c.Hostname = "relay example" },
		"bad domain":   func(c *Config) { c.Domains = []dnsname.Name{"[192.0.2.1]"} },
	} {
		cfg := base
		mod(&cfg)
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The sender-policy world of TestAuth: the test client (127.0.0.1) may
// send for sender.example, not for forged.example; both publish p=reject.
const authZone = `
$ORIGIN example.
@              300 SOA ns hostmaster 1 7200 900 1209600 300
sender         TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.sender  TXT "v=DMARC1; p=reject"
forged         TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.forged  TXT "v=DMARC1; p=reject"
`

// TestAuth: with Config.Auth, a message whose DMARC policy says reject is
// refused at the end of its data and not queued; an authenticated one is
// queued with Authentication-Results, Received-SPF and Received on top, in
// that order.
func TestAuth(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	r := zones(t, authZone)
	cfg.Auth = &Authenticator{SPF: &spf.Checker{Resolver: r, Receiver: "relay.example"}, Resolver: r, Hostname: "relay.example"}
	s, addr := startServer(t, cfg)
	c := dial(t, addr)
	c.want("EHLO client.example", 250)

	code, msg := c.send("a@forged.example", []string{"user@d.example"}, "From: a@forged.example\r\nSubject: x\r\n\r\nx\r\n")
	if code != 550 || !strings.HasPrefix(msg, "5.7.1 ") {
		t.Errorf("forged: %d %s, want 550 5.7.1", code, msg)
	}
	if n := counterValue(s.cfg.Metrics.msgRefused.WithLabelValues("dmarc-reject")); n != 1 {
		t.Errorf("messages_refused_total{dmarc-reject} = %v", n)
	}
	if n := len(q.messages()); n != 0 {
		t.Fatalf("%d messages queued", n)
	}

	body := "From: a@sender.example\r\nSubject: x\r\n\r\nx\r\n"
	if code, msg := c.send("a@sender.example", []string{"user@d.example"}, body); code != 250 {
		t.Fatalf("sender: %d %s", code, msg)
	}
	msgs := q.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued", len(msgs))
	}
	data := string(msgs[0].Data)
	var names []string
	for _, line := range strings.Split(data[:strings.Index(data, "\r\n\r\n")], "\r\n") {
		if line[0] != ' ' && line[0] != '\t' {
			names = append(names, line[:strings.IndexByte(line, ':')])
		}
	}
	if want := "[Authentication-Results Received-SPF Received From Subject]"; fmt.Sprint(names) != want {
		t.Errorf("header fields %v, want %s\n%s", names, want, data)
	}
	unfolded := strings.NewReplacer("\r\n ", " ", "\r\n\t", " ").Replace(data)
	for _, want := range []string{"spf=pass", "dmarc=pass", "Received-SPF: pass (relay.example: domain of a@sender.example designates 127.0.0.1"} {
		if !strings.Contains(unfolded, want) {
			t.Errorf("no %q in\n%s", want, data)
		}
	}
}

// TestBDAT: go-smtp offers CHUNKING (RFC 3030); chunks reach the same
// Data, with the same size limit and the same Received field.
func TestBDAT(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	cfg.MaxSize = 1000
	_, addr := startServer(t, cfg)
	c := dial(t, addr)
	if msg := c.want("EHLO client.example", 250); !strings.Contains(msg, "\nCHUNKING") {
		t.Fatalf("CHUNKING not offered:\n%s", msg)
	}
	bdat := func(chunk string, last bool) (int, string) {
		t.Helper()
		cmd := fmt.Sprintf("BDAT %d", len(chunk))
		if last {
			cmd += " LAST"
		}
		if _, err := io.WriteString(c.conn, cmd+"\r\n"+chunk); err != nil {
			t.Fatal(err)
		}
		return c.read()
	}
	c.want("MAIL FROM:<>", 250)
	c.want("RCPT TO:<user@d.example>", 250)
	if code, msg := bdat("Subject: x\r\n\r\nHello", false); code != 250 {
		t.Fatalf("first chunk: %d %s", code, msg)
	}
	if code, msg := bdat(" world\r\n", true); code != 250 || !strings.Contains(msg, "queued as 1") {
		t.Fatalf("last chunk: %d %s", code, msg)
	}
	msgs := q.messages()
	if len(msgs) != 1 || !strings.HasPrefix(string(msgs[0].Data), "Received: from client.example") ||
		!strings.HasSuffix(string(msgs[0].Data), "\r\n\tfor <user@d.example>; Mon, 07 Dec 2026 03:04:05 +0000\r\nSubject: x\r\n\r\nHello world\r\n") {
		t.Fatalf("queued %d: %+v", len(msgs), msgs)
	}
	c.want("MAIL FROM:<>", 250)
	c.want("RCPT TO:<user@d.example>", 250)
	if code, msg := bdat(strings.Repeat("x", 1001), true); code != 552 {
		t.Errorf("1,001 octets: %d %s, want 552", code, msg)
	}
	if n := len(q.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	c.want("NOOP", 250)
}

// TestShutdownGraceOver: a session still inside its transaction when the
// grace period ends is closed, its message never acknowledged nor queued,
// and Shutdown says the grace ran out.
func TestShutdownGraceOver(t *testing.T) {
	q := &fakeQueue{}
	s, addr := startServer(t, testConfig(q))
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	c.want("MAIL FROM:<>", 250)
	c.want("RCPT TO:<user@d.example>", 250)
	c.want("DATA", 354)
	if err := c.tp.PrintfLine("Subject: never finished"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want the context's error", err)
	}
	// The connection is closed now: the client sees its end (or a
	// reset), never a 250 and not its own time-out.
	all, err := io.ReadAll(c.tp.R)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the connection was not closed: %v", err)
	}
	if strings.Contains(string(all), "250") {
		t.Errorf("after the grace: %q", all)
	}
	if n := len(q.messages()); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}

// TestMaxMemory: while one session holds a large message, another that
// would take the data held past MaxMemory gets 452 4.3.1 (and can send it
// once the first is done); the budget comes back whole.
func TestMaxMemory(t *testing.T) {
	q := &fakeQueue{}
	cfg := testConfig(q)
	cfg.MaxSize = 100_000
	cfg.MaxMemory = 1 // the floor: room for one message while it grows
	s, addr := startServer(t, cfg)
	body := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 95) // 95,000 octets

	a := dial(t, addr)
	a.want("EHLO a.example", 250)
	a.want("MAIL FROM:<>", 250)
	a.want("RCPT TO:<user@d.example>", 250)
	a.want("DATA", 354)
	if _, err := io.WriteString(a.conn, body); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until the server holds a's message in full.
	for i := 0; s.memory.Load() < headerRoom+100_001; i++ {
		if i == 1000 {
			t.Fatalf("the server holds %d octets", s.memory.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := dial(t, addr)
	b.want("EHLO b.example", 250)
	if code, msg := b.send("", []string{"user@d.example"}, body); code != 452 || !strings.HasPrefix(msg, "4.3.1 ") {
		t.Errorf("second message: %d %s, want 452 4.3.1", code, msg)
	}
	if _, err := io.WriteString(a.conn, ".\r\n"); err != nil {
		t.Fatal(err)
	}
	if code, msg := a.read(); code != 250 {
		t.Fatalf("first message: %d %s", code, msg)
	}
	if code, msg := b.send("", []string{"user@d.example"}, body); code != 250 {
		t.Errorf("second message again: %d %s", code, msg)
	}
	if n := s.memory.Load(); n != 0 {
		t.Errorf("%d octets still reserved", n)
	}
	if n := counterValue(s.cfg.Metrics.msgRefused.WithLabelValues("memory")); n != 1 {
		t.Errorf("messages_refused_total{memory} = %v", n)
	}
}

package relay

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	mxdial "github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/dsn"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// memQueue is an in-memory DeliveryQueue with the contract of
// *queue.Queue, recording what the Deliverer does with it.
type memQueue struct {
	mu     sync.Mutex
	now    func() time.Time
	next   queue.ID
	msgs   map[queue.ID]*queue.Message
	dels   map[queue.ID]*memDelivery
	events []string
	// notices are the notifications enqueued through Finish.
	notices []*queue.Message
	// outcomes are every Finish, in order.
	outcomes []queue.Outcome
	changed  chan struct{}
}

type memDelivery struct {
	queue.Delivery
	next time.Time
}

func newMemQueue(now func() time.Time) *memQueue {
	return &memQueue{now: now, msgs: map[queue.ID]*queue.Message{}, dels: map[queue.ID]*memDelivery{}, changed: make(chan struct{}, 1)}
}

func (q *memQueue) event(format string, args ...any) {
	q.events = append(q.events, fmt.Sprintf(format, args...))
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// Enqueue stores m with one delivery per recipient domain, due now.
func (q *memQueue) Enqueue(_ context.Context, m *queue.Message) (queue.ID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.enqueue(m), nil
}

func (q *memQueue) enqueue(m *queue.Message) queue.ID {
	q.next++
	id := q.next
	c := *m
	c.ID = id
	if c.Received.IsZero() {
		c.Received = q.now()
	}
	if c.Expires.IsZero() {
		c.Expires = c.Received.Add(queue.DefaultLifetime)
	}
	q.msgs[id] = &c
	byDomain := map[string][]string{}
	var order []string
	for _, r := range m.Recipients {
		_, dom, _ := strings.Cut(r, "@")
		if byDomain[dom] == nil {
			order = append(order, dom)
		}
		byDomain[dom] = append(byDomain[dom], r)
	}
	for _, dom := range order {
		q.next++
		q.dels[q.next] = &memDelivery{Delivery: queue.Delivery{ID: q.next, Message: id, Domain: dom, Sender: m.Sender,
			Recipients: byDomain[dom], Received: c.Received, Expires: c.Expires}, next: q.now()}
	}
	q.event("enqueue %d from <%s> to %v", id, m.Sender, m.Recipients)
	return id
}

func (q *memQueue) sorted() []*memDelivery {
	var out []*memDelivery
	for _, d := range q.dels {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *memDelivery) int {
		return cmp.Or(a.next.Compare(b.next), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (q *memQueue) Claim(_ context.Context, owner string, now time.Time, lease time.Duration, max int, domain string) ([]queue.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []queue.Delivery
	for _, d := range q.sorted() {
		if len(out) == max {
			break
		}
		if d.next.After(now) || now.Before(d.LeaseUntil) || domain != "" && d.Domain != domain {
			continue
		}
		d.Owner, d.LeaseUntil = owner, now.Add(lease)
		c := d.Delivery
		c.Recipients = slices.Clone(d.Recipients)
		out = append(out, c)
	}
	if len(out) > 0 {
		q.event("claim %s %d", domain, len(out))
	}
	return out, nil
}

func (q *memQueue) LeaseOwners(_ context.Context, now time.Time) ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, d := range q.sorted() {
		if d.Owner != "" && now.Before(d.LeaseUntil) && !slices.Contains(out, d.Owner) {
			out = append(out, d.Owner)
		}
	}
	return out, nil
}

func (q *memQueue) ReleaseLeases(_ context.Context, owner string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, d := range q.dels {
		if d.Owner == owner {
			d.Owner, d.LeaseUntil = "", time.Time{}
			n++
		}
	}
	return n, nil
}

func (q *memQueue) Data(_ context.Context, id queue.ID) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.msgs[id]
	if !ok {
		return nil, queue.ErrNotFound
	}
	return bytes.Clone(m.Data), nil
}

func (q *memQueue) Finish(_ context.Context, dl queue.Delivery, o queue.Outcome) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.outcomes = append(q.outcomes, o)
	d, ok := q.dels[dl.ID]
	if !ok {
		return nil
	}
	done := map[string]bool{}
	for _, r := range o.Delivered {
		done[r] = true
	}
	for r := range o.Failed {
		done[r] = true
	}
	d.Recipients = slices.DeleteFunc(d.Recipients, func(r string) bool { return done[r] })
	d.Attempts++
	d.Owner, d.LeaseUntil = "", time.Time{}
	d.next = cmp.Or(o.Next, q.now())
	for _, r := range d.Recipients {
		if why, ok := o.Deferred[r]; ok {
			d.LastError = why
			break
		}
	}
	var failed []string
	for r := range o.Failed {
		failed = append(failed, r)
	}
	slices.Sort(failed)
	q.event("finish %d delivered=%v failed=%v deferred=%d", dl.ID, o.Delivered, failed, len(o.Deferred))
	if len(d.Recipients) == 0 {
		delete(q.dels, dl.ID)
		left := false
		for _, o := range q.dels {
			left = left || o.Message == d.Message
		}
		if !left {
			delete(q.msgs, d.Message)
		}
	}
	if o.Notify != nil {
		q.notices = append(q.notices, o.Notify)
		q.enqueue(o.Notify)
	}
	return nil
}

func (q *memQueue) Expired(_ context.Context, now time.Time, max int) ([]queue.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []queue.Delivery
	for _, d := range q.sorted() {
		if len(out) == max {
			break
		}
		if !d.Expires.After(now) && !now.Before(d.LeaseUntil) {
			out = append(out, d.Delivery)
		}
	}
	return out, nil
}

func (q *memQueue) Pending(context.Context) ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, d := range q.dels {
		if !slices.Contains(out, d.Domain) {
			out = append(out, d.Domain)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (q *memQueue) FlushDomain(_ context.Context, domain string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, d := range q.dels {
		if d.Domain == domain {
			if d.next.After(q.now()) {
				d.next = q.now()
			}
			n++
		}
	}
	q.event("flush %s %d", domain, n)
	return n, nil
}

func (q *memQueue) Events() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.events)
}

func (q *memQueue) Notices() []*queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.notices)
}

func (q *memQueue) Outcomes() []queue.Outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.outcomes)
}

func (q *memQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.dels)
}

// waitFor waits until cond holds, as the queue changes; the bound only
// keeps a broken test from hanging.
func (q *memQueue) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(20 * time.Second)
	defer guard.Stop()
	for !cond() {
		select {
		case <-q.changed:
		case <-time.After(10 * time.Millisecond):
		case <-guard.C:
			t.Fatalf("never: %s; queue events:\n  %s", what, strings.Join(q.Events(), "\n  "))
		}
	}
}

// setClock is a settable clock.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *setClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// The destination example.test: the primary mx1 at 10 (127.0.0.2), the
// relay itself at 20 (127.0.0.3), a third exchange at 30 (127.0.0.4). The
// senders' domain example.net has its own exchange (127.0.0.5), where
// notifications go.
const relayZones = `
$ORIGIN example.test.
@     3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@     3600 IN MX 10 mx1
@     3600 IN MX 20 relay
@     3600 IN MX 30 mx3
mx1   3600 IN A 127.0.0.2
relay 3600 IN A 127.0.0.3
mx3   3600 IN A 127.0.0.4
$ORIGIN example.net.
@     3600 IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@     3600 IN MX 10 mx
mx    3600 IN A 127.0.0.5
`

const message = "From: alice@example.net\r\nTo: bob@example.test\r\nSubject: lunch\r\nMessage-ID: <m1@example.net>\r\n\r\nAt noon?\r\n"

// newDeliverer is a Deliverer for relay.example.test over q, sending to
// port, with short SMTP time-outs and a fixed jitter source.
func newDeliverer(t *testing.T, q DeliveryQueue, port int, self string) *Deliverer {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(relayZones), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &Deliverer{
		Queue: q,
		Sender: &send.Sender{
			Planner:   &route.Planner{Resolver: z, Self: dnsname.Name(self)},
			Port:      port,
			HelloName: "relay.example.test",
			Timeouts:  mxdial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: 2 * time.Second, Command: 2 * time.Second, DataInit: 2 * time.Second, DataBlock: 2 * time.Second, DataTerm: 2 * time.Second},
		},
		Retry:    send.Retry{Base: time.Minute, Factor: 2, Max: 5 * time.Minute},
		Hostname: "relay.example.test",
		Domains:  []dnsname.Name{"example.test"},
		Owner:    "test",
		Logger:   slog.New(slog.DiscardHandler),
		Rand:     rand.New(rand.NewPCG(1, 2)),
	}
}

// step runs one pass of the delivery loop and waits for its sessions.
func step(t *testing.T, d *Deliverer) {
	t.Helper()
	d.pass(t.Context())
	d.workers.Wait()
}

// dsnFields parses a notification and returns its delivery-status blocks.
func dsnFields(t *testing.T, data []byte) (textproto.MIMEHeader, []textproto.MIMEHeader) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Auto-Submitted") != "auto-replied" || !strings.HasPrefix(m.Header.Get("From"), "Mail Delivery System <MAILER-DAEMON@relay.example.test>") {
		t.Errorf("notification header %v", m.Header)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no message/delivery-status part: %v", err)
		}
		if p.Header.Get("Content-Type") != "message/delivery-status" {
			continue
		}
		tr := textproto.NewReader(bufio.NewReader(p))
		var blocks []textproto.MIMEHeader
		for {
			h, err := tr.ReadMIMEHeader()
			if len(h) > 0 {
				blocks = append(blocks, h)
			}
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
		}
		if len(blocks) < 2 {
			t.Fatalf("delivery-status blocks %v", blocks)
		}
		return blocks[0], blocks[1:]
	}
}

func enqueue(t *testing.T, q *memQueue, sender string, to ...string) queue.ID {
	t.Helper()
	id, err := q.Enqueue(t.Context(), &queue.Message{Sender: sender, Recipients: to, Data: []byte(message)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPrimaryReturns: the primary is down, the delivery is deferred for a
// minute; the primary comes back, and the out-of-band prober, not the
// retry timer (the clock never moves), flushes the destination and the
// message is delivered. The order of events is the assertion.
func TestPrimaryReturns(t *testing.T) {
	port := smtptest.Port(t)
	c := &setClock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	q := newMemQueue(c.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Now = c.Now
	d.ProbeEvery = 20 * time.Millisecond
	d.Poll = time.Hour
	enqueue(t, q, "alice@example.net", "bob@example.test")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	q.waitFor(t, "the first attempt is deferred", func() bool {
		return slices.ContainsFunc(q.Events(), func(e string) bool { return strings.Contains(e, "deferred=1") })
	})
	if n := len(q.Outcomes()); n != 1 || q.Outcomes()[0].Next.Sub(c.Now()) < time.Minute {
		t.Fatalf("outcomes %+v: want one deferral a minute or more out", q.Outcomes())
	}
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Hostname: "mx1.example.test"})
	q.waitFor(t, "the message is delivered", func() bool { return q.Len() == 0 })

	var got []string
	for _, e := range q.Events() {
		for _, k := range []string{"deferred=1", "flush example.test", "delivered=[bob@example.test]"} {
			if strings.Contains(e, k) {
				got = append(got, k)
			}
		}
	}
	if want := []string{"deferred=1", "flush example.test", "delivered=[bob@example.test]"}; !slices.Equal(got, want) {
		t.Errorf("sequence %v, want %v; events:\n  %s", got, want, strings.Join(q.Events(), "\n  "))
	}
	if msgs := mx1.Messages(); len(msgs) != 1 || string(msgs[0].Data) != message || msgs[0].From != "alice@example.net" {
		t.Errorf("mx1 got %+v", msgs)
	}
}

// TestPermanentFailure: a 550 at RCPT fails that recipient at once and a
// notification with the server's Status and Diagnostic-Code goes to the
// envelope sender from the null sender, delivered by normal routing to
// the sender's own exchange; the accepted recipient is delivered.
func TestPermanentFailure(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Hostname: "mx1.example.test", Rcpt: func(to string) error {
		if to == "nobody@example.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	senders := smtptest.Start(t, smtptest.Options{Addr: at(5, port)})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	enqueue(t, q, "alice@example.net", "bob@example.test", "nobody@example.test")
	step(t, d)

	if msgs := mx1.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"bob@example.test"}) {
		t.Fatalf("mx1 got %+v", msgs)
	}
	o := q.Outcomes()
	if len(o) != 1 || o[0].Failed["nobody@example.test"] != "550 5.1.1 no such user" || len(o[0].Deferred) != 0 {
		t.Fatalf("outcomes %+v", o)
	}
	n := q.Notices()
	if len(n) != 1 || n[0].Sender != "" || !slices.Equal(n[0].Recipients, []string{"alice@example.net"}) {
		t.Fatalf("notices %+v: want one from <> to alice", n)
	}
	perMsg, rcpts := dsnFields(t, n[0].Data)
	if perMsg.Get("Reporting-MTA") != "dns; relay.example.test" || len(rcpts) != 1 {
		t.Errorf("per-message %v, %d recipients", perMsg, len(rcpts))
	}
	for k, want := range map[string]string{"Final-Recipient": "rfc822; nobody@example.test", "Action": "failed", "Status": "5.1.1",
		"Remote-MTA": "dns; mx1.example.test", "Diagnostic-Code": "smtp; 550 5.1.1 no such user"} {
		if got := rcpts[0].Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !bytes.Contains(n[0].Data, []byte("Message-ID: <m1@example.net>")) || bytes.Contains(n[0].Data, []byte("At noon?")) {
		t.Errorf("the notification does not return the original header only")
	}
	step(t, d) // the notification, by normal routing
	if msgs := senders.Messages(); len(msgs) != 1 || msgs[0].From != "" || !slices.Equal(msgs[0].To, []string{"alice@example.net"}) {
		t.Fatalf("the sender's exchange got %+v", msgs)
	}
	if q.Len() != 0 {
		t.Errorf("%d deliveries left", q.Len())
	}
}

// TestNullSender: a message from the null sender that fails gets no
// notification (RFC 5321 §4.5.5), and is removed.
func TestNullSender(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	enqueue(t, q, "", "nobody@example.test")
	step(t, d)
	if o := q.Outcomes(); len(o) != 1 || len(o[0].Failed) != 1 || o[0].Notify != nil {
		t.Fatalf("outcomes %+v: want one failure without notice", o)
	}
	if q.Len() != 0 || len(q.Notices()) != 0 {
		t.Errorf("%d deliveries, %d notices left", q.Len(), len(q.Notices()))
	}
}

// TestExpiry: a message still deferred past its Expires (the injected
// clock moves) fails with 4.4.7, its sender is notified, and it leaves the
// queue; a notification from the null sender that expires is dropped.
func TestExpiry(t *testing.T) {
	port := smtptest.Port(t) // nothing listens: every connection is refused
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &setClock{t: start}
	q := newMemQueue(c.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Now = c.Now
	if _, err := q.Enqueue(t.Context(), &queue.Message{Sender: "alice@example.net", Recipients: []string{"bob@example.test"},
		Data: []byte(message), Expires: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	step(t, d)
	if o := q.Outcomes(); len(o) != 1 || len(o[0].Deferred) != 1 || o[0].Notify != nil {
		t.Fatalf("outcomes %+v: want one deferral", o)
	}
	c.Set(start.Add(2 * time.Hour))
	step(t, d)
	o := q.Outcomes()
	if len(o) < 2 || len(o[1].Failed) != 1 || !strings.HasPrefix(o[1].Failed["bob@example.test"], "expired") || o[1].Notify == nil {
		t.Fatalf("outcomes %+v: want the expiry with a notice", o)
	}
	_, rcpts := dsnFields(t, o[1].Notify.Data)
	if rcpts[0].Get("Action") != "failed" || rcpts[0].Get("Status") != "4.4.7" || rcpts[0].Get("Final-Recipient") != "rfc822; bob@example.test" {
		t.Errorf("expiry notice %v", rcpts[0])
	}
	if !o[1].Notify.Expires.Equal(start.Add(2*time.Hour + DefaultLifetime)) {
		t.Errorf("notice expires %v", o[1].Notify.Expires)
	}
	// The notice itself cannot be delivered (example.net's exchange is
	// down too) and expires: it is dropped, never answered.
	c.Set(start.Add(2*time.Hour + DefaultLifetime + time.Minute))
	step(t, d)
	if q.Len() != 0 || len(q.Notices()) != 1 {
		t.Errorf("%d deliveries, %d notices: want none left and no notice about the notice", q.Len(), len(q.Notices()))
	}
}

// TestDelayNotice: one "delayed" notification after DelayNotice, never a
// second.
func TestDelayNotice(t *testing.T) {
	port := smtptest.Port(t)
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &setClock{t: start}
	q := newMemQueue(c.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Now, d.DelayNotice = c.Now, time.Hour
	enqueue(t, q, "alice@example.net", "bob@example.test")
	for i := range 4 {
		c.Set(start.Add(time.Duration(i) * 50 * time.Minute))
		step(t, d)
	}
	var notices []*queue.Message
	for _, n := range q.Notices() {
		notices = append(notices, n)
	}
	if len(notices) != 1 {
		t.Fatalf("%d notices, want 1; outcomes %+v", len(notices), q.Outcomes())
	}
	_, rcpts := dsnFields(t, notices[0].Data)
	if rcpts[0].Get("Action") != "delayed" || rcpts[0].Get("Status") != "4.4.1" || rcpts[0].Get("Will-Retry-Until") == "" {
		t.Errorf("delay notice %v", rcpts[0])
	}
	if o := q.Outcomes(); len(o) < 3 || o[1].Notify != nil || o[2].Notify == nil {
		t.Errorf("the notice came with the wrong attempt: %+v", o)
	}
}

// TestSelfPruning: RFC 5321 §5.1. The relay at 20 delivers only to the
// 10 tier: with mx1 down the message is deferred, and neither the relay's
// own address nor mx3 at 30 is contacted. The relay at 10 has nothing
// left: a routing error, deferred and never sent anywhere.
func TestSelfPruning(t *testing.T) {
	port := smtptest.Port(t)
	self := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
	mx3 := smtptest.Start(t, smtptest.Options{Addr: at(4, port)})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	enqueue(t, q, "alice@example.net", "bob@example.test")
	step(t, d)
	if o := q.Outcomes(); len(o) != 1 || !strings.Contains(o[0].Deferred["bob@example.test"], "mx1.example.test") {
		t.Fatalf("relay at 20: outcomes %+v: want a deferral at mx1", o)
	}
	if self.Connections()+mx3.Connections() != 0 {
		t.Errorf("relay at 20 contacted itself (%d) or mx3 at 30 (%d)", self.Connections(), mx3.Connections())
	}

	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	q = newMemQueue(time.Now)
	d = newDeliverer(t, q, port, "mx1.example.test")
	enqueue(t, q, "alice@example.net", "bob@example.test")
	step(t, d)
	o := q.Outcomes()
	if len(o) != 1 || len(o[0].Failed) != 0 || !strings.Contains(o[0].Deferred["bob@example.test"], "mail loop") {
		t.Fatalf("relay at 10: outcomes %+v: want a deferral naming the mail loop", o)
	}
	if mx1.Connections()+self.Connections()+mx3.Connections() != 0 {
		t.Errorf("relay at 10 contacted an exchange: mx1 %d, relay %d, mx3 %d", mx1.Connections(), self.Connections(), mx3.Connections())
	}
	if err := (&Deliverer{Queue: q, Sender: &send.Sender{Planner: &route.Planner{}}, Hostname: "h"}).Run(t.Context()); err != ErrNoSelf {
		t.Errorf("Run without Self: %v, want ErrNoSelf", err)
	}
}

// TestPerDestination: no more than PerDestination sessions to one
// destination at once. The fake primary holds each message until a third
// session is in (which the bound forbids) or half a second passes, so
// sessions overlap as much as the Deliverer lets them, and counts the
// sessions inside.
func TestPerDestination(t *testing.T) {
	port := smtptest.Port(t)
	var mu sync.Mutex
	active, peak := 0, 0
	cond := sync.NewCond(&mu)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Data: func(string, []string, []byte) error {
		mu.Lock()
		defer mu.Unlock()
		active++
		peak = max(peak, active)
		cond.Broadcast()
		bound := time.AfterFunc(500*time.Millisecond, cond.Broadcast)
		defer bound.Stop()
		deadline := time.Now().Add(500 * time.Millisecond)
		for active <= 2 && time.Now().Before(deadline) {
			cond.Wait()
		}
		active--
		return nil
	}})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.PerDestination = 2
	d.Poll = time.Hour
	for i := range 6 {
		enqueue(t, q, "alice@example.net", fmt.Sprintf("u%d@example.test", i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	q.waitFor(t, "every message is delivered", func() bool { return q.Len() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != 2 || len(mx1.Messages()) != 6 {
		t.Errorf("peak of %d sessions, %d messages; want 2 and 6", peak, len(mx1.Messages()))
	}
}

// TestBackoff: each deferral of a dead destination schedules the next
// attempt at B(n) = min(Tmax, Tbase·k^n) plus at most a tenth, and no
// attempt is made before it.
func TestBackoff(t *testing.T) {
	port := smtptest.Port(t)
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &setClock{t: start}
	q := newMemQueue(c.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Now = c.Now
	enqueue(t, q, "alice@example.net", "bob@example.test")
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, b := range want {
		step(t, d)
		o := q.Outcomes()
		if len(o) != i+1 {
			t.Fatalf("attempt %d: %d outcomes", i+1, len(o))
		}
		wait := o[i].Next.Sub(c.Now())
		if wait < b || wait > b+b/10 {
			t.Errorf("wait %d: %v, want %v plus at most %v", i, wait, b, b/10)
		}
		c.Set(o[i].Next.Add(-time.Second))
		step(t, d)
		if n := len(q.Outcomes()); n != i+1 {
			t.Fatalf("an attempt a second before the scheduled one")
		}
		c.Set(o[i].Next)
	}
}

// TestSQLiteQueue runs the Deliverer on the real queue (SQLite): the
// primary is down, the prober sees it return and flushes; one recipient
// is delivered, the other refused with 550, and the notification goes
// through the same queue to the sender's exchange.
func TestSQLiteQueue(t *testing.T) {
	port := smtptest.Port(t)
	q, err := queue.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	senders := smtptest.Start(t, smtptest.Options{Addr: at(5, port)})
	d := newDeliverer(t, q, port, "relay.example.test")
	d.ProbeEvery, d.Poll = 20*time.Millisecond, time.Hour
	id, err := q.Enqueue(t.Context(), &queue.Message{Sender: "alice@example.net",
		Recipients: []string{"bob@example.test", "nobody@example.test"}, Data: []byte(message)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually(t, "the first attempt is deferred", func() bool {
		e, err := q.Show(t.Context(), id)
		return err == nil && e.Recipients[0].State == queue.StateDeferred
	})
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(to string) error {
		if to == "nobody@example.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	eventually(t, "the queue is empty and the notice delivered", func() bool {
		st, err := q.Stats(t.Context())
		return err == nil && st.Messages == 0 && len(senders.Messages()) == 1
	})
	if msgs := mx1.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"bob@example.test"}) {
		t.Errorf("mx1 got %+v", msgs)
	}
	n := senders.Messages()[0]
	_, rcpts := dsnFields(t, n.Data)
	if n.From != "" || rcpts[0].Get("Final-Recipient") != "rfc822; nobody@example.test" || rcpts[0].Get("Status") != "5.1.1" {
		t.Errorf("notice from <%s>: %v", n.From, rcpts[0])
	}
}

// TestReleaseDead: a relay that starts with the default owner (host:pid)
// frees the deliveries that a dead relay process of its host had claimed,
// and delivers them at once instead of after their lease; a live
// process's claim and another host's are left alone.
func TestReleaseDead(t *testing.T) {
	port := smtptest.Port(t)
	q, err := queue.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	// A pid no process has: a child that has exited and been waited for.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host := hostOwner()
	owners := map[string]string{
		"dead@example.test":  fmt.Sprintf("%s:%d", host, dead.Process.Pid),
		"live@example.test":  fmt.Sprintf("%s:%d", host, os.Getppid()),
		"other@example.test": fmt.Sprintf("elsewhere.example:%d", dead.Process.Pid),
	}
	for _, rcpt := range slices.Sorted(maps.Keys(owners)) {
		if _, err := q.Enqueue(t.Context(), &queue.Message{Sender: "alice@example.net", Recipients: []string{rcpt}, Data: []byte(message)}); err != nil {
			t.Fatal(err)
		}
		// Each message's one delivery, claimed by its owner for an hour.
		if ds, err := q.Claim(t.Context(), owners[rcpt], time.Now(), time.Hour, 1, ""); err != nil || len(ds) != 1 {
			t.Fatalf("claim for %s: %v, %v", owners[rcpt], ds, err)
		}
	}
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Owner, d.Poll = "", 20*time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	eventually(t, "the dead process's delivery is delivered", func() bool { return len(mx1.Messages()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if msgs := mx1.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"dead@example.test"}) {
		t.Errorf("mx1 got %+v; want only the dead owner's message", msgs)
	}
	left, err := q.LeaseOwners(t.Context(), time.Now())
	if err != nil || !slices.Equal(left, slices.Sorted(slices.Values([]string{owners["live@example.test"], owners["other@example.test"]}))) {
		t.Errorf("leases left: %v, %v", left, err)
	}
}

// eventually waits until cond holds; the bound only keeps a broken test
// from hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// TestProbeConfigured: only the configured domains' primaries are probed;
// a notification waiting for a sender's domain does not make the relay
// connect to that domain's exchange every few seconds.
func TestProbeConfigured(t *testing.T) {
	port := smtptest.Port(t)
	senders := smtptest.Start(t, smtptest.Options{Addr: at(5, port)})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.init()
	enqueue(t, q, "", "alice@example.net")
	d.probeAll(t.Context())
	if n := senders.Connections(); n != 0 {
		t.Errorf("example.net probed with Domains set: %d connections", n)
	}
	d.Domains = nil
	d.probeAll(t.Context())
	if n := senders.Connections(); n != 1 {
		t.Errorf("example.net probed %d times without Domains, want 1", n)
	}
	if senders.Transactions() != 0 {
		t.Errorf("the probe started a mail transaction")
	}
}

// TestDeliverShutdown: an attempt cut short by the end of Run is recorded as
// deferred and due at once (not as a failure of the destination), and Run
// returns once it is recorded.
func TestDeliverShutdown(t *testing.T) {
	port := smtptest.Port(t)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Data: func(string, []string, []byte) error {
		close(entered)
		<-release
		return nil
	}})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Poll = time.Hour
	enqueue(t, q, "alice@example.net", "bob@example.test")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-entered
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	o := q.Outcomes()
	if len(o) != 1 || len(o[0].Deferred) != 1 || !o[0].Next.IsZero() {
		t.Fatalf("outcomes %+v: want one deferral due at once", o)
	}
	if n := d.dests.acquire("example.test", time.Now(), 1, 1); n != 1 {
		t.Errorf("the destination backs off after an interrupted attempt")
	}
}

// TestNoticeAddress: the notification goes to the sender's mailbox with
// its domain in canonical form, the local part as it was (a quoted one
// with an "@" included); a sender without a usable domain gets none.
func TestNoticeAddress(t *testing.T) {
	d := newDeliverer(t, newMemQueue(time.Now), 25, "relay.example.test")
	rc := []dsn.Recipient{{FinalRecipient: "bob@example.test", Action: dsn.ActionFailed, Status: "5.1.1"}}
	for sender, want := range map[string]string{
		"Alice@EXAMPLE.net":    "Alice@example.net",
		`"a@b"@example.net`:    `"a@b"@example.net`,
		"alice@bücher.example": "alice@xn--bcher-kva.example",
		"alice":                "",
		"@example.net":         "",
		"alice@[192.0.2.1]":    "",
	} {
		m := d.notice(queue.Delivery{Sender: sender, Recipients: []string{"bob@example.test"}}, rc, time.Now(), []byte(message))
		switch {
		case want == "" && m != nil:
			t.Errorf("%s: a notice to %v", sender, m.Recipients)
		case want != "" && (m == nil || !slices.Equal(m.Recipients, []string{want}) || m.Sender != ""):
			t.Errorf("%s: notice %+v, want one from <> to %s", sender, m, want)
		}
	}
}

// TestAttemptInsideLease: an attempt ends before its lease does, even
// against a server that never answers the final dot, so no other owner
// claims a delivery still being sent.
func TestAttemptInsideLease(t *testing.T) {
	port := smtptest.Port(t)
	release := make(chan struct{})
	defer close(release)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Data: func(string, []string, []byte) error {
		<-release
		return nil
	}})
	q := newMemQueue(time.Now)
	d := newDeliverer(t, q, port, "relay.example.test")
	d.Sender.Timeouts.DataTerm = time.Hour
	d.Lease = 400 * time.Millisecond
	enqueue(t, q, "alice@example.net", "bob@example.test")
	q.waitFor(t, "the attempt ends", func() bool {
		d.pass(t.Context())
		return len(q.Outcomes()) > 0
	})
	d.workers.Wait()
	o := q.Outcomes()
	if len(o) != 1 || len(o[0].Deferred) != 1 {
		t.Fatalf("outcomes %+v: want the attempt cut and deferred", o)
	}
	claims := 0
	for _, e := range q.Events() {
		if strings.HasPrefix(e, "claim ") {
			claims++
		}
	}
	if claims != 1 {
		t.Errorf("%d claims: the delivery was claimed again while being sent", claims)
	}
}

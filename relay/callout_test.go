package relay

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/route"
)

// calloutZone: d.test has its primary at 127.0.0.2 (10), the relay at
// 127.0.0.3 (20) and a worse backup at 127.0.0.4 (30).
const calloutZone = `
$ORIGIN d.test.
@      300 SOA ns hostmaster 1 7200 900 1209600 300
@      MX 10 mx1
@      MX 20 relay
@      MX 30 mx3
mx1    A 127.0.0.2
relay  A 127.0.0.3
mx3    A 127.0.0.4
`

// clock is a settable clock for the caches.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newCallout(t *testing.T, port int, down DownPolicy) (*Callout, *clock) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	return &Callout{
		Planner:   &route.Planner{Resolver: zones(t, calloutZone), Self: dnsname.MustParse("relay.d.test")},
		Port:      port,
		HelloName: "relay.d.test",
		Down:      down,
		Timeouts:  DefaultCalloutTimeouts(),
		Now:       clk.now,
	}, clk
}

// primaryRcpt accepts alice and carol, answers 450 to busy and 550 to the
// rest.
func primaryRcpt(to string) error {
	switch strings.ToLower(to) {
	case "alice@d.test", "carol@d.test":
		return nil
	case "busy@d.test":
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
}

func at(n byte, port int) string {
	return netip.AddrPortFrom(smtptest.Loopback(n), uint16(port)).String()
}

func verify(c *Callout, local string) Verdict {
	return c.VerifyRecipient(context.Background(), addr(local, "d.test"))
}

func TestCalloutPrimaryUp(t *testing.T) {
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: primaryRcpt})
	backup := smtptest.Start(t, smtptest.Options{Addr: at(4, port)})
	c, clk := newCallout(t, port, DownTempfail)

	if v := verify(c, "alice"); !v.Accepted() {
		t.Fatalf("alice: %v", v.Error())
	}
	v := verify(c, "bob")
	if v.Code != 550 || v.Enhanced != "5.1.1" || !strings.Contains(v.Message, "no such user here") || v.Reason != "unknown-recipient" {
		t.Errorf("bob: %q (%s), want 550 5.1.1 with the primary's text", v.Error(), v.Reason)
	}
	// Both answers are cached: no new session.
	n := primary.Connections()
	if !verify(c, "alice").Accepted() || verify(c, "bob").Code != 550 || primary.Connections() != n {
		t.Errorf("cached answers asked again: %d connections, want %d", primary.Connections(), n)
	}
	// Never DATA; never the relay's own tier or a worse one.
	if len(primary.Messages()) != 0 || backup.Connections() != 0 {
		t.Errorf("messages %d, backup connections %d", len(primary.Messages()), backup.Connections())
	}
	// Past the negative TTL, bob is asked again; alice's positive TTL
	// (an hour) still holds.
	clk.add(DefaultNegativeTTL + time.Second)
	verify(c, "alice")
	verify(c, "bob")
	if primary.Connections() != n+1 {
		t.Errorf("%d connections after the negative TTL, want %d", primary.Connections(), n+1)
	}
	if st := c.Stats(); st.Callouts != int64(n+1) || st.Waiting != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCalloutDownPolicies(t *testing.T) {
	port := smtptest.Port(t)
	for _, policy := range []DownPolicy{DownTempfail, DownKnown} {
		t.Run(string(policy), func(t *testing.T) {
			primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: primaryRcpt})
			c, clk := newCallout(t, port, policy)
			if !verify(c, "alice").Accepted() || verify(c, "bob").Code != 550 {
				t.Fatal("the primary's answers")
			}
			primary.Close()
			// Within the positive TTL, alice is accepted under both.
			if v := verify(c, "alice"); !v.Accepted() {
				t.Errorf("alice within the positive TTL: %v", v.Error())
			}
			// Past it, only "known" accepts her.
			clk.add(DefaultPositiveTTL + time.Second)
			v := verify(c, "alice")
			if policy == DownKnown && !v.Accepted() {
				t.Errorf("known: alice, seen valid before: %v", v.Error())
			}
			if policy == DownTempfail && (v.Code != 451 || v.Enhanced != "4.4.1" || v.Reason != "callout-tempfail") {
				t.Errorf("tempfail: alice: %q, want 451 4.4.1", v.Error())
			}
			// Never seen: tempfailed under both; bob's refusal is
			// still cached, and past its TTL he is tempfailed too.
			if v := verify(c, "carol"); v.Code != 451 {
				t.Errorf("carol, never verified: %q, want 451", v.Error())
			}
			if v := verify(c, "bob"); v.Code != 451 {
				t.Errorf("bob after his negative TTL: %q, want 451", v.Error())
			}
			// Past the seen TTL, "known" forgets alice.
			clk.add(DefaultSeenTTL)
			if v := verify(c, "alice"); v.Code != 451 {
				t.Errorf("alice past the seen TTL: %q, want 451", v.Error())
			}
		})
	}
}

func TestCalloutTemporaryReply(t *testing.T) {
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: primaryRcpt})
	c, _ := newCallout(t, port, DownKnown)
	v := verify(c, "busy")
	if v.Code != 451 || v.Enhanced != "4.4.1" {
		t.Errorf("busy (450 at the primary): %q, want 451 4.4.1", v.Error())
	}
	// A 4xx is not cached, and does not mark the domain down: the next
	// ask calls out again, and so does one for another recipient.
	n := primary.Connections()
	verify(c, "busy")
	if v := verify(c, "alice"); !v.Accepted() {
		t.Errorf("alice after busy's 450: %q", v.Error())
	}
	if primary.Connections() != n+2 {
		t.Errorf("connections %d, want %d", primary.Connections(), n+2)
	}
}

func TestCalloutBrokenPrimaries(t *testing.T) {
	port := smtptest.Port(t)
	for _, b := range []smtptest.Behaviour{smtptest.Silent, smtptest.Garbage, smtptest.LongLine, smtptest.EndlessBanner, smtptest.EndlessEHLO,
		smtptest.WrongCode, smtptest.CloseAfterBanner, smtptest.CloseAfterEHLO, smtptest.NoSTARTTLS, smtptest.Reset} {
		t.Run(b.String(), func(t *testing.T) {
			raw := smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: b})
			c, _ := newCallout(t, port, DownTempfail)
			c.Timeouts.Greeting, c.Timeouts.Command, c.Timeouts.Session = 500*time.Millisecond, 500*time.Millisecond, 2*time.Second
			v := verify(c, "alice")
			if v.Code != 451 || v.Reason != "callout-tempfail" {
				t.Errorf("%q, want 451 callout-tempfail", v.Error())
			}
			// The domain is down for DownTTL: the next recipient gets the
			// policy without another connection.
			n := raw.Connections()
			if v := verify(c, "carol"); v.Code != 451 || raw.Connections() != n {
				t.Errorf("carol: %q, %d connections, want 451 and %d", v.Error(), raw.Connections(), n)
			}
			raw.Close()
			for _, line := range raw.Transcript() {
				if strings.HasPrefix(strings.ToUpper(line), "DATA") {
					t.Errorf("sent DATA: %q", line)
				}
			}
		})
	}
}

func TestCalloutSingleflight(t *testing.T) {
	port := smtptest.Port(t)
	const callers = 16
	release := make(chan struct{})
	var asked atomic.Int32
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(to string) error {
		asked.Add(1)
		<-release
		return primaryRcpt(to)
	}})
	c, _ := newCallout(t, port, DownTempfail)
	var wg sync.WaitGroup
	verdicts := make(chan Verdict, callers)
	for range callers {
		wg.Go(func() { verdicts <- verify(c, "alice") })
	}
	// Release the primary once every caller waits for the one callout.
	for i := 0; c.Stats().Waiting < callers; i++ {
		if i == 10_000 {
			t.Fatalf("only %d callers waiting", c.Stats().Waiting)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(verdicts)
	for v := range verdicts {
		if !v.Accepted() {
			t.Errorf("%v", v.Error())
		}
	}
	if asked.Load() != 1 || primary.Connections() != 1 {
		t.Errorf("%d RCPTs over %d connections, want one callout", asked.Load(), primary.Connections())
	}
}

// TestCalloutCallerLeaves: a caller whose context ends gets a tempfail at
// once; the callout goes on and its answer is cached for the next.
func TestCalloutCallerLeaves(t *testing.T) {
	port := smtptest.Port(t)
	release := make(chan struct{})
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(to string) error {
		<-release
		return primaryRcpt(to)
	}})
	c, _ := newCallout(t, port, DownTempfail)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v := c.VerifyRecipient(ctx, addr("alice", "d.test")); v.Code != 451 {
		t.Errorf("cancelled caller: %q, want 451", v.Error())
	}
	close(release)
	if v := verify(c, "alice"); !v.Accepted() {
		t.Errorf("after: %q", v.Error())
	}
	if primary.Connections() != 1 {
		t.Errorf("%d connections, want 1 (the callout the first caller started)", primary.Connections())
	}
}

func TestCalloutCacheBound(t *testing.T) {
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(string) error { return nil }}) // a catch-all
	c, _ := newCallout(t, port, DownTempfail)
	c.MaxEntries = 2
	for _, l := range []string{"a", "b", "c", "b"} {
		if v := verify(c, l); !v.Accepted() {
			t.Fatalf("%s: %v", l, v.Error())
		}
	}
	if primary.Connections() != 3 {
		t.Fatalf("%d connections, want 3", primary.Connections())
	}
	// a was the least recently used of three: evicted, asked again.
	verify(c, "a")
	if primary.Connections() != 4 {
		t.Errorf("%d connections, want 4", primary.Connections())
	}
	if n := len(c.valid.items); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// TestCalloutSelfMisconfigured: without Self the plan would include the
// relay; the callout refuses to run and tempfails.
func TestCalloutSelfMisconfigured(t *testing.T) {
	port := smtptest.Port(t)
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: primaryRcpt})
	c, _ := newCallout(t, port, DownTempfail)
	c.Planner.Self = ""
	if v := verify(c, "alice"); v.Code != 451 || primary.Connections() != 0 {
		t.Errorf("%q with %d connections, want 451 and none", v.Error(), primary.Connections())
	}
}

func TestCalloutBadAddress(t *testing.T) {
	c, _ := newCallout(t, 1, DownTempfail)
	for _, l := range []string{"", "a\r\nDATA", "a\x00"} {
		if v := verify(c, l); v.Code != 550 || v.Enhanced != "5.1.3" {
			t.Errorf("%q: %q", l, v.Error())
		}
	}
	if c.Stats().Callouts != 0 {
		t.Error("called out for a bad address")
	}
}

func TestParseDownPolicy(t *testing.T) {
	for _, s := range []string{"tempfail", "known"} {
		if p, err := ParseDownPolicy(s); err != nil || string(p) != s {
			t.Errorf("%s: %v %v", s, p, err)
		}
	}
	if _, err := ParseDownPolicy("accept"); err == nil {
		t.Error("accept: no error")
	}
}

// FuzzCalloutReply: whatever a primary sends, reading one reply ends
// (bounded in lines and octets) and never panics; a code read is 2xx–5xx.
func FuzzCalloutReply(f *testing.F) {
	f.Add([]byte("250-mx.d.test\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"))
	f.Add([]byte("550 5.1.1 no such user\r\n"))
	f.Add([]byte("250-a\r\n251 b\r\n"))
	f.Add([]byte("220\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := &calloutConn{conn: &fakeConn{r: strings.NewReader(string(data))}, left: MaxCalloutBytes}
		cc.br = probe.NewReplyReader(cc)
		code, text, err := cc.reply()
		if err == nil && (code < 200 || code > 599 || len(text) > 1024) {
			t.Fatalf("code %d, text %d octets", code, len(text))
		}
	})
}

// fakeConn is a net.Conn reading from r.
type fakeConn struct {
	net.Conn
	r io.Reader
}

func (f *fakeConn) Read(p []byte) (int, error) { return f.r.Read(p) }

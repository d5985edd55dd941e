package relay

import (
	"bufio"
	"container/list"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	mxdial "github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/route"
)

// DownPolicy is what the callout does with a recipient it cannot verify
// because the primary tier is unreachable or answers 4xx.
type DownPolicy string

// Down policies.
const (
	// DownTempfail answers 451 4.4.1 to every recipient not in the
	// positive cache (verified within PositiveTTL): the sender keeps the
	// mail and retries. Nothing unverified is ever accepted.
	DownTempfail DownPolicy = "tempfail"
	// DownKnown accepts the recipients the primary accepted within
	// SeenTTL (a longer memory than the positive cache) and answers
	// 451 4.4.1 to the others. Mail for real, known users is taken in
	// while the primary is down; unknown ones wait for it.
	DownKnown DownPolicy = "known"
)

// ParseDownPolicy reads a --down-policy value.
func ParseDownPolicy(s string) (DownPolicy, error) {
	switch p := DownPolicy(s); p {
	case DownTempfail, DownKnown:
		return p, nil
	}
	return "", fmt.Errorf("relay: down policy %q: want %q or %q", s, DownTempfail, DownKnown)
}

// Callout defaults.
const (
	DefaultPositiveTTL  = time.Hour
	DefaultNegativeTTL  = 10 * time.Minute
	DefaultSeenTTL      = 30 * 24 * time.Hour
	DefaultDownTTL      = 10 * time.Second
	DefaultCalloutCache = 100_000
	// MaxCalloutAttempts bounds the primary addresses one callout tries.
	MaxCalloutAttempts = 4
	// MaxCalloutBytes bounds what one primary session may send (RFC 5321
	// replies are short; this is hundreds of them).
	MaxCalloutBytes = 64 << 10
)

// DefaultCalloutTimeouts bound one callout session. A sender waits five
// minutes for the reply to RCPT (RFC 5321 §4.5.3.2.3); the callout answers
// well inside that.
func DefaultCalloutTimeouts() mxdial.SMTPTimeouts {
	return mxdial.SMTPTimeouts{Session: time.Minute, Connect: 10 * time.Second, Greeting: 30 * time.Second, Command: 30 * time.Second}
}

// Callout is the RecipientVerifier of --callout: it asks the primary tier
// whether it would take a recipient, the way the relay will later deliver
// to it (RFC 5321 §3.3: EHLO, MAIL FROM, RCPT TO, then RSET and QUIT, RFC
// 5321 §4.1.1.5, §4.1.1.10; no DATA is ever sent), and caches the answer.
//
//   - The primary tier only: Planner must have Self set to the relay's own
//     name, so that the plan holds only the exchanges more preferred than
//     the relay (RFC 5321 §5.1); the callout asks the most preferred tier
//     of those, its hosts and addresses in the plan's order, at most
//     MaxCalloutAttempts, until one answers RCPT with 2xx or 5xx.
//   - 2xx: the recipient is accepted and remembered as valid for
//     PositiveTTL (and as seen valid for SeenTTL).
//   - 5xx to RCPT: refused with 550 5.1.1 and the primary's text, and
//     remembered for NegativeTTL.
//   - 4xx to RCPT, any failure before it (no connection, a refused
//     greeting, MAIL FROM or EHLO, a time-out, garbage) or no usable plan:
//     the primary cannot say now, and Down decides. After a callout that
//     got no RCPT reply at all, the domain is taken as down for DownTTL:
//     the recipients asked meanwhile get the down policy at once instead
//     of each waiting for a connection time-out. (A 4xx to RCPT is about
//     that recipient only, and is not cached.)
//
// The positive and negative caches are separate LRU lists of at most
// MaxEntries each, so a dictionary attack filling the negative cache
// cannot push the known-valid recipients out. Concurrent callers asking
// for the same address share one callout (singleflight); each waits for
// it only as long as its own context allows.
//
// A Callout must not be copied after first use; its zero caches are made
// on first use.
type Callout struct {
	// Planner plans the route to the recipient's domain; Self must be
	// the relay's name as the domain's MX records name it.
	Planner *route.Planner
	// Dialer connects to the primary; nil: a dial.Net with the connect
	// time-out.
	Dialer mxdial.Dialer
	// Port is the primary's SMTP port; 0: 25.
	Port int
	// HelloName is the name sent in EHLO (the relay's hostname).
	HelloName string
	// Sender is the MAIL FROM of the callout; "" sends the null
	// reverse-path <> (RFC 5321 §4.5.5), which a primary accepts from
	// anyone.
	Sender string
	// PositiveTTL, NegativeTTL, SeenTTL and DownTTL: see Callout; zero
	// means the Default.
	PositiveTTL, NegativeTTL, SeenTTL, DownTTL time.Duration
	// MaxEntries bounds each cache; 0: DefaultCalloutCache.
	MaxEntries int
	// Down is the policy while the primary cannot answer; "" means
	// DownTempfail.
	Down DownPolicy
	// Timeouts bound each callout session; zero fields take
	// DefaultCalloutTimeouts.
	Timeouts mxdial.SMTPTimeouts
	// Now is the clock of the caches; nil: time.Now.
	Now func() time.Time
	// Logger gets one debug line per callout; nil: silent.
	Logger *slog.Logger

	once    sync.Once
	mu      sync.Mutex
	valid   *lru // address → seen valid (until: positive TTL; seen: SeenTTL)
	invalid *lru // address → refused (until: negative TTL; text)
	down    map[dnsname.Name]time.Time
	group   singleflight.Group

	callouts, waiting atomic.Int64
}

// CalloutStats count the callout's work, for metrics and tests.
type CalloutStats struct {
	// Callouts is the number of sessions started with the primary tier
	// (one per address tried).
	Callouts int64
	// Waiting is the number of VerifyRecipient calls waiting now for a
	// callout (their own or one they share).
	Waiting int64
}

// Stats returns the counters.
func (c *Callout) Stats() CalloutStats {
	return CalloutStats{Callouts: c.callouts.Load(), Waiting: c.waiting.Load()}
}

func (c *Callout) init() {
	c.once.Do(func() {
		n := c.MaxEntries
		if n <= 0 {
			n = DefaultCalloutCache
		}
		c.valid, c.invalid = newLRU(n), newLRU(n)
		c.down = map[dnsname.Name]time.Time{}
	})
}

func (c *Callout) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// calloutAnswer is what the primary tier said of one recipient.
type calloutAnswer struct {
	// code is the RCPT reply's code; 0 when no RCPT reply came.
	code int
	// text is the reply's text (escaped, cut) or why there was none.
	text string
}

// VerifyRecipient implements RecipientVerifier with a callout (see
// Callout).
func (c *Callout) VerifyRecipient(ctx context.Context, rcpt Address) Verdict {
	c.init()
	if strings.ContainsFunc(rcpt.Local, func(r rune) bool { return r < ' ' || r == 0x7f }) || rcpt.Local == "" {
		return Verdict{Code: 550, Enhanced: "5.1.3", Message: "bad recipient address syntax", Reason: "bad-address"}
	}
	key := rcpt.String()
	now := c.now()
	c.mu.Lock()
	if e := c.valid.get(key); e != nil && now.Before(e.until) {
		c.mu.Unlock()
		return Verdict{}
	}
	if e := c.invalid.get(key); e != nil && now.Before(e.until) {
		c.mu.Unlock()
		return unknownRecipient(e.text)
	}
	downUntil, isDown := c.down[rcpt.Domain]
	c.mu.Unlock()
	if isDown && now.Before(downUntil) {
		return c.downVerdict(key, now, "the primary is down")
	}

	ch := c.group.DoChan(key, func() (any, error) {
		// The callout outlives a caller that leaves: the others may
		// still want it, and its answer is cached.
		t := c.Timeouts.Or(DefaultCalloutTimeouts())
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.Session)
		defer cancel()
		return c.ask(cctx, rcpt, t), nil
	})
	c.waiting.Add(1)
	var ans calloutAnswer
	select {
	case r := <-ch:
		ans = r.Val.(calloutAnswer)
	case <-ctx.Done():
		c.waiting.Add(-1)
		return Verdict{Code: 451, Enhanced: "4.4.1", Message: "recipient verification did not finish, try again later", Reason: "callout-tempfail"}
	}
	c.waiting.Add(-1)

	now = c.now()
	switch ans.code / 100 {
	case 2:
		return Verdict{}
	case 5:
		return unknownRecipient(ans.text)
	}
	return c.downVerdict(key, now, ans.text)
}

// downVerdict applies the down policy to a recipient the primary could not
// verify now.
func (c *Callout) downVerdict(key string, now time.Time, why string) Verdict {
	if c.Down == DownKnown {
		c.mu.Lock()
		e := c.valid.get(key)
		c.mu.Unlock()
		if e != nil && now.Before(e.seen) {
			return Verdict{}
		}
	}
	return Verdict{Code: 451, Enhanced: "4.4.1", Message: "cannot verify the recipient with the primary now, try again later", Reason: "callout-tempfail"}
}

// ask runs the callout for rcpt and records its answer in the caches.
func (c *Callout) ask(ctx context.Context, rcpt Address, t mxdial.SMTPTimeouts) calloutAnswer {
	ans := c.primary(ctx, rcpt, t)
	now := c.now()
	key := rcpt.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ans.code / 100 {
	case 2:
		c.valid.put(key, &entry{until: now.Add(or(c.PositiveTTL, DefaultPositiveTTL)), seen: now.Add(or(c.SeenTTL, DefaultSeenTTL))})
		c.invalid.remove(key)
		delete(c.down, rcpt.Domain)
	case 5:
		c.invalid.put(key, &entry{until: now.Add(or(c.NegativeTTL, DefaultNegativeTTL)), text: ans.text})
		c.valid.remove(key)
		delete(c.down, rcpt.Domain)
	case 4:
		// A temporary refusal of this recipient says nothing of the
		// others: the domain is not marked down.
	default:
		if len(c.down) >= c.valid.max {
			clear(c.down)
		}
		c.down[rcpt.Domain] = now.Add(or(c.DownTTL, DefaultDownTTL))
	}
	if c.Logger != nil {
		c.Logger.DebugContext(ctx, "callout", "rcpt", key, "code", ans.code, "text", ans.text)
	}
	return ans
}

// primary asks the addresses of the primary tier in turn until one gives
// a definite answer (2xx or 5xx to RCPT).
func (c *Callout) primary(ctx context.Context, rcpt Address, t mxdial.SMTPTimeouts) calloutAnswer {
	if c.Planner == nil || c.Planner.Self == "" {
		// Without Self the plan would include the relay itself.
		return calloutAnswer{text: "callout misconfigured: the planner has no Self"}
	}
	plan, err := c.Planner.Plan(ctx, rcpt.Domain)
	if err != nil {
		return calloutAnswer{text: "no route to the primary: " + err.Error()}
	}
	if plan.Result != route.ResultOK || len(plan.Tiers) == 0 {
		return calloutAnswer{text: "no route to the primary: " + string(plan.Result)}
	}
	last := calloutAnswer{text: "the primary tier has no address"}
	tries := 0
	for _, h := range plan.Tiers[0].Hosts {
		for _, a := range h.Addresses {
			if tries == MaxCalloutAttempts || ctx.Err() != nil {
				return last
			}
			tries++
			last = c.session(ctx, a, rcpt, t)
			if last.code/100 == 2 || last.code/100 == 5 {
				return last
			}
		}
	}
	return last
}

// calloutConn is one callout session's connection: every read and write
// bounded by its stage's deadline and the session's, the octets read
// capped.
type calloutConn struct {
	conn net.Conn
	br   *bufio.Reader
	end  time.Time // the session's deadline
	left int64
}

func (cc *calloutConn) Read(p []byte) (int, error) {
	if cc.left <= 0 {
		return 0, fmt.Errorf("the primary sent more than %d octets", MaxCalloutBytes)
	}
	if int64(len(p)) > cc.left {
		p = p[:cc.left]
	}
	n, err := cc.conn.Read(p)
	cc.left -= int64(n)
	return n, err
}

// stage sets the deadline of the next step: d from now, or the
// session's end if sooner.
func (cc *calloutConn) stage(d time.Duration) {
	t := time.Now().Add(d)
	if !cc.end.IsZero() && t.After(cc.end) {
		t = cc.end
	}
	cc.conn.SetDeadline(t)
}

// cmd sends one command line and reads the reply.
func (cc *calloutConn) cmd(d time.Duration, line string) (int, string, error) {
	cc.stage(d)
	if _, err := io.WriteString(cc.conn, line+"\r\n"); err != nil {
		return 0, "", err
	}
	return cc.reply()
}

// reply reads one SMTP reply (RFC 5321 §4.2) with the probe's reader:
// its code and text (lines joined, escaped by printable, cut).
func (cc *calloutConn) reply() (int, string, error) {
	r, err := probe.ReadReply(cc.br)
	if err != nil {
		return 0, "", err
	}
	return r.Code, r.Text(200), nil
}

// session is one callout to one address: connect, greeting, EHLO (HELO
// when EHLO is not recognised, RFC 5321 §4.1.1.1), MAIL FROM, RCPT TO,
// RSET, QUIT.
func (c *Callout) session(ctx context.Context, addr string, rcpt Address, t mxdial.SMTPTimeouts) calloutAnswer {
	c.callouts.Add(1)
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return calloutAnswer{text: fmt.Sprintf("bad address %q", addr)}
	}
	port := c.Port
	if port == 0 {
		port = mxdial.SMTPPort
	}
	d := c.Dialer
	if d == nil {
		d = &mxdial.Net{Timeout: t.Connect}
	}
	dctx, cancel := context.WithTimeout(ctx, t.Connect)
	conn, err := d.DialContext(dctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
	cancel()
	if err != nil {
		return calloutAnswer{text: fmt.Sprintf("%s: %v", addr, err)}
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	end, _ := ctx.Deadline()
	cc := &calloutConn{conn: conn, end: end, left: MaxCalloutBytes}
	cc.br = probe.NewReplyReader(cc)
	fail := func(step string, code int, text string, err error) calloutAnswer {
		if err != nil {
			return calloutAnswer{text: fmt.Sprintf("%s: %s: %v", addr, step, err)}
		}
		return calloutAnswer{text: fmt.Sprintf("%s: %s: %d %s", addr, step, code, text)}
	}

	cc.stage(t.Greeting)
	code, text, err := cc.reply()
	if err != nil || code != 220 {
		return fail("greeting", code, text, err)
	}
	hello := c.HelloName
	if hello == "" {
		hello = "localhost"
	}
	code, text, err = cc.cmd(t.Command, "EHLO "+hello)
	if err == nil && (code == 500 || code == 502) {
		code, text, err = cc.cmd(t.Command, "HELO "+hello)
	}
	if err != nil || code/100 != 2 {
		return fail("EHLO", code, text, err)
	}
	mail := "MAIL FROM:<" + c.Sender + ">"
	if !isASCII(rcpt.Local) {
		// RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8; a primary
		// without it refuses MAIL, and the callout cannot say.
		mail += " SMTPUTF8"
	}
	code, text, err = cc.cmd(t.Command, mail)
	if err != nil || code/100 != 2 {
		return fail("MAIL FROM", code, text, err)
	}
	code, text, err = cc.cmd(t.Command, "RCPT TO:<"+rcpt.String()+">")
	if err != nil {
		return fail("RCPT TO", code, text, err)
	}
	ans := calloutAnswer{code: code, text: text}
	// RFC 5321 §4.1.1.5: RSET ends the transaction; §4.1.1.10: QUIT the
	// session. Their replies change nothing.
	if _, _, err := cc.cmd(t.Command, "RSET"); err == nil {
		cc.cmd(min(t.Command, mxdial.QuitTimeout), "QUIT")
	}
	return ans
}

// entry is one cached answer.
type entry struct {
	key   string
	until time.Time // the answer holds until then
	seen  time.Time // valid entries: remembered as valid until then
	text  string    // invalid entries: the primary's reply text
	elem  *list.Element
}

// lru is a map bounded to max entries, dropping the least recently used.
type lru struct {
	max   int
	items map[string]*entry
	order *list.List // front: most recently used
}

func newLRU(max int) *lru {
	return &lru{max: max, items: map[string]*entry{}, order: list.New()}
}

func (l *lru) get(key string) *entry {
	e := l.items[key]
	if e != nil {
		l.order.MoveToFront(e.elem)
	}
	return e
}

func (l *lru) put(key string, e *entry) {
	l.remove(key)
	e.key = key
	e.elem = l.order.PushFront(e)
	l.items[key] = e
	for len(l.items) > l.max {
		old := l.order.Back().Value.(*entry)
		l.remove(old.key)
	}
}

func (l *lru) remove(key string) {
	if e := l.items[key]; e != nil {
		l.order.Remove(e.elem)
		delete(l.items, key)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

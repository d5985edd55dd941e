package resolve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults for StubConfig.
const (
	DefaultTimeout  = 2 * time.Second // per attempt, as glibc's resolver (RES_TIMEOUT is 5 s; 2 s suits a tool)
	DefaultAttempts = 2               // UDP tries per server before failing over
	// DefaultUDPSize is the EDNS0 buffer advertised: the DNS Flag Day 2020
	// value, which avoids IP fragmentation on almost every path.
	DefaultUDPSize = 1232
	// maxStrayReplies bounds how many non-matching datagrams one UDP
	// attempt reads before giving up, so a flood cannot keep it busy for
	// the whole deadline doing work.
	maxStrayReplies = 64
)

// StubConfig configures a Stub.
type StubConfig struct {
	// Servers are asked in order, failing over to the next on a time-out,
	// SERVFAIL, REFUSED or malformed reply. Each is "ADDR", "ADDR:PORT",
	// "[V6]:PORT" or "ADDR@PORT"; the port defaults to 53.
	Servers []string
	// Timeout bounds each attempt (default DefaultTimeout); the caller's
	// context bounds the whole lookup.
	Timeout time.Duration
	// Attempts is the number of UDP tries per server (default DefaultAttempts).
	Attempts int
	// UDPSize is the EDNS0 buffer size advertised (default DefaultUDPSize).
	UDPSize uint16
	// NoRecursion clears the RD bit, for asking authoritative servers directly.
	NoRecursion bool
	// CheckingDisabled sets the CD bit (RFC 4035 §3.2.2): a validating
	// resolver then answers even when validation fails, which tells a
	// DNSSEC-bogus zone (SERVFAIL without CD, an answer with it) apart from
	// a broken one.
	CheckingDisabled bool
	// Logger receives one debug line per lookup; nil is silent.
	Logger *slog.Logger
}

// Stub is a stub resolver (RFC 1123 §6.1.3.1) on github.com/miekg/dns: it
// asks recursive resolvers (or, with NoRecursion, authoritative servers)
// over UDP with EDNS0 and falls back to TCP when the reply is truncated. It
// is safe for concurrent use; every query has a deadline.
type Stub struct {
	cfg     StubConfig
	servers []string
	// health is each server's (health.go): one that stopped answering is
	// asked after the others until its hold-down ends. A Stub has no
	// probe of its own: the first lookup after the hold-down is one.
	health []health
	epoch  time.Time // the clock of health
}

// NewStub checks cfg and returns a Stub.
func NewStub(cfg StubConfig) (*Stub, error) {
	if len(cfg.Servers) == 0 {
		return nil, ErrNoServers
	}
	s := &Stub{cfg: cfg, epoch: time.Now(), health: make([]health, len(cfg.Servers))}
	for _, srv := range cfg.Servers {
		addr, err := ParseServer(srv)
		if err != nil {
			return nil, err
		}
		s.servers = append(s.servers, addr)
	}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = DefaultTimeout
	}
	if s.cfg.Attempts <= 0 {
		s.cfg.Attempts = DefaultAttempts
	}
	if s.cfg.UDPSize == 0 {
		s.cfg.UDPSize = DefaultUDPSize
	}
	return s, nil
}

// Servers returns the servers asked, as "host:port".
func (s *Stub) Servers() []string { return append([]string(nil), s.servers...) }

// ParseServer turns a resolver address as users write it into "host:port".
// Only IP addresses are accepted: a resolver given by name would need a
// resolver to find it.
func ParseServer(s string) (string, error) {
	host, port := s, "53"
	if h, p, ok := strings.Cut(s, "@"); ok {
		host, port = h, p
	} else if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("resolve: server %q: not an IP address", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("resolve: server %q: bad port %q", s, port)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// SystemServers returns the nameservers of a resolv.conf file (normally
// /etc/resolv.conf) as "host:port".
func SystemServers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	defer f.Close()
	cc, err := dns.ClientConfigFromReader(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("resolve: %s: %w", path, err)
	}
	var out []string
	for _, srv := range cc.Servers {
		// resolv.conf may carry a zone index (fe80::1%eth0); keep it.
		out = append(out, net.JoinHostPort(srv, cc.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoServers, path)
	}
	return out, nil
}

// Lookup implements Resolver. Servers are tried in order; a time-out,
// SERVFAIL, REFUSED or malformed reply moves on to the next. NXDOMAIN and
// NODATA settle the question and are returned at once. A server that has
// stopped answering is asked after the others for a while (health.go).
func (s *Stub) Lookup(ctx context.Context, q Question) (a *Answer, err error) {
	start := time.Now()
	if s.cfg.Logger != nil {
		defer func() {
			s.cfg.Logger.Debug("dns lookup", "question", q.String(), "rcode", rcodeOf(a), "ad", a != nil && a.AD,
				"server", serverOf(a, err), "elapsed", time.Since(start), "error", err)
		}()
	}
	var last *Error
	var buf [4]int
	for _, i := range s.order(buf[:0]) {
		a, e := s.ask(ctx, i, q)
		if e == nil {
			return a, nil
		}
		last = e
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		return nil, &Error{Question: q, Rcode: -1, Err: ErrNoServers}
	}
	return nil, last
}

// ask asks one server, with retries on time-out and the fall-backs of RFC
// 6891 §7 (EDNS) and RFC 7766 §5 (TCP after truncation).
func (s *Stub) ask(ctx context.Context, i int, q Question) (*Answer, *Error) {
	server := s.servers[i]
	edns := true
	var last *Error
	for attempt := 0; attempt < s.cfg.Attempts; attempt++ {
		if last != nil && s.leave(i) {
			// Found silent meanwhile: the next server, not a retry.
			return nil, last
		}
		m := s.query(q, edns)
		sent := s.now()
		r, err := s.exchange(ctx, "udp", server, m)
		s.note(ctx, i, sent, err)
		if err == nil && r.Truncated {
			// RFC 7766 §5: a truncated UDP reply is retried over TCP.
			r, err = s.exchange(ctx, "tcp", server, m)
		}
		if err != nil {
			last = &Error{Question: q, Server: server, Rcode: -1, Err: err}
			if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
				continue
			}
			return nil, last
		}
		if edns && (r.Rcode == dns.RcodeFormatError || r.Rcode == dns.RcodeNotImplemented) && r.IsEdns0() == nil {
			// RFC 6891 §7: a server that does not know EDNS answers
			// FORMERR (or NOTIMP) without an OPT record; ask it again
			// without one. This does not count as an attempt.
			edns = false
			attempt--
			continue
		}
		return answerOf(q, server, r)
	}
	return nil, last
}

// query builds the message for q. The AD bit asks a validating resolver to
// say whether it validated the answer (RFC 6840 §5.7), without DO and so
// without the cost of signatures in every reply.
func (s *Stub) query(q Question, edns bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Type)
	m.RecursionDesired = !s.cfg.NoRecursion
	m.AuthenticatedData = true
	m.CheckingDisabled = s.cfg.CheckingDisabled
	if edns {
		m.SetEdns0(s.cfg.UDPSize, false)
	}
	return m
}

// answerOf turns a matching reply into an Answer or an Error.
func answerOf(q Question, server string, r *dns.Msg) (*Answer, *Error) {
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		a := &Answer{Question: q, Rcode: r.Rcode, Answer: r.Answer, Authority: r.Ns,
			AD: r.AuthenticatedData, Authoritative: r.Authoritative, Server: server}
		return a.seal(), nil
	case dns.RcodeServerFailure:
		return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: ErrServerFailure}
	case dns.RcodeRefused:
		return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: ErrRefused}
	}
	return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: fmt.Errorf("%w %s", ErrRcode, dns.RcodeToString[r.Rcode])}
}

// exchange sends m over network ("udp" or "tcp") and returns the first
// reply that matches it. A reply with the wrong ID, not marked as a
// response, or for another question is dropped (RFC 5452 §9.1); over UDP
// the read goes on until a matching reply or the deadline, so a spoofed or
// stray datagram cannot stand in for the answer.
func (s *Stub) exchange(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
		// The socket deadline may fire a moment before the context's
		// timer: say which deadline it was either way.
		ctx = contextAtDeadline{ctx, d}
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, netError(ctx, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Cancellation (not only the deadline) must end a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	out, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: packing the query: %w", ErrBadResponse, err)
	}
	if network == "tcp" {
		return readTCP(ctx, conn, out, m)
	}
	if _, err := conn.Write(out); err != nil {
		return nil, netError(ctx, err)
	}
	bp := udpBuffers.Get().(*[]byte)
	defer udpBuffers.Put(bp)
	buf := *bp
	var stray error
	for range maxStrayReplies {
		n, err := conn.Read(buf)
		if err != nil {
			if stray != nil && isTimeout(err) {
				return nil, fmt.Errorf("%w (and dropped a reply: %w)", ErrTimeout, stray)
			}
			return nil, netError(ctx, err)
		}
		r, err := parseReply(buf[:n], m)
		if err != nil {
			stray = err
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: %d replies that do not match the query (last: %w)", ErrBadResponse, maxStrayReplies, stray)
}

// udpBuffers holds read buffers big enough for any datagram, so a lookup
// does not allocate 64 KiB (a scan makes millions). parseReply copies what
// it keeps, so a buffer is free again when exchange returns.
var udpBuffers = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

// readTCP sends a query over a TCP connection with the two-octet length
// prefix of RFC 1035 §4.2.2 and reads one reply.
func readTCP(ctx context.Context, conn net.Conn, out []byte, m *dns.Msg) (*dns.Msg, error) {
	msg := make([]byte, 2+len(out))
	binary.BigEndian.PutUint16(msg, uint16(len(out)))
	copy(msg[2:], out)
	if _, err := conn.Write(msg); err != nil {
		return nil, netError(ctx, err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, netError(ctx, err)
	}
	// The length prefix caps the read at 64 KiB.
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, netError(ctx, err)
	}
	return parseReply(buf, m)
}

// parseReply unpacks b and checks it answers m.
func parseReply(b []byte, m *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	// miekg/dns stops quietly when a section ends early; a reply whose
	// header promises records it does not hold is cut or forged, and
	// taking it as NODATA would turn it into "no MX" (RFC 1035 §4.1.1).
	if counts := [4]int{len(r.Question), len(r.Answer), len(r.Ns), len(r.Extra)}; counts != headerCounts(b) {
		return nil, fmt.Errorf("%w: the header announces %v records per section, the message holds %v", ErrBadResponse, headerCounts(b), counts)
	}
	if r.Id != m.Id {
		return nil, fmt.Errorf("%w: reply ID %d, query ID %d", ErrBadResponse, r.Id, m.Id)
	}
	if !r.Response {
		return nil, fmt.Errorf("%w: reply without the QR bit", ErrBadResponse)
	}
	if len(r.Question) == 0 {
		// Servers may drop the question in an error reply (FORMERR in
		// particular); such a reply carries no data to mistake.
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			return r, nil
		}
		return nil, fmt.Errorf("%w: reply without a question", ErrBadResponse)
	}
	want, got := m.Question[0], r.Question[0]
	if len(r.Question) != 1 || got.Qtype != want.Qtype || got.Qclass != want.Qclass || !EqualNames(got.Name, want.Name) {
		return nil, fmt.Errorf("%w: reply for %s %s, not the question asked", ErrBadResponse, got.Name, dns.TypeToString[got.Qtype])
	}
	return r, nil
}

// contextAtDeadline reports DeadlineExceeded from its deadline on, even
// before the context's own timer has fired.
type contextAtDeadline struct {
	context.Context
	deadline time.Time
}

func (c contextAtDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// headerCounts reads QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT (RFC 1035
// §4.1.1); b is at least a header long, or Unpack would have failed.
func headerCounts(b []byte) [4]int {
	var c [4]int
	for i := range c {
		c[i] = int(binary.BigEndian.Uint16(b[4+2*i:]))
	}
	return c
}

// netError classifies a socket error: time-outs and cancellation become
// ErrTimeout (wrapping the context's error when it caused them).
func netError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	if isTimeout(err) {
		return ErrTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: connection closed mid-reply", ErrBadResponse)
	}
	// ICMP port or host unreachable (over UDP, reported on a later read),
	// a refused TCP connection, no route: nothing answers at the address.
	if unreachable(err) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

func rcodeOf(a *Answer) string {
	if a == nil {
		return ""
	}
	return dns.RcodeToString[a.Rcode]
}

func serverOf(a *Answer, err error) string {
	if a != nil {
		return a.Server
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Server
	}
	return ""
}

// now is the time on the Stub's clock.
func (s *Stub) now() int64 { return int64(time.Since(s.epoch)) }

// note passes the outcome of a UDP try to server i, sent at sent, to its
// health: a reply, or nothing back (a time-out that ran its course, not
// the caller's, or an ICMP unreachable report).
func (s *Stub) note(ctx context.Context, i int, sent int64, err error) {
	h := &s.health[i]
	switch {
	case err == nil:
		if h.heard(s.now()) && s.cfg.Logger != nil {
			s.cfg.Logger.Info("dns server answers again", "server", s.servers[i])
		}
	case ctx.Err() != nil:
	case errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnreachable):
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return // the caller's deadline, not the server's silence
		}
		// A lookup's tries, all silent, are enough: a command makes few
		// lookups, each of which would pay them again.
		limit := int32(max(2, s.cfg.Attempts))
		if hold, wasUp := h.silence(s.now(), sent, limit); wasUp && len(s.servers) > 1 && s.cfg.Logger != nil {
			s.cfg.Logger.Warn("dns server not answering: asked after the others for a while", "server", s.servers[i], "for", hold)
		}
	}
}

// usable returns whether each server is up at now, or its hold-down is
// over (the next lookup is its probe).
func (s *Stub) usable(now int64) func(int) bool {
	return func(i int) bool {
		until := s.health[i].downUntil.Load()
		return until == 0 || now >= until
	}
}

// order appends to buf the indexes of the servers a lookup asks, in
// order (askOrder).
func (s *Stub) order(buf []int) []int {
	return askOrder(buf, len(s.servers), -1, s.usable(s.now()))
}

// leave reports whether a lookup asking server i should go on to the next
// instead of retrying it (passOver).
func (s *Stub) leave(i int) bool {
	return passOver(len(s.servers), i, s.usable(s.now()))
}

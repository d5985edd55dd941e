// Package stub is the stub resolver (RFC 1123 §6.1.3.1) behind mxtrace's
// commands: it asks recursive resolvers, or with NoRecursion authoritative
// servers, over UDP with EDNS0 (RFC 6891), retries over TCP when a reply
// is truncated (RFC 7766 §5), checks that a reply answers the query asked
// (RFC 5452 §9.1), and fails over between servers, asking one that has
// stopped answering after the others for a while. It opens a socket, and
// so a random source port, per query: the transport for a few lookups on
// any path. resolve/mux is the one for bulk work.
package stub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// Defaults for Config.
const (
	DefaultTimeout  = 2 * time.Second // per attempt, as glibc's resolver (RES_TIMEOUT is 5 s; 2 s suits a tool)
	DefaultAttempts = 2               // UDP tries per server before failing over
	// DefaultUDPSize is the EDNS0 buffer advertised: the DNS Flag Day 2020
	// value, which avoids IP fragmentation on almost every path.
	DefaultUDPSize = 1232
)

// Config configures a Stub.
type Config struct {
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
	cfg     Config
	servers []string
	// health is each server's (upstream/health.go): one that stopped
	// answering is asked after the others until its hold-down ends. A
	// Stub has no probe of its own: the first lookup after the hold-down
	// is one.
	health []upstream.Health
	epoch  time.Time // the clock of health
}

// New checks cfg and returns a Stub.
func New(cfg Config) (*Stub, error) {
	if len(cfg.Servers) == 0 {
		return nil, resolve.ErrNoServers
	}
	s := &Stub{cfg: cfg, epoch: time.Now(), health: make([]upstream.Health, len(cfg.Servers))}
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

// Config returns the configuration in use: New's, with the defaults
// filled in.
func (s *Stub) Config() Config { return s.cfg }

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
		return nil, fmt.Errorf("%w in %s", resolve.ErrNoServers, path)
	}
	return out, nil
}

// Lookup implements Resolver. Servers are tried in order; a time-out,
// SERVFAIL, REFUSED or malformed reply moves on to the next. NXDOMAIN and
// NODATA settle the question and are returned at once. A server that has
// stopped answering is asked after the others for a while
// (upstream/health.go).
func (s *Stub) Lookup(ctx context.Context, q resolve.Question) (a *resolve.Answer, err error) {
	start := time.Now()
	if s.cfg.Logger != nil {
		defer func() {
			s.cfg.Logger.Debug("dns lookup", "question", q.String(), "rcode", upstream.RcodeOf(a), "ad", a != nil && a.AD,
				"server", upstream.ServerOf(a, err), "elapsed", time.Since(start), "error", err)
		}()
	}
	var last *resolve.Error
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
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: resolve.ErrNoServers}
	}
	return nil, last
}

// ask asks one server, with retries on time-out and the fall-backs of RFC
// 6891 §7 (EDNS) and RFC 7766 §5 (TCP after truncation).
func (s *Stub) ask(ctx context.Context, i int, q resolve.Question) (*resolve.Answer, *resolve.Error) {
	server := s.servers[i]
	edns := true
	var last *resolve.Error
	timeouts := 0
	for attempt := 0; attempt < s.cfg.Attempts; attempt++ {
		if last != nil && s.leave(i) {
			// Found silent meanwhile: the next server, not a retry.
			return nil, last
		}
		m := s.query(q, edns)
		sent := s.now()
		r, err := upstream.Exchange(ctx, "udp", server, m, s.cfg.Timeout)
		s.note(ctx, i, sent, err)
		r, tcp, err := upstream.RetryTruncated(ctx, server, m, s.cfg.Timeout, r, err)
		if err != nil {
			last = &resolve.Error{Question: q, Server: server, Rcode: -1, Err: err, TCP: tcp}
			if errors.Is(err, resolve.ErrTimeout) {
				timeouts++
				last.Waited, last.Tries = s.cfg.Timeout, timeouts
				if ctx.Err() == nil {
					continue
				}
			}
			return nil, last
		}
		if edns && upstream.EDNSUnknown(r) {
			// Ask again without EDNS; this does not count as an attempt.
			edns = false
			attempt--
			continue
		}
		return resolve.FromReply(q, server, r)
	}
	return nil, last
}

// query builds the message for q. The AD bit asks a validating resolver to
// say whether it validated the answer (RFC 6840 §5.7), without DO and so
// without the cost of signatures in every reply.
func (s *Stub) query(q resolve.Question, edns bool) *dns.Msg {
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

// now is the time on the Stub's clock.
func (s *Stub) now() int64 { return int64(time.Since(s.epoch)) }

// note passes the outcome of a UDP try to server i, sent at sent, to its
// health: a reply, or nothing back (a time-out that ran its course, not
// the caller's, or an ICMP unreachable report).
func (s *Stub) note(ctx context.Context, i int, sent int64, err error) {
	h := &s.health[i]
	switch {
	case err == nil:
		if h.Heard(s.now()) && s.cfg.Logger != nil {
			s.cfg.Logger.Info("dns server answers again", "server", s.servers[i])
		}
	case ctx.Err() != nil:
	case errors.Is(err, resolve.ErrTimeout) || errors.Is(err, resolve.ErrUnreachable):
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return // the caller's deadline, not the server's silence
		}
		// A lookup's tries, all silent, are enough: a command makes few
		// lookups, each of which would pay them again.
		limit := int32(max(2, s.cfg.Attempts))
		if hold, wasUp := h.Silence(s.now(), sent, limit); wasUp && len(s.servers) > 1 && s.cfg.Logger != nil {
			s.cfg.Logger.Warn("dns server not answering: asked after the others for a while", "server", s.servers[i], "for", hold)
		}
	}
}

// usable returns whether each server is up at now, or its hold-down is
// over (the next lookup is its probe).
func (s *Stub) usable(now int64) func(int) bool {
	return func(i int) bool { return s.health[i].Usable(now) }
}

// order appends to buf the indexes of the servers a lookup asks, in
// order (upstream.AskOrder).
func (s *Stub) order(buf []int) []int {
	return upstream.AskOrder(buf, len(s.servers), -1, s.usable(s.now()))
}

// leave reports whether a lookup asking server i should go on to the next
// instead of retrying it (upstream.PassOver).
func (s *Stub) leave(i int) bool {
	return upstream.PassOver(len(s.servers), i, s.usable(s.now()))
}

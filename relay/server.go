package relay

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/clientlimit"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// Defaults of Config.
const (
	// DefaultMaxSize is the SIZE (RFC 1870) the server offers when
	// Config.MaxSize is 0: 25 MiB.
	DefaultMaxSize = 25 << 20
	// DefaultMaxRecipients is Config.MaxRecipients when 0: RFC 5321
	// §4.5.3.1.8 asks a server to take at least 100 recipients.
	DefaultMaxRecipients = 100
	// DefaultLifetime is how long a message may wait in the queue
	// (Config.Lifetime when 0): RFC 5321 §4.5.4.1 gives up after 4-5
	// days.
	DefaultLifetime = 5 * 24 * time.Hour
	// maxRefusedRcpt is how many recipients one session may have
	// refused before the server ends it: a client trying addresses
	// (a dictionary attack, an open-relay scan) gets a few answers, not
	// an oracle.
	maxRefusedRcpt = 20
	// headerRoom is what the data buffer keeps free in front of the
	// message for the fields the relay adds, so that adding them does
	// not copy the message.
	headerRoom = 8 << 10
	// maxLineLength is the longest command or text line taken, twice
	// RFC 5321 §4.5.3.1.6's 1000 octets as go-smtp does; a longer one
	// ends the session.
	maxLineLength = 2000
)

// Timeouts bound a client's session on the server side. Every read and
// every write has a deadline.
type Timeouts struct {
	// Command is the wait for the client's next command: RFC 5321
	// §4.5.3.2.7 asks for at least 5 minutes. It also bounds each
	// check made for a command (recipient verification, SPF, the
	// queue's write).
	Command time.Duration
	// Data is the wait for each read of the message data (§4.5.3.2.5:
	// 3 minutes per data block).
	Data time.Duration
	// Write bounds each reply.
	Write time.Duration
	// Session bounds the whole connection; it ends at the first read
	// after it, with 421 4.4.2.
	Session time.Duration
}

// DefaultTimeouts are RFC 5321 §4.5.3.2's server-side figures, a minute
// per reply and an hour per session.
func DefaultTimeouts() Timeouts {
	return Timeouts{Command: 5 * time.Minute, Data: 3 * time.Minute, Write: time.Minute, Session: time.Hour}
}

// or fills the zero fields of t from d.
func (t Timeouts) or(d Timeouts) Timeouts {
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Command, &d.Command}, {&t.Data, &d.Data}, {&t.Write, &d.Write}, {&t.Session, &d.Session},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Config is the relay server's configuration. Domains, Hostname and Queue
// are required; every other zero value has a default.
type Config struct {
	// Domains are the only recipient domains accepted (compared in
	// canonical form, so case never matters; a subdomain is another
	// domain).
	Domains []dnsname.Name
	// Hostname is the server's name in its banner, its EHLO reply and
	// the "by" of its Received field.
	Hostname string
	// Queue stores each accepted message before the 250 reply.
	Queue Enqueuer
	// Recipients decides on each recipient of a configured domain. Nil
	// accepts every local part, which makes the relay accept mail the
	// primary will refuse and bounce it later (backscatter): set it.
	Recipients RecipientVerifier
	// Auth is the sender policy: SPF at MAIL FROM, recorded in
	// Received-SPF, and DMARC at the end of the data. Nil: none.
	Auth *Authenticator
	// MaxSize is the largest message taken, in octets (SIZE, RFC 1870);
	// 0: DefaultMaxSize.
	MaxSize int64
	// MaxRecipients is the most recipients per message; 0:
	// DefaultMaxRecipients.
	MaxRecipients int
	// MaxMemory bounds the message data all sessions hold at once
	// (buffer capacity, in octets), since each message is read whole
	// before it is queued; a message that would pass it gets 452 4.3.1
	// and is tried again later by its sender. 0: room for 8 messages of
	// MaxSize; never less than room for one while its buffer grows
	// (twice its size).
	MaxMemory int64
	// TLS, when set, is offered with STARTTLS (RFC 3207).
	TLS *tls.Config
	// MaxConns bounds the open connections; MaxConnsPerClient those
	// from one IPv4 address or IPv6 /64. 0: no bound.
	MaxConns, MaxConnsPerClient int
	// Rate is the messages per second one client (IPv4 address or IPv6
	// /64) may send, with bursts of Burst; 0: no limit.
	Rate  float64
	Burst int
	// Timeouts bound each session; zero fields take DefaultTimeouts.
	Timeouts Timeouts
	// Lifetime is how long an accepted message may wait for delivery
	// (queue.Message.Expires); 0: DefaultLifetime.
	Lifetime time.Duration
	// Metrics counts what the server accepts and refuses; nil: nothing.
	Metrics *Metrics
	// Logger logs sessions and refusals; nil: slog.Default().
	Logger *slog.Logger
	// Accepted, when set, is called with each message's queue ID once
	// it is queued (it wakes the deliverer).
	Accepted func(queue.ID)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Server is the relay's SMTP server: it takes mail for Config.Domains
// only, checks each recipient, and queues each message before it answers
// 250. It is a go-smtp backend.
type Server struct {
	cfg     Config
	domains map[dnsname.Name]bool
	smtp    *smtp.Server
	conns   *connLimits
	rates   *clientlimit.Buckets // nil: no rate limit
	memory  atomic.Int64         // message data held, against MaxMemory
	metrics *Metrics             // nil-safe
	log     *slog.Logger
	now     func() time.Time

	ctx    context.Context // canceled when the server is closed for good
	cancel context.CancelFunc

	mu      sync.Mutex
	open    map[*clientConn]struct{}
	closing bool
}

// NewServer checks cfg and makes a server; Serve starts it.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("relay: no domains to accept mail for")
	}
	if cfg.Queue == nil {
		return nil, errors.New("relay: no queue")
	}
	if _, err := parseDomain(cfg.Hostname); err != nil {
		return nil, fmt.Errorf("relay: hostname %q: %w", cfg.Hostname, err)
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if one := cfg.MaxSize + 1 + headerRoom; cfg.MaxMemory <= 0 {
		cfg.MaxMemory = 8 * one
	} else {
		cfg.MaxMemory = max(cfg.MaxMemory, 2*one)
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	cfg.Timeouts = cfg.Timeouts.or(DefaultTimeouts())
	s := &Server{
		cfg:     cfg,
		domains: make(map[dnsname.Name]bool, len(cfg.Domains)),
		conns:   &connLimits{max: cfg.MaxConns, perClient: cfg.MaxConnsPerClient, byClient: make(map[netip.Prefix]int)},
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		now:     cfg.Now,
		open:    make(map[*clientConn]struct{}),
	}
	for _, d := range cfg.Domains {
		// The same canonical form ParseAddress gives recipients.
		name, err := parseDomain(d.String())
		if err != nil {
			return nil, fmt.Errorf("relay: domain %q: %w", d, err)
		}
		s.domains[name] = true
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Rate > 0 {
		s.rates = clientlimit.New(cfg.Rate, cfg.Burst, clientlimit.MaxBuckets)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxSize
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = maxLineLength
	srv.ReadTimeout = cfg.Timeouts.Command
	srv.WriteTimeout = cfg.Timeouts.Write
	srv.TLSConfig = cfg.TLS
	srv.ErrorLog = slogPrinter{s.log}
	s.smtp = srv
	return s, nil
}

// Serve answers SMTP on ln until Shutdown; it returns nil then, or the
// listener's error.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.smtp.Serve(&limitListener{Listener: ln, s: s}); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("relay: serve: %w", err)
	}
	return nil
}

// Shutdown stops taking connections and ends the open sessions as each
// finishes its transaction: a session waiting for a command gets 421 4.4.2
// (RFC 5321 §3.8) now, one inside a transaction when its message is
// queued or refused. When ctx ends first, the remaining connections are
// closed and Shutdown returns ctx's error; a message they were sending was
// not acknowledged, so the client keeps it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.open {
		c.end()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		// go-smtp's Close does nothing after its Shutdown: close the
		// connections left here. Their sessions then end on the read
		// error, and a check or queue write in progress is canceled.
		s.cancel()
		s.mu.Lock()
		for c := range s.open {
			_ = c.Conn.Close()
		}
		s.mu.Unlock()
		return fmt.Errorf("relay: shutdown: %w", err)
	}
	s.cancel()
	return nil
}

// track adds or removes an open connection; one added while the server is
// closing is asked to end at once.
func (s *Server) track(c *clientConn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.open, c)
		return
	}
	s.open[c] = struct{}{}
	if s.closing {
		c.end()
	}
}

// slogPrinter is go-smtp's error log on slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("relay: smtp: " + fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...any) { p.log.Warn("relay: smtp: " + fmt.Sprint(v...)) }

// NewSession starts the session of a client that said EHLO or HELO (again
// after STARTTLS). It is go-smtp's Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	cc, _ := nc.(*clientConn)
	_, isTLS := c.TLSConnectionState()
	return &session{s: s, conn: cc, client: remoteAddr(nc), helo: c.Hostname(), tls: isTLS}, nil
}

// session is one client's SMTP session: the transaction in progress.
type session struct {
	s      *Server
	conn   *clientConn // nil when not accepted through Serve's listener
	client netip.Addr
	helo   string
	tls    bool

	id      string       // the transaction's ID: Received field and log
	from    string       // envelope sender, "" for <>
	sender  *SenderCheck // SPF's verdict on it, with Config.Auth
	rcpts   []Address
	refused int // recipients refused in this session
}

// reply is an SMTP reply as a go-smtp error.
func reply(code int, enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

func (ss *session) setInTransaction(in bool) {
	if ss.conn != nil {
		ss.conn.inTransaction.Store(in)
	}
}

// Mail starts a transaction (RFC 5321 §4.1.1.2): the client's message rate
// is checked, then the sender's syntax.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	s := ss.s
	ss.reset()
	if s.rates != nil && s.rates.Take(clientlimit.Key(ss.client), s.now()) > 0 {
		s.metrics.MessageRefused("rate")
		s.log.Info("relay: message rate exceeded", "client", ss.client)
		// RFC 3463 §3.8: X.7.1 delivery not authorized; 4xx: try later.
		return reply(451, smtp.EnhancedCode{4, 7, 1}, "Too many messages from your network, try again later")
	}
	if opts != nil && opts.Size > s.cfg.MaxSize {
		// RFC 1870 §6.2.
		return reply(552, smtp.EnhancedCode{5, 3, 4}, fmt.Sprintf("Message size exceeds the limit of %d octets", s.cfg.MaxSize))
	}
	if from != "" {
		if _, err := mailboxOf(from); err != nil {
			// RFC 3463 §3.2: X.1.7 bad sender's mailbox address syntax.
			return reply(553, smtp.EnhancedCode{5, 1, 7}, "Sender address refused: "+addressText(err))
		}
	}
	ss.setInTransaction(true)
	if s.cfg.Auth != nil {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Command)
		ss.sender = s.cfg.Auth.CheckSender(ctx, ss.client, ss.helo, from)
		cancel()
	}
	ss.from = from
	ss.id = newID()
	return nil
}

// Rcpt takes one recipient (RFC 5321 §4.1.1.3) when its address passes
// ParseAddress, its domain is one of Config.Domains, and
// Config.Recipients accepts it. Every other address gets 550 5.7.1.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	v := ss.judgeRcpt(to)
	if v.Accepted() {
		return nil
	}
	ss.refused++
	s.metrics.RcptRefused(v.Reason)
	s.log.Info("relay: recipient refused", "client", ss.client, "rcpt", to, "reason", v.Reason, "reply", v.Error())
	if ss.refused >= maxRefusedRcpt && ss.conn != nil {
		ss.conn.end()
		ss.setInTransaction(false)
		return reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many refused recipients, closing the connection")
	}
	return verdictReply(v)
}

// verdictReply is a refusal as the client gets it: the text printable
// ASCII only (a callout's verdict may carry the primary's words, and a CR
// or LF in it would break the reply).
func verdictReply(v Verdict) *smtp.SMTPError {
	return reply(v.Code, enhancedOf(v.Enhanced), asciiOnly(v.Message))
}

func (ss *session) judgeRcpt(to string) Verdict {
	s := ss.s
	addr, err := mailboxOf(to)
	if err != nil {
		return Verdict{Code: 550, Enhanced: "5.7.1", Message: "Relaying denied: " + addressText(err), Reason: AddressReason(err)}
	}
	if !s.domains[addr.Domain] {
		return Verdict{Code: 550, Enhanced: "5.7.1", Message: "Relaying denied: " + addr.Domain.String() + " is not a domain of this server", Reason: "not-our-domain"}
	}
	for _, r := range ss.rcpts {
		if r == addr {
			return Verdict{} // the same recipient again: taken once
		}
	}
	if s.cfg.Recipients != nil {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Command)
		v := s.cfg.Recipients.VerifyRecipient(ctx, addr)
		cancel()
		if !v.Accepted() {
			if v.Code < 400 || v.Code > 599 || v.Enhanced == "" || v.Message == "" || v.Reason == "" {
				// A verifier's refusal that is not a 4xx or 5xx
				// reply with all its parts: fail safe, for now.
				v = Verdict{Code: 451, Enhanced: "4.3.0", Message: "Recipient verification failed, try again later", Reason: "verify-error"}
			}
			return v
		}
	}
	ss.rcpts = append(ss.rcpts, addr)
	return Verdict{}
}

// Data reads the message (at most Config.MaxSize octets), judges it with
// Config.Auth (DMARC), adds the relay's header fields, queues it and
// answers 250 with its queue ID only once the queue has it on stable
// storage (RFC 5321 §6.1).
//
// The fields go on top, newest first: Authentication-Results (RFC 8601
// §5: at the top), Received-SPF (RFC 7208 §9.1: above the Received field
// of the receiver), Received (RFC 5321 §4.4). Authentication-Results
// fields in the message that name this relay as their author are removed
// first (RFC 8601 §5).
func (ss *session) Data(r io.Reader) error {
	s := ss.s
	defer ss.setInTransaction(false)
	body, err := ss.readData(r)
	defer s.release(int64(cap(body)))
	if err != nil {
		return err
	}
	// RFC 8601 §5: results that claim to be this relay's, arriving from
	// outside, are forgeries the primary would trust.
	if msg, n := dropOwnResults(body[headerRoom:], s.cfg.Hostname); n > 0 {
		body = body[:headerRoom+len(msg)]
		s.log.Info("relay: removed forged Authentication-Results", "client", ss.client, "session", ss.id, "fields", n)
	}
	var auth string
	if s.cfg.Auth != nil {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Command)
		v, fields := s.cfg.Auth.CheckMessage(ctx, ss.sender, body[headerRoom:])
		cancel()
		if !v.Accepted() {
			s.metrics.MessageRefused(v.Reason)
			s.log.Info("relay: message refused", "client", ss.client, "session", ss.id, "from", ss.from,
				"reason", v.Reason, "reply", v.Error())
			return verdictReply(v)
		}
		if ss.sender != nil {
			fields = append(fields, ss.sender.Header())
		}
		auth = headerBlock(fields)
	}
	now := s.now()
	head := auth + received(receivedInfo{
		Helo: ss.helo, Client: ss.client, Hostname: s.cfg.Hostname, TLS: ss.tls,
		ID: ss.id, Rcpt: ss.rcpts, Date: now,
	})
	data := prepend(body, head)
	rcpts := make([]string, len(ss.rcpts))
	for i, a := range ss.rcpts {
		rcpts[i] = a.String()
	}
	msg := &queue.Message{
		Sender: ss.from, Recipients: rcpts, Data: data, Client: ss.client, Helo: ss.helo,
		Received: now, Expires: now.Add(s.cfg.Lifetime),
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Command)
	id, err := s.cfg.Queue.Enqueue(ctx, msg)
	cancel()
	if err != nil {
		s.log.Error("relay: enqueue failed", "client", ss.client, "session", ss.id, "err", err)
		// RFC 3463 §3.4: X.3.0 mail system status; 4xx, the client keeps it.
		return reply(451, smtp.EnhancedCode{4, 3, 0}, "Could not queue the message, try again later")
	}
	s.metrics.Accepted(len(data))
	s.log.Info("relay: message queued", "client", ss.client, "session", ss.id, "queue_id", id,
		"from", ss.from, "rcpts", len(rcpts), "size", len(data))
	if s.cfg.Accepted != nil {
		s.cfg.Accepted(id)
	}
	return reply(250, smtp.EnhancedCode{2, 0, 0}, fmt.Sprintf("OK queued as %d", id))
}

// reserve takes n octets of the MaxMemory budget, or reports that they
// are not there.
func (s *Server) reserve(n int64) bool {
	if s.memory.Add(n) > s.cfg.MaxMemory {
		s.memory.Add(-n)
		return false
	}
	return true
}

// release gives back n octets of the budget.
func (s *Server) release(n int64) { s.memory.Add(-n) }

// readData reads the message into a buffer with headerRoom free in front,
// never holding more than MaxSize+1 octets of it, each read bounded by
// Timeouts.Data. The buffer's capacity is reserved in the MaxMemory
// budget as it grows; the caller releases cap of what it returns (nil
// with an error: everything was released).
func (ss *session) readData(r io.Reader) (_ []byte, err error) {
	s := ss.s
	tooBig := reply(552, smtp.EnhancedCode{5, 3, 4}, fmt.Sprintf("Message size exceeds the limit of %d octets", s.cfg.MaxSize))
	// RFC 5321 §4.2.2: 452 insufficient system storage; RFC 3463 §3.4:
	// X.3.1 mail system full.
	full := reply(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage, try again later")
	limit := int(s.cfg.MaxSize) + 1 // one octet more tells "too big" from "exactly the limit"
	var buf []byte
	defer func() {
		if err != nil {
			s.release(int64(cap(buf)))
		}
	}()
	grow := func(capacity int) bool {
		if !s.reserve(int64(capacity)) {
			s.metrics.MessageRefused("memory")
			s.log.Warn("relay: message data over the memory bound", "client", ss.client, "session", ss.id, "max_memory", s.cfg.MaxMemory)
			return false
		}
		grown := make([]byte, max(len(buf), headerRoom), capacity)
		copy(grown, buf)
		s.release(int64(cap(buf)))
		buf = grown
		return true
	}
	if !grow(headerRoom + min(limit, 64<<10)) {
		return nil, full
	}
	for {
		if len(buf) == cap(buf) {
			if len(buf)-headerRoom >= limit {
				s.metrics.MessageRefused("size")
				return nil, tooBig
			}
			if !grow(headerRoom + min(limit, 2*(cap(buf)-headerRoom))) {
				return nil, full
			}
		}
		if ss.conn != nil {
			_ = ss.conn.SetReadDeadline(time.Now().Add(s.cfg.Timeouts.Data))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case errors.Is(err, smtp.ErrDataTooLarge):
			s.metrics.MessageRefused("size")
			return nil, tooBig
		case errors.Is(err, os.ErrDeadlineExceeded):
			// §4.5.3.2.5: the client stalled; end the session.
			s.log.Info("relay: timeout reading the message", "client", ss.client, "session", ss.id)
			if ss.conn != nil {
				ss.conn.end()
			}
			return nil, reply(421, smtp.EnhancedCode{4, 4, 2}, "Timeout reading the message, closing the connection")
		case err != nil:
			// smtp.ErrDataReset (RSET or QUIT between BDAT chunks), a
			// broken connection: no message, and go-smtp's own
			// answer, never the error's text.
			s.log.Info("relay: reading the message failed", "client", ss.client, "session", ss.id, "err", err)
			if errors.Is(err, smtp.ErrDataReset) {
				return nil, err
			}
			return nil, reply(451, smtp.EnhancedCode{4, 3, 0}, "Error reading the message, try again later")
		}
	}
}

// prepend puts head in front of the message in buf (which starts with
// headerRoom free octets), without copying the message when head fits.
func prepend(buf []byte, head string) []byte {
	if len(head) <= headerRoom {
		start := headerRoom - len(head)
		copy(buf[start:], head)
		return buf[start:]
	}
	return append([]byte(head), buf[headerRoom:]...)
}

// Reset ends the transaction (RSET, a new MAIL, or after DATA).
func (ss *session) Reset() { ss.reset() }

func (ss *session) reset() {
	ss.from, ss.rcpts, ss.id, ss.sender = "", nil, "", nil
	ss.setInTransaction(false)
}

// Logout ends the session.
func (ss *session) Logout() error {
	ss.reset()
	return nil
}

// newID is a transaction ID: 12 random hexadecimal digits.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// enhancedOf parses an RFC 3463 status code such as "5.1.1"; a malformed
// one gives EnhancedCodeNotSet (go-smtp then sends X.0.0).
func enhancedOf(s string) smtp.EnhancedCode {
	var c smtp.EnhancedCode
	if n, err := fmt.Sscanf(s, "%d.%d.%d", &c[0], &c[1], &c[2]); err != nil || n != 3 {
		return smtp.EnhancedCodeNotSet
	}
	return c
}

// addressText is what a reply says about a ParseAddress error: its kind
// and detail, printable ASCII only (the detail quotes the client's text
// with Go escapes already).
func addressText(err error) string {
	text := err.Error()
	if ae, ok := errors.AsType[*addressError](err); ok {
		text = ae.kind.Error() + ": " + ae.detail
	}
	return asciiOnly(text)
}

// asciiOnly is s with every octet that is not printable ASCII removed.
func asciiOnly(s string) string {
	b := make([]byte, 0, len(s))
	for _, c := range []byte(s) {
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

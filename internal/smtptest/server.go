package smtptest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Defaults and bounds of the well-behaved server.
const (
	// DefaultHostname is the server's name when Options.Hostname is empty.
	DefaultHostname = "mx.smtptest.invalid"
	// DefaultMaxMessageBytes is the message size limit when
	// Options.MaxMessageBytes is zero.
	DefaultMaxMessageBytes = 1 << 20
	// SessionTimeout is go-smtp's read and write time-out: a session idle
	// for that long is closed with 421.
	SessionTimeout = 10 * time.Second
	// maxRecipients bounds RCPT commands per transaction (RFC 5321
	// §4.5.3.1.8 asks for at least 100).
	maxRecipients = 100
	// maxConns bounds concurrent sessions; more are closed on accept.
	maxConns = 256
	// maxMessages bounds the messages kept; later ones are still accepted
	// but not recorded.
	maxMessages = 1000
	// maxGreylist bounds the (sender, recipient) pairs remembered.
	maxGreylist = 10000
	// closeWait bounds how long Close waits for sessions to end.
	closeWait = 5 * time.Second
)

// Options configures Start. The zero value is an open MTA on 127.0.0.1 with
// a port from the kernel, without STARTTLS, accepting every recipient.
type Options struct {
	Addr string // "127.0.0.2:2525"; "" = "127.0.0.1:0"; loopback only
	// Hostname is the name in the banner and first in the EHLO and HELO
	// replies; default DefaultHostname. Inside TLS the EHLO reply keeps
	// go-smtp's wording, "250-Hello <client name>", without it.
	Hostname    string
	TLS         *tls.Config   // nil: STARTTLS not offered
	BannerDelay time.Duration // wait before the 220 greeting
	// Greylist answers 451 4.7.1 to the first Greylist RCPT attempts of
	// each (sender, recipient) pair, counted across connections.
	Greylist int
	// Recipients are judged in this order: relay control (Relay,
	// Domains), then Rcpt, then Greylist; the first refusal is the reply.

	// Rcpt gives a verdict on each recipient; nil accepts every recipient.
	// Return a *smtp.SMTPError for a 4xx or 5xx reply (other errors
	// become 451 4.0.0 from go-smtp).
	Rcpt func(to string) error
	// Data gives an extra verdict after DATA; nil accepts. A rejected
	// message is not recorded. Return a *smtp.SMTPError to choose the
	// reply (other errors become 554 5.0.0 from go-smtp).
	Data func(from string, to []string, data []byte) error
	// Relay accepts recipients in any domain. When false and Domains is
	// not empty, recipients outside Domains get 554 5.7.1 relay access
	// denied. When Domains is empty every domain is accepted whatever
	// Relay says: the server then plays the final MX of every domain.
	Relay bool
	// Domains are the local domains (compared without case and without a
	// trailing dot). See Relay.
	Domains []string
	// MaxMessageBytes is the message size limit (announced with SIZE,
	// RFC 1870); default DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// SMTPUTF8 announces SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool
}

// Message is a message the server accepted.
type Message struct {
	From     string
	To       []string
	Data     []byte
	QueueID  string // also sent in the DATA reply: "250 2.0.0 Ok: queued as <QueueID>" like Postfix
	TLS      bool   // the session had done STARTTLS
	Helo     string // the name the client gave in EHLO or HELO
	Remote   string // the client's address and port
	Received time.Time
}

// Server is a running well-behaved SMTP server.
type Server struct {
	opts Options
	srv  *smtp.Server
	ln   net.Listener
	addr netip.AddrPort

	served    chan struct{} // closed when Serve returns
	closeOnce sync.Once
	conns     sync.WaitGroup // one per accepted connection, done when it is closed

	mu           sync.Mutex
	closed       bool
	live         map[*conn]struct{}
	connections  int
	transactions int
	messages     []Message
	queueIDs     map[string]bool
	greylist     map[[2]string]int
	domains      map[string]bool
	tb           testing.TB // for go-smtp's error log, while not closed
}

// Start runs a well-behaved SMTP server (go-smtp) on o.Addr until the test
// ends or Close is called.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.BannerDelay < 0 {
		o.BannerDelay = 0
	}
	ln, err := listen(o.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{
		opts:     o,
		addr:     addrPort(ln.Addr()),
		served:   make(chan struct{}),
		live:     make(map[*conn]struct{}),
		queueIDs: make(map[string]bool),
		greylist: make(map[[2]string]int),
		domains:  make(map[string]bool),
		tb:       tb,
	}
	for _, d := range o.Domains {
		s.domains[normDomain(d)] = true
	}
	s.ln = &listener{Listener: ln, s: s}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = o.Hostname
	srv.TLSConfig = o.TLS // go-smtp lists STARTTLS in EHLO only when this is set
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.MaxRecipients = maxRecipients
	srv.EnableSMTPUTF8 = o.SMTPUTF8
	// Bounded sessions: an idle or stuck client is dropped.
	srv.ReadTimeout = SessionTimeout
	srv.WriteTimeout = SessionTimeout + o.BannerDelay
	srv.ErrorLog = logger{s}
	s.srv = srv

	go func() {
		defer close(s.served)
		srv.Serve(s.ln) //nolint:errcheck // returns nil after Close; other errors end the listener, which Close handles
	}()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Messages returns a copy of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.To = append([]string(nil), m.To...)
		m.Data = bytes.Clone(m.Data)
		out[i] = m
	}
	return out
}

// Connections is the number of TCP connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Transactions is the number of MAIL FROM commands accepted so far.
func (s *Server) Transactions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transactions
}

// Close stops accepting, closes every session and waits (boundedly) for
// them to end. It is idempotent and also runs at the end of the test.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close() //nolint:errcheck // closing the listener twice is harmless
		// go-smtp only knows the listener once Serve has run; closing it
		// here as well ends a Serve that starts after srv.Close.
		s.ln.Close()
		<-s.served
		s.mu.Lock()
		s.closed = true
		live := make([]*conn, 0, len(s.live))
		for c := range s.live {
			live = append(live, c)
		}
		s.mu.Unlock()
		for _, c := range live {
			c.Close()
		}
		done := make(chan struct{})
		go func() {
			s.conns.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	})
}

// session is one go-smtp session (from EHLO to QUIT or STARTTLS).
type session struct {
	s    *Server
	c    *smtp.Conn
	from string
	to   []string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, c: c}, nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	ss.s.transactions++
	ss.s.mu.Unlock()
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	if !s.opts.Relay && len(s.domains) > 0 && !s.local(to) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("<%s>: Relay access denied", to)}
	}
	if s.opts.Rcpt != nil {
		if err := s.opts.Rcpt(to); err != nil {
			return err
		}
	}
	if s.opts.Greylist > 0 {
		key := [2]string{strings.ToLower(ss.from), strings.ToLower(to)}
		s.mu.Lock()
		n, seen := s.greylist[key]
		if seen || len(s.greylist) < maxGreylist {
			n++
			s.greylist[key] = n
		}
		s.mu.Unlock()
		if n <= s.opts.Greylist {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
				Message: fmt.Sprintf("<%s>: Recipient address rejected: Greylisted, try again later", to)}
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

// local reports whether to's domain is one of the server's. (go-smtp
// itself refuses a bare "postmaster", which RFC 5321 §4.5.1 asks servers
// to accept, with 501 before Rcpt is called.)
func (s *Server) local(to string) bool {
	at := strings.LastIndexByte(to, '@')
	if at < 0 {
		return false
	}
	return s.domains[normDomain(to[at+1:])]
}

func normDomain(d string) string {
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

func (ss *session) Data(r io.Reader) error {
	// go-smtp's reader stops at MaxMessageBytes with a 552 error.
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	if s.opts.Data != nil {
		if err := s.opts.Data(ss.from, append([]string(nil), ss.to...), bytes.Clone(data)); err != nil {
			return err
		}
	}
	_, isTLS := ss.c.TLSConnectionState()
	m := Message{
		From:     ss.from,
		To:       append([]string(nil), ss.to...),
		Data:     data,
		TLS:      isTLS,
		Helo:     ss.c.Hostname(),
		Remote:   ss.c.Conn().RemoteAddr().String(),
		Received: time.Now(),
	}
	s.mu.Lock()
	m.QueueID = s.newQueueID()
	if len(s.messages) < maxMessages {
		s.messages = append(s.messages, m)
	}
	s.mu.Unlock()
	// go-smtp writes an *SMTPError returned by Data verbatim as the reply,
	// whatever its code, so a 250 "error" is how a backend chooses the
	// text of the success reply.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "Ok: queued as " + m.QueueID}
}

// newQueueID makes a queue ID unique on this server that looks like
// Postfix's short IDs: ten upper-case hex digits. s.mu must be held.
func (s *Server) newQueueID() string {
	for {
		var b [5]byte
		rand.Read(b[:])
		id := strings.ToUpper(hex.EncodeToString(b[:]))
		if !s.queueIDs[id] {
			s.queueIDs[id] = true
			return id
		}
	}
}

// logger sends go-smtp's error log to the test log while the server runs
// (logging after the test has ended would panic).
type logger struct{ s *Server }

func (l logger) Printf(format string, v ...any) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if !l.s.closed {
		l.s.tb.Logf("smtptest %s: "+format, append([]any{l.s.addr}, v...)...)
	}
}

func (l logger) Println(v ...any) {
	l.Printf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// listener counts and tracks accepted connections and wraps them.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		s.connections++
		if s.closed || len(s.live) >= maxConns {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		c := &conn{Conn: nc, s: s, accepted: time.Now(), done: make(chan struct{})}
		s.live[c] = struct{}{}
		s.conns.Add(1)
		s.mu.Unlock()
		return c, nil
	}
}

// conn delays the banner by Options.BannerDelay and puts the server's
// name first in the EHLO and HELO replies (go-smtp writes "250-Hello
// <client>", but RFC 5321 §4.1.1.1 wants the server's domain there).
// After STARTTLS go-smtp writes through a tls.Conn on top of conn, so the
// EHLO reply inside TLS keeps go-smtp's own wording.
type conn struct {
	net.Conn
	s        *Server
	accepted time.Time

	greeted   bool // only touched by go-smtp's writing goroutine
	closeOnce sync.Once
	done      chan struct{}
}

func (c *conn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		if wait := time.Until(c.accepted.Add(c.s.opts.BannerDelay)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return 0, net.ErrClosed
			}
		}
	}
	// textproto flushes each reply line in one Write.
	for _, prefix := range []string{"250-Hello ", "250 Hello ", "250 2.0.0 Hello "} {
		if rest, ok := bytes.CutPrefix(p, []byte(prefix)); ok {
			line := make([]byte, 0, len(p)+len(c.s.opts.Hostname)+1)
			line = append(line, p[:4]...)
			line = append(line, c.s.opts.Hostname...)
			line = append(line, " Hello "...)
			line = append(line, rest...)
			if _, err := c.Conn.Write(line); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		close(c.done)
		c.s.mu.Lock()
		delete(c.s.live, c)
		c.s.mu.Unlock()
		c.s.conns.Done()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// session is one SMTP conversation of a probe.
type session struct {
	s      *settings
	ctx    context.Context // the caller's, within the Session bound
	caller context.Context // the caller's own
	res    *Result
	start  time.Time
	conn   net.Conn // the TCP connection, then the TLS connection over it
	raw    *countingConn
	br     *bufio.Reader
}

// countingConn caps what the server may send in a session: TLS records
// and plain text alike pass through it.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(p []byte) (int, error) {
	if c.read >= MaxSessionBytes {
		return 0, ErrSessionTooLarge
	}
	if len(p) > MaxSessionBytes-c.read {
		p = p[:MaxSessionBytes-c.read]
	}
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}

func (s *settings) probe(ctx context.Context, host string, addr netip.Addr) (res *Result) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	caller := ctx
	if s.t.Session > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.t.Session)
		defer cancel()
	}
	// addr is kept as given: an IPv4-mapped address from an AAAA record
	// is dialed (and refused by serve's policy) as what the record says,
	// not as the IPv4 address it maps (docs/security.md).
	res = &Result{Host: host, Address: addr, Port: s.port, Transcript: []TranscriptLine{}}
	ss := &session{s: s, ctx: ctx, caller: caller, res: res, start: time.Now()}
	defer func() {
		res.ElapsedMS = time.Since(ss.start).Milliseconds()
		if s.logger != nil {
			args := []any{"endpoint", res.Subject(), "duration", time.Since(ss.start)}
			if res.Err != nil {
				args = append(args, "step", res.Err.Step, "err", res.Err.Message)
			}
			if res.TLS != nil {
				args = append(args, "tls", res.TLS.Version, "verified", res.TLS.Verified)
			}
			s.logger.Debug("smtp probe", args...)
		}
	}()
	if !ss.connect() {
		return res
	}
	defer ss.conn.Close()
	// The caller's context ends every step at once: a passed deadline
	// unblocks any read or write in progress.
	stop := context.AfterFunc(ctx, func() { ss.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if !ss.banner() {
		return res
	}
	ehlo := ss.hello(false)
	if ehlo == nil {
		return res
	}
	res.EHLO = ehlo
	res.StartTLS = ehlo.StartTLS
	if ehlo.StartTLS {
		if !ss.startTLS() {
			return res
		}
		// RFC 3207 §4.2: after the handshake the client discards what it
		// knew about the server and says EHLO again.
		if res.EHLOTLS = ss.hello(true); res.EHLOTLS == nil {
			return res
		}
	}
	if s.relayTo != "" {
		if !ss.relay() {
			return res
		}
	}
	ss.quit()
	return res
}

// ms is the time since the start of the session.
func (ss *session) ms() int64 { return time.Since(ss.start).Milliseconds() }

// note adds a line to the transcript, within its bound. What the server
// sent ("S") is escaped here, once; the probe's own lines ("*", "C") quote
// server text escaped already (a malformed reply in an error), so only
// control characters are guarded there, and backslashes are not doubled.
func (ss *session) note(dir, text string) {
	if len(ss.res.Transcript) >= MaxTranscriptLines {
		ss.res.TranscriptCut = true
		return
	}
	if dir == "S" {
		text = printable.String(text)
	} else {
		text = printable.Controls(text)
	}
	ss.res.Transcript = append(ss.res.Transcript, TranscriptLine{Dir: dir, Text: printable.Cut(text, maxTranscriptText), MS: ss.ms()})
}

// fail records why the session ended and adds it to the transcript.
func (ss *session) fail(step Step, kind Kind, err error, format string, args ...any) {
	e := &StepError{Step: step, Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
	if r, ok := errors.AsType[*replyError](err); ok {
		e.Code = r.reply.Code
	}
	ss.res.Err = e
	ss.note("*", string(step)+" failed: "+e.Message)
}

// deadline sets the socket deadline of a step: its own timeout, or the
// caller's deadline when that is sooner.
func (ss *session) deadline(d time.Duration) {
	t := time.Now().Add(d)
	if cd, ok := ss.ctx.Deadline(); ok && cd.Before(t) {
		t = cd
	}
	ss.raw.SetDeadline(t)
	// The context may have ended just before: AfterFunc's past deadline
	// must not be overwritten.
	if ss.ctx.Err() != nil {
		ss.raw.SetDeadline(time.Unix(1, 0))
	}
}

func (ss *session) connect() bool {
	s, res := ss.s, ss.res
	endpoint := netip.AddrPortFrom(res.Address, uint16(s.port)).String()
	if !res.Address.IsValid() {
		ss.fail(StepConnect, KindNetwork, nil, "no valid address")
		return false
	}
	ctx, cancel := context.WithTimeout(ss.ctx, s.t.Connect)
	defer cancel()
	conn, err := s.dialer.DialContext(ctx, "tcp", endpoint)
	res.ConnectMS = ss.ms()
	if err != nil {
		// The connect time-out is the server's (smtp-unreachable); our
		// own deadline passing first is not (classify).
		kind := ss.classify(err)
		ss.fail(StepConnect, kind, err, "connect %s: %s", endpoint, ss.describe(kind, err, s.t.Connect))
		return false
	}
	res.Connected = true
	ss.raw = &countingConn{Conn: conn}
	ss.conn = ss.raw
	ss.br = newLineReader(ss.conn)
	ss.note("*", "connected to "+endpoint)
	return true
}

// banner reads the greeting: RFC 5321 §4.3.1 and §3.1 allow 220 (service
// ready) or 554 (no service here) as the opening reply.
func (ss *session) banner() bool {
	s, res := ss.s, ss.res
	ss.deadline(s.t.Greeting)
	reply, err := ss.read()
	if err != nil {
		ss.readFailed(StepBanner, err, s.t.Greeting, "greeting")
		return false
	}
	ms := ss.ms() - res.ConnectMS
	res.Banner = &Banner{Code: reply.Code, Text: reply.Text(maxBannerText), MS: ms, Slow: time.Duration(ms)*time.Millisecond > s.slow}
	if len(reply.Lines) > 0 {
		res.Banner.Host = firstWord(reply.Lines[0])
	}
	if reply.Code != 220 {
		ss.fail(StepBanner, KindReply, &replyError{reply}, "the greeting is %03d, not 220: %s", reply.Code, reply.Text(200))
		// RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
		ss.quit()
		return false
	}
	return true
}

// hello sends EHLO, falling back to HELO when the server does not know
// EHLO (RFC 5321 §3.2: 500, 502, 504 or 550), and parses the extensions.
func (ss *session) hello(inTLS bool) *EHLO {
	s := ss.s
	start := ss.ms()
	reply, err := ss.cmd(StepEHLO, "EHLO "+s.hello)
	if err != nil {
		return nil
	}
	cmd := "EHLO"
	if reply.Code >= 500 && !inTLS {
		// RFC 5321 §3.2: a client SHOULD fall back to HELO.
		cmd = "HELO"
		if reply, err = ss.cmd(StepEHLO, "HELO "+s.hello); err != nil {
			return nil
		}
	}
	if reply.Code != 250 {
		ss.fail(StepEHLO, KindReply, &replyError{reply}, "%s answered %03d: %s", cmd, reply.Code, reply.Text(200))
		ss.quit()
		return nil
	}
	e := parseEHLO(reply)
	e.Command = cmd
	if cmd == "HELO" {
		// A HELO reply carries no extensions (RFC 5321 §4.1.1.1).
		e = &EHLO{Command: cmd, Code: reply.Code, Domain: e.Domain, Extensions: []string{}}
	}
	e.MS = ss.ms() - start
	return e
}

// startTLS upgrades the session (RFC 3207 §4) and judges the chain.
func (ss *session) startTLS() bool {
	s, res := ss.s, ss.res
	reply, err := ss.cmd(StepStartTLS, "STARTTLS")
	if err != nil {
		return false
	}
	if reply.Code != 220 {
		// RFC 3207 §4: 454 means TLS is temporarily unavailable; the
		// session may go on in clear text, but this is what the probe
		// came to see.
		ss.fail(StepStartTLS, KindReply, &replyError{reply}, "STARTTLS answered %03d: %s", reply.Code, reply.Text(200))
		ss.quit()
		return false
	}
	if n := ss.br.Buffered(); n > 0 {
		// Clear text after the 220 would be read as if it came inside
		// TLS (the STARTTLS command injection flaw); the session cannot
		// go on safely.
		// The client speaks first in TLS (RFC 8446 §4.1.2), so this is
		// a broken handshake, whenever the bytes arrived.
		ss.fail(StepTLS, KindTLS, ErrMalformed, "the server sent %s after its 220 to STARTTLS instead of waiting for the TLS handshake", prose.Count(n, "byte"))
		return false
	}
	serverName := res.Host
	if isAddressLiteral(serverName) {
		serverName = ""
	}
	tc := tls.Client(ss.raw, tlsConfig(serverName))
	ss.deadline(s.t.TLSHandshake)
	start := ss.ms()
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		kind := ss.classify(err)
		if kind == KindNetwork {
			kind = KindTLS
		}
		ss.fail(StepTLS, kind, err, "TLS handshake: %s", ss.describe(kind, err, s.t.TLSHandshake))
		return false
	}
	st := tc.ConnectionState()
	res.Chain = st.PeerCertificates
	res.TLS = judgeTLS(st, res.Host, s.roots, s.now())
	res.TLS.ServerName = serverName
	res.TLS.HandshakeMS = ss.ms() - start
	ss.note("*", fmt.Sprintf("TLS %s %s, verified %t", res.TLS.Version, res.TLS.Cipher, res.TLS.Verified))
	ss.conn = tc
	ss.br = newLineReader(tc)
	return true
}

// relay runs the open-relay test: RFC 5321 §3.6.2 says a server should
// relay only for its own domains or authorised clients. The recipient is
// in a domain the user named; DATA is never sent.
func (ss *session) relay() bool {
	s, res := ss.s, ss.res
	rcpt := RelayLocalPart + "@" + s.relayTo
	res.Relay = &Relay{Recipient: rcpt}
	if strings.ContainsAny(s.relayTo, " \t\r\n<>@") || s.relayTo == "" {
		ss.fail(StepRelay, KindNetwork, nil, "invalid relay test domain %q", s.relayTo)
		ss.quit()
		return false
	}
	// RFC 5321 §4.5.5: the null reverse-path, as for a bounce.
	reply, err := ss.cmd(StepRelay, "MAIL FROM:<>")
	if err != nil {
		return false
	}
	res.Relay.MailCode = reply.Code
	if reply.Code/100 != 2 {
		// No transaction to test; the caller says QUIT.
		return true
	}
	reply, err = ss.cmd(StepRelay, "RCPT TO:<"+rcpt+">")
	if err != nil {
		return false
	}
	res.Relay.RcptCode, res.Relay.RcptText = reply.Code, reply.Text(200)
	res.Relay.Open = reply.Code/100 == 2
	// RFC 5321 §4.1.1.5: RSET aborts the transaction; no DATA ever.
	if _, err := ss.cmd(StepRelay, "RSET"); err != nil {
		return false
	}
	return true
}

// quit ends the session politely (RFC 5321 §4.1.1.10), within a short
// deadline. When the session already failed, that first failure stays the
// Result's error.
func (ss *session) quit() {
	prev := ss.res.Err
	_, err := ss.cmdWithin(StepQuit, "QUIT", min(ss.s.t.Command, dial.QuitTimeout))
	if err != nil && prev != nil {
		ss.res.Err = prev
	}
}

// cmd sends one command line and reads the reply. On failure it records
// the step's error and returns it.
func (ss *session) cmd(step Step, line string) (*Reply, error) {
	return ss.cmdWithin(step, line, ss.s.t.Command)
}

func (ss *session) cmdWithin(step Step, line string, timeout time.Duration) (*Reply, error) {
	ss.deadline(timeout)
	ss.note("C", line)
	if _, err := io.WriteString(ss.conn, line+"\r\n"); err != nil {
		kind := ss.classify(err)
		ss.fail(step, kind, err, "sending %s: %s", verb(line), ss.describe(kind, err, timeout))
		return nil, err
	}
	reply, err := ss.read()
	if err != nil {
		ss.readFailed(step, err, timeout, "reply to "+verb(line))
		return nil, err
	}
	return reply, nil
}

// read reads one reply, adding its lines to the transcript.
func (ss *session) read() (*Reply, error) {
	return readReply(ss.br, func(l string) { ss.note("S", l) })
}

func (ss *session) readFailed(step Step, err error, timeout time.Duration, what string) {
	kind := ss.classify(err)
	pe, ok := errors.AsType[*PartialError](err)
	if !ok || (kind != KindTimeout && kind != KindClosed && kind != KindCanceled && kind != KindOutOfTime) {
		ss.fail(step, kind, err, "%s: %s", what, ss.describe(kind, err, timeout))
		return
	}
	// A reply cut short is not a reply: it is reported with what came.
	ss.fail(step, kind, err, "partial %s (%s: %s), then %s", what, prose.Count(pe.Octets, "octet"), printable.Cut(pe.Got, 200), ss.describe(kind, err, timeout))
	ss.res.Err.Partial = pe.Got
}

// classify maps an error to a Kind; the session's context comes first:
// its deadline (the caller's, or the session's limit) passing is our own
// time running out, not the server's doing.
func (ss *session) classify(err error) Kind {
	if errors.Is(ss.ctx.Err(), context.Canceled) {
		return KindCanceled
	}
	if passed(ss.ctx, time.Now()) {
		return KindOutOfTime
	}
	return classify(err)
}

// passed reports whether c has ended or its deadline is reached at now: a
// read cut at a context's deadline may end a moment before the context
// itself says so.
func passed(c context.Context, now time.Time) bool {
	dl, ok := c.Deadline()
	return c.Err() != nil || ok && !now.Before(dl)
}

func classify(err error) Kind {
	if errors.Is(err, dial.ErrForbidden) {
		return KindForbidden
	}
	if _, ok := errors.AsType[*replyError](err); ok {
		return KindReply
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return KindTimeout
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, ErrMalformed):
		return KindMalformed
	case errors.Is(err, ErrLineTooLong), errors.Is(err, ErrTooManyLines), errors.Is(err, ErrSessionTooLarge):
		return KindTooLong
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindNoRoute
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return KindClosed
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return KindTLS
	}
	if _, ok := errors.AsType[*tls.RecordHeaderError](err); ok {
		return KindTLS
	}
	return KindNetwork
}

// describe says in words what went wrong.
func (ss *session) describe(kind Kind, err error, timeout time.Duration) string {
	switch kind {
	case KindOutOfTime:
		if !passed(ss.caller, time.Now()) && ss.s.t.Session > 0 {
			return "the session's time limit of " + ss.s.t.Session.String() + " passed"
		}
		return "the time allowed ran out"
	case KindTimeout:
		return "nothing within " + timeout.String()
	case KindRefused:
		return "connection refused"
	case KindClosed:
		return "the server closed the connection"
	case KindCanceled:
		return "canceled"
	case KindNoRoute:
		return "no route to the address"
	case KindForbidden:
		if fe, ok := errors.AsType[*dial.ForbiddenError](err); ok {
			return "not allowed: " + fe.Reason()
		}
	}
	// "dial tcp 192.0.2.1:25: connect: …" repeats what the message says.
	if se, ok := errors.AsType[*os.SyscallError](err); ok {
		return se.Err.Error()
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
		return oe.Err.Error()
	}
	// The message is for a person, and goes into findings: the sentinels'
	// "probe: " (ErrMalformed, ErrTooManyLines) and crypto/tls's "tls: "
	// are for programs.
	text := err.Error()
	for _, prefix := range []string{"probe: ", "tls: "} {
		text = strings.TrimPrefix(text, prefix)
	}
	return text
}

// replyError is a well-formed reply that stops the session.
type replyError struct{ reply *Reply }

func (e *replyError) Error() string {
	return fmt.Sprintf("%03d %s", e.reply.Code, e.reply.Text(200))
}

// verb is a command's first word, for messages.
func verb(line string) string {
	if i := strings.IndexByte(line, ' '); i > 0 {
		return line[:i]
	}
	return line
}

// firstWord is the first space-separated word of s, cleaned and bounded.
func firstWord(s string) string {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		s = s[:i]
	}
	return printable.Cut(printable.String(s), 255)
}

// parseEHLO reads an EHLO reply (RFC 5321 §4.1.1.1): the first line is
// the server's domain and a greeting, each further line an ehlo-keyword
// with its parameters.
func parseEHLO(r *Reply) *EHLO {
	e := &EHLO{Command: "EHLO", Code: r.Code, Extensions: []string{}}
	if len(r.Lines) == 0 {
		return e
	}
	e.Domain = firstWord(r.Lines[0])
	for _, l := range r.Lines[1:] {
		fields := strings.Fields(l)
		if len(fields) == 0 || !isKeyword(fields[0]) {
			continue
		}
		kw := strings.ToUpper(fields[0])
		params := fields[1:]
		if len(e.Extensions) < maxExtensions {
			e.Extensions = append(e.Extensions, printable.Cut(printable.String(strings.Join(append([]string{kw}, params...), " ")), 200))
		}
		switch kw {
		case "SIZE":
			// RFC 1870 §4: SIZE [number]; 0 or none means no fixed limit.
			if len(params) > 0 {
				if n, err := strconv.ParseInt(params[0], 10, 64); err == nil && n > 0 {
					e.Size = n
				}
			}
		case "PIPELINING":
			e.Pipelining = true
		case "8BITMIME":
			e.EightBitMIME = true
		case "SMTPUTF8":
			e.SMTPUTF8 = true
		case "STARTTLS":
			e.StartTLS = true
		case "CHUNKING":
			e.Chunking = true
		case "ENHANCEDSTATUSCODES":
			e.EnhancedStatusCodes = true
		case "DSN":
			e.DSN = true
		case "REQUIRETLS":
			e.RequireTLS = true
		case "AUTH":
			for _, m := range params {
				// RFC 4422 §3.1: mechanism names are A-Z, 0-9, "-" and "_".
				if len(e.Auth) < 16 && isKeyword(strings.ReplaceAll(m, "_", "-")) {
					e.Auth = append(e.Auth, strings.ToUpper(m))
				}
			}
		}
	}
	return e
}

// isKeyword reports an RFC 5321 §4.1.1.1 ehlo-keyword:
// (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), bounded here to 64 characters.
func isKeyword(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

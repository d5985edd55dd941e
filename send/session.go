package send

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// Errors of an attempt, for errors.Is on Attempt.Err.
var (
	// ErrNoSTARTTLS: a TLS requirement applies and the server does not
	// offer STARTTLS, or refused it.
	ErrNoSTARTTLS = errors.New("send: the server does not offer STARTTLS, and TLS is required")
	// ErrCertificate: the certificate did not authenticate the server
	// under the rule in force (PKIX for the exchange name, or DANE).
	ErrCertificate = errors.New("send: certificate not authenticated")
	// ErrHandshake: the TLS handshake failed.
	ErrHandshake = errors.New("send: TLS handshake failed")
)

// ReplyError is an SMTP reply that ended an attempt (RFC 5321 §4.2).
type ReplyError struct {
	Code     int
	Enhanced string // RFC 3463 class.subject.detail, or ""
	Text     string
}

func (e *ReplyError) Error() string {
	s := strconv.Itoa(e.Code)
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

// Permanent reports a 5xx reply (RFC 5321 §4.2.1).
func (e *ReplyError) Permanent() bool { return e.Code >= 500 && e.Code < 600 }

// maxReplyText cuts reply texts kept in an Attempt.
const maxReplyText = 1024

// session is the state of one attempt.
type session struct {
	s    *Sender
	a    *Attempt
	hp   hostPolicy
	env  *envelope
	t    dial.SMTPTimeouts
	raw  net.Conn
	lc   *limitConn
	tap  *tapConn
	c    *smtp.Client
	helo string
	// outer is the caller's deadline (zero: none), which alone bounds
	// the reply to the final dot.
	outer time.Time
	// stageStart and stageLimit are when the current stage began and
	// how long it may last, for the message of a time-out.
	stageStart time.Time
	stageLimit time.Duration
	want       string // what did not come in time, should the stage time out
}

// attempt delivers to one address: connect, greeting, EHLO, STARTTLS when
// offered (unless plaintext), MAIL, RCPT, DATA (RFC 5321 §3.3, §4.1.1).
// The whole session up to the end of the message data ends by
// Timeouts.Session, each stage by its own time-out inside it.
func (s *Sender) attempt(ctx context.Context, e hostEntry, addr string, hp hostPolicy, env *envelope, data []byte, plaintext bool) *Attempt {
	start := time.Now()
	a := &Attempt{Host: e.host.Name, Preference: e.pref, Address: addr, Rule: hp.rule, Plaintext: plaintext, PolicyNote: hp.note}
	defer func() { a.ElapsedMS = ms(time.Since(start)) }()
	s.emit(Event{Kind: EventConnect, Host: a.Host, Address: addr})
	ss := &session{s: s, a: a, hp: hp, env: env, t: s.Timeouts.Or(DefaultTimeouts())}
	ss.outer, _ = ctx.Deadline()
	sctx := ctx
	if ss.t.Session > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, ss.t.Session)
		defer cancel()
	}
	// The transcript, printed live (-v) and kept, stops at
	// MaxTranscriptLines with one line saying so: a server may send 1 MiB
	// of short lines in one session, 50,000 lines for every address.
	lines := 0
	line := func(l string) {
		switch lines++; {
		case lines > MaxTranscriptLines+1:
			return
		case lines == MaxTranscriptLines+1:
			l = fmt.Sprintf("… (the transcript stops at %d lines)", MaxTranscriptLines)
		}
		s.emit(Event{Kind: EventLine, Host: a.Host, Address: addr, Line: l})
		if s.Transcript {
			a.Transcript = append(a.Transcript, l)
		}
	}

	port := s.Port
	if port == 0 {
		port = dial.SMTPPort
	}
	ss.begin(StageConnect, ss.t.Connect, sctx)
	dctx, cancel := context.WithTimeout(sctx, ss.t.Connect)
	raw, err := s.dialer().DialContext(dctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	cancel()
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)) {
			return ss.deferred(fmt.Errorf("connect: no connection within %s", roundLimit(ss.stageLimit)))
		}
		return ss.deferred(fmt.Errorf("connect: %w", err))
	}
	defer raw.Close()
	// Cancelling ctx ends whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	ss.raw = raw
	ss.lc = &limitConn{Conn: raw, left: MaxSessionBytes}
	ss.lc.hard, _ = sctx.Deadline()
	ss.tap = newTap(ss.lc, line)
	ss.helo = s.helloName(raw)

	// RFC 5321 §4.3.1: the 220 greeting, then EHLO (§4.1.1.1); go-smtp
	// falls back to HELO after a 500 or 502 to EHLO.
	ss.begin(StageBanner, ss.t.Greeting, sctx)
	greeting, err := ss.greet()
	if err != nil {
		return ss.fail(err)
	}
	ss.c = ss.client(&greetConn{Conn: ss.tap, pending: greeting})
	if err := ss.check(ss.c.Hello(ss.helo)); err != nil {
		if ss.tap.wrote > 0 {
			ss.begin(StageEHLO, ss.t.Command, sctx)
		}
		return ss.fail(err)
	}
	a.Stage = StageEHLO
	offered, _ := ss.c.Extension("STARTTLS")
	switch {
	case offered && !plaintext:
		ss.begin(StageSTARTTLS, ss.t.Command, sctx)
		if done := ss.startTLS(sctx, line); done {
			return a
		}
	case hp.rule.Required():
		// RFC 7672 §2.2, RFC 8461 §5: without STARTTLS the exchange is
		// not used when TLS is required.
		a.Stage = StageSTARTTLS
		ss.quit()
		return ss.policy(ErrNoSTARTTLS)
	case hp.stsCheck:
		a.PolicyNote = joinNote(a.PolicyNote, "the server does not offer STARTTLS")
	}

	// RFC 5321 §3.3: the mail transaction.
	ss.begin(StageMail, ss.t.Command, sctx)
	opts := &smtp.MailOptions{Size: int64(len(data))} // RFC 1870 SIZE, sent when offered
	if env.utf8() {
		opts.UTF8 = true // RFC 6531 §3.4
	}
	if err := ss.check(ss.c.Mail(env.from, opts)); err != nil {
		return ss.fail(err)
	}
	// RFC 5321 §3.3: one RCPT per recipient; DATA only when at least one
	// was accepted.
	ss.begin(StageRcpt, ss.t.Command, sctx)
	if n, err := ss.rcptAll(); n == 0 {
		return ss.fail(ss.check(err))
	}
	// RFC 5321 §4.5.3.2.4: the 354 to DATA has its own time-out.
	ss.begin(StageData, ss.t.DataInit, sctx)
	ss.c.CommandTimeout = ss.t.DataInit
	w, err := ss.c.Data()
	ss.c.CommandTimeout = ss.t.Command
	if err = ss.check(err); err != nil {
		return ss.fail(err)
	}
	ss.begin(StageMessage, ss.t.DataBlock, sctx)
	ss.want = "the message data was not sent"
	ss.tap.hide(true)
	// go-smtp clears the deadline after the 354; the data gets its own
	// (RFC 5321 §4.5.3.2.5).
	_ = ss.lc.SetDeadline(time.Now().Add(ss.t.DataBlock))
	if _, err := w.Write(data); err != nil {
		ss.tap.hide(false)
		return ss.fail(ss.check(err))
	}
	// RFC 5321 §4.5.3.2.6: the reply to the final dot gets DataTerm, past
	// the session bound (up to the caller's own deadline only): a sender
	// that gives up here while the server delivers sends the message
	// twice (§6.1).
	ss.lc.hard = ss.outer
	ss.begin(StageMessage, ss.t.DataTerm, ctx)
	resp, err := w.CloseWithResponse()
	ss.tap.hide(false)
	if err = ss.check(err); err != nil {
		// RFC 5321 §6.1: a connection lost after the dot may still have
		// delivered; it is reported as deferred, as a sender queues it.
		return ss.fail(err)
	}
	a.Code = 250
	a.Enhanced, a.Reply = splitEnhanced(resp.StatusText)
	a.Outcome = OutcomeAccepted
	ss.quit()
	return a
}

// begin starts a stage that may last d, within ctx's deadline.
func (ss *session) begin(stage Stage, d time.Duration, ctx context.Context) {
	ss.a.Stage = stage
	ss.want = stageWant(stage)
	ss.stageStart = time.Now()
	ss.stageLimit = d
	if dl, ok := ctx.Deadline(); ok {
		ss.stageLimit = min(d, time.Until(dl))
	}
}

// Bounds of the greeting, which the sender reads itself: go-smtp's line
// limit, and a number of lines no real greeting reaches.
const (
	maxGreetingLine  = 2000
	maxGreetingLines = 100
)

// greet reads the greeting (RFC 5321 §4.2, §4.3.1) within the greeting
// time-out (§4.5.3.2.1) and returns its octets, which go-smtp's client then
// reads from a greetConn. Reading it here, rather than in go-smtp, gives
// the greeting its own deadline and tells a greeting cut short by it (a
// time-out) from a complete one: go-smtp, through bufio.Reader.ReadLine,
// takes the start of a line the deadline cut as a whole line.
func (ss *session) greet() ([]byte, error) {
	_ = ss.lc.SetDeadline(ss.stageStart.Add(ss.stageLimit))
	defer ss.lc.SetDeadline(time.Time{})
	br := bufio.NewReaderSize(ss.tap, maxGreetingLine+2)
	var got []byte
	for n := 0; ; n++ {
		if n == maxGreetingLines {
			return nil, fmt.Errorf("the greeting has more than %d lines", maxGreetingLines)
		}
		line, err := br.ReadSlice('\n')
		got = append(got, line...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("a greeting line is longer than %d octets", maxGreetingLine)
		case err != nil && len(got) > 0 && isTimeout(err):
			return nil, &cutError{what: "greeting", got: got, err: err}
		case err != nil:
			return nil, err
		}
		// RFC 5321 §4.2.1: "code-" continues a reply; "code SP" or a bare
		// code ends it.
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	// Anything the server sent past the greeting (it should wait for
	// EHLO) is handed on too, for go-smtp to make of it what it will.
	rest, _ := br.Peek(br.Buffered())
	return append(got, rest...), nil
}

// cutError is a reply that a deadline cut short: a time-out of its stage,
// never a reply.
type cutError struct {
	what string // "greeting"
	got  []byte // the octets received
	err  error
}

func (e *cutError) Error() string {
	return fmt.Sprintf("partial %s (%s: %s) then nothing", e.what, prose.Count(len(e.got), "octet"), clip(strings.TrimRight(string(e.got), "\r\n")))
}

func (e *cutError) Unwrap() error { return e.err }

// stageTimeout is a stage that ran out of time: "no complete greeting
// within 10s", with what came of it when a reply was cut short.
type stageTimeout struct {
	want  string
	limit time.Duration
	err   error
}

func (e *stageTimeout) Error() string {
	s := e.want + " within " + e.limit.String()
	if c, ok := errors.AsType[*cutError](e.err); ok {
		s += ": " + c.Error()
	}
	return s
}

func (e *stageTimeout) Unwrap() error { return e.err }

// check turns the outcome of a go-smtp call into a time-out when a read of
// the session ended by its deadline: go-smtp (through textproto and
// bufio.Reader.ReadLine) returns the part of a line that arrived before the
// deadline as if it were the whole line, so a call can seem to succeed on
// a cut reply.
func (ss *session) check(err error) error {
	if ss.lc.cut != nil {
		return ss.lc.cut
	}
	return err
}

// roundLimit rounds a stage limit for messages.
func roundLimit(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// startTLS runs STARTTLS (RFC 3207 §4) and the handshake, and switches the
// session to a go-smtp client over TLS that says EHLO again (RFC 3207
// §4.2). It reports whether the attempt is over; when STARTTLS is refused
// and no requirement applies, the session goes on in clear text.
func (ss *session) startTLS(ctx context.Context, line func(string)) (done bool) {
	a, hp := ss.a, ss.hp
	_ = ss.tap.SetDeadline(ss.stageStart.Add(ss.stageLimit))
	if _, err := ss.tap.Write([]byte("STARTTLS\r\n")); err != nil {
		ss.fail(err)
		return true
	}
	// Bytes the server sent before its reply, or after it before the
	// handshake, are dropped with this reader: nothing from before TLS is
	// trusted after it (RFC 3207 §6, the command injection of CVE-2011-0411).
	code, text, err := textproto.NewReader(bufio.NewReader(ss.tap)).ReadResponse(220)
	_ = ss.tap.SetDeadline(time.Time{})
	if err = ss.check(err); err != nil {
		if _, ok := errors.AsType[*textproto.Error](err); !ok {
			ss.fail(err)
			return true
		}
		enh, txt := splitEnhanced(text)
		a.Code, a.Enhanced, a.Reply = code, enh, clip(txt)
		if hp.rule.Required() {
			ss.quit()
			ss.policy(fmt.Errorf("%w: STARTTLS answered %w", ErrNoSTARTTLS, &ReplyError{Code: code, Enhanced: enh, Text: clip(txt)}))
			return true
		}
		if hp.stsCheck {
			a.PolicyNote = joinNote(a.PolicyNote, "STARTTLS was refused")
		}
		// RFC 3207 §4: after a refusal the session goes on unencrypted.
		a.Code, a.Enhanced, a.Reply = 0, "", ""
		return false
	}

	ss.begin(StageTLS, ss.t.TLSHandshake, ctx)
	st := &TLSState{Method: "pkix"}
	if hp.rule == RuleDANE {
		st.Method = "dane"
	}
	sni := a.Host
	if hp.rule == RuleDANE && len(hp.names) > 0 {
		// RFC 7672 §8.1: SNI carries the TLSA base domain.
		sni = hp.names[0]
	}
	cfg := &tls.Config{
		ServerName: sni,
		// The certificate is checked by VerifyConnection, by the rule in
		// force, so that the attempt can say exactly why it failed.
		InsecureSkipVerify: true,
		VerifyConnection:   ss.s.verifier(a, hp, st),
		// RFC 8996: TLS 1.0 and 1.1 are not used.
		MinVersion: tls.VersionTLS12,
	}
	tc := tls.Client(ss.lc, cfg)
	hctx, cancel := context.WithTimeout(ctx, ss.t.TLSHandshake)
	err = ss.check(tc.HandshakeContext(hctx))
	cancel()
	if err != nil {
		if errors.Is(err, ErrCertificate) {
			ss.policy(err)
			return true
		}
		err = fmt.Errorf("%w: %w", ErrHandshake, readable(err))
		if hp.rule.Required() {
			ss.policy(err)
			return true
		}
		if hp.stsCheck {
			a.PolicyNote = joinNote(a.PolicyNote, "the TLS handshake failed")
		}
		ss.deferred(err)
		return true
	}
	cs := tc.ConnectionState()
	st.Version, st.Cipher = tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite)
	a.TLS = st
	verified := "not verified: " + st.VerifyError
	if st.Verified {
		verified = "verified (" + st.Method + ")"
	}
	line(fmt.Sprintf("-- TLS established: %s, %s, certificate %s", st.Version, st.Cipher, verified))

	ss.tap = newTap(tc, line)
	ss.c = ss.client(&greetConn{Conn: ss.tap, pending: []byte("220 " + a.Host + " TLS\r\n")})
	ss.begin(StageEHLO, ss.t.Command, ctx)
	if err := ss.check(ss.c.Hello(ss.helo)); err != nil {
		ss.fail(err)
		return true
	}
	return false
}

// verifier checks the certificate by the rule in force: DANE (RFC 7672
// §3) or PKIX for the exchange name (RFC 8461 §4.2; RFC 6125 via
// crypto/x509), failing the handshake only when the rule requires it.
func (s *Sender) verifier(a *Attempt, hp hostPolicy, st *TLSState) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		chain := cs.PeerCertificates
		if hp.rule == RuleDANE {
			_, matched, err := dane.Match(hp.tlsa, chain, hp.names...)
			if err != nil {
				st.VerifyError = err.Error()
				return fmt.Errorf("%w: %w", ErrCertificate, err)
			}
			st.Verified = true
			st.DANERecord = matched.String()
			return nil
		}
		err := verifyPKIX(chain, a.Host, s.RootCAs)
		if err == nil {
			st.Verified = true
			return nil
		}
		st.VerifyError = err.Error()
		switch {
		case hp.rule == RuleRequireTLS || hp.rule == RuleMTASTS:
			return fmt.Errorf("%w: %w", ErrCertificate, err)
		case hp.stsCheck:
			a.PolicyNote = joinNote(a.PolicyNote, "certificate: "+err.Error())
		}
		// Opportunistic and encrypt: any certificate will do.
		return nil
	}
}

// verifyPKIX checks that the chain leads from the leaf to a trusted root
// and that the leaf is valid for name. roots nil: the system's.
func verifyPKIX(chain []*x509.Certificate, name string, roots *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return err
}

func (ss *session) client(conn net.Conn) *smtp.Client {
	c := smtp.NewClient(conn)
	c.CommandTimeout = ss.t.Command
	c.SubmissionTimeout = ss.t.DataTerm
	return c
}

// fail ends the attempt on err: a 5xx reply to MAIL, RCPT or DATA rejects
// the message; any other reply, or no reply, defers it.
func (ss *session) fail(err error) *Attempt {
	a := ss.a
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
		re := &ReplyError{Code: se.Code, Enhanced: enhanced(se.EnhancedCode), Text: clip(strings.ReplaceAll(se.Message, "\n", " "))}
		a.Code, a.Enhanced, a.Reply = re.Code, re.Enhanced, re.Text
		a.Err = re
		ss.quit()
		switch a.Stage {
		case StageMail, StageRcpt, StageData, StageMessage:
			if re.Permanent() {
				// RFC 5321 §4.2.1: 5yz, permanent negative completion.
				a.Outcome = OutcomeRejected
				return a
			}
		}
		// A 4xx anywhere, or a 5xx greeting or EHLO (the exchange refuses
		// this client, not the message; RFC 5321 §3.1 and Postfix skip
		// to the next exchange).
		a.Outcome = OutcomeDeferred
		return a
	}
	if isTimeout(err) {
		// A read or write that a deadline ended is a time-out of its
		// stage, whatever part of a reply came before it.
		err = &stageTimeout{want: ss.want, limit: roundLimit(ss.stageLimit), err: err}
		ss.tap.cut()
	}
	return ss.deferred(readable(err))
}

// readable gives a lost connection's error the words a person reads:
// "the server closed the connection", not "EOF"; "the server reset the
// connection", not "read tcp 192.0.2.1:4711->192.0.2.25:25: read:
// connection reset by peer"; crypto/tls's errors without their "tls: ".
// errors.Is and As still find the error underneath.
func readable(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &textError{"the server closed the connection", err}
	case errors.Is(err, syscall.ECONNRESET):
		return &textError{"the server reset the connection", err}
	case strings.HasPrefix(err.Error(), "tls: "):
		return &textError{strings.TrimPrefix(err.Error(), "tls: "), err}
	}
	return err
}

// textError is err with other words.
type textError struct {
	text string
	err  error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.err }

func (ss *session) deferred(err error) *Attempt {
	ss.a.Outcome, ss.a.Err = OutcomeDeferred, err
	return ss.a
}

func (ss *session) policy(err error) *Attempt {
	ss.a.Outcome, ss.a.Err = OutcomePolicy, err
	return ss.a
}

// stageWant says what did not come in time at a stage.
func stageWant(s Stage) string {
	switch s {
	case StageBanner:
		return "no complete greeting"
	case StageTLS:
		return "no TLS handshake"
	case StageMessage:
		return "no complete reply to the end of the message data"
	}
	return "no complete reply to " + strings.ToUpper(string(s))
}

// quit says QUIT (RFC 5321 §4.1.1.10) without waiting long for the reply.
func (ss *session) quit() {
	if ss.c == nil {
		return
	}
	ss.c.CommandTimeout = min(ss.t.Command, dial.QuitTimeout)
	_ = ss.c.Quit()
}

func (s *Sender) dialer() dial.Dialer {
	if s.Dialer != nil {
		return s.Dialer
	}
	return &dial.Net{}
}

// helloName is the EHLO argument for a connection: HelloName, else the
// host name when it is a domain name, else the address literal of the local
// end (RFC 5321 §4.1.4: "the client SHOULD send an address literal" when
// it has no meaningful name).
func (s *Sender) helloName(c net.Conn) string {
	if s.HelloName != "" {
		return s.HelloName
	}
	if h, err := os.Hostname(); err == nil && strings.Contains(strings.Trim(h, "."), ".") {
		return strings.TrimSuffix(h, ".")
	}
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		ip := ta.AddrPort().Addr().Unmap()
		return AddressLiteral(ip)
	}
	return "localhost"
}

// AddressLiteral formats an address as in RFC 5321 §4.1.3: "[192.0.2.1]"
// or "[IPv6:2001:db8::1]".
func AddressLiteral(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}

// enhanced formats go-smtp's enhanced code, "" when there is none.
func enhanced(c smtp.EnhancedCode) string {
	if c == (smtp.EnhancedCode{}) || c == smtp.NoEnhancedCode {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// splitEnhanced splits a leading RFC 3463 code off a reply text.
func splitEnhanced(text string) (code, rest string) {
	text = strings.ReplaceAll(text, "\n", " ")
	first, after, _ := strings.Cut(text, " ")
	if isEnhanced(first) {
		return first, clip(after)
	}
	return "", clip(text)
}

// clip makes a reply text safe to print and bounds it.
func clip(s string) string {
	if len(s) > maxReplyText {
		s = strings.ToValidUTF8(s[:maxReplyText], "") + "…"
	}
	return printable.String(s)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

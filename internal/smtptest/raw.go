package smtptest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Behaviour is how a raw server misbehaves.
type Behaviour int

// The raw behaviours. Where a behaviour says "minimal ESMTP" the server
// answers EHLO (host name first, then 8BITMIME and ENHANCEDSTATUSCODES),
// HELO, NOOP, RSET and QUIT, and 502 5.5.1 to every other command.
const (
	Silent           Behaviour = iota // accept, never send anything
	SlowBanner                        // "220 <host> ESMTP" after Delay, then minimal ESMTP
	EndlessBanner                     // "220-" continuation lines until the client hangs up or RawLifetime
	EndlessEHLO                       // normal banner, then endless "250-" lines after EHLO
	LongLine                          // a banner line of LongLineBytes with no CRLF
	Garbage                           // GarbageBytes of random binary bytes instead of a banner
	WrongCode                         // "554 5.3.2 no service for you" banner, 503 to everything but QUIT, close after QUIT
	CloseAfterBanner                  // 220 then close the connection
	CloseAfterEHLO                    // 220, then close (without a reply) on EHLO or HELO
	BrokenSTARTTLS                    // offers STARTTLS, answers 220 to it, then sends garbage instead of a TLS handshake
	RefuseSTARTTLS                    // offers STARTTLS, answers 454 4.7.0 TLS not available
	NoSTARTTLS                        // minimal ESMTP without STARTTLS
	Reset                             // accept, wait Delay (default ResetDelay), then close with a TCP RST (SetLinger(0))
	DripBanner                        // the greeting (Banner, or "220 <host> ESMTP") one byte every Delay, then minimal ESMTP
	CustomBanner                      // Banner as it is (binary bytes and all), then minimal ESMTP
)

var behaviourNames = [...]string{
	Silent:           "Silent",
	SlowBanner:       "SlowBanner",
	EndlessBanner:    "EndlessBanner",
	EndlessEHLO:      "EndlessEHLO",
	LongLine:         "LongLine",
	Garbage:          "Garbage",
	WrongCode:        "WrongCode",
	CloseAfterBanner: "CloseAfterBanner",
	CloseAfterEHLO:   "CloseAfterEHLO",
	BrokenSTARTTLS:   "BrokenSTARTTLS",
	RefuseSTARTTLS:   "RefuseSTARTTLS",
	NoSTARTTLS:       "NoSTARTTLS",
	Reset:            "Reset",
	DripBanner:       "DripBanner",
	CustomBanner:     "CustomBanner",
}

// Behaviours lists every behaviour, for tests that try them all.
func Behaviours() []Behaviour {
	out := make([]Behaviour, len(behaviourNames))
	for i := range out {
		out[i] = Behaviour(i)
	}
	return out
}

func (b Behaviour) String() string {
	if b >= 0 && int(b) < len(behaviourNames) {
		return behaviourNames[b]
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Bounds of the raw servers.
const (
	// RawLifetime is the longest a raw connection lives (plus Delay for
	// SlowBanner): then the server closes it whatever the client does.
	RawLifetime = 10 * time.Second
	// LongLineBytes is the length of the LongLine banner.
	LongLineBytes = 4 << 20
	// GarbageBytes is how much garbage Garbage and BrokenSTARTTLS send.
	GarbageBytes = 16 << 10
	// MaxTranscriptLines bounds Transcript; later lines are dropped.
	MaxTranscriptLines = 1000
	// MaxTranscriptLine bounds one recorded line; the rest is dropped.
	MaxTranscriptLine = 512
	// ResetDelay is how long Reset waits by default before the RST, so
	// that the client's connect has returned and the reset shows on its
	// first read (an immediate RST can fail the connect itself).
	ResetDelay = 50 * time.Millisecond
	// maxCommandErrors closes a minimal-ESMTP session after this many
	// unknown commands.
	maxCommandErrors = 20
)

// RawOptions configures StartRaw.
type RawOptions struct {
	Addr      string        // "127.0.0.2:2525"; "" = "127.0.0.1:0"; loopback only
	Behaviour Behaviour     // how to misbehave
	Delay     time.Duration // SlowBanner: wait before the banner; Reset: wait before the RST
	Hostname  string        // name in banners and replies; default DefaultHostname
	// Banner is the greeting of DripBanner and CustomBanner, line ending
	// included; "" means "220 <host> ESMTP\r\n".
	Banner string
}

// Raw is a running raw (hostile or broken) SMTP server.
type Raw struct {
	opts RawOptions
	ln   net.Listener
	addr netip.AddrPort

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and every connection

	mu          sync.Mutex
	live        map[net.Conn]struct{}
	connections int
	transcript  []string
}

// StartRaw runs a raw server on o.Addr until the test ends or Close is
// called. Each connection is served by one goroutine (two while the
// server writes without end) and closed after RawLifetime at the latest.
func StartRaw(tb testing.TB, o RawOptions) *Raw {
	tb.Helper()
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if o.Behaviour < 0 || int(o.Behaviour) >= len(behaviourNames) {
		tb.Fatalf("smtptest: StartRaw: unknown %v", o.Behaviour)
	}
	if o.Delay < 0 {
		o.Delay = 0
	}
	ln, err := listen(o.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	r := &Raw{
		opts: o,
		ln:   ln,
		addr: addrPort(ln.Addr()),
		done: make(chan struct{}),
		live: make(map[net.Conn]struct{}),
	}
	r.wg.Add(1)
	go r.accept()
	tb.Cleanup(r.Close)
	return r
}

// Addr is the address the server listens on.
func (r *Raw) Addr() netip.AddrPort { return r.addr }

// Connections is the number of TCP connections accepted so far.
func (r *Raw) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connections
}

// Transcript returns the lines clients sent so far, over all connections in
// the order received, without line endings; at most MaxTranscriptLines of
// at most MaxTranscriptLine bytes each.
func (r *Raw) Transcript() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.transcript...)
}

// Close stops accepting, closes every connection and waits for every
// goroutine of the server. It is idempotent and also runs at the end of
// the test.
func (r *Raw) Close() {
	r.closeOnce.Do(func() {
		close(r.done)
		r.ln.Close()
		r.mu.Lock()
		for c := range r.live {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
}

func (r *Raw) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			// Only Close closes the listener; anything else (EMFILE, an
			// aborted handshake) is worth another try after a pause.
			if !sleepUnless(r.done, 5*time.Millisecond) {
				return
			}
			continue
		}
		r.mu.Lock()
		r.connections++
		select {
		case <-r.done:
			r.mu.Unlock()
			c.Close()
			return
		default:
		}
		if len(r.live) >= maxConns {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.live[c] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(c)
	}
}

// rawConn is one connection of a raw server.
type rawConn struct {
	r  *Raw
	c  net.Conn
	br *bufio.Reader
}

func (r *Raw) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.live, c)
		r.mu.Unlock()
	}()
	lifetime := RawLifetime
	switch r.opts.Behaviour {
	case SlowBanner, Reset:
		lifetime += r.opts.Delay
	case DripBanner:
		lifetime += time.Duration(len(r.banner())) * r.opts.Delay
	}
	// Every read and write ends by this deadline.
	if err := c.SetDeadline(time.Now().Add(lifetime)); err != nil {
		return
	}
	rc := &rawConn{r: r, c: c, br: bufio.NewReaderSize(c, 1024)}
	host := r.opts.Hostname
	switch r.opts.Behaviour {
	case Silent:
		rc.drain()
	case SlowBanner:
		if !rc.sleep(r.opts.Delay) {
			return
		}
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{})
	case EndlessBanner:
		rc.endless(func(n int) string { return fmt.Sprintf("220-%s endless banner line %d", host, n) })
	case EndlessEHLO:
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{endlessEHLO: true})
	case LongLine:
		rc.whileDraining(func(hungUp <-chan struct{}) {
			chunk := append([]byte("220 "), bytes.Repeat([]byte{'x'}, 64<<10-4)...)
			for sent := 0; sent < LongLineBytes; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
				chunk = bytes.Repeat([]byte{'x'}, 64<<10)
			}
			// The line never ends; wait for the client to give up.
			rc.wait(hungUp)
		})
	case Garbage:
		rc.whileDraining(func(hungUp <-chan struct{}) {
			if _, err := c.Write(garbage()); err != nil {
				return
			}
			rc.wait(hungUp)
		})
	case WrongCode:
		// RFC 5321 §3.1: after a 554 greeting the server waits for QUIT
		// and answers 503 to anything else.
		rc.reply("554 5.3.2 no service for you")
		for errs := 0; errs < maxCommandErrors; errs++ {
			line, err := rc.readLine()
			if err != nil {
				return
			}
			if verb(line) == "QUIT" {
				rc.reply("221 2.0.0 Bye")
				return
			}
			rc.reply("503 5.5.1 Error: bad sequence of commands")
		}
	case CloseAfterBanner:
		rc.reply("220 " + host + " ESMTP")
		rc.hangUp()
	case CloseAfterEHLO:
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{closeAfterEHLO: true})
	case BrokenSTARTTLS:
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{starttls: tlsBroken})
	case RefuseSTARTTLS:
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{starttls: tlsRefused})
	case NoSTARTTLS:
		rc.reply("220 " + host + " ESMTP")
		rc.esmtp(esmtpOpts{})
	case DripBanner:
		for _, b := range []byte(r.banner()) {
			if !rc.sleep(r.opts.Delay) {
				return
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
		rc.esmtp(esmtpOpts{})
	case CustomBanner:
		if _, err := c.Write([]byte(r.banner())); err != nil {
			return
		}
		rc.esmtp(esmtpOpts{})
	case Reset:
		delay := r.opts.Delay
		if delay == 0 {
			delay = ResetDelay
		}
		if !rc.sleep(delay) {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// Close sends RST instead of FIN.
			tc.SetLinger(0)
		}
	}
}

// banner is the greeting of DripBanner and CustomBanner.
func (r *Raw) banner() string {
	if r.opts.Banner != "" {
		return r.opts.Banner
	}
	return "220 " + r.opts.Hostname + " ESMTP\r\n"
}

// sleep waits d or until the server closes; it reports whether d passed.
func (rc *rawConn) sleep(d time.Duration) bool {
	return sleepUnless(rc.r.done, d)
}

// sleepUnless waits d or until done is closed; it reports whether d passed.
func sleepUnless(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsRefused
	tlsBroken
)

type esmtpOpts struct {
	starttls       tlsMode
	endlessEHLO    bool
	closeAfterEHLO bool
}

// esmtp is the minimal ESMTP command loop.
func (rc *rawConn) esmtp(o esmtpOpts) {
	host := rc.r.opts.Hostname
	for errs := 0; errs < maxCommandErrors; {
		line, err := rc.readLine()
		if err != nil {
			return
		}
		switch verb(line) {
		case "EHLO":
			if o.closeAfterEHLO {
				return
			}
			if o.endlessEHLO {
				rc.endless(func(n int) string { return fmt.Sprintf("250-%s extension line %d", host, n) })
				return
			}
			// RFC 5321 §4.1.1.1: the first line names the server.
			lines := []string{host + " Hello " + arg(line), "8BITMIME"}
			if o.starttls != tlsNone {
				lines = append(lines, "STARTTLS")
			}
			lines = append(lines, "ENHANCEDSTATUSCODES")
			rc.multi(250, lines)
		case "HELO":
			if o.closeAfterEHLO {
				return
			}
			rc.reply("250 " + host)
		case "NOOP", "RSET":
			rc.reply("250 2.0.0 Ok")
		case "QUIT":
			rc.reply("221 2.0.0 Bye")
			return
		case "STARTTLS":
			switch o.starttls {
			case tlsRefused:
				// RFC 3207 §4: 454 when TLS is temporarily unavailable.
				rc.reply("454 4.7.0 TLS not available")
			case tlsBroken:
				rc.reply("220 2.0.0 Ready to start TLS")
				rc.whileDraining(func(hungUp <-chan struct{}) {
					if _, err := rc.c.Write(garbage()); err != nil {
						return
					}
					rc.wait(hungUp)
				})
				return
			default:
				errs++
				rc.reply("502 5.5.1 Error: command not implemented")
			}
		default:
			errs++
			rc.reply("502 5.5.1 Error: command not implemented")
		}
	}
}

// endless writes line(0), line(1), ... until a write fails (the client hung
// up, or the deadline passed) while recording what the client sends.
func (rc *rawConn) endless(line func(n int) string) {
	rc.whileDraining(func(<-chan struct{}) {
		var buf bytes.Buffer
		for n := 0; ; {
			buf.Reset()
			for range 64 {
				buf.WriteString(line(n))
				buf.WriteString("\r\n")
				n++
			}
			if _, err := rc.c.Write(buf.Bytes()); err != nil {
				return
			}
			select {
			case <-rc.r.done:
				return
			default:
			}
		}
	})
}

// whileDraining runs write while another goroutine records what the
// client sends. hungUp is closed when the client hangs up or the deadline
// passes; the connection is then closed, which ends write's next Write.
func (rc *rawConn) whileDraining(write func(hungUp <-chan struct{})) {
	hungUp := make(chan struct{})
	rc.r.wg.Add(1)
	go func() {
		defer rc.r.wg.Done()
		defer close(hungUp)
		rc.drain()
		rc.c.Close()
	}()
	write(hungUp)
	rc.c.Close()
	<-hungUp
}

// wait blocks until the client hangs up, the deadline passes or the server
// closes.
func (rc *rawConn) wait(hungUp <-chan struct{}) {
	select {
	case <-hungUp:
	case <-rc.r.done:
	}
}

// drain records lines until the client hangs up or the deadline passes.
// hangUp closes the server's side gracefully: FIN first, then read what
// the client still sends until it hangs up too. Closing a socket that has
// unread input makes the kernel answer with RST instead, and a client that
// had already sent its next command would read "connection reset" where
// the behaviour promises "closed".
func (rc *rawConn) hangUp() {
	if tc, ok := rc.c.(*net.TCPConn); ok {
		if tc.CloseWrite() != nil {
			return
		}
	}
	rc.drain()
}

func (rc *rawConn) drain() {
	for {
		if _, err := rc.readLine(); err != nil {
			return
		}
	}
}

// readLine reads one line (CRLF or LF) and records it in the transcript;
// bytes beyond MaxTranscriptLine are read and dropped.
func (rc *rawConn) readLine() (string, error) {
	var line []byte
	for {
		frag, err := rc.br.ReadSlice('\n')
		if len(line) < MaxTranscriptLine {
			line = append(line, frag[:min(len(frag), MaxTranscriptLine-len(line))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(frag) > 0 || len(line) > 0 {
				rc.record(line)
			}
			if errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	s := rc.record(line)
	return s, nil
}

func (rc *rawConn) record(line []byte) string {
	s := strings.TrimRight(string(line), "\r\n")
	rc.r.mu.Lock()
	if len(rc.r.transcript) < MaxTranscriptLines {
		rc.r.transcript = append(rc.r.transcript, s)
	}
	rc.r.mu.Unlock()
	return s
}

func (rc *rawConn) reply(line string) {
	rc.c.Write([]byte(line + "\r\n")) //nolint:errcheck // a failed write shows as a failed next read
}

// multi writes a multi-line reply (RFC 5321 §4.2.1).
func (rc *rawConn) multi(code int, lines []string) {
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%d%s%s\r\n", code, sep, l)
	}
	rc.c.Write([]byte(b.String())) //nolint:errcheck // as in reply
}

// garbage is GarbageBytes of random bytes whose first byte cannot start a
// reply code.
func garbage() []byte {
	b := make([]byte, GarbageBytes)
	rand.Read(b)
	b[0] = 0xff
	return b
}

// verb is the upper-cased command word of line.
func verb(line string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return strings.ToUpper(v)
}

// arg is what follows the command word.
func arg(line string) string {
	_, a, _ := strings.Cut(strings.TrimSpace(line), " ")
	return strings.TrimSpace(a)
}

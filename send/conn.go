package send

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/internal/printable"
)

// Caps on what one server may send in one session (a connection, TLS
// records included). go-smtp caps each reply line at 2000 octets; these
// bound the number of lines and the total
// (docs/security.md#deadlines-and-caps).
const (
	// MaxSessionBytes is the most a server may send in one session.
	MaxSessionBytes = 1 << 20
	// MaxTranscriptLines bounds the transcript kept per attempt.
	MaxTranscriptLines = 500
	// maxTranscriptLine cuts each transcript line.
	maxTranscriptLine = 512
)

// ErrSessionTooLarge is the error of a read past MaxSessionBytes: the
// server sends without end.
var ErrSessionTooLarge = fmt.Errorf("send: the server sent more than %d octets in one session", MaxSessionBytes)

// limitConn caps the octets read from a connection and keeps every
// deadline at or before a hard one (the session's), so no read or write
// outlives the attempt even when go-smtp clears its deadlines. A read that
// ends by a deadline poisons it: the stream is out of step with the
// replies, so every later read and write fails with that time-out, and
// cut tells the session that what go-smtp took for a reply was cut short.
type limitConn struct {
	net.Conn
	left int64
	hard time.Time // zero: none
	cut  error     // the time-out that ended a read, if any
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.cut != nil {
		return 0, c.cut
	}
	if c.left <= 0 {
		return 0, ErrSessionTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	if err != nil && isTimeout(err) {
		c.cut = err
	}
	return n, err
}

func (c *limitConn) Write(p []byte) (int, error) {
	if c.cut != nil {
		return 0, c.cut
	}
	return c.Conn.Write(p)
}

func (c *limitConn) clamp(t time.Time) time.Time {
	if !c.hard.IsZero() && (t.IsZero() || t.After(c.hard)) {
		return c.hard
	}
	return t
}

func (c *limitConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *limitConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *limitConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// tapConn reports the lines that cross a connection, "C: " for what the
// client wrote and "S: " for what the server sent. While hidden is set,
// writes are counted instead (the message data).
type tapConn struct {
	net.Conn
	line    func(string)
	in, out lineSplitter
	hidden  bool
	hiddenN int
	wrote   int // octets written, hidden ones included
}

func newTap(c net.Conn, line func(string)) *tapConn {
	t := &tapConn{Conn: c, line: line}
	t.in.prefix, t.out.prefix = "S: ", "C: "
	return t
}

func (t *tapConn) Read(p []byte) (int, error) {
	if t.hidden {
		// Reading again means the client has sent the message and waits
		// for the reply to the dot.
		t.hide(false)
	}
	n, err := t.Conn.Read(p)
	t.in.feed(p[:n], t.line)
	return n, err
}

func (t *tapConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.wrote += n
	if t.hidden {
		t.hiddenN += n
	} else {
		t.out.feed(p[:n], t.line)
	}
	return n, err
}

// cut ends the line the server was sending when a deadline cut it,
// marked as cut.
func (t *tapConn) cut() {
	if len(t.in.buf) > 0 || t.in.cut {
		t.line(t.in.prefix + printable.String(string(t.in.buf)) + "… (cut by the deadline)")
		t.in.buf, t.in.cut = t.in.buf[:0], false
	}
}

// hide starts or ends a stretch of writes left out of the transcript; at
// the end, one line says how much was left out.
func (t *tapConn) hide(on bool) {
	if t.hidden && !on {
		t.line("C: <message data: " + strconv.Itoa(t.hiddenN) + " octets, then CRLF.CRLF>")
		t.hiddenN = 0
	}
	t.hidden = on
}

// lineSplitter cuts a byte stream into printable lines.
type lineSplitter struct {
	prefix string
	buf    []byte
	cut    bool // the current line was too long: drop until its end
}

func (s *lineSplitter) feed(p []byte, emit func(string)) {
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		if !s.cut {
			room := maxTranscriptLine - len(s.buf)
			chunk := p[:i]
			if len(chunk) > room {
				chunk = chunk[:room]
				s.cut = true
			}
			s.buf = append(s.buf, chunk...)
		}
		if i == len(p) {
			return
		}
		line := printable.String(strings.TrimSuffix(string(s.buf), "\r"))
		if s.cut {
			line += "…"
		}
		emit(s.prefix + line)
		s.buf, s.cut = s.buf[:0], false
		p = p[i+1:]
	}
}

// greetConn serves a made-up 220 greeting before the real stream. go-smtp
// v0.25.1 has no STARTTLS on a client the caller greeted itself (only
// NewClientStartTLS, which says EHLO localhost), so the sender does
// STARTTLS and the handshake itself and starts a new go-smtp client over
// the TLS connection; that client expects a greeting, which the server does
// not send again after STARTTLS (RFC 3207 §4.2), so this supplies it. It
// sits above the transcript tap and never appears in the transcript.
type greetConn struct {
	net.Conn
	pending []byte
}

func (g *greetConn) Read(p []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return false
}

package smtptest

import (
	"bufio"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

// ioDeadline bounds every exchange of the test clients.
const ioDeadline = 5 * time.Second

// client is a bare SMTP client for tests: every read and write is bounded.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	tp   *textproto.Reader
	// dialed is when the connect began: before the server accepted, so
	// before any delay of the server's started.
	dialed time.Time
}

func dial(t *testing.T, ap netip.AddrPort) *client {
	t.Helper()
	d := net.Dialer{Timeout: ioDeadline}
	dialed := time.Now()
	conn, err := d.DialContext(t.Context(), "tcp", ap.String())
	if err != nil {
		t.Fatalf("dial %s: %v", ap, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(ioDeadline)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	return &client{t: t, conn: conn, br: br, tp: textproto.NewReader(br), dialed: dialed}
}

// send writes one command line.
func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// reply reads one (possibly multi-line) reply and returns its code and
// lines (text after the code and separator).
func (c *client) reply() (int, []string) {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.tp.ReadLine()
		if err != nil {
			c.t.Fatalf("reading reply (after %q): %v", lines, err)
		}
		if len(l) < 4 || (l[3] != ' ' && l[3] != '-') {
			c.t.Fatalf("malformed reply line %q", l)
		}
		code := 0
		for _, d := range l[:3] {
			if d < '0' || d > '9' {
				c.t.Fatalf("malformed reply code in %q", l)
			}
			code = code*10 + int(d-'0')
		}
		lines = append(lines, l[4:])
		if l[3] == ' ' {
			return code, lines
		}
	}
}

// cmd sends line and checks the reply code; it returns the reply lines.
func (c *client) cmd(line string, want int) []string {
	c.t.Helper()
	c.send(line)
	code, lines := c.reply()
	if code != want {
		c.t.Fatalf("%q: got %d %q, want %d", line, code, lines, want)
	}
	return lines
}

// expect reads a reply and checks its code.
func (c *client) expect(want int) []string {
	c.t.Helper()
	code, lines := c.reply()
	if code != want {
		c.t.Fatalf("got %d %q, want %d", code, lines, want)
	}
	return lines
}

// hasLine reports whether one of lines equals s (ignoring case).
func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

// eventually polls cond for up to ioDeadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(ioDeadline); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// errDeadline matches a read or write that passed its deadline.
var errDeadline = os.ErrDeadlineExceeded

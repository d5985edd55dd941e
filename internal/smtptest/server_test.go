package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/internal/testpki"
)

var queueIDRE = regexp.MustCompile(`^[0-9A-F]{10}$`)

// deliver runs one transaction on c and returns the DATA reply text.
func deliver(c *client, from, to, body string) string {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+from+">", 250)
	c.cmd("RCPT TO:<"+to+">", 250)
	c.cmd("DATA", 354)
	c.send(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n.")
	return c.expect(250)[0]
}

func TestServerDelivers(t *testing.T) {
	s := Start(t, Options{Hostname: "mx1.example.test"})
	c := dial(t, s.Addr())
	banner := c.expect(220)
	if !strings.HasPrefix(banner[0], "mx1.example.test ") {
		t.Errorf("banner %q does not start with the host name", banner)
	}
	ehlo := c.cmd("EHLO client.example.test", 250)
	if !strings.HasPrefix(ehlo[0], "mx1.example.test ") {
		t.Errorf("EHLO reply %q does not start with the host name", ehlo[0])
	}
	if hasLine(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS offered without a TLS config: %q", ehlo)
	}
	if !hasLine(ehlo, fmt.Sprintf("SIZE %d", DefaultMaxMessageBytes)) {
		t.Errorf("EHLO %q lacks SIZE %d", ehlo, DefaultMaxMessageBytes)
	}

	got := deliver(c, "a@client.example.test", "b@example.test", "Subject: hi\n\nhello")
	id, ok := strings.CutPrefix(got, "2.0.0 Ok: queued as ")
	if !ok || !queueIDRE.MatchString(id) {
		t.Fatalf("DATA reply %q, want 2.0.0 Ok: queued as <10 hex digits>", got)
	}
	second := deliver(c, "a@client.example.test", "c@example.test", "Subject: again\n\nhello")
	c.cmd("QUIT", 221)

	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("Messages: %d, want 2", len(msgs))
	}
	m := msgs[0]
	if m.QueueID != id {
		t.Errorf("QueueID %q, reply said %q", m.QueueID, id)
	}
	if "2.0.0 Ok: queued as "+msgs[1].QueueID != second || msgs[1].QueueID == id {
		t.Errorf("second queue ID %q (reply %q) not unique or not the one sent", msgs[1].QueueID, second)
	}
	if m.From != "a@client.example.test" || len(m.To) != 1 || m.To[0] != "b@example.test" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if string(m.Data) != "Subject: hi\r\n\r\nhello\r\n" {
		t.Errorf("data %q", m.Data)
	}
	if m.TLS || m.Helo != "client.example.test" || !strings.HasPrefix(m.Remote, "127.0.0.1:") || m.Received.IsZero() {
		t.Errorf("session facts: TLS %v, Helo %q, Remote %q, Received %v", m.TLS, m.Helo, m.Remote, m.Received)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections %d, want 1", n)
	}
	if n := s.Transactions(); n != 2 {
		t.Errorf("Transactions %d, want 2", n)
	}
	// Messages is a copy.
	msgs[0].To[0], msgs[0].Data[0] = "x", 'x'
	if again := s.Messages(); again[0].To[0] != "b@example.test" || again[0].Data[0] != 'S' {
		t.Error("Messages shares memory with the server")
	}
}

func TestServerHELO(t *testing.T) {
	s := Start(t, Options{Hostname: "mx.example.test"})
	c := dial(t, s.Addr())
	c.expect(220)
	if got := c.cmd("HELO old.example.test", 250); !strings.HasPrefix(got[0], "mx.example.test ") {
		t.Errorf("HELO reply %q does not start with the host name", got)
	}
}

// A probe-like session: MAIL FROM is counted, nothing is delivered.
func TestServerTransactionsWithoutData(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO probe.example.test", 250)
	c.cmd("MAIL FROM:<>", 250)
	c.cmd("RCPT TO:<postmaster@example.test>", 250)
	c.cmd("RSET", 250)
	c.cmd("QUIT", 221)
	if s.Transactions() != 1 || len(s.Messages()) != 0 {
		t.Errorf("Transactions %d Messages %d, want 1 and 0", s.Transactions(), len(s.Messages()))
	}
}

func TestServerGreylist(t *testing.T) {
	s := Start(t, Options{Greylist: 1})
	try := func(to string, want int) {
		t.Helper()
		c := dial(t, s.Addr())
		c.expect(220)
		c.cmd("EHLO client.example.test", 250)
		c.cmd("MAIL FROM:<a@client.example.test>", 250)
		got := c.cmd("RCPT TO:<"+to+">", want)
		if want == 451 && !strings.HasPrefix(got[0], "4.7.1 ") {
			t.Errorf("greylisting reply %q, want 4.7.1", got)
		}
		c.cmd("QUIT", 221)
	}
	try("b@example.test", 451)
	try("b@example.test", 250) // a new connection, the same pair
	try("c@example.test", 451) // another pair starts its own count
	try("B@EXAMPLE.TEST", 250) // pairs compare without case
	if s.Connections() != 4 {
		t.Errorf("Connections %d, want 4", s.Connections())
	}
}

func TestServerRcptVerdict(t *testing.T) {
	s := Start(t, Options{Rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "nobody@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "full@"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}})
	c := dial(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO client.example.test", 250)
	c.cmd("MAIL FROM:<a@client.example.test>", 250)
	if got := c.cmd("RCPT TO:<nobody@example.test>", 550); got[0] != "5.1.1 no such user" {
		t.Errorf("5xx reply %q", got)
	}
	c.cmd("RCPT TO:<full@example.test>", 452)
	c.cmd("RCPT TO:<someone@example.test>", 250)
	c.cmd("DATA", 354)
	c.send("Subject: x\r\n\r\nx\r\n.")
	c.expect(250)
	if m := s.Messages(); len(m) != 1 || len(m[0].To) != 1 || m[0].To[0] != "someone@example.test" {
		t.Errorf("messages %+v, want one to someone@example.test only", m)
	}
}

func TestServerRelay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       Options
		to      string
		want    int
		wantEnh string
	}{
		{"local domain", Options{Domains: []string{"example.test."}}, "b@example.test", 250, ""},
		{"local domain in capitals", Options{Domains: []string{"example.test"}}, "b@EXAMPLE.Test", 250, ""},
		{"foreign domain", Options{Domains: []string{"example.test"}}, "b@other.test", 554, "5.7.1 "},
		{"relay on", Options{Domains: []string{"example.test"}, Relay: true}, "b@other.test", 250, ""},
		{"no domains, relay off", Options{}, "b@other.test", 250, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, tc.o)
			c := dial(t, s.Addr())
			c.expect(220)
			c.cmd("EHLO client.example.test", 250)
			c.cmd("MAIL FROM:<a@client.example.test>", 250)
			got := c.cmd("RCPT TO:<"+tc.to+">", tc.want)
			if !strings.HasPrefix(got[0], tc.wantEnh) {
				t.Errorf("reply %q, want %q first", got, tc.wantEnh)
			}
		})
	}
}

func TestServerDataVerdict(t *testing.T) {
	var seen []string
	s := Start(t, Options{Data: func(from string, to []string, data []byte) error {
		seen = append(seen, from, strings.Join(to, ","), string(data))
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
	}})
	c := dial(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO client.example.test", 250)
	c.cmd("MAIL FROM:<a@client.example.test>", 250)
	c.cmd("RCPT TO:<b@example.test>", 250)
	c.cmd("DATA", 354)
	c.send("x\r\n.")
	if got := c.expect(554); got[0] != "5.7.1 spam" {
		t.Errorf("reply %q", got)
	}
	if len(s.Messages()) != 0 {
		t.Error("a rejected message was recorded")
	}
	if len(seen) != 3 || seen[0] != "a@client.example.test" || seen[1] != "b@example.test" || seen[2] != "x\r\n" {
		t.Errorf("Data saw %q", seen)
	}
}

func TestServerMaxMessageBytes(t *testing.T) {
	s := Start(t, Options{MaxMessageBytes: 100})
	c := dial(t, s.Addr())
	c.expect(220)
	if ehlo := c.cmd("EHLO client.example.test", 250); !hasLine(ehlo, "SIZE 100") {
		t.Errorf("EHLO %q lacks SIZE 100", ehlo)
	}
	c.cmd("MAIL FROM:<a@client.example.test>", 250)
	c.cmd("RCPT TO:<b@example.test>", 250)
	c.cmd("DATA", 354)
	c.send(strings.Repeat("0123456789\r\n", 20) + ".")
	c.expect(552)
	if len(s.Messages()) != 0 {
		t.Error("an oversized message was recorded")
	}
}

func TestServerSTARTTLS(t *testing.T) {
	ca := testpki.NewCA(t, "smtptest CA")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}})
	s := Start(t, Options{Hostname: "mx.example.test", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})

	c := dial(t, s.Addr())
	c.expect(220)
	if ehlo := c.cmd("EHLO client.example.test", 250); !hasLine(ehlo, "STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", ehlo)
	}
	c.cmd("STARTTLS", 220)
	tc := tls.Client(c.conn, &tls.Config{RootCAs: ca.Pool, ServerName: "mx.example.test"})
	if err := tc.HandshakeContext(t.Context()); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn = tc
	c.br.Reset(tc)
	if ehlo := c.cmd("EHLO client.example.test", 250); hasLine(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS offered again inside TLS: %q", ehlo)
	}
	deliver(c, "a@client.example.test", "b@example.test", "Subject: tls\n\nx")
	c.cmd("QUIT", 221)
	if m := s.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("messages %+v, want one over TLS", m)
	}

	// A client that does not trust the CA fails verification.
	c2 := dial(t, s.Addr())
	c2.expect(220)
	c2.cmd("EHLO client.example.test", 250)
	c2.cmd("STARTTLS", 220)
	err := tls.Client(c2.conn, &tls.Config{RootCAs: testpki.NewCA(t, "other CA").Pool, ServerName: "mx.example.test"}).HandshakeContext(t.Context())
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
		t.Errorf("handshake with the wrong CA: %v, want a verification error", err)
	}
}

func TestServerBannerDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	s := Start(t, Options{BannerDelay: delay})
	start := time.Now()
	c := dial(t, s.Addr())
	c.expect(220)
	if took := time.Since(start); took < delay {
		t.Errorf("banner after %v, want at least %v", took, delay)
	}

	// Close does not wait out the delay of a session still waiting.
	slow := Start(t, Options{BannerDelay: time.Hour})
	dial(t, slow.Addr())
	eventually(t, "the connection", func() bool { return slow.Connections() == 1 })
	done := make(chan struct{})
	go func() { slow.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(ioDeadline):
		t.Fatal("Close hangs")
	}
}

func TestServerClose(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s.Addr())
	c.expect(220)
	s.Close()
	s.Close() // idempotent
	if _, err := c.br.ReadByte(); err == nil {
		t.Error("session still open after Close")
	}
	_, err := net.DialTimeout("tcp", s.Addr().String(), ioDeadline)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after Close: %v, want connection refused", err)
	}
}

func TestServerLoopbackOnly(t *testing.T) {
	if _, err := listen("0.0.0.0:0"); err == nil {
		t.Error("listen accepted a wildcard address")
	}
	if _, err := listen("192.0.2.1:25"); err == nil {
		t.Error("listen accepted a non-loopback address")
	}
}

// Several servers, well-behaved and raw, on one shared port.
func TestPortShared(t *testing.T) {
	port := uint16(Port(t))
	var addrs []netip.AddrPort
	for i, n := range []byte{2, 3, 4} {
		s := Start(t, Options{Addr: netip.AddrPortFrom(Loopback(n), port).String(), Hostname: fmt.Sprintf("mx%d.example.test", i)})
		addrs = append(addrs, s.Addr())
	}
	r := StartRaw(t, RawOptions{Addr: netip.AddrPortFrom(Loopback(30), port).String(), Behaviour: WrongCode})
	addrs = append(addrs, r.Addr())
	refused := Refused(t, netip.AddrPortFrom(Loopback(5), port).String())

	for i, ap := range addrs {
		if ap.Port() != port {
			t.Errorf("server %d on %v, want port %d", i, ap, port)
		}
		c := dial(t, ap)
		code, lines := c.reply()
		switch {
		case i < 3 && (code != 220 || !strings.HasPrefix(lines[0], fmt.Sprintf("mx%d.example.test ", i))):
			t.Errorf("%v: banner %d %q", ap, code, lines)
		case i == 3 && code != 554:
			t.Errorf("%v: banner %d %q, want the raw server's 554", ap, code, lines)
		}
	}
	if refused.Port() != port || refused.Addr() != Loopback(5) {
		t.Errorf("Refused gave %v", refused)
	}
	if _, err := net.DialTimeout("tcp", refused.String(), ioDeadline); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %v: %v, want connection refused", refused, err)
	}
}

func TestServerIPv6(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no IPv6 loopback")
	}
	port := Port(t)
	s := Start(t, Options{Addr: fmt.Sprintf("[::1]:%d", port)})
	if s.Addr() != netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)) {
		t.Fatalf("Addr %v", s.Addr())
	}
	c := dial(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO client.example.test", 250)
	deliver(c, "a@client.example.test", "b@example.test", "x")
	if m := s.Messages(); len(m) != 1 || !strings.HasPrefix(m[0].Remote, "[::1]:") {
		t.Errorf("messages %+v", m)
	}
}

func TestRefused(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.9"} {
		ap := Refused(t, addr)
		if !ap.Addr().IsLoopback() || ap.Port() == 0 {
			t.Errorf("Refused(%q) = %v", addr, ap)
		}
		if _, err := net.DialTimeout("tcp", ap.String(), ioDeadline); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %v: %v, want connection refused", ap, err)
		}
	}
}

// Close right after Start, before go-smtp's Serve has run, does not hang.
func TestServerCloseAtOnce(t *testing.T) {
	for range 20 {
		s := Start(t, Options{})
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(ioDeadline):
			t.Fatal("Close hangs")
		}
	}
}

// A hostile client: an over-long command line ends the session.
func TestServerLongLine(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s.Addr())
	c.expect(220)
	c.send("EHLO " + strings.Repeat("x", 10000))
	c.expect(500)
	if _, err := c.br.ReadByte(); err == nil {
		t.Error("session still open after an over-long line")
	}
}

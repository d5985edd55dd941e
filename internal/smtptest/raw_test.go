package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readEOF asserts the server closes the connection (EOF or reset) before
// the client's deadline.
func readEOF(t *testing.T, c *client) {
	t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("waiting for the server to close: %v", err)
	}
}

// waitTranscript waits until the transcript holds want (in order, as a
// subsequence of everything received).
func waitTranscript(t *testing.T, r *Raw, want ...string) {
	t.Helper()
	eventually(t, "transcript "+strings.Join(want, ", "), func() bool {
		got := r.Transcript()
		i := 0
		for _, l := range got {
			if i < len(want) && l == want[i] {
				i++
			}
		}
		return i == len(want)
	})
}

func TestRaw(t *testing.T) {
	tests := map[Behaviour]func(t *testing.T, r *Raw, c *client){
		Silent: func(t *testing.T, r *Raw, c *client) {
			c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := c.br.Read(make([]byte, 1))
			if n != 0 || !errors.Is(err, errDeadline) {
				t.Errorf("read %d bytes, %v; want a time-out", n, err)
			}
			c.send("QUIT")
			waitTranscript(t, r, "QUIT")
		},
		SlowBanner: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			// From the dial, not from now: the server's delay began at its
			// accept, which a loaded machine may run well before this line.
			if took := time.Since(c.dialed); took < 200*time.Millisecond {
				t.Errorf("banner %v after the dial, want at least 200ms", took)
			}
			if ehlo := c.cmd("EHLO client.example.test", 250); hasLine(ehlo, "STARTTLS") || !strings.HasPrefix(ehlo[0], DefaultHostname+" ") {
				t.Errorf("EHLO %q", ehlo)
			}
			c.cmd("NOOP", 250)
			c.cmd("QUIT", 221)
			readEOF(t, c)
		},
		EndlessBanner: func(t *testing.T, r *Raw, c *client) {
			for i := range 5000 {
				l, err := c.tp.ReadLine()
				if err != nil || !strings.HasPrefix(l, "220-") {
					t.Fatalf("line %d: %q, %v", i, l, err)
				}
			}
		},
		EndlessEHLO: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			c.send("EHLO client.example.test")
			for i := range 5000 {
				l, err := c.tp.ReadLine()
				if err != nil || !strings.HasPrefix(l, "250-") {
					t.Fatalf("line %d: %q, %v", i, l, err)
				}
			}
			waitTranscript(t, r, "EHLO client.example.test")
		},
		LongLine: func(t *testing.T, r *Raw, c *client) {
			buf := make([]byte, 2<<20)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(buf, []byte("220 ")) || bytes.ContainsAny(buf, "\r\n") {
				t.Errorf("2 MiB read: prefix %q, has a line end %v", buf[:8], bytes.ContainsAny(buf, "\r\n"))
			}
		},
		Garbage: func(t *testing.T, r *Raw, c *client) {
			buf := make([]byte, 4096)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				t.Fatal(err)
			}
			if buf[0] != 0xff {
				t.Errorf("first byte %#x could start a reply", buf[0])
			}
		},
		WrongCode: func(t *testing.T, r *Raw, c *client) {
			if got := c.expect(554); got[0] != "5.3.2 no service for you" {
				t.Errorf("banner %q", got)
			}
			c.cmd("EHLO client.example.test", 503)
			c.cmd("MAIL FROM:<>", 503)
			c.cmd("QUIT", 221)
			readEOF(t, c)
			if got := r.Transcript(); !slices.Equal(got, []string{"EHLO client.example.test", "MAIL FROM:<>", "QUIT"}) {
				t.Errorf("transcript %q", got)
			}
		},
		CloseAfterBanner: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			readEOF(t, c)
		},
		CloseAfterEHLO: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			c.send("EHLO client.example.test")
			readEOF(t, c)
			waitTranscript(t, r, "EHLO client.example.test")
		},
		BrokenSTARTTLS: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			if ehlo := c.cmd("EHLO client.example.test", 250); !hasLine(ehlo, "STARTTLS") {
				t.Errorf("STARTTLS not offered: %q", ehlo)
			}
			c.cmd("STARTTLS", 220)
			err := tls.Client(c.conn, &tls.Config{ServerName: "mx.example.test"}).HandshakeContext(t.Context())
			if err == nil || errors.Is(err, errDeadline) {
				t.Errorf("handshake: %v, want a TLS error", err)
			}
		},
		RefuseSTARTTLS: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			if ehlo := c.cmd("EHLO client.example.test", 250); !hasLine(ehlo, "STARTTLS") {
				t.Errorf("STARTTLS not offered: %q", ehlo)
			}
			if got := c.cmd("STARTTLS", 454); got[0] != "4.7.0 TLS not available" {
				t.Errorf("reply %q", got)
			}
			c.cmd("QUIT", 221)
		},
		NoSTARTTLS: func(t *testing.T, r *Raw, c *client) {
			c.expect(220)
			if ehlo := c.cmd("EHLO client.example.test", 250); hasLine(ehlo, "STARTTLS") {
				t.Errorf("STARTTLS offered: %q", ehlo)
			}
			c.cmd("STARTTLS", 502)
			c.cmd("MAIL FROM:<>", 502)
			c.cmd("HELO client.example.test", 250)
			c.cmd("RSET", 250)
			c.cmd("QUIT", 221)
			if got := r.Transcript(); !slices.Contains(got, "MAIL FROM:<>") || slices.Contains(got, "DATA") {
				t.Errorf("transcript %q", got)
			}
		},
		Reset: func(t *testing.T, r *Raw, c *client) {
			_, err := c.br.ReadByte()
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("read: %v, want connection reset", err)
			}
		},
		DripBanner: func(t *testing.T, r *Raw, c *client) {
			// One byte, then a pause of Delay before the next.
			if b, err := c.br.ReadByte(); err != nil || b != '2' {
				t.Fatalf("first byte %q, %v", b, err)
			}
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			if n, err := c.br.Read(make([]byte, 10)); n != 0 || !errors.Is(err, errDeadline) {
				t.Errorf("read %d bytes at once, %v; want one byte per Delay", n, err)
			}
			c.conn.SetReadDeadline(time.Now().Add(ioDeadline))
			if l, err := c.tp.ReadLine(); err != nil || l != "20 mx\x01\\ ESMTP" {
				t.Errorf("banner %q, %v", l, err)
			}
			c.cmd("EHLO client.example.test", 250)
			c.cmd("QUIT", 221)
		},
		CustomBanner: func(t *testing.T, r *Raw, c *client) {
			if l, err := c.tp.ReadLine(); err != nil || l != "220 mx\x01\\ ESMTP" {
				t.Errorf("banner %q, %v", l, err)
			}
			c.cmd("EHLO client.example.test", 250)
			c.cmd("QUIT", 221)
		},
	}
	for _, b := range Behaviours() {
		t.Run(b.String(), func(t *testing.T) {
			test, ok := tests[b]
			if !ok {
				t.Fatalf("no test for %v", b)
			}
			o := RawOptions{Behaviour: b, Delay: 200 * time.Millisecond, Banner: "220 mx\x01\\ ESMTP\r\n"}
			if b == DripBanner {
				o.Delay = 100 * time.Millisecond
			}
			r := StartRaw(t, o)
			c := dial(t, r.Addr())
			test(t, r, c)
			c.conn.Close()
			if n := r.Connections(); n != 1 {
				t.Errorf("Connections %d, want 1", n)
			}
			closed := make(chan struct{})
			go func() { r.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(ioDeadline):
				t.Fatal("Close hangs")
			}
		})
	}
}

// Close ends connections whose clients neither read nor hang up.
func TestRawCloseWithStuckClient(t *testing.T) {
	for _, b := range []Behaviour{Silent, SlowBanner, EndlessBanner, EndlessEHLO, LongLine, Garbage, BrokenSTARTTLS} {
		t.Run(b.String(), func(t *testing.T) {
			r := StartRaw(t, RawOptions{Behaviour: b, Delay: time.Hour})
			c := dial(t, r.Addr())
			switch b {
			case EndlessEHLO, BrokenSTARTTLS:
				c.expect(220)
				c.send("EHLO client.example.test")
				if b == BrokenSTARTTLS {
					c.expect(250)
					c.send("STARTTLS")
				}
			}
			eventually(t, "the connection", func() bool { return r.Connections() == 1 })
			time.Sleep(50 * time.Millisecond) // let the server block in its write or wait
			closed := make(chan struct{})
			go func() { r.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(ioDeadline):
				t.Fatal("Close hangs")
			}
			if _, err := io.Copy(io.Discard, c.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after Close: %v, want the connection closed", err)
			}
		})
	}
}

func TestRawTranscriptBounds(t *testing.T) {
	r := StartRaw(t, RawOptions{Behaviour: Silent})
	c := dial(t, r.Addr())
	var b strings.Builder
	b.WriteString(strings.Repeat("y", 3*MaxTranscriptLine) + "\r\n")
	for range MaxTranscriptLines + 500 {
		b.WriteString("NOOP\r\n")
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	c.conn.Close()
	eventually(t, "a full transcript", func() bool { return len(r.Transcript()) == MaxTranscriptLines })
	got := r.Transcript()
	if got[0] != strings.Repeat("y", MaxTranscriptLine) || got[1] != "NOOP" {
		t.Errorf("transcript starts %q…, %q", got[0][:10], got[1])
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(r.Transcript()); n != MaxTranscriptLines {
		t.Errorf("transcript grew to %d lines", n)
	}
}

// Several connections to one raw server; the transcript holds them all.
func TestRawConnections(t *testing.T) {
	r := StartRaw(t, RawOptions{Behaviour: NoSTARTTLS, Hostname: "mx.example.test"})
	for i := range 3 {
		c := dial(t, r.Addr())
		if got := c.expect(220); got[0] != "mx.example.test ESMTP" {
			t.Errorf("banner %q", got)
		}
		c.cmd("QUIT", 221)
		readEOF(t, c)
		if n := r.Connections(); n != i+1 {
			t.Errorf("Connections %d, want %d", n, i+1)
		}
	}
	if got := r.Transcript(); !slices.Equal(got, []string{"QUIT", "QUIT", "QUIT"}) {
		t.Errorf("transcript %q", got)
	}
}

func TestRawIPv6(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no IPv6 loopback")
	}
	r := StartRaw(t, RawOptions{Addr: "[::1]:0", Behaviour: WrongCode})
	if !r.Addr().Addr().Is6() {
		t.Fatalf("Addr %v", r.Addr())
	}
	c := dial(t, r.Addr())
	c.expect(554)
	ap := Refused(t, "::1")
	if ap.Addr() != r.Addr().Addr() || ap.Port() == 0 {
		t.Errorf("Refused(::1) = %v", ap)
	}
}

func TestBehaviourString(t *testing.T) {
	if got := EndlessEHLO.String(); got != "EndlessEHLO" {
		t.Errorf("String %q", got)
	}
	if got := Behaviour(99).String(); got != "Behaviour(99)" {
		t.Errorf("String %q", got)
	}
	if n := len(Behaviours()); n != int(CustomBanner)+1 {
		t.Errorf("Behaviours: %d, want %d", n, CustomBanner+1)
	}
}

// TestRawCloseAfterBannerPipelined: a client that sends its EHLO before the
// banner arrives (a pipelining client, or a fast one on a slow machine) must
// still see the server close the connection, not reset it. Closing a socket
// with unread input makes the kernel send RST, which a client reads as
// "connection reset" and the tests that expect "closed" then fail at random.
func TestRawCloseAfterBannerPipelined(t *testing.T) {
	for range 20 {
		r := StartRaw(t, RawOptions{Behaviour: CloseAfterBanner})
		c := dial(t, r.Addr())
		c.send("EHLO client.example.test")
		c.expect(220)
		if _, err := io.Copy(io.Discard, c.br); err != nil {
			t.Fatalf("after the banner: %v, want the connection closed (EOF)", err)
		}
		waitTranscript(t, r, "EHLO client.example.test")
		c.conn.Close()
		r.Close()
	}
}

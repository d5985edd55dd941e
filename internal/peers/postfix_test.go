package peers

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/internal/testpki"
)

// sendTimeout bounds one SMTP transaction in these tests.
const sendTimeout = 20 * time.Second

var queuedAs = regexp.MustCompile(`(?m)^<-  250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)\s*$`)

// swaks sends one message with swaks, a real SMTP client from Debian, and
// returns its transcript and exit error.
func swaks(t *testing.T, addr netip.AddrPort, from, to string) (string, error) {
	t.Helper()
	bin := Binary(t, "swaks", "swaks")
	ctx, cancel := context.WithTimeout(t.Context(), sendTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--server", addr.Addr().String(), "--port", strconv.Itoa(int(addr.Port())),
		"--from", from, "--to", to, "--helo", "client.test",
		"--timeout", "10s")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sendTLS sends one message with STARTTLS (RFC 3207), verifying the
// server's chain against pool for serverName, through Go's net/smtp:
// swaks needs libnet-ssleay-perl for STARTTLS, which Debian's swaks
// package only recommends.
func sendTLS(t *testing.T, addr netip.AddrPort, serverName string, pool *tls.Config, from, to string) (queueID string, err error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(sendTimeout))
	c, err := smtp.NewClient(conn, serverName)
	if err != nil {
		return "", err
	}
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return "", errors.New("no STARTTLS offered")
	}
	if err := c.StartTLS(pool); err != nil {
		return "", err
	}
	if err := c.Mail(from); err != nil {
		return "", err
	}
	if err := c.Rcpt(to); err != nil {
		return "", err
	}
	// DATA through the text connection: net/smtp's Data hides the reply
	// to the final dot, which holds the queue ID (RFC 5321 §4.1.1.4).
	if _, _, err := cmdReply(c, 354, "DATA"); err != nil {
		return "", err
	}
	w := c.Text.DotWriter()
	if _, err := w.Write([]byte("Subject: tls\r\nMessage-ID: <tls@client.test>\r\n\r\nhello\r\n")); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	_, msg, err := c.Text.ReadResponse(250)
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	m := regexp.MustCompile(`queued as ([0-9A-Za-z]+)`).FindStringSubmatch(msg)
	if m == nil {
		return "", fmt.Errorf("no queue ID in %q", msg)
	}
	return m[1], nil
}

func cmdReply(c *smtp.Client, want int, cmd string) (int, string, error) {
	id, err := c.Text.Cmd("%s", cmd)
	if err != nil {
		return 0, "", err
	}
	c.Text.StartResponse(id)
	defer c.Text.EndResponse(id)
	return c.Text.ReadResponse(want)
}

func TestPostfix(t *testing.T) {
	ca := testpki.NewCA(t, "mxtrace peers test CA")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"tls.mx.test"}})
	lo := func(b byte) netip.AddrPort { return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, b}), 0) }
	var pid int
	var addrs []netip.AddrPort
	t.Run("run", func(t *testing.T) {
		p := StartPostfix(t, PostfixConfig{
			Domains: []string{"dom.test", "other.dom.test"},
			Listeners: []PostfixListener{
				{Addr: lo(2), Name: "plain"},
				{Addr: lo(3), Name: "tls", Hostname: "tls.mx.test", TLS: &cert},
			},
			Reject: map[string]string{
				"grey@dom.test": "450 4.2.0 greylisted, try again later",
				"gone@dom.test": "550 5.1.1 no such user",
			},
		})
		pid = p.PID()
		for _, l := range p.Listeners {
			addrs = append(addrs, l.Addr)
		}
		plain, _ := p.Listener("plain")
		tlsL, _ := p.Listener("tls")

		// The banner names the listener.
		if b := readBanner(t, tlsL.Addr); b != "220 tls.mx.test ESMTP tls" {
			t.Errorf("banner of tls: %q", b)
		}

		out, err := swaks(t, plain.Addr, "b@example.org", "a@dom.test")
		m := queuedAs.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("swaks to plain: %v\n%s", err, out)
		}
		got, err := p.WaitReceived(ctxTimeout(t, sendTimeout), 1)
		if err != nil {
			t.Fatal(err)
		}
		want := PostfixDelivery{
			QueueID: m[1], Listener: "plain", Client: netip.MustParseAddr("127.0.0.1"),
			From: "b@example.org", To: []string{"a@dom.test"},
		}
		if diff := cmp.Diff(want, got[0], ignoreVolatile); diff != "" {
			t.Errorf("delivery through plain (-want +got):\n%s", diff)
		}
		if got[0].MessageID == "" || got[0].Size == 0 {
			t.Errorf("delivery through plain: no Message-ID or size: %+v", got[0])
		}

		// STARTTLS with a chain that verifies against the test CA.
		conf := &tls.Config{ServerName: "tls.mx.test", RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
		tlsID, err := sendTLS(t, tlsL.Addr, "tls.mx.test", conf, "c@example.org", "d@other.dom.test")
		if err != nil {
			t.Fatalf("STARTTLS to tls: %v", err)
		}
		got, err = p.WaitReceived(ctxTimeout(t, sendTimeout), 2)
		if err != nil {
			t.Fatal(err)
		}
		if d := got[1]; d.QueueID != tlsID || d.Listener != "tls" || !strings.HasPrefix(d.TLSVersion(), "TLSv1.") ||
			d.From != "c@example.org" || !cmp.Equal(d.To, []string{"d@other.dom.test"}) || d.MessageID != "tls@client.test" {
			t.Errorf("delivery through tls: %+v", d)
		}
		if !strings.Contains(p.Log(), "postfix/tls/smtpd[") || !strings.Contains(p.Log(), "TLS connection established from") {
			t.Errorf("the log does not show the TLS session on the tls listener")
		}

		// Refusals: the access table, and relaying.
		for _, tc := range []struct{ to, reply string }{
			{"grey@dom.test", "450 4.2.0"},
			{"gone@dom.test", "550 5.1.1"},
			{"x@elsewhere.test", "554 5.7.1"},
		} {
			out, err := swaks(t, plain.Addr, "b@example.org", tc.to)
			if err == nil || !strings.Contains(out, "<** "+tc.reply) {
				t.Errorf("swaks to %s: err %v, want a %s reply:\n%s", tc.to, err, tc.reply, out)
			}
		}
		if n := len(p.Received()); n != 2 {
			t.Errorf("after refusals: %d messages received, want 2", n)
		}

		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
	if pid == 0 {
		return // skipped
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("master pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if left := groupMembers(pid); len(left) > 0 {
		t.Errorf("daemons %v of master %d outlived Stop", left, pid)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", a)
		}
	}
}

// TestPostfixInstances runs two instances at once on one port of two
// addresses: each logs only its own message.
func TestPostfixInstances(t *testing.T) {
	a4, a5 := netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5")
	port, err := FreePortOn(a4, a5)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]*Postfix, 2)
	for i, a := range []netip.Addr{a4, a5} {
		ps[i] = StartPostfix(t, PostfixConfig{
			Hostname:  fmt.Sprintf("mx%d.test", i),
			Domains:   []string{"dom.test"},
			Listeners: []PostfixListener{{Addr: netip.AddrPortFrom(a, uint16(port)), Name: "mx"}},
		})
	}
	var ids []string
	for i, p := range ps {
		out, err := swaks(t, p.Listeners[0].Addr, "b@example.org", fmt.Sprintf("n%d@dom.test", i))
		m := queuedAs.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("swaks to instance %d: %v\n%s", i, err, out)
		}
		ids = append(ids, m[1])
	}
	for i, p := range ps {
		got, err := p.WaitReceived(ctxTimeout(t, sendTimeout), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].QueueID != ids[i] {
			t.Errorf("instance %d received %+v, want only %s", i, got, ids[i])
		}
		if strings.Contains(p.Log(), ids[1-i]) {
			t.Errorf("instance %d logs the other instance's message %s", i, ids[1-i])
		}
	}
}

func TestPostfixMissing(t *testing.T) {
	cfg := PostfixConfig{Listeners: []PostfixListener{{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Name: "mx"}}}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recTB{TB: t}
		if p := startPostfix(r, cfg, "mxtrace-no-such-postconf"); p != nil {
			t.Errorf("CI=%q: started a Postfix without postconf", ci)
		}
		if ci == "true" && (!r.failed || r.skipped) {
			t.Errorf("CI=true: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
		}
		if ci == "" && (r.failed || !r.skipped || !strings.Contains(r.msg, "apt-get install postfix")) {
			t.Errorf("CI unset: failed=%v skipped=%v msg=%q, want a skip naming the package", r.failed, r.skipped, r.msg)
		}
	}
}

func TestPostfixConfigValidate(t *testing.T) {
	ok := PostfixListener{Addr: netip.MustParseAddrPort("127.0.0.2:2525"), Name: "mx1"}
	tests := []struct {
		name string
		cfg  PostfixConfig
		ok   bool
	}{
		{"good", PostfixConfig{Hostname: "mx.test", Domains: []string{"dom.test"}, Listeners: []PostfixListener{ok},
			Reject: map[string]string{"a@dom.test": "450 4.2.0 later", "dom2.test": "REJECT"}}, true},
		{"no listener", PostfixConfig{}, false},
		{"not loopback", PostfixConfig{Listeners: []PostfixListener{{Addr: netip.MustParseAddrPort("192.0.2.1:25"), Name: "mx"}}}, false},
		{"bad name", PostfixConfig{Listeners: []PostfixListener{{Addr: ok.Addr, Name: "mx 1"}}}, false},
		{"duplicate name", PostfixConfig{Listeners: []PostfixListener{ok, ok}}, false},
		{"domain injects", PostfixConfig{Domains: []string{"dom.test\nrelayhost = x"}, Listeners: []PostfixListener{ok}}, false},
		{"hostname injects", PostfixConfig{Hostname: "mx.test, x", Listeners: []PostfixListener{ok}}, false},
		{"reject value injects", PostfixConfig{Listeners: []PostfixListener{ok}, Reject: map[string]string{"a@dom.test": "OK\nb OK"}}, false},
		{"reject key with space", PostfixConfig{Listeners: []PostfixListener{ok}, Reject: map[string]string{"a b": "REJECT"}}, false},
		{"sender outside a namespace", PostfixConfig{Listeners: []PostfixListener{ok}, Sender: true}, false},
		{"empty TLS", PostfixConfig{Listeners: []PostfixListener{{Addr: ok.Addr, Name: "mx", TLS: &tls.Certificate{}}}}, false},
	}
	for _, tc := range tests {
		err := tc.cfg.validate()
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrPostfixConfig) {
			t.Errorf("%s: validate = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// postfixLog is a log as Postfix 3.7 writes it: two sessions on two
// listeners, one with TLS, a message still being delivered, a bounce made
// locally (no smtpd), and a line still being written.
const postfixLog = `Nov 24 04:56:42 mx postfix/master[3591]: daemon started -- version 3.7.11, configuration /tmp/x/conf
Nov 24 04:56:47 mx postfix/mx1/smtpd[3682]: connect from unknown[127.0.0.1]
Nov 24 04:56:47 mx postfix/mx1/smtpd[3682]: 4jYVsC2M2hz1SHf6: client=unknown[127.0.0.1]
Nov 24 04:56:47 mx postfix/cleanup[3684]: 4jYVsC2M2hz1SHf6: message-id=<20261124045647.003681@vm>
Nov 24 04:56:47 mx postfix/qmgr[3593]: 4jYVsC2M2hz1SHf6: from=<b@example.org>, size=408, nrcpt=2 (queue active)
Nov 24 04:56:47 mx postfix/mx1/smtpd[3682]: disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6
Nov 24 04:56:47 mx postfix/mx2/smtpd[3690]: connect from unknown[127.0.0.9]
Nov 24 04:56:47 mx postfix/mx2/smtpd[3690]: Anonymous TLS connection established from unknown[127.0.0.9]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 24 04:56:47 mx postfix/discard[3685]: 4jYVsC2M2hz1SHf6: to=<a@dom.test>, relay=none, delay=0.03, delays=0.01/0.02/0/0, dsn=2.0.0, status=sent (dom.test)
Nov 24 04:56:47 mx postfix/discard[3685]: 4jYVsC2M2hz1SHf6: to=<c@dom.test>, orig_to=<C@dom.test>, relay=none, delay=0.03, delays=0.01/0.02/0/0, dsn=2.0.0, status=sent (dom.test)
Nov 24 04:56:47 mx postfix/mx2/smtpd[3690]: 4jYVsD0aaaaz1SHf7: client=unknown[127.0.0.9]
Nov 24 04:56:47 mx postfix/cleanup[3684]: 4jYVsD0aaaaz1SHf7: message-id=<m2@x>
Nov 24 04:56:47 mx postfix/qmgr[3593]: 4jYVsC2M2hz1SHf6: removed
Nov 24 04:56:47 mx postfix/qmgr[3593]: 4jYVsD0aaaaz1SHf7: from=<>, size=99, nrcpt=1 (queue active)
Nov 24 04:56:48 mx postfix/mx2/smtpd[3690]: connect from unknown[127.0.0.9]
Nov 24 04:56:48 mx postfix/mx2/smtpd[3690]: 4jYVsE1bbbbz1SHf8: client=unknown[127.0.0.9]
Nov 24 04:56:48 mx postfix/qmgr[3593]: 4jYVsE1bbbbz1SHf8: from=<x@y>, size=10, nrcpt=1 (queue active)
Nov 24 04:56:48 mx postfix/discard[3685]: 4jYVsE1bbbbz1SHf8: to=<z@dom.test>, relay=none, delay=0.03, dsn=2.0.0, status=sent (dom.test)
Nov 24 04:56:48 mx postfix/bounce[3700]: 4jYVsF2ccccz1SHf9: sender non-delivery notification: 4jYVsG
Nov 24 04:56:48 mx postfix/qmgr[3593]: 4jYVsF2ccccz1SHf9: removed
Nov 24 04:56:48 mx postfix/qmgr[3593]: 4jYVsE1bbbbz1SHf8: removed
Nov 24 04:56:48 mx postfix/qmgr[3593]: 4jYVsD0aaaaz1SHf7: rem`

func TestParsePostfixLog(t *testing.T) {
	got := parsePostfixLog(postfixLog)
	want := []PostfixDelivery{
		{
			QueueID: "4jYVsC2M2hz1SHf6", Listener: "mx1", Client: netip.MustParseAddr("127.0.0.1"),
			MessageID: "20261124045647.003681@vm", From: "b@example.org", Size: 408, To: []string{"a@dom.test", "c@dom.test"},
		},
		// A new session on the same smtpd process forgets the TLS of
		// the one before.
		{QueueID: "4jYVsE1bbbbz1SHf8", Listener: "mx2", Client: netip.MustParseAddr("127.0.0.9"), From: "x@y", Size: 10, To: []string{"z@dom.test"}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("parsePostfixLog (-want +got):\n%s", diff)
	}
	// The TLS session belongs to the message of its own session.
	withTLS := parsePostfixLog(strings.Replace(postfixLog, "4jYVsD0aaaaz1SHf7: rem", "4jYVsD0aaaaz1SHf7: removed\n", 1))
	if len(withTLS) != 3 || withTLS[1].QueueID != "4jYVsD0aaaaz1SHf7" || withTLS[1].TLSVersion() != "TLSv1.3" || withTLS[2].TLS != "" {
		t.Errorf("TLS attribution: %+v", withTLS)
	}
	if got := parsePostfixLog(""); len(got) != 0 {
		t.Errorf("empty log: %+v", got)
	}
}

func TestFreePortOn(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.6"), netip.MustParseAddr("127.0.0.7")}
	port, err := FreePortOn(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err != nil {
			t.Errorf("port %d on %s: %v", port, a, err)
			continue
		}
		l.Close()
	}
}

// ignoreVolatile leaves out what the test cannot know in advance.
var ignoreVolatile = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "MessageID" || s == "Size"
	}, cmp.Ignore()),
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// readBanner returns the first line a server sends.
func readBanner(t *testing.T, addr netip.AddrPort) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("banner of %s: %v", addr, err)
	}
	return strings.TrimRight(line, "\r\n")
}

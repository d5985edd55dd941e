package watch

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/internal/testpki"
)

// sink is an in-process submission server (go-smtp): STARTTLS with a
// testpki certificate when tls is set, AUTH PLAIN for user/pass, and the
// messages it accepted.
type sink struct {
	addr string
	tls  bool

	mu        sync.Mutex
	msgs      []sinkMsg
	authed    []string
	authInTLS []bool
}

type sinkMsg struct {
	from, to string
	data     []byte
	tls      bool
	user     string
}

type sinkSession struct {
	s    *sink
	conn *smtp.Conn
	user string
	from string
	to   string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		_, inTLS := ss.conn.TLSConnectionState()
		ss.s.mu.Lock()
		ss.s.authed = append(ss.s.authed, user)
		ss.s.authInTLS = append(ss.s.authInTLS, inTLS)
		ss.s.mu.Unlock()
		if user != "alerts" || pass != "hunter2" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" && ss.s.tls {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "full@") {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	}
	if strings.HasPrefix(to, "nobody@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.to = to
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, inTLS := ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, sinkMsg{from: ss.from, to: ss.to, data: b, tls: inTLS, user: ss.user})
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// startSink runs a sink on 127.0.0.1 until the test ends; with a CA it
// offers STARTTLS with a certificate for mail.test issued by it.
func startSink(t *testing.T, ca *testpki.CA) *sink {
	t.Helper()
	s := &sink{tls: ca != nil}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, conn: c}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if ca != nil {
		cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mail.test"}})
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) //nolint:errcheck // ends with Close
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

func testNotice() *Notice {
	return &Notice{
		Schema: NoticeSchema, ID: 17, Kind: AlertChange, Domain: "example.org", Status: "problems",
		At: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC),
		Changes: []NoticeChange{{
			Kind: "finding-new", Subject: "mx1.example.org", Severity: "error",
			Message: "STARTTLS lost on mx1.example.org — très grave\r\nBcc: evil@example.net",
			Old:     "offered", New: "not offered", Fix: "Turn STARTTLS back on.",
		}},
		Link: "https://mxtrace.example.org/d/example.org",
	}
}

func TestMailerSend(t *testing.T) {
	ca := testpki.NewCA(t, "mail test CA")
	s := startSink(t, ca)
	m := &Mailer{
		Server: s.addr, ServerName: "mail.test", RootCAs: ca.Pool,
		From: "mxtrace@alerts.example.org", Username: "alerts", Password: "hunter2",
		Hostname: "watcher.example.org",
	}
	tg, _ := ParseTarget("mailto:postmaster@example.org")
	now := time.Date(2026, 12, 7, 1, 3, 0, 0, time.UTC)
	if err := m.Send(t.Context(), tg, testNotice(), now); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.from != m.From || got.to != "postmaster@example.org" || !got.tls || got.user != "alerts" {
		t.Errorf("envelope %s → %s, TLS %v, user %q", got.from, got.to, got.tls, got.user)
	}
	s.mu.Lock()
	if len(s.authInTLS) != 1 || !s.authInTLS[0] {
		t.Errorf("AUTH sent %d times, inside TLS %v", len(s.authInTLS), s.authInTLS)
	}
	s.mu.Unlock()

	msg, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, got.data)
	}
	h := msg.Header
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != m.From {
		t.Errorf("From %q: %v", h.Get("From"), err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "postmaster@example.org" {
		t.Errorf("To %q: %v", h.Get("To"), err)
	}
	if id := h.Get("Message-ID"); id != "<mxtrace-alert-17.1796605323@alerts.example.org>" {
		t.Errorf("Message-ID %q", id)
	}
	if h.Get(HeaderAlertID) != "17" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("alert ID %q, Auto-Submitted %q", h.Get(HeaderAlertID), h.Get("Auto-Submitted"))
	}
	if h.Get("Bcc") != "" {
		t.Errorf("remote text made a header: Bcc %q", h.Get("Bcc"))
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || !strings.Contains(subject, "example.org") || !strings.Contains(subject, "STARTTLS lost") || !strings.Contains(subject, "très") {
		t.Errorf("Subject %q (%v) does not name the domain and the change", subject, err)
	}
	if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STARTTLS lost on mx1.example.org — très grave", "fix: Turn STARTTLS back on.", "was: offered", "https://mxtrace.example.org/d/example.org", "Alert 17"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if bytes.Contains(body, []byte("\r\nBcc")) {
		t.Errorf("body carries the remote CR LF as is:\n%q", body)
	}
}

func TestMailerFailures(t *testing.T) {
	ca := testpki.NewCA(t, "mail test CA")
	tlsSink := startSink(t, ca)
	plainSink := startSink(t, nil)
	tg := func(s string) Target {
		t.Helper()
		x, err := ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	good := Mailer{Server: tlsSink.addr, ServerName: "mail.test", RootCAs: ca.Pool, From: "a@b.example", Username: "alerts", Password: "hunter2"}
	cases := []struct {
		name      string
		m         func(m *Mailer)
		to        string
		permanent bool
		is        error
	}{
		{"bad password", func(m *Mailer) { m.Password = "wrong" }, "ops@example.org", true, nil},
		{"untrusted certificate", func(m *Mailer) { m.RootCAs = nil }, "ops@example.org", false, nil},
		{"no STARTTLS offered", func(m *Mailer) { m.Server = plainSink.addr }, "ops@example.org", true, ErrNoTLS},
		{"plaintext with a password", func(m *Mailer) { m.Server = plainSink.addr; m.Plaintext = true }, "ops@example.org", true, nil},
		{"mailbox full (4xx)", nil, "full@example.org", false, nil},
		{"no such user (5xx)", nil, "nobody@example.org", true, nil},
		{"no server", func(m *Mailer) { m.Server = "" }, "ops@example.org", true, nil},
	}
	for _, c := range cases {
		m := good
		if c.m != nil {
			c.m(&m)
		}
		err := m.Send(t.Context(), tg("mailto:"+c.to), testNotice(), time.Now())
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Permanent != c.permanent || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: %v (%T), want permanent %v", c.name, err, err, c.permanent)
		}
	}

	// A sink on loopback without TLS, explicitly allowed: delivered, no
	// AUTH.
	m := Mailer{Server: plainSink.addr, From: "a@b.example", Plaintext: true}
	if err := m.Send(t.Context(), tg("mailto:ops@example.org"), testNotice(), time.Now()); err != nil {
		t.Fatalf("plaintext sink: %v", err)
	}
	if msgs := plainSink.messages(); len(msgs) != 1 || msgs[0].tls {
		t.Errorf("plaintext sink got %d messages", len(msgs))
	}
}

func TestLoadSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MXTRACE_TEST_SECRET", "from-env")
	for _, c := range []struct{ env, file, want string }{
		{"MXTRACE_TEST_SECRET", file, "from-file"},
		{"MXTRACE_TEST_SECRET", "", "from-env"},
		{"", "", ""},
	} {
		if got, err := LoadSecret(c.env, c.file); err != nil || got != c.want {
			t.Errorf("LoadSecret(%q, %q) = %q, %v; want %q", c.env, c.file, got, err, c.want)
		}
	}
	if _, err := LoadSecret("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadSecret of a missing file: no error")
	}
}

package watch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/printable"
)

// DefaultMailTimeout bounds one submission, connection to the reply to
// the final dot, when Mailer.Timeout is zero.
const DefaultMailTimeout = 2 * time.Minute

// Mailer sends alerts as e-mail through a submission server (RFC 6409):
// STARTTLS (RFC 3207) before anything else, AUTH PLAIN (RFC 4954, RFC
// 4616) when a user name is configured, one message per alert and
// recipient.
type Mailer struct {
	// Server is the submission server, host:port (port 587 is submission,
	// RFC 6409 §3.1).
	Server string
	// From is the envelope sender and the From address.
	From string
	// Username and Password authenticate with AUTH PLAIN; empty Username:
	// no AUTH. LoadSecret reads the password from a file or the
	// environment, never from the command line.
	Username, Password string
	// Hostname is the name given in EHLO after STARTTLS; "" is
	// "localhost". (The EHLO before STARTTLS, sent by go-smtp, is always
	// "localhost": it names nothing the server may trust anyway.)
	Hostname string
	// RootCAs verifies the server's certificate; nil: the system's roots.
	// ServerName is the name it must carry; "" is Server's host.
	RootCAs    *x509.CertPool
	ServerName string
	// Plaintext turns STARTTLS off, and is refused unless the server is
	// on loopback and no Username is set: it exists for a test sink. A
	// real submission server must offer STARTTLS; without it the password
	// and the alerts would cross the network in clear.
	Plaintext bool
	// Dialer connects; nil is a dial.Net with the timeout below.
	Dialer dial.Dialer
	// Timeout bounds one submission; zero: DefaultMailTimeout.
	Timeout time.Duration
}

// ErrNoTLS is the error of a submission server that offers no STARTTLS.
var ErrNoTLS = errors.New("watch: the submission server offers no STARTTLS")

// LoadSecret reads a secret (SMTP password, webhook secret) from file, or
// when file is "" from the environment variable env, so it never shows in
// a process list. One trailing newline in the file is dropped.
func LoadSecret(env, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("watch: reading secret: %w", err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
	if env == "" {
		return "", nil
	}
	return os.Getenv(env), nil
}

func (m *Mailer) timeout() time.Duration { return positiveOr(m.Timeout, DefaultMailTimeout) }

// Send submits the notice to the target's address. A 5xx reply is a
// permanent *Error, a 4xx reply or a network failure a temporary one
// (RFC 5321 §4.2.1).
func (m *Mailer) Send(ctx context.Context, t Target, n *Notice, now time.Time) (err error) {
	if m.Server == "" || m.From == "" {
		return permanent(errors.New("watch: e-mail alerts need a submission server and a From address"))
	}
	if m.Plaintext && m.Username != "" {
		return permanent(errors.New("watch: no AUTH without TLS: the password would be sent in clear"))
	}
	msg := m.Message(t.Addr, n, now)
	ctx, cancel := context.WithTimeout(ctx, m.timeout())
	defer cancel()
	d := m.Dialer
	if d == nil {
		d = &dial.Net{Timeout: m.timeout()}
	}
	conn, err := d.DialContext(ctx, "tcp", m.Server)
	if err != nil {
		err = fmt.Errorf("watch: mail to %s: %w", t.Addr, err)
		if errors.Is(err, dial.ErrForbidden) {
			return permanent(err)
		}
		return &Error{Err: err}
	}
	// go-smtp sets and clears its own per-command deadlines, so the whole
	// submission is bounded by closing the connection when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if err := m.submit(conn, t.Addr, msg); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return smtpError(t, err)
	}
	return nil
}

func (m *Mailer) submit(conn net.Conn, to string, msg []byte) error {
	host, _, err := net.SplitHostPort(m.Server)
	if err != nil {
		return permanent(fmt.Errorf("watch: mail server %q: %w", m.Server, err))
	}
	cfg := &tls.Config{RootCAs: m.RootCAs, ServerName: m.ServerName, MinVersion: tls.VersionTLS12}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	var c *smtp.Client
	if m.Plaintext {
		if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
			return permanent(fmt.Errorf("watch: mail server %s: a session without TLS is only for a sink on loopback", m.Server))
		}
		c = smtp.NewClient(conn)
		if err := c.Hello(m.hostname()); err != nil {
			return err
		}
	} else {
		// RFC 3207 §4: STARTTLS first; a server that does not offer it
		// is refused (ErrNoTLS) rather than sent the password in clear.
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			// go-smtp says so with an unexported errors.New, its text
			// the only way to tell it from a failed handshake.
			if strings.Contains(err.Error(), "doesn't support STARTTLS") {
				return permanent(fmt.Errorf("%w (%s)", ErrNoTLS, m.Server))
			}
			return err
		}
		// RFC 3207 §4.2: the client discards what it knew and says EHLO
		// again, inside TLS.
		if err := c.Hello(m.hostname()); err != nil {
			return err
		}
	}
	c.CommandTimeout = m.timeout()
	c.SubmissionTimeout = m.timeout()
	defer c.Close()
	if m.Username != "" {
		// RFC 4616 §4 / RFC 4954 §4: PLAIN sends the password as is; it
		// goes only inside the TLS session established above.
		if err := c.Auth(sasl.NewPlainClient("", m.Username, m.Password)); err != nil {
			return fmt.Errorf("AUTH PLAIN as %s: %w", m.Username, err)
		}
	}
	if err := c.SendMail(m.From, []string{to}, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func (m *Mailer) hostname() string {
	if m.Hostname != "" {
		return m.Hostname
	}
	return "localhost"
}

// smtpError keeps the reply's class: 5xx is permanent (RFC 5321 §4.2.1),
// everything else may be retried.
func smtpError(t Target, err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	err = fmt.Errorf("watch: mail to %s: %w", t.Addr, err)
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok && se.Code >= 500 && se.Code < 600 {
		return permanent(err)
	}
	return &Error{Err: err}
}

// Message formats the notice as an RFC 5322 message: From, To, Date,
// Message-ID, Subject naming the domain and the change, and a text/plain
// UTF-8 body (quoted-printable, RFC 2045 §6.7, so any server takes it)
// listing every change with its fix. The Message-ID is the alert's, so a
// resend after a crash is recognisable as the same message. Remote text
// (records, server replies) is escaped: no control character reaches a
// header or a terminal.
func (m *Mailer) Message(to string, n *Notice, now time.Time) []byte {
	var b bytes.Buffer
	hdr := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	hdr("From", "mxtrace <"+m.From+">")
	hdr("To", "<"+to+">")
	// RFC 5322 §3.3 date-time.
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<mxtrace-alert-"+strconv.FormatInt(n.ID, 10)+"."+strconv.FormatInt(n.At.Unix(), 10)+"@"+domainOf(m.From)+">")
	// RFC 2047 §5: a non-ASCII subject as encoded words; the escaping
	// keeps CR and LF, which would start a new header, out of it.
	hdr("Subject", mime.QEncoding.Encode("utf-8", "[mxtrace] "+printable.String(printable.Cut(n.Summary(), 400))))
	// RFC 3834 §5: an automatic message, so auto-responders stay quiet.
	hdr("Auto-Submitted", "auto-generated")
	hdr(HeaderAlertID, strconv.FormatInt(n.ID, 10))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(Text(n), "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}

// Text is the notice as plain text: a heading line, then each change with
// its old and new values and its fix, then the link.
func Text(n *Notice) string {
	var b strings.Builder
	esc := func(s string) string { return printable.String(s) }
	switch n.Kind {
	case AlertRecovery:
		fmt.Fprintf(&b, "%s has recovered: the check at %s is %s (failing since %s).\n", n.Domain, n.At.UTC().Format(time.RFC3339), esc(n.Status), n.Since.UTC().Format(time.RFC3339))
	case AlertReminder:
		fmt.Fprintf(&b, "%s is still failing (since %s); the check at %s is %s.\n", n.Domain, n.Since.UTC().Format(time.RFC3339), n.At.UTC().Format(time.RFC3339), esc(n.Status))
	case AlertConfirmedFailure:
		fmt.Fprintf(&b, "%s could not be checked twice in a row (since %s).\n", n.Domain, n.Since.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(&b, "%s changed; the check at %s is %s.\n", n.Domain, n.At.UTC().Format(time.RFC3339), esc(n.Status))
	}
	for _, c := range n.Changes {
		fmt.Fprintf(&b, "\n- [%s] %s: %s\n", esc(c.Severity), esc(c.Subject), esc(c.Message))
		if c.Old != "" || c.New != "" {
			fmt.Fprintf(&b, "  was: %s\n  now: %s\n", esc(c.Old), esc(c.New))
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", esc(c.Fix))
		}
	}
	if n.Link != "" {
		fmt.Fprintf(&b, "\n%s\n", esc(n.Link))
	}
	fmt.Fprintf(&b, "\nAlert %d, kind %s.\n", n.ID, n.Kind)
	return b.String()
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "mxtrace.invalid"
}

// Package dsn builds delivery status notifications (RFC 3464): the message
// a mail relay returns to a message's envelope sender when it cannot
// deliver it (Action failed) or is still trying after a while (Action
// delayed). The notification is a multipart/report (RFC 6522) of three
// parts: a text a person reads, the machine-readable
// message/delivery-status, and the header of the original message as
// text/rfc822-headers. It comes from MAILER-DAEMON at the reporting host
// and says Auto-Submitted: auto-replied (RFC 3834 §5), so that responders
// do not answer it; it must be sent with the null reverse path (RFC 5321
// §4.5.5), which is the sender's job, not this package's.
package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Action is what happened to a recipient (RFC 3464 §2.3.3). A relay
// reports two of the five: the others (delivered, relayed, expanded) are
// for senders who asked with NOTIFY (RFC 3461).
type Action string

// Actions.
const (
	// ActionFailed: the message could not be delivered and will not be
	// tried again.
	ActionFailed Action = "failed"
	// ActionDelayed: not delivered yet; the relay keeps trying until
	// WillRetryUntil.
	ActionDelayed Action = "delayed"
)

// Recipient is one per-recipient block of the report (RFC 3464 §2.3).
type Recipient struct {
	// FinalRecipient is the address the relay tried to deliver to.
	FinalRecipient string
	Action         Action
	// Status is the RFC 3463 code, e.g. "5.1.1"; its class must agree
	// with Action: 4 or 5 for failed (4 when a temporary condition
	// lasted past the message's lifetime, as 4.4.7), 4 for delayed.
	Status string
	// RemoteMTA is the exchange that gave Diagnostic, if any (a host
	// name, written "dns; host").
	RemoteMTA string
	// Diagnostic is the exchange's SMTP reply, "550 5.1.1 no such user"
	// (written "smtp; ..."); empty when none was received.
	Diagnostic string
	// Reason says in words why, when there is no reply to quote ("no
	// exchange answered", "the message expired"); it goes in the text
	// part only.
	Reason string
	// LastAttempt is when the relay last tried; zero: not written.
	LastAttempt time.Time
	// WillRetryUntil is when the relay gives up, for delayed; zero: not
	// written (RFC 3464 §2.3.8 allows it only with delayed).
	WillRetryUntil time.Time
}

// Report is the notification to build.
type Report struct {
	// ReportingMTA is the relay's host name: the From (MAILER-DAEMON@),
	// the Reporting-MTA field ("dns; host") and the text.
	ReportingMTA string
	// Sender is the original envelope sender, the notification's To. It
	// must not be empty: nothing is ever sent to the null sender (RFC
	// 5321 §4.5.5).
	Sender string
	// Arrival is when the relay accepted the original; zero: not written.
	Arrival time.Time
	// Date is the notification's Date.
	Date time.Time
	// MessageID is the notification's Message-ID without angle
	// brackets; empty: a random one at ReportingMTA.
	MessageID string
	// Boundary separates the parts; empty: a random one.
	Boundary string
	// Recipients are the recipients reported, at least one.
	Recipients []Recipient
	// Original is the original message; only its header is returned (up
	// to MaxOriginalHeader octets).
	Original []byte
}

// MaxOriginalHeader bounds the original header returned: a header longer
// than this is cut at a line end.
const MaxOriginalHeader = 64 << 10

// maxField bounds a field value written from input (a reply text, an
// address), so that every line stays under the 998 octets of RFC 5322
// §2.1.1 with its field name or a host name before it.
const maxField = 700

// ErrReport is wrapped by every error of Build: a report that cannot be
// written as given.
var ErrReport = errors.New("dsn: invalid report")

// RFC 3463 §3.1: class.subject.detail.
var statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// Build writes r as a multipart/report (RFC 6522) with report-type
// delivery-status (RFC 3464), lines ending in CRLF.
func Build(r Report) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	boundary := r.Boundary
	if boundary == "" {
		boundary = "dsn-" + random(12)
	}
	msgID := r.MessageID
	if msgID == "" {
		msgID = random(12) + "@" + r.ReportingMTA
	}
	var b bytes.Buffer
	field := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }

	failed := false
	for _, rc := range r.Recipients {
		failed = failed || rc.Action == ActionFailed
	}
	subject := "Delayed Mail (still being retried)"
	if failed {
		subject = "Undelivered Mail Returned to Sender"
	}
	field("From", "Mail Delivery System <MAILER-DAEMON@"+r.ReportingMTA+">")
	field("To", "<"+r.Sender+">")
	field("Subject", subject)
	field("Date", r.Date.Format(time.RFC1123Z))
	field("Message-ID", "<"+msgID+">")
	// RFC 3834 §5: a response generated automatically, so responders
	// leave it alone.
	field("Auto-Submitted", "auto-replied")
	field("MIME-Version", "1.0")
	// RFC 6522 §3: multipart/report with its report-type.
	field("Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	b.WriteString("\r\nThis is a MIME-encapsulated message (RFC 6522): a delivery status notification.\r\n")

	// Part 1: for a person (RFC 6522 §4: the first part is human-readable).
	b.WriteString("\r\n--" + boundary + "\r\n")
	field("Content-Type", "text/plain; charset="+charset(r))
	field("Content-Description", "Notification")
	b.WriteString("\r\n")
	b.WriteString(r.text(failed))

	// Part 2: RFC 3464 §2.2 per-message fields, then a block per recipient.
	b.WriteString("\r\n--" + boundary + "\r\n")
	field("Content-Type", "message/delivery-status")
	field("Content-Description", "Delivery report")
	b.WriteString("\r\n")
	field("Reporting-MTA", "dns; "+r.ReportingMTA)
	if !r.Arrival.IsZero() {
		field("Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		field("Final-Recipient", addressType(rc.FinalRecipient)+"; "+rc.FinalRecipient)
		field("Action", string(rc.Action))
		field("Status", rc.Status)
		if rc.RemoteMTA != "" {
			field("Remote-MTA", "dns; "+rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			// RFC 3464 §2.3.6: the reply as received, diagnostic-type smtp.
			field("Diagnostic-Code", "smtp; "+clean(rc.Diagnostic))
		}
		if !rc.LastAttempt.IsZero() {
			field("Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == ActionDelayed && !rc.WillRetryUntil.IsZero() {
			field("Will-Retry-Until", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}

	// Part 3: RFC 6522 §3 allows the returned content to be its header
	// only (text/rfc822-headers, RFC 6522 §5): no body goes back.
	b.WriteString("\r\n--" + boundary + "\r\n")
	field("Content-Type", "text/rfc822-headers")
	field("Content-Description", "Undelivered Message Headers")
	b.WriteString("\r\n")
	b.Write(originalHeader(r.Original))
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// check refuses a report that would make a malformed or misleading
// notification, and any field that would break out of its header line.
func (r Report) check() error {
	if r.Sender == "" {
		return fmt.Errorf("%w: no sender: nothing is returned to the null sender (RFC 5321 §4.5.5)", ErrReport)
	}
	if len(r.Recipients) == 0 {
		return fmt.Errorf("%w: no recipient", ErrReport)
	}
	if !hostRE.MatchString(r.ReportingMTA) {
		return fmt.Errorf("%w: reporting MTA %q is not a host name", ErrReport, r.ReportingMTA)
	}
	if !safe(r.Sender) || !safe(r.MessageID) || !safe(r.Boundary) || strings.Contains(r.Boundary, `"`) || len(r.Boundary) > 70 {
		return fmt.Errorf("%w: a control character, or a boundary that RFC 2046 §5.1.1 forbids", ErrReport)
	}
	for _, rc := range r.Recipients {
		switch {
		case rc.FinalRecipient == "" || !safe(rc.FinalRecipient):
			return fmt.Errorf("%w: recipient %q", ErrReport, rc.FinalRecipient)
		case rc.Action != ActionFailed && rc.Action != ActionDelayed:
			return fmt.Errorf("%w: action %q for %s", ErrReport, rc.Action, rc.FinalRecipient)
		case !statusRE.MatchString(rc.Status) || rc.Status[0] == '2' || rc.Action == ActionDelayed && rc.Status[0] != '4':
			// RFC 3464 §2.3.4: the status must agree with the action.
			return fmt.Errorf("%w: status %q does not go with action %s for %s", ErrReport, rc.Status, rc.Action, rc.FinalRecipient)
		case rc.RemoteMTA != "" && !hostRE.MatchString(rc.RemoteMTA):
			return fmt.Errorf("%w: remote MTA %q is not a host name", ErrReport, rc.RemoteMTA)
		}
	}
	return nil
}

// hostRE is a host name as written after "dns;" (letters, digits,
// hyphens, dots, underscores of service names).
var hostRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$`)

// text is the human-readable part.
func (r Report) text(failed bool) string {
	var b strings.Builder
	b.WriteString("This is the mail system at host " + r.ReportingMTA + ".\r\n\r\n")
	if failed {
		b.WriteString("Your message could not be delivered to one or more recipients.\r\n" +
			"It is attached below (its header only).\r\n\r\n")
	} else {
		b.WriteString("Your message has not been delivered yet to one or more recipients.\r\n" +
			"This is a warning only: no action is needed, the mail system keeps trying.\r\n\r\n")
	}
	for _, rc := range r.Recipients {
		line := "<" + rc.FinalRecipient + ">: "
		switch {
		case rc.Action == ActionDelayed && !rc.WillRetryUntil.IsZero():
			line += "delayed; retried until " + rc.WillRetryUntil.UTC().Format(time.RFC1123)
		case rc.Action == ActionDelayed:
			line += "delayed"
		default:
			line += "failed"
		}
		b.WriteString(line + "\r\n")
		switch {
		case rc.RemoteMTA != "" && rc.Diagnostic != "":
			b.WriteString("    " + rc.RemoteMTA + " said: " + clean(rc.Diagnostic) + "\r\n")
		case rc.Diagnostic != "":
			b.WriteString("    " + clean(rc.Diagnostic) + "\r\n")
		}
		if rc.Reason != "" {
			b.WriteString("    " + clean(rc.Reason) + "\r\n")
		}
	}
	return b.String()
}

// charset is the text part's: us-ascii unless an address is not.
func charset(r Report) string {
	for _, rc := range r.Recipients {
		if !ascii(rc.FinalRecipient) || !ascii(rc.Diagnostic) {
			return "utf-8"
		}
	}
	return "us-ascii"
}

// addressType is the address-type of Final-Recipient: rfc822 (RFC 3464
// §2.3.2), or utf-8 for an internationalised address (RFC 6533 §3).
func addressType(addr string) string {
	if ascii(addr) {
		return "rfc822"
	}
	return "utf-8"
}

// originalHeader is the header of msg with CRLF line ends, up to its
// blank line or MaxOriginalHeader octets, cut at a line end.
func originalHeader(msg []byte) []byte {
	var out bytes.Buffer
	for len(msg) > 0 {
		line, rest, found := bytes.Cut(msg, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || out.Len()+len(line)+2 > MaxOriginalHeader {
			break
		}
		out.Write(line)
		out.WriteString("\r\n")
		if !found {
			break
		}
		msg = rest
	}
	return out.Bytes()
}

// clean makes a reply text one bounded header line: control characters
// become spaces.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxField {
		s = strings.ToValidUTF8(s[:maxField], "") + "..."
	}
	return s
}

// safe reports a value with no control character (which could end a
// header line).
func safe(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return len(s) <= maxField
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

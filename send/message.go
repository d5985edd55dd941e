package send

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a message built by Message.Bytes.
const (
	// MaxLineLength is the longest line of a message, without its CRLF
	// (RFC 5322 §2.1.1: "MUST be no more than 998 characters").
	MaxLineLength = 998
	// foldAt is where header lines are folded when they can be (RFC 5322
	// §2.1.1: "SHOULD be no more than 78 characters").
	foldAt = 78
	// MaxBodySize bounds the body of a test message.
	MaxBodySize = 10 << 20
	// MaxHeaders bounds the extra header fields of a message.
	MaxHeaders = 100
	// maxWord is the longest unencoded word kept in an unstructured header;
	// a longer one is encoded so that it can be folded below 998 octets.
	maxWord = 900
)

// ErrMessage is wrapped by every error of Message.Bytes.
var ErrMessage = errors.New("send: invalid message")

// Header is one extra header field of a Message.
type Header struct {
	Name  string
	Value string
}

// Message is a test message. Bytes turns it into an RFC 5322 message with
// the MIME headers of RFC 2045; From and To are also the envelope of the
// SMTP transaction (MAIL FROM and RCPT TO).
type Message struct {
	From    string // addr-spec, e.g. "mxtrace@host.example"
	To      string // addr-spec of the one recipient
	Subject string // any text; RFC 2047-encoded when it is not plain ASCII
	// Body is the text of the message, any line endings; empty means
	// DefaultBody for the recipient's domain.
	Body string
	// Date is the Date field; zero means the time Bytes is called.
	Date time.Time
	// MessageID is the Message-ID field, with or without its angle
	// brackets; empty means a random one at the domain of From.
	MessageID string
	// Headers are added after the standard fields, in order. They may not
	// repeat a field Bytes writes itself.
	Headers []Header
}

// DefaultSubject is the subject of a test message when none is given.
const DefaultSubject = "mxtrace test message"

// DefaultBody is the body of a test message to domain when none is given.
func DefaultBody(domain string) string {
	return "This is a test message sent by mxtrace to check that mail for " + domain + "\n" +
		"reaches its exchanges. It went along the domain's MX route, as a mail\n" +
		"server sends it (RFC 5321 section 5.1). No reply is needed.\n"
}

// generated are the fields Bytes writes; Headers may not repeat them.
var generated = []string{"date", "message-id", "from", "to", "subject", "mime-version", "content-type", "content-transfer-encoding"}

// NewMessageID returns a random message identifier at domain, without angle
// brackets (RFC 5322 §3.6.4: unique, with a domain on the right).
func NewMessageID(domain string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	if domain == "" {
		domain = "mxtrace.invalid"
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}

// Bytes builds the message: Date, Message-ID, From, To, Subject,
// MIME-Version, Content-Type text/plain; charset=utf-8 and a
// Content-Transfer-Encoding of 7bit when the body is ASCII with short lines,
// quoted-printable otherwise (RFC 2045 §6). Lines end in CRLF and are at
// most MaxLineLength octets; header fields are folded at 78 where possible.
// It does not change m.
func (m *Message) Bytes() ([]byte, error) {
	from, err := formatAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := formatAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">")
	if id == "" {
		id = NewMessageID(domainOf(m.From))
	}
	if err := checkMessageID(id); err != nil {
		return nil, err
	}
	if len(m.Headers) > MaxHeaders {
		return nil, fmt.Errorf("%w: %d extra header fields, more than %d", ErrMessage, len(m.Headers), MaxHeaders)
	}
	body := m.Body
	if body == "" {
		body = DefaultBody(domainOf(m.To))
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: the body has %d octets, more than %d", ErrMessage, len(body), MaxBodySize)
	}
	if !utf8.ValidString(body) {
		return nil, fmt.Errorf("%w: the body is not UTF-8 text", ErrMessage)
	}

	var b bytes.Buffer
	// RFC 5322 §3.6: Date and From are required; Message-ID SHOULD be
	// present (§3.6.4). RFC 5322 §3.3: the date-time form.
	writeField(&b, "Date", date.Format(time.RFC1123Z))
	writeField(&b, "Message-ID", "<"+id+">")
	writeField(&b, "From", from)
	writeField(&b, "To", to)
	writeField(&b, "Subject", unstructured(m.Subject))
	for _, h := range m.Headers {
		if err := checkFieldName(h.Name); err != nil {
			return nil, err
		}
		writeField(&b, h.Name, unstructured(h.Value))
	}
	// RFC 2045 §4, §5.1, §6.1.
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", "text/plain; charset=utf-8")
	lines := strings.Split(normalizeNewlines(body), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if is7bit(lines) {
		writeField(&b, "Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n")
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		return b.Bytes(), nil
	}
	// RFC 2045 §6.7: quoted-printable keeps lines under 76 characters
	// with soft line breaks and encodes every octet outside ASCII.
	writeField(&b, "Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	for _, l := range lines {
		// The writer turns "\n" into CRLF and encodes trailing white space.
		_, _ = qp.Write([]byte(l + "\n")) // writes to a bytes.Buffer never fail
	}
	_ = qp.Close()
	return b.Bytes(), nil
}

// formatAddress checks an addr-spec and formats it for a header field.
func formatAddress(field, addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("%w: no %s address", ErrMessage, field)
	}
	if strings.ContainsAny(addr, "\r\n<> \t") {
		return "", fmt.Errorf("%w: %s address %q: white space, line break or angle bracket", ErrMessage, field, addr)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" {
		return "", fmt.Errorf("%w: %s address %q is not an addr-spec (RFC 5322 §3.4.1)", ErrMessage, field, addr)
	}
	return a.String(), nil
}

// checkMessageID checks the msg-id form of RFC 5322 §3.6.4, dot-atom-text
// "@" dot-atom-text, loosely: printable ASCII, one "@", no brackets.
func checkMessageID(id string) error {
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") || len(id) > 250 {
		return fmt.Errorf("%w: Message-ID %q is not of the form left@right", ErrMessage, id)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == ',' || c == ';' || c == ':' || c == '\\' || c == '[' || c == ']' {
			return fmt.Errorf("%w: Message-ID %q has a character RFC 5322 §3.6.4 does not allow", ErrMessage, id)
		}
	}
	return nil
}

// checkFieldName checks an extra field: RFC 5322 §2.2 field names are
// printable ASCII without colon; the fields Bytes writes itself may not be
// repeated (RFC 5322 §3.6 allows them once).
func checkFieldName(name string) error {
	if name == "" || len(name) > 76 {
		return fmt.Errorf("%w: header field name %q: empty or longer than 76", ErrMessage, name)
	}
	for _, c := range []byte(name) {
		if c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("%w: header field name %q: RFC 5322 §2.2 allows printable ASCII except colon", ErrMessage, name)
		}
	}
	for _, g := range generated {
		if strings.EqualFold(name, g) {
			return fmt.Errorf("%w: header field %s is written by mxtrace itself", ErrMessage, name)
		}
	}
	return nil
}

// unstructured encodes an unstructured field value (RFC 5322 §3.2.5): kept
// as it is when it is plain ASCII words separated by single spaces, else
// RFC 2047 Q-encoded as UTF-8, which keeps every character, spaces
// included, and splits into encoded-words of at most 75 octets.
func unstructured(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	plain := !strings.Contains(v, "=?") && !strings.Contains(v, "  ") &&
		strings.TrimSpace(v) == v
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= ' ' && v[i] <= '~'
	}
	for w := range strings.SplitSeq(v, " ") {
		if len(w) > maxWord {
			plain = false
		}
	}
	if plain {
		return v
	}
	// RFC 2047 §5(1): encoded-words in an unstructured field.
	return encodeAll(v)
}

// encodeAll Q-encodes every character of v, even plain ASCII, which
// mime.QEncoding leaves alone.
func encodeAll(v string) string {
	if v == "" {
		return ""
	}
	enc := mime.QEncoding.Encode("utf-8", v)
	if enc != v {
		return enc
	}
	// Plain ASCII that must be encoded anyway (a long word, "=?", runs of
	// spaces): QEncoding leaves such text alone, so encode it here, by
	// the rules of RFC 2047 §4.2 and §5(3).
	var b strings.Builder
	const open, closeW = "=?utf-8?q?", "?="
	n := 0
	b.WriteString(open)
	for i := 0; i < len(v); i++ {
		c := v[i]
		var piece string
		switch {
		case c == ' ':
			piece = "_"
		case c >= 33 && c <= 126 && c != '=' && c != '?' && c != '_':
			piece = string(c)
		default:
			piece = fmt.Sprintf("=%02X", c)
		}
		if n+len(piece) > 75-len(open)-len(closeW) {
			b.WriteString(closeW + " " + open)
			n = 0
		}
		b.WriteString(piece)
		n += len(piece)
	}
	b.WriteString(closeW)
	return b.String()
}

// writeField writes "Name: value" CRLF, folding before spaces so that lines
// stay within 78 octets where the words allow it (RFC 5322 §2.2.3: folding
// inserts CRLF before white space, which unfolding removes). Values come
// from unstructured or are single words, so words are at most maxWord
// octets and every line stays under 998.
func writeField(b *bytes.Buffer, name, value string) {
	line := name + ":"
	words := 0
	for w := range strings.SplitSeq(value, " ") {
		if value == "" {
			break
		}
		if words > 0 && len(line)+1+len(w) > foldAt {
			b.WriteString(line)
			b.WriteString("\r\n")
			line = ""
		}
		line += " " + w
		words++
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// normalizeNewlines turns CRLF and lone CR into LF.
func normalizeNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// is7bit reports whether lines can be sent as 7bit (RFC 2045 §2.7): ASCII
// without NUL, every line at most 998 octets.
func is7bit(lines []string) bool {
	for _, l := range lines {
		if len(l) > MaxLineLength {
			return false
		}
		for i := 0; i < len(l); i++ {
			if l[i] == 0 || l[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

// domainOf is the part of an address after its last "@", or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

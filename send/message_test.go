package send

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mxtrace/mxtrace/internal/golden"
)

var fixedDate = time.Date(2025, 3, 14, 15, 9, 26, 0, time.FixedZone("", 3600))

// TestMessageGolden: the built message, byte for byte, for a plain ASCII
// message, a non-ASCII one and one with long lines.
func TestMessageGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    Message
	}{
		{"ascii", Message{From: "mxtrace@client.example.test", To: "user@example.test", Date: fixedDate, MessageID: "0123abcd@client.example.test"}},
		{"utf8", Message{From: "mxtrace@client.example.test", To: "user@example.test", Date: fixedDate, MessageID: "<0123abcd@client.example.test>",
			Subject: "Grüße aus Köln — test", Body: "Hallo Welt,\nçà et là.\n", Headers: []Header{{"X-Test", "ünïcode value"}}}},
		{"long", Message{From: "mxtrace@client.example.test", To: "user@example.test", Date: fixedDate, MessageID: "0123abcd@client.example.test",
			Subject: strings.Repeat("word ", 30) + "end", Body: strings.Repeat("x", 1200) + "\r\n.leading dot\rold mac line\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "testdata/message/"+tt.name+".eml", b)
			checkWellFormed(t, b)
		})
	}
}

// checkWellFormed asserts the rules every built message keeps: CRLF line
// endings only, lines of at most 998 octets, ASCII only, and net/mail
// parses it.
func checkWellFormed(t *testing.T, b []byte) *mail.Message {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Errorf("the message does not end in CRLF")
	}
	for i, l := range bytes.Split(b, []byte("\r\n")) {
		if len(l) > MaxLineLength {
			t.Errorf("line %d has %d octets", i+1, len(l))
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, l)
		}
		for _, c := range l {
			if c >= 0x80 || c == 0 {
				t.Errorf("line %d has the octet %#x", i+1, c)
				break
			}
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	return m
}

// TestMessageEncoding: the transfer encoding follows the body, the subject
// survives encoding, and defaults are filled in.
func TestMessageEncoding(t *testing.T) {
	for _, tt := range []struct {
		name, subject, body, cte string
	}{
		{"ascii short lines", "plain", "hello\nworld\n", "7bit"},
		{"non-ascii body", "plain", "héllo\n", "quoted-printable"},
		{"999-octet line", "plain", strings.Repeat("a", 999), "quoted-printable"},
		{"998-octet line", "plain", strings.Repeat("a", 998), "7bit"},
		{"NUL", "plain", "a\x00b", "quoted-printable"},
		{"non-ascii subject", "日本語のテスト件名です。とても長い件名は複数の encoded-word に分割されます", "x", "7bit"},
		{"subject with CRLF injection", "hi\r\nBcc: victim@example.test", "x", "7bit"},
		{"subject with =?", "=?utf-8?q?fake?= and more", "x", "7bit"},
		{"subject of one long word", strings.Repeat("W", 2000), "x", "7bit"},
		{"subject with runs of spaces", "  a   b  ", "x", "7bit"},
		{"empty subject", "", "x", "7bit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{From: "a@b.test", To: "c@d.test", Subject: tt.subject, Body: tt.body}
			b, err := m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			msg := checkWellFormed(t, b)
			if got := msg.Header.Get("Content-Transfer-Encoding"); got != tt.cte {
				t.Errorf("Content-Transfer-Encoding %s, want %s", got, tt.cte)
			}
			if msg.Header.Get("Bcc") != "" {
				t.Errorf("a header was injected through the subject")
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			if subject != tt.subject {
				t.Errorf("subject decodes to %q, want %q", subject, tt.subject)
			}
			body, _ := io.ReadAll(msg.Body)
			if tt.cte == "quoted-printable" {
				body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
				if err != nil {
					t.Fatal(err)
				}
			}
			if want := strings.ReplaceAll(tt.body, "\n", "\r\n") + "\r\n"; strings.HasSuffix(tt.body, "\n") {
				want = strings.ReplaceAll(tt.body, "\n", "\r\n")
				if string(body) != want {
					t.Errorf("body %q, want %q", body, want)
				}
			} else if string(body) != want {
				t.Errorf("body %q, want %q", body, want)
			}
			for _, h := range []string{"Date", "Message-ID", "MIME-Version", "Content-Type", "From", "To"} {
				if msg.Header.Get(h) == "" {
					t.Errorf("no %s field", h)
				}
			}
			if _, err := msg.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
		})
	}
}

func TestMessageDefaults(t *testing.T) {
	m := &Message{From: "a@b.test", To: "c@d.test"}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	msg := checkWellFormed(t, b)
	id := msg.Header.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@b.test>") {
		t.Errorf("Message-ID %q", id)
	}
	body, _ := io.ReadAll(msg.Body)
	if !strings.Contains(string(body), "mxtrace") || !strings.Contains(string(body), "d.test") {
		t.Errorf("default body %q", body)
	}
	if m.MessageID != "" || !m.Date.IsZero() {
		t.Errorf("Bytes changed the message")
	}
}

func TestMessageErrors(t *testing.T) {
	for _, m := range []Message{
		{To: "c@d.test"},
		{From: "a@b.test"},
		{From: "a@b.test\r\nBcc: x@y", To: "c@d.test"},
		{From: "Name <a@b.test>", To: "c@d.test"},
		{From: "a@b.test", To: "not an address"},
		{From: "a@b.test", To: "c@d.test", MessageID: "no-at-sign"},
		{From: "a@b.test", To: "c@d.test", MessageID: "a b@c"},
		{From: "a@b.test", To: "c@d.test", Headers: []Header{{"Bad Name", "x"}}},
		{From: "a@b.test", To: "c@d.test", Headers: []Header{{"Subject", "again"}}},
		{From: "a@b.test", To: "c@d.test", Headers: []Header{{"x:y", "z"}}},
		{From: "a@b.test", To: "c@d.test", Body: "\xff\xfe"},
		{From: "a@b.test", To: "c@d.test", Body: strings.Repeat("x", MaxBodySize+1)},
	} {
		if _, err := m.Bytes(); !errors.Is(err, ErrMessage) {
			t.Errorf("%+.60v: err %v, want ErrMessage", m, err)
		}
	}
}

// FuzzMessage: any subject and body give a well-formed message whose
// subject and body decode back to what was given (up to line endings and
// invalid UTF-8 in the subject, which is replaced).
func FuzzMessage(f *testing.F) {
	for _, s := range [][2]string{
		{"hello", "body\n"},
		{"Grüße", "çà\r\n"},
		{"=?utf-8?q?x?=", ".\r\n.\r\n"},
		{strings.Repeat("a", 1000), strings.Repeat("b", 1000)},
		{"a\r\nb", "\x00\x01"},
		{" lead", "trail \n"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(roundTrip)
}

// roundTrip builds a message and checks that it decodes back.
func roundTrip(t *testing.T, subject, body string) {
	m := &Message{From: "a@b.test", To: "c@d.test", Subject: subject, Body: body, Date: fixedDate, MessageID: "x@y"}
	b, err := m.Bytes()
	if err != nil {
		if !utf8.ValidString(body) && errors.Is(err, ErrMessage) {
			return
		}
		t.Fatalf("Bytes: %v", err)
	}
	msg := checkWellFormed(t, b)
	got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject does not decode: %v", err)
	}
	if want := strings.TrimSpace(strings.ToValidUTF8(subject, "\uFFFD")); strings.TrimSpace(got) != want {
		t.Fatalf("subject %q decodes to %q", subject, got)
	}
	raw, _ := io.ReadAll(msg.Body)
	if msg.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
		if raw, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
	}
	want := normalizeNewlines(body)
	if body == "" {
		want = DefaultBody("d.test")
	}
	if !strings.HasSuffix(want, "\n") {
		want += "\n"
	}
	if got := normalizeNewlines(string(raw)); got != want {
		t.Fatalf("body %q decodes to %q", want, got)
	}
}

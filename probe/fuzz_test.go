package probe

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadReply: whatever a server sends, reading a reply never panics and
// respects the caps; a reply that parses formats (String) to text that
// parses to the same reply.
func FuzzReadReply(f *testing.F) {
	// RFC 5321 §4.2 and §4.3.1 examples, and hostile shapes.
	for _, s := range []string{
		"220 mx.example.com ESMTP Postfix\r\n",
		"250-mx.example.com Hello\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
		"554 No SMTP service here\r\n",
		"421 Service not available, closing transmission channel\r\n",
		"250\r\n", "220-\r\n220 \r\n", "220 a\n", "250-a\r\n251 b\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00", "HTTP/1.1 400\r\n", strings.Repeat("220-x\r\n", 300),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := readReply(newLineReader(strings.NewReader(string(b))), func(l string) {
			if len(l) > MaxLineLength {
				t.Fatalf("seen a line of %d bytes", len(l))
			}
		})
		if r != nil && len(r.Lines) > MaxReplyLines {
			t.Fatalf("%d lines", len(r.Lines))
		}
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 559 || len(r.Lines) == 0 {
			t.Fatalf("parsed %d with %d lines", r.Code, len(r.Lines))
		}
		// Text with a bare CR or LF inside a line cannot round-trip;
		// readLine never produces LF, and CR only at the end is trimmed.
		if slices.ContainsFunc(r.Lines, func(l string) bool { return strings.HasSuffix(l, "\r") }) {
			return
		}
		again, err := readReply(newLineReader(strings.NewReader(r.String())), nil)
		if err != nil {
			t.Fatalf("re-reading %q: %v", r.String(), err)
		}
		if again.Code != r.Code || !slices.Equal(again.Lines, r.Lines) {
			t.Fatalf("round trip: %d %q became %d %q", r.Code, r.Lines, again.Code, again.Lines)
		}
		e := parseEHLO(r)
		if len(e.Extensions) > maxExtensions || len(e.Auth) > 16 || !utf8.ValidString(e.Domain) {
			t.Fatalf("EHLO parse out of bounds: %+v", e)
		}
		if !utf8.ValidString(r.Text(100)) || len(r.Text(100)) > 100 {
			t.Fatalf("Text(100) = %q", r.Text(100))
		}
	})
}

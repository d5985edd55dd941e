package probe

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength+1)
	for _, tt := range []struct {
		name  string
		in    string
		code  int
		lines []string
		err   error
	}{
		{"single", "220 mx.example.com ESMTP\r\n", 220, []string{"mx.example.com ESMTP"}, nil},
		{"multi", "250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250, []string{"mx.example.com", "PIPELINING", "STARTTLS"}, nil},
		{"code only", "250\r\n", 250, []string{""}, nil},
		{"bare LF", "220 a\n", 220, []string{"a"}, nil},
		{"empty continuation", "250-\r\n250 ok\r\n", 250, []string{"", "ok"}, nil},
		{"stops after the last line", "220 a\r\n250 b\r\n", 220, []string{"a"}, nil},
		{"code mismatch", "250-a\r\n251 b\r\n", 0, nil, ErrMalformed},                       // RFC 5321 §4.2.1
		{"first digit", "199 a\r\n", 0, nil, ErrMalformed},                                  // RFC 5321 §4.2: %x32-35
		{"second digit", "260 a\r\n", 0, nil, ErrMalformed},                                 // %x30-35
		{"not digits", "HTTP/1.1 400 Bad Request\r\n", 0, nil, ErrMalformed},                // a web server on port 25
		{"bad separator", "220_mx\r\n", 0, nil, ErrMalformed},                               // neither SP nor "-"
		{"short", "22\r\n", 0, nil, ErrMalformed},                                           //
		{"empty line", "\r\n", 0, nil, ErrMalformed},                                        //
		{"too long", "220 " + long + "\r\n", 0, nil, ErrLineTooLong},                        // over MaxLineLength
		{"too long without end", "220 " + long, 0, nil, ErrLineTooLong},                     // never ends
		{"one over, then the end", "220 " + long[:MaxLineLength-3], 0, nil, ErrLineTooLong}, // fits the buffer, not a line
		{"eof", "", 0, nil, io.EOF},                                                         // nothing at all
		{"eof inside a line", "220 mx", 0, nil, io.ErrUnexpectedEOF},                        // cut
		{"eof inside a reply", "250-a\r\n", 0, nil, io.ErrUnexpectedEOF},                    // cut
		{"endless", strings.Repeat("250-x\r\n", MaxReplyLines+5), 0, nil, ErrTooManyLines},
		{"at the line cap", strings.Repeat("250-x\r\n", MaxReplyLines-1) + "250 x\r\n", 250, slices.Repeat([]string{"x"}, MaxReplyLines), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen int
			r, err := readReply(newLineReader(strings.NewReader(tt.in)), func(string) { seen++ })
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if r.Code != tt.code || !slices.Equal(r.Lines, tt.lines) {
				t.Errorf("got %d %q, want %d %q", r.Code, r.Lines, tt.code, tt.lines)
			}
			if seen != len(tt.lines) {
				t.Errorf("seen called %d times for %d lines", seen, len(tt.lines))
			}
		})
	}
}

// TestReadReplyBounded: an endless reply is not read past the caps.
func TestReadReplyBounded(t *testing.T) {
	src := &countingReader{r: strings.NewReader(strings.Repeat("250-"+strings.Repeat("y", 4000)+"\r\n", 10*MaxReplyLines))}
	_, err := readReply(newLineReader(src), nil)
	if !errors.Is(err, ErrTooManyLines) {
		t.Fatalf("error %v, want ErrTooManyLines", err)
	}
	if limit := (MaxReplyLines + 1) * (MaxLineLength + 2); src.n > limit {
		t.Errorf("read %d bytes, more than %d", src.n, limit)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReplyString(t *testing.T) {
	r := &Reply{Code: 250, Lines: []string{"mx.example.com", "SIZE 100"}}
	if got, want := r.String(), "250-mx.example.com\r\n250 SIZE 100\r\n"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	again, err := readReply(bufio.NewReader(strings.NewReader(r.String())), nil)
	if err != nil || again.Code != 250 || !slices.Equal(again.Lines, r.Lines) {
		t.Errorf("re-read %v %v", again, err)
	}
}

func TestParseEHLO(t *testing.T) {
	r := &Reply{Code: 250, Lines: []string{
		"mx.example.com Hello client.example [192.0.2.1]",
		"PIPELINING", "size 35882577", "8BITMIME", "STARTTLS", "AUTH PLAIN LOGIN SCRAM-SHA-256 bad<mech>",
		"ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8", "DSN", "REQUIRETLS", "-bad keyword", "", "X-CUSTOM a b",
	}}
	e := parseEHLO(r)
	if e.Domain != "mx.example.com" || e.Size != 35882577 {
		t.Errorf("domain %q size %d", e.Domain, e.Size)
	}
	if !e.Pipelining || !e.EightBitMIME || !e.StartTLS || !e.EnhancedStatusCodes || !e.Chunking || !e.SMTPUTF8 || !e.DSN || !e.RequireTLS {
		t.Errorf("flags: %+v", e)
	}
	if !slices.Equal(e.Auth, []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}) {
		t.Errorf("auth %q", e.Auth)
	}
	want := []string{"PIPELINING", "SIZE 35882577", "8BITMIME", "STARTTLS", "AUTH PLAIN LOGIN SCRAM-SHA-256 bad<mech>",
		"ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8", "DSN", "REQUIRETLS", "X-CUSTOM a b"}
	if !slices.Equal(e.Extensions, want) {
		t.Errorf("extensions\n%q, want\n%q", e.Extensions, want)
	}
	// Without STARTTLS or SIZE.
	e = parseEHLO(&Reply{Code: 250, Lines: []string{"mx", "SIZE", "SIZE abc"}})
	if e.StartTLS || e.Size != 0 {
		t.Errorf("bare SIZE: %+v", e)
	}
	// Many extensions are capped.
	e = parseEHLO(&Reply{Code: 250, Lines: append([]string{"mx"}, slices.Repeat([]string{"X-A"}, 500)...)})
	if len(e.Extensions) != maxExtensions {
		t.Errorf("%d extensions kept, want %d", len(e.Extensions), maxExtensions)
	}
}

// TestPartialErrorSingular: one octet is "1 octet".
func TestPartialErrorSingular(t *testing.T) {
	err := &PartialError{Got: "2", Octets: 1, Err: io.ErrUnexpectedEOF}
	if got, want := err.Error(), "partial reply (1 octet: 2): unexpected EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

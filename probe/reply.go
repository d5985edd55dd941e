package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// Caps on what one server may send. RFC 5321 §4.5.3.1.5 limits a reply line
// to 512 octets; real servers exceed it now and then, so the probe is
// lenient, but never unbounded (docs/security.md#deadlines-and-caps).
const (
	// MaxLineLength is the longest reply line accepted, without its CRLF.
	MaxLineLength = 4096
	// MaxReplyLines is the most lines one (multi-line) reply may have.
	MaxReplyLines = 200
	// MaxSessionBytes is the most the server may send in one session,
	// TLS records included.
	MaxSessionBytes = 1 << 20
)

// Errors of reading a reply, for errors.Is on Result.Err.
var (
	ErrMalformed       = errors.New("probe: malformed SMTP reply")
	ErrLineTooLong     = fmt.Errorf("probe: reply line longer than %d octets", MaxLineLength)
	ErrTooManyLines    = fmt.Errorf("probe: reply of more than %d lines", MaxReplyLines)
	ErrSessionTooLarge = fmt.Errorf("probe: the server sent more than %d octets", MaxSessionBytes)
)

// PartialError is a reply cut short by a deadline or by the end of the
// connection: the part that came (escaped once, by internal/printable),
// and why no more did.
type PartialError struct {
	Got    string // the octets that came, lines joined by CRLF, escaped
	Octets int    // how many octets came
	Err    error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("partial reply (%s: %s): %v", prose.Count(e.Octets, "octet"), printable.Cut(e.Got, 200), e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Reply is one SMTP reply: a three-digit code and the text of each line,
// without the code, the separator and the line ending (RFC 5321 §4.2).
type Reply struct {
	Code  int
	Lines []string
}

// String formats the reply as it travels: every line but the last with
// "code-", the last with "code ", each ending in CRLF.
func (r *Reply) String() string {
	var b strings.Builder
	for i, l := range r.Lines {
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%03d%s%s\r\n", r.Code, sep, l)
	}
	return b.String()
}

// Text is the reply's text, lines joined by a space, made safe to print
// (Clean) and cut to n bytes.
func (r *Reply) Text(n int) string {
	return printable.Cut(printable.String(strings.Join(r.Lines, " ")), n)
}

// readReply reads one reply. Each line is passed to seen as it arrives
// (even when the reply then turns out to be malformed), so a transcript
// shows what the server sent. It never reads more than MaxReplyLines lines
// of MaxLineLength octets.
//
// A reply that a deadline or the end of the connection cuts short is not
// a reply: the error is then a *PartialError holding what came of it.
func readReply(br *bufio.Reader, seen func(line string)) (*Reply, error) {
	var r *Reply
	var got []string // the lines of the reply so far, for a PartialError
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			// RFC 5321 §4.2.1 sets no limit on the number of lines; a
			// sender must, or an endless reply never ends.
			return r, ErrTooManyLines
		}
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) && (n > 0 || line != "") {
				err = io.ErrUnexpectedEOF
			}
			if line != "" && seen != nil {
				seen(line)
			}
			if (n > 0 || line != "") && !errors.Is(err, ErrLineTooLong) {
				all := strings.Join(append(got, line), "\r\n")
				return r, &PartialError{Got: printable.String(all), Octets: len(all), Err: err}
			}
			return r, err
		}
		got = append(got, line)
		if seen != nil {
			seen(line)
		}
		code, last, text, ok := parseLine(line)
		if !ok {
			// Escaped once, by printable; not quoted again.
			return r, fmt.Errorf("%w: %s", ErrMalformed, printable.Cut(printable.String(line), 80))
		}
		if r == nil {
			r = &Reply{Code: code}
		} else if code != r.Code {
			// RFC 5321 §4.2.1: every line of a multi-line reply carries
			// the same code.
			return r, fmt.Errorf("%w: code %03d on a continuation of a %03d reply", ErrMalformed, code, r.Code)
		}
		r.Lines = append(r.Lines, text)
		if last {
			return r, nil
		}
	}
}

// readLine reads one line, without its line ending. RFC 5321 §2.3.8 asks
// for CRLF; a bare LF is accepted, as most clients do. On a line over
// MaxLineLength it stops reading and returns ErrLineTooLong with the start
// of the line.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return string(b[:min(len(b), 80)]), ErrLineTooLong
	}
	if err != nil {
		// The end of input before a line ending: what came may still be
		// longer than a line may be (the buffer holds MaxLineLength+2).
		if len(b) > MaxLineLength {
			return string(b[:80]), ErrLineTooLong
		}
		return string(b), err
	}
	b = bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))
	if len(b) > MaxLineLength {
		return string(b[:80]), ErrLineTooLong
	}
	return string(b), nil
}

// newLineReader returns a reader whose buffer fits exactly one line of
// MaxLineLength octets and its CRLF: ReadSlice fails on anything longer.
func newLineReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, MaxLineLength+2) }

// parseLine splits a reply line: RFC 5321 §4.2 reply-line is
// Reply-code [ SP textstring ] CRLF for the last line and
// Reply-code "-" [ textstring ] CRLF for the others, where Reply-code is
// %x32-35 %x30-35 %x30-39.
func parseLine(line string) (code int, last bool, text string, ok bool) {
	if len(line) < 3 {
		return 0, false, "", false
	}
	c := line[:3]
	if c[0] < '2' || c[0] > '5' || c[1] < '0' || c[1] > '5' || c[2] < '0' || c[2] > '9' {
		return 0, false, "", false
	}
	code, _ = strconv.Atoi(c)
	switch {
	case len(line) == 3:
		return code, true, "", true
	case line[3] == ' ':
		return code, true, line[4:], true
	case line[3] == '-':
		return code, false, line[4:], true
	}
	return 0, false, "", false
}

// ReadReply reads one reply from br, a reader made by NewReplyReader: the
// same parse and bounds as the probe's own sessions (at most
// MaxReplyLines lines of MaxLineLength octets, every line the same code,
// RFC 5321 §4.2.1), for the project's other code that speaks SMTP over a
// connection of its own (relay's recipient callout).
func ReadReply(br *bufio.Reader) (*Reply, error) { return readReply(br, nil) }

// NewReplyReader returns the reader ReadReply needs over r: its buffer
// holds one line of MaxLineLength octets and its line end.
func NewReplyReader(r io.Reader) *bufio.Reader { return newLineReader(r) }

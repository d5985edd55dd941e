package resolve

import (
	"fmt"
	"io"
	"strings"

	"github.com/mxtrace/mxtrace/internal/printable"
)

// MaxZoneLine bounds one line of a zone file, in octets. The longest
// record a line needs is a TXT record of 65,535 octets written as \DDD
// escapes (262,140 octets); a file with a longer line (/dev/zero, a binary
// file given by mistake) is refused when the line reaches the bound,
// instead of growing one token, and the memory holding it, without end
// (docs/security.md#deadlines-and-caps).
const MaxZoneLine = 1 << 20

// lineLimit passes a zone file's octets through until a line grows past
// max octets, then fails every read with err.
type lineLimit struct {
	r    io.Reader
	name string
	max  int
	run  int   // octets since the last newline
	line int   // the line being read, from 1
	err  error // set when a line grew too long
}

func newLineLimit(r io.Reader, name string, max int) *lineLimit {
	return &lineLimit{r: r, name: name, max: max, line: 1}
}

func (l *lineLimit) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if c == '\n' {
			l.run = 0
			l.line++
			continue
		}
		if l.run++; l.run > l.max {
			l.err = fmt.Errorf("%s: line %d is longer than %d octets: not a zone file", l.name, l.line, l.max)
			return i, l.err
		}
	}
	return n, err
}

// maxParseError bounds the text of a zone file's syntax error.
const maxParseError = 256

// ParseError is a syntax error of miekg/dns's zone parser (Err) with the
// token it quotes cut: the parser quotes the whole token, which a line of
// up to MaxZoneLine octets of garbage makes megabytes long. Where the
// error is (" at line: L:C") is kept.
type ParseError struct{ Err error }

func (e ParseError) Error() string {
	s := e.Err.Error()
	if len(s) <= maxParseError {
		return s
	}
	tail := ""
	if i := strings.LastIndex(s, " at line: "); i >= 0 {
		s, tail = s[:i], s[i:]
	}
	return printable.Cut(s, maxParseError) + tail
}

func (e ParseError) Unwrap() error { return e.Err }

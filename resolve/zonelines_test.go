package resolve_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// countingReader counts the octets read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestZoneLineLimit: a "zone file" that is one endless line (--zone
// /dev/zero, a binary file) is refused once the line passes MaxZoneLine,
// without reading on (the parser grew one token, 1.3 GB of memory for 50
// MB of zeros), and the error says so in one short line.
func TestZoneLineLimit(t *testing.T) {
	in := &countingReader{r: io.LimitReader(zeros{}, 8*resolve.MaxZoneLine)}
	_, err := resolve.ParseZones(in, "zeros.zone")
	if err == nil || !strings.Contains(err.Error(), "line 1 is longer than") {
		t.Errorf("error %.200q", err)
	}
	if in.n > resolve.MaxZoneLine+64<<10 {
		t.Errorf("read %d octets of one line, more than %d", in.n, resolve.MaxZoneLine)
	}
	if err != nil && len(err.Error()) > 300 {
		t.Errorf("error of %d octets", len(err.Error()))
	}
}

// TestZoneParseErrorShort: a syntax error on a long line (under
// MaxZoneLine) quotes a bounded part of the token and keeps where it is.
func TestZoneParseErrorShort(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("$ORIGIN x.\n@ 300 SOA ns h 1 2 3 4 5\n")
	b.Write(bytes.Repeat([]byte{0}, 900_000))
	b.WriteString("\n")
	_, err := resolve.ParseZones(&b, "nul.zone")
	if err == nil || len(err.Error()) > 400 || !strings.HasSuffix(err.Error(), " at line: 3:900000") {
		t.Errorf("error of %d octets: %.100q…", len(err.Error()), err)
	}
	if _, ok := errors.AsType[*dns.ParseError](err); !ok {
		t.Errorf("error %T does not unwrap to *dns.ParseError", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

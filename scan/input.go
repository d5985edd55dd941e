package scan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// Bounds on what one input entry may cost.
const (
	// MaxLineLength caps a line of a list. A longer line becomes an error
	// item (its first MaxInputEcho bytes are echoed) and reading goes on
	// with the next line, so one runaway line cannot grow memory
	// (docs/security.md#deadlines-and-caps).
	MaxLineLength = 64 << 10
	// MaxCSVRecord caps one CSV record, quoted newlines included. A quote
	// that is never closed would otherwise swallow the rest of the file
	// into one field; past this size the input is given up with an error.
	MaxCSVRecord = 1 << 20
	// MaxInputEcho caps the text of an invalid entry that is echoed in
	// its error object.
	MaxInputEcho = 512
	// recentOwners is how many distinct owner names the zone reader
	// remembers to skip repeats that are not adjacent.
	recentOwners = 4096
)

// ErrInput is wrapped by the error of an input entry that cannot be a
// domain for a reason other than the name itself (a line too long, a
// missing CSV column, a malformed CSV record).
var ErrInput = errors.New("scan: unusable input entry")

// Item is one entry of the input: a domain to scan, or an entry that is not
// one (Err set), which still gets its own output line.
type Item struct {
	// Line is where the entry is in the input, counting from 1: the line
	// of a list, the first line of a CSV record, the line of the NS or MX
	// record that named a zone owner.
	Line int64
	// Input is the text as read, trimmed, made valid UTF-8 and cut to
	// MaxInputEcho bytes.
	Input string
	// Name is the domain to scan; empty when Err is set.
	Name dnsname.Name
	// Err says why the entry is not a domain; it wraps dnsname.ErrInvalid
	// or ErrInput.
	Err error
}

// Key identifies the item in an output file: the canonical name, or for an
// entry that is not a domain, the text as read (what its error object
// carries in "domain").
func (it Item) Key() string {
	if it.Err != nil {
		return it.Input
	}
	return it.Name.String()
}

// Source is a stream of input items in input order. A non-nil error ends
// it: the input could not be read any further.
type Source = iter.Seq2[Item, error]

// item builds the Item for text found at line.
func item(line int64, text string) Item {
	it := Item{Line: line, Input: echo(text)}
	it.Name, it.Err = dnsname.Parse(text)
	return it
}

// echo makes text safe to carry in an error object and a CSV cell, and to
// compare with what was written: each invalid UTF-8 byte becomes U+FFFD,
// as encoding/json writes it, line breaks (possible inside a quoted CSV
// field) become spaces, and the text is cut to MaxInputEcho bytes on a
// character boundary.
func echo(text string) string {
	if len(text) <= MaxInputEcho && utf8.ValidString(text) && !strings.ContainsAny(text, "\r\n") {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		// An invalid byte decodes as U+FFFD, size 1.
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == '\r' || r == '\n' {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > MaxInputEcho {
			break
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// Lines reads a list: one domain or e-mail address per line (the part after
// the last @ is the domain). Blank lines and lines whose first non-blank
// character is # are skipped; white space around an entry is ignored, and
// so are a UTF-8 byte order mark and CRLF line ends. There are no comments
// after an entry: # may appear in an address's local part.
func Lines(r io.Reader) Source {
	return func(yield func(Item, error) bool) {
		br := bufio.NewReaderSize(r, MaxLineLength)
		for line := int64(1); ; line++ {
			b, err := br.ReadSlice('\n')
			long := errors.Is(err, bufio.ErrBufferFull)
			if long {
				// Keep what is echoed, drop the rest of the line.
				b = bytes.Clone(b[:min(len(b), 2*MaxInputEcho)])
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
			}
			if err != nil && err != io.EOF {
				yield(Item{}, fmt.Errorf("scan: reading line %d: %w", line, err))
				return
			}
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\ufeff"))
			}
			text := strings.TrimSpace(string(b))
			switch {
			case long:
				if !yield(Item{Line: line, Input: echo(text), Err: fmt.Errorf("%w: line %d is longer than %d bytes", ErrInput, line, MaxLineLength)}, nil) {
					return
				}
			case text == "" || text[0] == '#':
			default:
				if !yield(item(line, text), nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
		}
	}
}

// CSVOptions selects the column of a CSV file that holds the domains.
type CSVOptions struct {
	// Column is the column's number, counting from 1 (as cut -f does).
	Column int
	// ColumnName selects the column by its header instead; the first
	// record is then the header (Header is implied).
	ColumnName string
	// Header says the first record is a header: it is skipped.
	Header bool
	// Comma is the field delimiter; 0 means ','.
	Comma rune
}

// CSV reads the domains in one column of a CSV file (RFC 4180, read with
// encoding/csv: quoted fields may hold commas and newlines; bare quotes in
// unquoted fields are accepted). Records may have any number of fields;
// a record without the column, or one that does not parse, becomes an
// error item. Blank lines and lines starting with # are skipped.
//
// Without a header, the first record is data: a header row would be
// scanned as a domain. Set Header, or select the column by ColumnName.
func CSV(r io.Reader, opt CSVOptions) Source {
	return func(yield func(Item, error) bool) {
		col := opt.Column - 1
		if opt.ColumnName == "" && col < 0 {
			yield(Item{}, fmt.Errorf("scan: CSV column %d: columns count from 1", opt.Column))
			return
		}
		capped := &capReader{r: r, max: MaxCSVRecord}
		cr := csv.NewReader(capped)
		cr.Comma = opt.Comma
		if cr.Comma == 0 {
			cr.Comma = ','
		}
		cr.Comment = '#'
		cr.FieldsPerRecord = -1
		cr.LazyQuotes = true
		cr.ReuseRecord = true
		header := opt.Header || opt.ColumnName != ""
		for {
			capped.n = 0
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			if pe, ok := errors.AsType[*csv.ParseError](err); ok && !errors.Is(err, errRecordTooLong) {
				if !yield(Item{Line: int64(pe.StartLine), Input: echo(strings.Join(rec, string(cr.Comma))),
					Err: fmt.Errorf("%w: CSV record at line %d: %w", ErrInput, pe.StartLine, pe.Err)}, nil) {
					return
				}
				continue
			}
			if err != nil {
				yield(Item{}, fmt.Errorf("scan: CSV: %w", err))
				return
			}
			// A record has at least one field: blank lines are skipped.
			line, _ := cr.FieldPos(0)
			if header {
				header = false
				if opt.ColumnName != "" {
					col = -1
					for i, f := range rec {
						if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(f, "\ufeff")), opt.ColumnName) {
							col = i
							break
						}
					}
					if col < 0 {
						yield(Item{}, fmt.Errorf("scan: CSV header at line %d has no column %q", line, opt.ColumnName))
						return
					}
				}
				continue
			}
			if col >= len(rec) {
				if !yield(Item{Line: int64(line), Input: echo(strings.Join(rec, string(cr.Comma))),
					Err: fmt.Errorf("%w: the record at line %d has %d fields, no column %d", ErrInput, line, len(rec), col+1)}, nil) {
					return
				}
				continue
			}
			l, _ := cr.FieldPos(col)
			text := strings.TrimSpace(rec[col])
			if l == 1 && col == 0 {
				text = strings.TrimPrefix(text, "\ufeff")
			}
			if !yield(item(int64(l), text), nil) {
				return
			}
		}
	}
}

// errRecordTooLong ends a CSV input whose record exceeds MaxCSVRecord.
var errRecordTooLong = fmt.Errorf("a record longer than %d bytes (an unclosed quote?)", MaxCSVRecord)

// capReader fails once more than max bytes are read since n was reset.
type capReader struct {
	r   io.Reader
	n   int
	max int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, errRecordTooLong
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Zone reads a zone file (RFC 1035 §5 master-file syntax, streamed with
// miekg/dns's ZoneParser) and yields every owner name that has NS or MX
// records: the delegations of a registry's zone, or the mail domains of
// one's own. origin is the zone's origin for relative names when the file
// has no $ORIGIN (may be empty); file names the input in errors.
// $INCLUDE is refused; records without a TTL are accepted.
//
// A name is yielded once when its records are adjacent, as zone files
// list them, or within the last few thousand owners; a name repeated
// further apart is yielded again. Owner names that are not domains (a
// wildcard, say) become error items. A syntax error ends the input: the
// parser cannot resume after one.
func Zone(r io.Reader, origin, file string) Source {
	return func(yield func(Item, error) bool) {
		lc := &lineCounter{br: bufio.NewReaderSize(r, 64<<10), line: 1}
		zp := dns.NewZoneParser(lc, origin, file)
		// Only owner names are read: a file without $TTL must not fail
		// for want of a TTL nobody looks at.
		zp.SetDefaultTTL(3600)
		recent := newRecent(recentOwners)
		last := ""
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			h := rr.Header()
			if h.Rrtype != dns.TypeNS && h.Rrtype != dns.TypeMX {
				continue
			}
			owner := dns.CanonicalName(h.Name)
			if owner == last || !recent.add(owner) {
				last = owner
				continue
			}
			last = owner
			// The parser has read the line end of the record (and may
			// have looked at the next line's start).
			if !yield(item(lc.recordLine(), owner), nil) {
				return
			}
		}
		if lc.err != nil {
			// The parser saw the line cut short; its own error would
			// quote the megabyte it read.
			yield(Item{}, fmt.Errorf("scan: zone: %w", lc.err))
			return
		}
		if err := zp.Err(); err != nil {
			yield(Item{}, fmt.Errorf("scan: zone: %w", resolve.ParseError{Err: err}))
		}
	}
}

// lineCounter is the io.ByteReader the zone parser reads through (it then
// adds no buffer of its own), counting lines. lastEnd is the line of the
// last newline read, which ends the record the parser just returned.
//
// A line longer than resolve.MaxZoneLine ends the input with err: the
// parser would grow one token, and its memory, without end (a zone file
// that is /dev/zero or binary).
type lineCounter struct {
	br      *bufio.Reader
	line    int64 // the line being read
	lastEnd int64 // the line the last newline ended
	run     int   // octets since the last newline
	err     error // the line grew too long
}

func (l *lineCounter) Read(p []byte) (int, error) {
	// Only ReadByte is used by the parser; Read is here to be an io.Reader.
	if len(p) == 0 {
		return 0, nil
	}
	c, err := l.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

func (l *lineCounter) ReadByte() (byte, error) {
	if l.err != nil {
		return 0, l.err
	}
	c, err := l.br.ReadByte()
	switch {
	case err != nil:
	case c == '\n':
		l.lastEnd = l.line
		l.line++
		l.run = 0
	case l.run >= resolve.MaxZoneLine:
		l.err = fmt.Errorf("line %d is longer than %d octets: not a zone file", l.line, resolve.MaxZoneLine)
		return 0, l.err
	default:
		l.run++
	}
	return c, err
}

// recordLine is the line on which the record just parsed ends.
func (l *lineCounter) recordLine() int64 {
	if l.lastEnd == 0 {
		return l.line
	}
	return l.lastEnd
}

// recent remembers the last n distinct strings added.
type recent struct {
	ring []string
	next int
	set  map[string]struct{}
}

func newRecent(n int) *recent {
	return &recent{ring: make([]string, n), set: make(map[string]struct{}, n)}
}

// add reports whether s is new, and remembers it.
func (r *recent) add(s string) bool {
	if _, ok := r.set[s]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.set[s] = struct{}{}
	return true
}

// Shard is a deterministic share of the input: the items whose key hashes
// to Index modulo Count. The hash is 64-bit FNV-1a (stable across runs,
// machines and versions, unlike hash/maphash) of Item.Key, so the same
// name, however it was written, always lands in the same shard. The zero
// Shard is the whole input.
type Shard struct {
	Index, Count int
}

// ParseShard parses "I/N": shard I of N, 0 ≤ I < N (the numbering of a
// Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("scan: shard %q: want I/N with 0 ≤ I < N", s)
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Has reports whether it belongs to the shard.
func (s Shard) Has(it Item) bool {
	if s.Count <= 1 {
		return true
	}
	return keyHash(it.Key())%uint64(s.Count) == uint64(s.Index)
}

// keyHash is 64-bit FNV-1a (the same as hash/fnv's New64a, without
// allocating).
func keyHash(key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	return h
}

// Count counts the items of src in shard s, for a progress total. It reads
// the whole input, so call it on a second reader of a regular file. It
// stops early, with ctx's error, when ctx ends.
func Count(ctx context.Context, src Source, s Shard) (int64, error) {
	var n, read int64
	for it, err := range src {
		if err != nil {
			return n, err
		}
		if read++; read%1024 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		if s.Has(it) {
			n++
		}
	}
	return n, nil
}

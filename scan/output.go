package scan

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

// Format is the output format.
type Format string

// Formats.
const (
	// FormatJSON writes JSON Lines: per domain, exactly the object
	// "route --json" or "check --json" prints; per entry that is not a
	// domain, an ErrorRecord.
	FormatJSON Format = "json"
	// FormatCSV writes one row per entry under a header (CSVHeader).
	FormatCSV Format = "csv"
)

// ParseFormat parses "json" or "csv".
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatCSV:
		return f, nil
	}
	return "", fmt.Errorf("scan: format %q: want json or csv", s)
}

// ErrorRecord is the output line of an entry that produced no plan: an
// input line that is not a domain (kind "invalid-input"), or a Job that
// returned no value. It has the members every line has (schema, domain,
// result), so a filter on them works on every line.
type ErrorRecord struct {
	Schema int `json:"schema"`
	// Domain is the entry as read (trimmed, at most MaxInputEcho bytes),
	// since it is not a valid name.
	Domain string       `json:"domain"`
	Result route.Result `json:"result"` // always "error"
	Error  string       `json:"error"`
	Kind   ErrorKind    `json:"kind"`
	Line   int64        `json:"line"` // the entry's line in the input
}

// CSVHeader returns the columns of --format csv, in order:
//
//	line            the entry's line in the input
//	domain          the domain (for an invalid entry: the text as read)
//	result          ok, null-mx, no-mail, nxdomain or error
//	implicit        true when the domain has no MX and its own address is used
//	mx_records      MX records as served (those left out of the plan's list too)
//	tiers           preference tiers
//	exchanges       exchanges in the tiers
//	first_exchange  the first exchange of the most preferred tier, as served
//	provider        its registrable domain (public suffix list)
//	addresses       distinct addresses over every exchange
//	findings        finding IDs, sorted, space-separated
//	error_kind      why the result is error (see ErrorKind), or why it is incomplete
//	error           the error message
//	elapsed_ms      time spent on the domain
//
// Cells that a spreadsheet would take for a formula (starting with = + - @
// or tab), or that start with ', get a ' in front, as OWASP advises
// against CSV injection; line breaks in cells become spaces, so every row
// is one line.
func CSVHeader() []string {
	return []string{"line", "domain", "result", "implicit", "mx_records", "tiers", "exchanges", "first_exchange",
		"provider", "addresses", "findings", "error_kind", "error", "elapsed_ms"}
}

// csvDomainColumn is the index of "domain" in CSVHeader.
const csvDomainColumn = 1

// outcome is one finished entry on its way to the writer.
type outcome struct {
	seq      int64
	item     Item
	value    any // what is written as JSON
	plan     *route.Plan
	findings []finding.Finding
	err      error
	attempts int
	elapsed  int64
	line     []byte // the encoded line
	// notDone: the scan was interrupted before the entry was finished;
	// nothing is written for it, so --resume does it again.
	notDone bool
}

// settle fills in what the summary and CSV read from the value, and puts
// an ErrorRecord in place of a missing value.
func (o *outcome) settle() {
	switch v := o.value.(type) {
	case *ErrorRecord:
		if v != nil {
			return
		}
	case *route.Plan:
		if v != nil {
			o.plan, o.findings, o.elapsed = v, v.Findings, v.ElapsedMS
			return
		}
	case *check.Report:
		if v != nil && v.Plan != nil {
			o.plan, o.findings, o.elapsed = v.Plan, v.Findings, v.ElapsedMS
			return
		}
	default:
		if v != nil {
			return // another type: written as it is
		}
	}
	msg := "no outcome"
	if o.err != nil {
		msg = o.err.Error()
	}
	o.value = &ErrorRecord{Schema: route.SchemaVersion, Domain: o.item.Key(), Result: route.ResultError,
		Error: msg, Kind: KindOf(o.err), Line: o.item.Line}
}

// result is the line's result.
func (o *outcome) result() route.Result {
	if o.plan != nil {
		return o.plan.Result
	}
	if e, ok := o.value.(*ErrorRecord); ok {
		return e.Result
	}
	return ""
}

// encoder turns outcomes into lines. Each worker has its own, so the
// encoding runs in parallel and the one writer only copies bytes.
type encoder struct {
	format Format
	buf    bytes.Buffer
	csv    *csv.Writer
	cells  []string
	// registrables names the first exchange's provider.
	registrables registrables
}

func newEncoder(format Format) *encoder {
	e := &encoder{format: format, registrables: registrables{}}
	e.csv = csv.NewWriter(&e.buf)
	return e
}

// header returns the CSV header line.
func (e *encoder) header() []byte {
	e.buf.Reset()
	e.csv.Write(CSVHeader())
	e.csv.Flush()
	return bytes.Clone(e.buf.Bytes())
}

// encode sets o.line, appending it to into (a reused line buffer, or
// nil). A value that does not encode (it cannot happen with plans and
// reports) is replaced by an ErrorRecord saying so.
func (e *encoder) encode(o *outcome, into []byte) {
	line, err := e.line(into, o)
	if err != nil {
		o.err = fmt.Errorf("scan: encoding the outcome of %s: %w", o.item.Key(), err)
		o.value, o.plan, o.findings = nil, nil, nil
		o.settle()
		line, _ = e.line(into, o)
	}
	o.line = line
}

// maxPooledLine is the longest line buffer lineBuffers keeps: a few
// domains with huge plans must not pin their lines' memory for the run.
const maxPooledLine = 16 << 10

// lineBuffers is a free list of line buffers: the writer gives back every
// line it wrote (put), a worker encodes its next line into one (get). It
// holds at most as many as the window holds lines. A fresh line for every
// domain was a fifth of all that a route scan allocated (79 of 408 MB at
// 100k domains, --memprofile), so the collector, which runs once per so
// many megabytes allocated, runs a fifth less often.
type lineBuffers chan []byte

// get returns an empty buffer, reused if one is free.
func (l lineBuffers) get() []byte {
	select {
	case b := <-l:
		return b[:0]
	default:
		return nil
	}
}

// put keeps b for reuse, unless it is long or the list is full.
func (l lineBuffers) put(b []byte) {
	if cap(b) > maxPooledLine {
		return
	}
	select {
	case l <- b:
	default:
	}
}

// line appends o's line to into. A JSON line is encoded straight into
// it: through the encoder's buffer, each check report's line (4-8 kB) was
// copied twice more, and the buffer regrown (--memprofile; see
// BenchmarkEncodeReport).
func (e *encoder) line(into []byte, o *outcome) ([]byte, error) {
	if e.format == FormatCSV {
		e.buf.Reset()
		e.csv.Write(e.row(o))
		e.csv.Flush()
		return append(into, e.buf.Bytes()...), e.csv.Error()
	}
	return report.AppendJSON(into, o.value)
}

// writer writes whole lines to w through a buffer, flushing only between
// lines, so the file on disk ends with a complete line whenever the
// process stops between two writes.
type writer struct {
	bw  *bufio.Writer
	err error
}

func newWriter(w io.Writer) *writer {
	return &writer{bw: bufio.NewWriterSize(w, 256<<10)}
}

// write writes one line.
func (w *writer) write(line []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(line) > w.bw.Available() && w.bw.Buffered() > 0 {
		if w.err = w.bw.Flush(); w.err != nil {
			return w.err
		}
	}
	_, w.err = w.bw.Write(line)
	return w.err
}

func (w *writer) flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}

// row is o's CSV row.
func (e *encoder) row(o *outcome) []string {
	c := e.cells[:0]
	kind, msg := "", ""
	if o.err != nil {
		kind, msg = string(KindOf(o.err)), o.err.Error()
	}
	if e, ok := o.value.(*ErrorRecord); ok {
		kind, msg = string(e.Kind), e.Error
	}
	c = append(c, strconv.FormatInt(o.item.Line, 10), cell(o.item.Key()), string(o.result()))
	if p := o.plan; p != nil {
		hosts, first, provider := 0, "", ""
		for h := range p.EachHost() {
			if hosts == 0 {
				first, provider = h.Name, e.registrables.of(h.Name)
			}
			hosts++
		}
		c = append(c, strconv.FormatBool(p.Implicit), strconv.Itoa(len(p.Records)+p.RecordsOmitted), strconv.Itoa(len(p.Tiers)),
			strconv.Itoa(hosts), cell(first), cell(provider), strconv.Itoa(addressCount(p)))
		if msg == "" && p.Error != "" {
			msg = p.Error
		}
	} else {
		c = append(c, "", "", "", "", "", "", "")
	}
	c = append(c, strings.Join(findingIDs(o.findings), " "), kind, cell(msg), strconv.FormatInt(o.elapsed, 10))
	e.cells = c
	return c
}

// cell defuses a cell a spreadsheet would run as a formula, and keeps the
// row on one line.
func cell(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	if s != "" && strings.ContainsRune("=+-@\t'", rune(s[0])) {
		return "'" + s
	}
	return s
}

// uncell undoes cell.
func uncell(s string) string { return strings.TrimPrefix(s, "'") }

// addressCount counts the distinct addresses of p's exchanges.
func addressCount(p *route.Plan) int {
	seen := map[string]struct{}{}
	for h := range p.EachHost() {
		for _, a := range h.Addresses {
			seen[a] = struct{}{}
		}
	}
	return len(seen)
}

// findingIDs returns the distinct IDs of fs, sorted.
func findingIDs(fs []finding.Finding) []string {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, string(f.ID))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// maxRegistrables bounds a registrables memo: it is emptied when full.
const maxRegistrables = 4096

// registrables memoises registrable for one goroutine (the summary's
// writer, or an encoder). A scan's exchanges are mostly a few providers'
// hosts, and the public suffix lookup allocates (it tries every host as an
// address first). Emptied when full, it stays small whatever the input.
type registrables map[string]string

func (m registrables) of(host string) string {
	if d, ok := m[host]; ok {
		return d
	}
	if len(m) >= maxRegistrables {
		clear(m)
	}
	d := registrable(host)
	m[host] = d
	return d
}

// registrable returns the registrable domain of host (its public suffix
// plus one label), which names the provider that runs an exchange; host
// itself when it has none (an IP literal, a public suffix).
func registrable(host string) string {
	if _, err := netip.ParseAddr(host); err == nil {
		return host
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}

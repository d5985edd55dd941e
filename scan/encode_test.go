package scan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/report"
)

// goldenReports are check's golden reports (check/testdata/audit.json),
// without their blacklist details, which do not decode.
func goldenReports(tb testing.TB) []*check.Report {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "check", "testdata", "audit.json"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var reps []*check.Report
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatal(err)
		}
		if d, ok := m["details"].(map[string]any); ok {
			delete(d, "dnsbl")
		}
		js, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		r := &check.Report{}
		if err := json.Unmarshal(js, r); err != nil {
			tb.Fatal(err)
		}
		reps = append(reps, r)
	}
	if err := sc.Err(); err != nil || len(reps) == 0 {
		tb.Fatalf("%d golden reports: %v", len(reps), err)
	}
	return reps
}

// TestEncodeReuse: a line encoded into a reused buffer holding an older,
// longer line is report.AppendJSON's line, whatever the buffer held.
func TestEncodeReuse(t *testing.T) {
	e := newEncoder(FormatJSON)
	var buf []byte
	for _, r := range goldenReports(t) {
		want, err := report.AppendJSON(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		o := &outcome{value: r}
		e.encode(o, buf[:0])
		if !bytes.Equal(o.line, want) {
			t.Errorf("%s: line\n%s\nwant\n%s", r.Domain, o.line, want)
		}
		if cap(o.line) > cap(buf) {
			buf = o.line
		}
	}
}

// BenchmarkEncodeReport encodes a check report's line as a scan's
// workers do, into a line buffer given back by the writer.
func BenchmarkEncodeReport(b *testing.B) {
	r := goldenReports(b)[0]
	e := newEncoder(FormatJSON)
	var line []byte
	for b.Loop() {
		o := &outcome{value: r}
		e.encode(o, line[:0])
		line = o.line
	}
	b.SetBytes(int64(len(line)))
}

package scan

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

// checkItems checks what every reader promises: line numbers that never
// go back, echoes that are short and valid UTF-8, and a name or an error.
func checkItems(t *testing.T, items []Item) {
	t.Helper()
	var last int64
	for _, it := range items {
		if it.Line < last || it.Line < 1 {
			t.Fatalf("line %d after %d", it.Line, last)
		}
		last = it.Line
		if len(it.Input) > MaxInputEcho || !utf8.ValidString(it.Input) || strings.ContainsAny(it.Input, "\r\n") {
			t.Fatalf("echo %q", it.Input)
		}
		if (it.Err == nil) == (it.Name == "") {
			t.Fatalf("item %+v: a name and an error, or neither", it)
		}
	}
}

func names0(items []Item) []string {
	var out []string
	for _, it := range items {
		if it.Err == nil {
			out = append(out, it.Name.String())
		}
	}
	return out
}

// FuzzLines: any input reads without a panic; the names read, written
// back one a line, read back the same. Seeds: RFC 5321 §4.1.2 and
// RFC 5322 §3.4 address forms, and RFC 1035 §2.3.1 names.
func FuzzLines(f *testing.F) {
	for _, s := range []string{
		"Postmaster@example.com\n", "\"Joe Q. Public\"@example.com\n", "a.example\n# c\n\nb.example\r\n",
		"ISI.EDU.\nVENERA.ISI.EDU\n", "\ufeffbücher.example\n", "a..b\n@\n.\n", "x\xff.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		items, err := collect(t, Lines(strings.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, items)
		names := names0(items)
		again, err := collect(t, Lines(strings.NewReader(strings.Join(names, "\n"))))
		if err != nil {
			t.Fatal(err)
		}
		if got := names0(again); !slices.Equal(got, names) {
			t.Fatalf("re-read %q, want %q", got, names)
		}
	})
}

// FuzzCSV: any input reads without a panic; the names of a column,
// written back as CSV, read back the same.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{"1,google.com\n2,example.com\n", "\"a,b\",x.example\n", "a\"b,c\n", "\"unclosed,x\n", "#c\n\n,\n"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, in string, col int) {
		col = col%4 + 1
		if col < 1 {
			col += 4
		}
		items, err := collect(t, CSV(strings.NewReader(in), CSVOptions{Column: col}))
		if err != nil {
			return // a read error ends the input: allowed
		}
		checkItems(t, items)
		names := names0(items)
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		for _, n := range names {
			w.Write([]string{"x", n})
		}
		w.Flush()
		again, err := collect(t, CSV(&b, CSVOptions{Column: 2}))
		if err != nil {
			t.Fatal(err)
		}
		if got := names0(again); !slices.Equal(got, names) {
			t.Fatalf("re-read %q, want %q", got, names)
		}
	})
}

// FuzzZone: any zone text reads without a panic or a hang; every owner
// name read, written back as an MX record, reads back the same. The seed
// is the example zone of RFC 1035 §5.3.
func FuzzZone(f *testing.F) {
	f.Add(`$ORIGIN ISI.EDU.
@   IN  SOA     VENERA      Action\.domains (
                                 20     ; SERIAL
                                 7200   ; REFRESH
                                 600    ; RETRY
                                 3600000; EXPIRE
                                 60)    ; MINIMUM
        NS      A.ISI.EDU.
        NS      VENERA
        NS      VAXA
        MX      10      VENERA
        MX      20      VAXA
A       A       26.3.0.103
VENERA  A       10.1.0.52
        A       128.9.0.32
VAXA    A       10.2.0.27
        A       128.9.0.33
`)
	f.Add("$ORIGIN example.\n*.w MX 10 mx\nsub NS ns\n")
	f.Fuzz(func(t *testing.T, in string) {
		items, err := collect(t, Zone(strings.NewReader(in), "fuzz.", "fuzz"))
		_ = err // a syntax error ends the input: allowed
		checkItems(t, items)
		names := names0(items)
		var b strings.Builder
		for _, n := range names {
			b.WriteString(n + ". 60 MX 10 mx.example.\n")
		}
		again, err := collect(t, Zone(strings.NewReader(b.String()), "", "again"))
		if err != nil {
			t.Fatal(err)
		}
		got := names0(again)
		// Non-adjacent repeats past the recent set may come twice; the
		// second list has the same order, so compare without repeats.
		if !slices.Equal(slices.Compact(got), slices.Compact(names)) {
			t.Fatalf("re-read %q, want %q", got, names)
		}
	})
}

// FuzzJSONKey: the key read back from a line equals the domain written in
// it, whatever the domain's text; any line is read without a panic.
func FuzzJSONKey(f *testing.F) {
	for _, s := range []string{"a.example", "we\"ird\\", "\u2028<>&", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, domain string) {
		jsonKey([]byte(domain)) // anything: no panic
		var b bytes.Buffer
		if err := report.WriteJSON(&b, &ErrorRecord{Schema: 1, Domain: domain, Result: route.ResultError}); err != nil {
			t.Fatal(err)
		}
		var want struct{ Domain string }
		if err := json.Unmarshal(b.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		got, err := jsonKey(b.Bytes())
		if err != nil || got != want.Domain {
			t.Fatalf("jsonKey = %q, %v; want %q", got, err, want.Domain)
		}
	})
}

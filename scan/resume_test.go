package scan

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFile writes content to a new file and opens it as --resume does.
func openForResume(t *testing.T, content string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func contents(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestResumeTornLine: a run killed mid-line leaves a torn last line;
// Resume cuts it, and the resumed run writes exactly what one
// uninterrupted run writes, in JSON and in CSV.
func TestResumeTornLine(t *testing.T) {
	const in = "a.example\nbad..name\nb.example\nc.example\nd.example\n"
	for _, format := range []Format{FormatJSON, FormatCSV} {
		t.Run(string(format), func(t *testing.T) {
			full := runToString(t, in, Config{Job: instant, Format: format})
			lines := strings.SplitAfter(full, "\n")
			// Keep the first three lines (CSV: header and two rows) and
			// half of the fourth.
			torn := strings.Join(lines[:3], "") + lines[3][:len(lines[3])/2]
			f := openForResume(t, torn)
			done, err := Resume(f, format, false)
			if err != nil {
				t.Fatal(err)
			}
			if done.Repaired != int64(len(lines[3])/2) {
				t.Errorf("repaired %d bytes, want %d", done.Repaired, len(lines[3])/2)
			}
			if got := contents(t, f); got != strings.Join(lines[:3], "") {
				t.Fatalf("after the repair: %q", got)
			}
			sum, err := Run(t.Context(), Lines(strings.NewReader(in)), f, Config{Job: instant, Format: format, Done: done})
			if err != nil {
				t.Fatal(err)
			}
			wantSkipped := int64(3)
			if format == FormatCSV {
				wantSkipped = 2
			}
			if sum.Resumed != wantSkipped || done.Lines != wantSkipped {
				t.Errorf("skipped %d (done lines %d), want %d", sum.Resumed, done.Lines, wantSkipped)
			}
			if got := contents(t, f); stable(got) != stable(full) {
				t.Errorf("resumed output:\n%s\nwant:\n%s", got, full)
			}
		})
	}
}

func TestResumeNothingDone(t *testing.T) {
	// A run killed while writing the header leaves part of it.
	for _, content := range []string{"", "line,domain,res"} {
		f := openForResume(t, content)
		done, err := Resume(f, FormatCSV, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(t.Context(), Lines(strings.NewReader("a.example\n")), f, Config{Job: instant, Format: FormatCSV, Done: done}); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, f); !strings.HasPrefix(got, strings.Join(CSVHeader(), ",")+"\n") || strings.Count(got, "\n") != 2 {
			t.Errorf("%q resumed to %q, want the header and one row", content, got)
		}
	}
}

// TestResumeComplete: resuming a finished output writes nothing.
func TestResumeComplete(t *testing.T) {
	const in = "a.example\nb.example\n"
	full := runToString(t, in, Config{Job: instant})
	f := openForResume(t, full)
	done, err := Resume(f, FormatJSON, false)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(t.Context(), Lines(strings.NewReader(in)), f, Config{Job: instant, Done: done})
	if err != nil || sum.Written != 0 || sum.Resumed != 2 {
		t.Errorf("written %d, resumed %d, error %v", sum.Written, sum.Resumed, err)
	}
	if contents(t, f) != full {
		t.Error("a complete output changed")
	}
}

// TestResumeMismatch: an output that is not a prefix of this input (other
// list, other shard, an unordered run) is refused, and left as it was.
func TestResumeMismatch(t *testing.T) {
	out := runToString(t, "a.example\nb.example\n", Config{Job: instant})
	for _, tt := range []struct{ name, in, want string }{
		{"another list", "x.example\nb.example\nc.example\n", `line 1 of`},
		{"another order", "b.example\na.example\nc.example\n", `is "a.example", but entry 1`},
		{"a shorter list", "a.example\n", "more lines than the input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := openForResume(t, out)
			done, err := Resume(f, FormatJSON, false)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := Run(t.Context(), Lines(strings.NewReader(tt.in)), f, Config{Job: instant, Done: done})
			if !errors.Is(err, ErrResume) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrResume mentioning %q", err, tt.want)
			}
			if sum.Written != 0 || contents(t, f) != out {
				t.Errorf("wrote %d lines to a mismatched output", sum.Written)
			}
		})
	}
}

func TestResumeBadFile(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		format        Format
		want          string
	}{
		{"CSV without the header", "x,y\n", FormatCSV, "CSV header"},
		{"JSON resumed as CSV", "{\"schema\":1,\"domain\":\"a.example\"}\n", FormatCSV, "CSV header"},
		{"not JSON", "hello\n", FormatJSON, "not a JSON object"},
		{"JSON without domain", "{\"x\":1}\n", FormatJSON, `no "domain"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := openForResume(t, tt.content)
			done, err := Resume(f, tt.format, true)
			if err == nil {
				_, err = Run(t.Context(), Lines(strings.NewReader("a.example\n")), f, Config{Job: instant, Done: done, Format: tt.format})
			}
			if !errors.Is(err, ErrResume) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrResume mentioning %q", err, tt.want)
			}
		})
	}
}

// TestResumeNotOurs: a file that is not an output of scan (a binary, the
// input list given as --output by mistake) is refused before anything in
// it is cut; its "torn last line" was cut first.
func TestResumeNotOurs(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		format        Format
	}{
		{"binary", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff", FormatJSON},
		{"the input list", "a.example\nb.example\nc.exa", FormatJSON},
		{"an empty first line", "\n{\"schema\":1,\"dom", FormatJSON},
		{"the input list, as CSV", "a.example\nb.exa", FormatCSV},
		{"one torn line, not the header", "domain,resu", FormatCSV},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := openForResume(t, tt.content)
			_, err := Resume(f, tt.format, false)
			if !errors.Is(err, ErrResume) || !strings.Contains(err.Error(), "left as it was") {
				t.Errorf("error %v", err)
			}
			if got := contents(t, f); got != tt.content {
				t.Errorf("file changed to %q", got)
			}
		})
	}
}

// TestResumeUnorderedDuplicates: an unordered output is matched as a
// multiset, so an entry listed twice and written once is done once more.
func TestResumeUnorderedDuplicates(t *testing.T) {
	const in = "a.example\nb.example\na.example\nc.example\nbad..name\n"
	partial := runToString(t, "c.example\na.example\nbad..name\n", Config{Job: instant})
	f := openForResume(t, partial)
	done, err := Resume(f, FormatJSON, true)
	if err != nil {
		t.Fatal(err)
	}
	if done.Lines != 3 {
		t.Errorf("done lines %d, want 3", done.Lines)
	}
	sum, err := Run(t.Context(), Lines(strings.NewReader(in)), f, Config{Job: instant, Done: done, Unordered: true})
	if err != nil {
		t.Fatal(err)
	}
	got := domains(t, contents(t, f))
	slices.Sort(got)
	if want := []string{"a.example", "a.example", "b.example", "bad..name", "c.example"}; !slices.Equal(got, want) || sum.Resumed != 3 || sum.Written != 2 {
		t.Errorf("got %q (resumed %d, written %d), want %q", got, sum.Resumed, sum.Written, want)
	}
}

func TestJSONKey(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{`{"schema":1,"domain":"a.example","result":"ok"}`, "a.example"},
		{`{"schema":12,"domain":"we\"ird\\\u00e9","result":"error"}`, `we"ird\é`},
		{`{"result":"ok","domain":"b.example"}`, "b.example"}, // not scan's order: decoded in full
		{`{"schema":1,"domain":"\ufffd"}`, "\ufffd"},
	} {
		got, err := jsonKey([]byte(tt.line + "\n"))
		if err != nil || got != tt.want {
			t.Errorf("jsonKey(%s) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"schema":1,"domain":"unterminated`, `[1]`, ``, `{"schema":1}`} {
		if got, err := jsonKey([]byte(bad)); err == nil {
			t.Errorf("jsonKey(%s) = %q, want an error", bad, got)
		}
	}
}

func TestLastLineEnd(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 0}, {"a\n", 2}, {"a\nb", 2}, {"a\nb\n", 4}, {"a\n" + big, 2}, {big + "\n" + big, len(big) + 1},
	} {
		got, err := lastLineEnd(strings.NewReader(tt.in), int64(len(tt.in)))
		if err != nil || got != int64(tt.want) {
			t.Errorf("lastLineEnd(%d bytes) = %d, %v; want %d", len(tt.in), got, err, tt.want)
		}
	}
}

// TestResumeLongLines: keys are read from lines longer than the reader's
// buffer (a large check report).
func TestResumeLongLines(t *testing.T) {
	long := `{"schema":1,"domain":"a.example","pad":"` + strings.Repeat("p", 200<<10) + "\"}\n"
	f := openForResume(t, long+`{"schema":1,"domain":"b.example"}`+"\n")
	done, err := Resume(f, FormatJSON, true)
	if err != nil || done.Lines != 2 {
		t.Fatalf("lines %v, error %v", done, err)
	}
	var out bytes.Buffer
	sum, err := Run(t.Context(), Lines(strings.NewReader("a.example\nb.example\nc.example\n")), &out, Config{Job: instant, Done: done, Unordered: true})
	if err != nil || sum.Resumed != 2 || sum.Written != 1 {
		t.Errorf("resumed %d, written %d, error %v", sum.Resumed, sum.Written, err)
	}
}

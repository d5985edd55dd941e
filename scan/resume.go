package scan

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrResume is wrapped by the errors of Resume, and by a resumed run whose
// output does not match its input.
var ErrResume = errors.New("scan: cannot resume")

// Done is what an earlier run already wrote to an output file: the entries
// a resumed run skips.
//
// In input order (the default) the output is always a prefix of the
// input's entries, so the k-th line of the file is the k-th entry: a
// resumed run reads the file's keys as it reads the input, skips entry by
// entry while they agree, and stops with ErrResume when they do not (a
// different input, shard or format). That is exact, handles duplicate
// entries, and costs no memory. An --unordered output is no prefix: its
// keys are counted in a multiset of 64-bit FNV-1a hashes (about 20 bytes
// per line), and each entry whose key is still counted there is skipped
// and uncounted, so duplicates are handled too.
type Done struct {
	// Repaired is how many bytes of a torn last line were cut off.
	Repaired int64
	// Lines is how many complete lines the file holds (the CSV header
	// not counted). In input order it is known once the run has read
	// them all; with --unordered, at once.
	Lines int64

	header  bool             // the file starts with the CSV header
	keys    *lineKeys        // input order: the keys, in file order
	pending bool             // keys may still hold lines
	set     map[uint64]int32 // unordered: lines per key hash
}

// Resume prepares f, an output file opened for reading and appending, to be
// continued: it cuts a torn last line (a run killed mid-write), checks the
// CSV header, and reads which entries are done. unordered says whether the
// file was written with --unordered (see Done).
func Resume(f *os.File, format Format, unordered bool) (*Done, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResume, err)
	}
	end, err := lastLineEnd(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResume, err)
	}
	if err := checkStart(f, f.Name(), st.Size(), format); err != nil {
		return nil, err
	}
	d := &Done{Repaired: st.Size() - end}
	if end < st.Size() {
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("%w: cutting the torn last line: %w", ErrResume, err)
		}
	}
	keys := &lineKeys{br: bufio.NewReaderSize(io.NewSectionReader(f, 0, end), 64<<10), format: format, name: f.Name()}
	if format == FormatCSV && end > 0 {
		first, err := keys.br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrResume, f.Name(), err)
		}
		keys.line++
		if want := strings.Join(CSVHeader(), ","); strings.TrimRight(first, "\r\n") != want {
			return nil, fmt.Errorf("%w: %s does not start with the CSV header %q", ErrResume, f.Name(), want)
		}
		d.header = true
	}
	if !unordered {
		d.keys, d.pending = keys, true
		return d, nil
	}
	d.set = map[uint64]int32{}
	for {
		k, ok, err := keys.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return d, nil
		}
		d.set[keyHash(k)]++
		d.Lines++
	}
}

// skip reports whether it was done by the earlier run; in input order an
// entry that disagrees with the file is an error.
func (d *Done) skip(it Item, seq int64) (bool, error) {
	if d.set != nil {
		h := keyHash(it.Key())
		if d.set[h] > 0 {
			d.set[h]--
			return true, nil
		}
		return false, nil
	}
	if !d.pending {
		return false, nil
	}
	k, ok, err := d.keys.next()
	if err != nil {
		return false, err
	}
	if !ok {
		d.pending = false
		return false, nil
	}
	if k != it.Key() {
		return false, fmt.Errorf("%w: line %d of %s is %q, but entry %d of the input (line %d) is %q: not the same input, shard or order (resume an --unordered output with --unordered)",
			ErrResume, d.keys.line, d.keys.name, k, seq+1, it.Line, it.Key())
	}
	d.Lines++
	return true, nil
}

// rest checks, at the end of the input, that the file held no more lines
// than the input has entries.
func (d *Done) rest() error {
	if !d.pending {
		return nil
	}
	k, ok, err := d.keys.next()
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%w: %s has more lines than the input has entries (line %d is %q)", ErrResume, d.keys.name, d.keys.line, k)
	}
	d.pending = false
	return nil
}

// checkStart refuses a file that cannot be an output of scan in format,
// before anything in it is cut: one whose first line does not start a
// JSON object, or is not the CSV header (or, when the file holds no
// newline, the start of it). A wrong --output file (a binary, the input
// list) is then left as it was; its torn "last line" was cut before.
func checkStart(f io.ReaderAt, name string, size int64, format Format) error {
	if size == 0 {
		return nil
	}
	head := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return fmt.Errorf("%w: %w", ErrResume, err)
	}
	line, _, complete := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if format == FormatCSV {
		want := strings.Join(CSVHeader(), ",")
		if complete && string(line) != want || !complete && !strings.HasPrefix(want, string(line)) {
			return fmt.Errorf("%w: %s does not start with the CSV header %q; it was left as it was", ErrResume, name, want)
		}
		return nil
	}
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("%w: the first line of %s is not a JSON object, as every line scan writes is; it was left as it was", ErrResume, name)
	}
	return nil
}

// lastLineEnd returns the offset just after the last newline of the first
// size bytes of f (0 when there is none).
func lastLineEnd(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// lineKeys reads the key (the "domain") of each line of an output file.
type lineKeys struct {
	br     *bufio.Reader
	format Format
	name   string
	line   int64
}

// next returns the next line's key; ok is false at the end.
func (k *lineKeys) next() (key string, ok bool, err error) {
	b, err := k.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// The key is at the start; the rest of a long line is skipped.
		b = bytes.Clone(b)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = k.br.ReadSlice('\n')
		}
	}
	if len(b) == 0 && err == io.EOF {
		return "", false, nil
	}
	if err != nil && err != io.EOF {
		return "", false, fmt.Errorf("%w: reading %s: %w", ErrResume, k.name, err)
	}
	k.line++
	if k.format == FormatCSV {
		key, err = csvKey(b)
	} else {
		key, err = jsonKey(b)
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %s line %d: %w", ErrResume, k.name, k.line, err)
	}
	return key, true, nil
}

// jsonPrefix starts every line scan writes: "schema" then "domain".
var jsonPrefix = []byte(`{"schema":`)

// jsonKey returns the "domain" member of a JSON line. Every object scan
// writes begins with "schema" and "domain", so the member is read from the
// line's start without decoding what follows (a check report is large);
// other lines are decoded in full.
func jsonKey(line []byte) (string, error) {
	if rest, ok := bytes.CutPrefix(line, jsonPrefix); ok {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if rest, ok := bytes.CutPrefix(rest[i:], []byte(`,"domain":`)); ok {
			if end := jsonStringEnd(rest); end > 0 {
				var s string
				if err := json.Unmarshal(rest[:end], &s); err == nil {
					return s, nil
				}
			}
		}
	}
	var v struct {
		Domain *string `json:"domain"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	if v.Domain == nil {
		return "", errors.New(`no "domain" member`)
	}
	return *v.Domain, nil
}

// jsonStringEnd returns the length of the JSON string at the start of b,
// quotes included, or 0.
func jsonStringEnd(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return 0
}

// csvKey returns the domain column of a CSV line.
func csvKey(line []byte) (string, error) {
	rec, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		return "", fmt.Errorf("not a CSV row: %w", err)
	}
	if len(rec) <= csvDomainColumn {
		return "", fmt.Errorf("%d fields, want %d", len(rec), len(CSVHeader()))
	}
	return uncell(rec[csvDomainColumn]), nil
}

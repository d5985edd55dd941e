package scan

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// got is an item as the tables write it: "LINE NAME" for a domain,
// "LINE !INPUT" for an error item.
func got(items []Item) []string {
	var out []string
	for _, it := range items {
		if it.Err != nil {
			out = append(out, fmt.Sprintf("%d !%s", it.Line, it.Input))
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", it.Line, it.Name))
	}
	return out
}

// collect reads src to its end.
func collect(t *testing.T, src Source) ([]Item, error) {
	t.Helper()
	var items []Item
	for it, err := range src {
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
	return items, nil
}

func TestLines(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{"plain", "a.example\nb.example\n", []string{"1 a.example", "2 b.example"}},
		{"no final newline", "a.example\nb.example", []string{"1 a.example", "2 b.example"}},
		{"blank lines and comments skipped, numbers kept", "\n# list\n  # indented comment\na.example\n\n\t\nb.example\n", []string{"4 a.example", "7 b.example"}},
		{"spaces trimmed, CRLF, case", "  A.Example  \r\nB.EXAMPLE.\t\r\n", []string{"1 a.example", "2 b.example"}},
		{"address: the part after the last @", "user@a.example\n\"odd@local\"@b.example\nuser#tag@c.example\n", []string{"1 a.example", "2 b.example", "3 c.example"}},
		{"IDN to A-label", "bücher.example\n", []string{"1 xn--bcher-kva.example"}},
		{"byte order mark", "\ufeffa.example\n", []string{"1 a.example"}},
		{"invalid lines are items, not dropped", "a..example\nok.example\nbad name.example\n@\n", []string{"1 !a..example", "2 ok.example", "3 !bad name.example", "4 !@"}},
		{"a comment after an entry is not one", "a.example # note\n", []string{"1 !a.example # note"}},
		{"invalid UTF-8 echoed as U+FFFD", "a\xffb.example\n", []string{"1 !a\ufffdb.example"}},
		{"empty input", "", nil},
		{"duplicates kept", "a.example\na.example\n", []string{"1 a.example", "2 a.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			items, err := collect(t, Lines(strings.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			if g := got(items); strings.Join(g, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", g, tt.want)
			}
			for _, it := range items {
				if it.Err != nil && !errors.Is(it.Err, dnsname.ErrInvalid) && !errors.Is(it.Err, ErrInput) {
					t.Errorf("line %d: error %v wraps neither dnsname.ErrInvalid nor ErrInput", it.Line, it.Err)
				}
			}
		})
	}
}

// TestLinesLong: a line over MaxLineLength is one error item, echoed in
// part, and the next line is read as usual.
func TestLinesLong(t *testing.T) {
	in := "a.example\n" + strings.Repeat("x", 3*MaxLineLength) + "\nb.example\n"
	items, err := collect(t, Lines(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[1].Err == nil || !errors.Is(items[1].Err, ErrInput) || items[2].Name != "b.example" || items[2].Line != 3 {
		t.Fatalf("got %q", got(items))
	}
	if len(items[1].Input) > MaxInputEcho {
		t.Errorf("echo of %d bytes, cap %d", len(items[1].Input), MaxInputEcho)
	}
}

// TestLinesReadError: a failing reader ends the source with an error after
// the entries read before it.
func TestLinesReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := iotest.DataErrReader(strings.NewReader("a.example\n"))
	items, err := collect(t, Lines(&failAfter{r: r, err: boom}))
	if !errors.Is(err, boom) || len(items) != 1 {
		t.Fatalf("items %q, error %v; want one item, then %v", got(items), err, boom)
	}
}

type failAfter struct {
	r   interface{ Read([]byte) (int, error) }
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil {
		return n, f.err
	}
	return n, nil
}

func TestCSV(t *testing.T) {
	const tranco = "1,google.com\n2,Facebook.com\n3,bad..name\n"
	for _, tt := range []struct {
		name string
		in   string
		opt  CSVOptions
		want []string
	}{
		{"column 2", tranco, CSVOptions{Column: 2}, []string{"1 google.com", "2 facebook.com", "3 !bad..name"}},
		{"column 1 is ranks: not domains... but 1 is a valid label", "1,a.example\n", CSVOptions{Column: 1}, []string{"1 1"}},
		{"header by name", "rank,Domain\n1,a.example\n2,b.example\n", CSVOptions{ColumnName: "domain"}, []string{"2 a.example", "3 b.example"}},
		{"header skipped by number", "rank,domain\n1,a.example\n", CSVOptions{Column: 2, Header: true}, []string{"2 a.example"}},
		{"quoted field with comma and newline", "\"x,y\",a.example\n\"multi\nline\",b.example\n", CSVOptions{Column: 2}, []string{"1 a.example", "3 b.example"}},
		{"missing column is an error item", "1,a.example\n2\n3,b.example\n", CSVOptions{Column: 2}, []string{"1 a.example", "2 !2", "3 b.example"}},
		{"comments and blank lines", "# top sites\n\n1,a.example\n", CSVOptions{Column: 2}, []string{"3 a.example"}},
		{"spaces trimmed", "1,  a.example  \n", CSVOptions{Column: 2}, []string{"1 a.example"}},
		{"tab separated", "1\ta.example\n", CSVOptions{Column: 2, Comma: '\t'}, []string{"1 a.example"}},
		{"byte order mark", "\ufeffa.example,1\n", CSVOptions{Column: 1}, []string{"1 a.example"}},
		{"byte order mark in a header", "\ufeffdomain,rank\na.example,1\n", CSVOptions{ColumnName: "domain"}, []string{"2 a.example"}},
		{"bare quotes accepted", "1,a\"b.example\n", CSVOptions{Column: 2}, []string{"1 !a\"b.example"}},
		{"a line break inside an invalid quoted value is echoed as a space", "\"a\nb\",x\n", CSVOptions{Column: 1}, []string{"1 !a b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			items, err := collect(t, CSV(strings.NewReader(tt.in), tt.opt))
			if err != nil {
				t.Fatal(err)
			}
			if g := got(items); strings.Join(g, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		opt      CSVOptions
		want     string
	}{
		{"no such header", "rank,domain\n1,a.example\n", CSVOptions{ColumnName: "host"}, `no column "host"`},
		{"column 0", "a\n", CSVOptions{Column: 0}, "count from 1"},
		// An unclosed quote would take the rest of the input as one
		// field: the input is given up past MaxCSVRecord, not read into
		// memory whole.
		{"runaway quote", "1,a.example\n2,\"" + strings.Repeat("x\n", MaxCSVRecord) + "\n", CSVOptions{Column: 2}, "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(t, CSV(strings.NewReader(tt.in), tt.opt))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

const testZone = `$ORIGIN example.
$TTL 3600
@       SOA ns.example. hostmaster.example. (
            1   ; serial
            7200 900 1209600 300 )
@       NS   ns.example.
ns      A    192.0.2.53
; a delegation, and mail domains
child   NS   ns.child.example.
child   NS   ns2.child.example.
ns.child A   192.0.2.54
mail    MX   10 mx.mail.example.
mail    MX   20 mx2.mail.example.
mail    TXT  "v=spf1 -all"
mail    NS   ns.example.
other   MX   10 mx.mail.example.
mail    MX   30 mx3.mail.example.   ; the same owner again, later
*.wild  MX   10 mx.mail.example.
Upper   MX   10 mx.mail.example.
`

func TestZone(t *testing.T) {
	items, err := collect(t, Zone(strings.NewReader(testZone), "", "test.zone"))
	if err != nil {
		t.Fatal(err)
	}
	// Every name with NS or MX, once (the repeated "mail" is within the
	// recent set), a wildcard as an error item, in file order, with the
	// line of its first NS or MX record.
	want := []string{"6 example", "9 child.example", "12 mail.example", "16 other.example", "18 !*.wild.example.", "19 upper.example"}
	if g := got(items); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", g, want)
	}
}

func TestZoneOrigin(t *testing.T) {
	items, err := collect(t, Zone(strings.NewReader("@ SOA ns hm 1 2 3 4 5\n@ MX 10 mx\nsub NS ns\n"), "test.", "z"))
	if err != nil {
		t.Fatal(err)
	}
	if g := got(items); strings.Join(g, "|") != "2 test|3 sub.test" {
		t.Errorf("got %q", g)
	}
}

// TestZoneError: a syntax error ends the input with an error naming the
// file and line, after the names read before it.
func TestZoneError(t *testing.T) {
	items, err := collect(t, Zone(strings.NewReader("$ORIGIN example.\na MX 10 mx.example.\nb MX ten mx.example.\nc MX 10 mx.example.\n"), "", "broken.zone"))
	if err == nil || !strings.Contains(err.Error(), "broken.zone") || !strings.Contains(err.Error(), "line: 3") {
		t.Errorf("error %v, want one naming broken.zone line 3", err)
	}
	if g := got(items); strings.Join(g, "|") != "2 a.example" {
		t.Errorf("got %q before the error", g)
	}
	// $INCLUDE would read any file the zone names.
	_, err = collect(t, Zone(strings.NewReader("$INCLUDE /etc/passwd\n"), "example.", "inc.zone"))
	if err == nil {
		t.Error("$INCLUDE accepted")
	}
}

// TestZoneLongLine: a zone file that is one endless line (/dev/zero, a
// binary file) ends the input at resolve.MaxZoneLine octets with a short
// error, without reading on; a long line of garbage under the bound gives
// the parser's error with the token it quotes cut, and its line.
func TestZoneLongLine(t *testing.T) {
	r := io.LimitReader(zeroReader{}, 8*resolve.MaxZoneLine)
	_, err := collect(t, Zone(r, "example.", "zero.zone"))
	if err == nil || !strings.Contains(err.Error(), "line 1 is longer than") {
		t.Errorf("error %.200q", err)
	}
	if rest, _ := io.Copy(io.Discard, r); rest < 6*resolve.MaxZoneLine {
		t.Errorf("read %d octets past the first line", 8*resolve.MaxZoneLine-rest)
	}
	text := "$ORIGIN example.\na MX 10 mx.example.\n" + strings.Repeat("\x00", 900_000) + "\n"
	_, err = collect(t, Zone(strings.NewReader(text), "", "nul.zone"))
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "line: 3:") {
		t.Errorf("error of %d octets: %.200q", len(err.Error()), err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestZoneDedupeBounded(t *testing.T) {
	// A name repeated after more than recentOwners other owners is
	// yielded again (documented); within that, once.
	var b strings.Builder
	b.WriteString("$ORIGIN example.\nfirst MX 10 mx\n")
	for i := range recentOwners + 10 {
		fmt.Fprintf(&b, "n%d MX 10 mx\n", i)
	}
	b.WriteString("first MX 20 mx\n")
	items, err := collect(t, Zone(strings.NewReader(b.String()), "", "z"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(items); n != recentOwners+12 {
		t.Errorf("%d items, want %d (first, the others, first again)", n, recentOwners+12)
	}
	items, err = collect(t, Zone(strings.NewReader("$ORIGIN example.\nfirst MX 10 mx\nn1 MX 10 mx\nfirst MX 20 mx\n"), "", "z"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Errorf("got %q, want first and n1 once each", got(items))
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]string{"0/1": "0/1", "3/16": "3/16", "15/16": "15/16"} {
		s, err := ParseShard(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseShard(%q) = %v, %v", in, s, err)
		}
	}
	for _, in := range []string{"", "1", "16/16", "-1/4", "1/0", "a/b", "1/4/2"} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q) accepted", in)
		}
	}
}

// TestShardPartition: the shards of an input are disjoint and together
// the whole input, whatever N; an entry's shard depends on its name only
// (not its spelling or its position), and is the same on every run and
// machine.
func TestShardPartition(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "d%d.example\n", i)
	}
	b.WriteString("bad..name\nD7.Example.\n")
	all, err := collect(t, Lines(strings.NewReader(b.String())))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 7, 16} {
		seen := make([]int, len(all))
		for i := range n {
			s := Shard{i, n}
			size := 0
			for k, it := range all {
				if s.Has(it) {
					seen[k]++
					size++
				}
			}
			// Each share is near 1/N (FNV-1a spreads well).
			if exp := len(all) / n; n > 1 && (size < exp*8/10 || size > exp*12/10) {
				t.Errorf("shard %v holds %d of %d entries, expected about %d", s, size, len(all), exp)
			}
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("N=%d: entry %q is in %d shards", n, all[k].Key(), c)
			}
		}
	}
	// The same name written differently is in the same shard.
	d7, D7 := all[7], all[len(all)-1]
	for _, n := range []int{2, 7, 16} {
		for i := range n {
			if (Shard{i, n}).Has(d7) != (Shard{i, n}).Has(D7) {
				t.Errorf("d7.example and D7.Example. in different shards of %d", n)
			}
		}
	}
	// Stable: these values are part of the interface (a resumed or
	// re-run shard must select the same entries). FNV-1a as hash/fnv.
	for _, key := range []string{"", "example.com", "d1.example", "bücher"} {
		h := fnv.New64a()
		h.Write([]byte(key))
		if got := keyHash(key); got != h.Sum64() {
			t.Errorf("keyHash(%q) = %x, FNV-1a is %x", key, got, h.Sum64())
		}
	}
	for key, shard := range map[string]int{"example.com": 6, "google.com": 5, "d1.example": 6} {
		if keyHash(key)%16 != uint64(shard) {
			t.Errorf("%s is in shard %d of 16, was %d", key, keyHash(key)%16, shard)
		}
	}
}

func TestCount(t *testing.T) {
	src := Lines(strings.NewReader("a.example\n#c\nb.example\nbad..x\n"))
	if n, err := Count(t.Context(), src, Shard{}); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var b strings.Builder
	for range 5000 {
		b.WriteString("a.example\n")
	}
	if _, err := Count(ctx, Lines(strings.NewReader(b.String())), Shard{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Count with a cancelled context: %v", err)
	}
}

func TestEcho(t *testing.T) {
	long := strings.Repeat("é", MaxInputEcho)
	if e := echo(long); len(e) > MaxInputEcho || !strings.HasPrefix(long, e) {
		t.Errorf("echo cut %d bytes badly: %d bytes", len(long), len(e))
	}
	if e := echo("a\xff\xfeb"); e != "a\ufffd\ufffdb" {
		t.Errorf("echo = %q", e)
	}
}

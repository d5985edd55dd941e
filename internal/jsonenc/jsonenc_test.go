package jsonenc

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdlib is what encoding/json writes for v with HTML escaping off,
// without the Encoder's newline.
func stdlib(t testing.TB, v any) []byte {
	t.Helper()
	b, err := AppendReflect(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marshal is what json.Marshal writes for v: HTML escaping on.
func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkString compares AppendString with the Encoder and AppendStringHTML
// with json.Marshal.
func checkString(t testing.TB, s string) {
	t.Helper()
	prefix := []byte("x") // AppendString appends: what is there stays
	got := AppendString(prefix, s)
	want := append([]byte("x"), stdlib(t, s)...)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendString(%+q) = %s, encoding/json writes %s", s, got, want)
	}
	got = AppendStringHTML(prefix[:1:1], s)
	want = append([]byte("x"), marshal(t, s)...)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendStringHTML(%+q) = %s, json.Marshal writes %s", s, got, want)
	}
}

// TestAppendStringBytes: every single byte, alone and between text (so the
// copying of the unescaped runs around it is tested too), and every pair
// of bytes (invalid, truncated and overlong UTF-8 sequences).
func TestAppendStringBytes(t *testing.T) {
	for c := range 256 {
		checkString(t, string([]byte{byte(c)}))
		checkString(t, "a<"+string([]byte{byte(c)})+">&é")
	}
	for i := range 1 << 16 {
		s := string([]byte{byte(i >> 8), byte(i)})
		got, want := AppendString(nil, s), stdlib(t, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%+q) = %s, encoding/json writes %s", s, got, want)
		}
		got, want = AppendStringHTML(nil, s), marshal(t, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendStringHTML(%+q) = %s, json.Marshal writes %s", s, got, want)
		}
	}
}

// TestAppendStringWords: every byte at every place of an eight-byte word
// of plain text (AppendString tests eight bytes at once), and every pair
// of bytes across the end of a word.
func TestAppendStringWords(t *testing.T) {
	const plain = "abcdefghijklmnopqrstuvwx"
	for c := range 256 {
		for pos := range 16 {
			checkString(t, plain[:pos]+string([]byte{byte(c)})+plain[pos:])
		}
	}
	for i := range 1 << 16 {
		checkString(t, plain[:7]+string([]byte{byte(i >> 8), byte(i)})+plain[:8])
	}
}

// TestAppendStringRunes: every valid rune, in runs of 1024 between ASCII
// letters, and the runes of interest alone and in pairs.
func TestAppendStringRunes(t *testing.T) {
	var b strings.Builder
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		b.WriteRune(r)
		if r%1024 == 1023 || r == utf8.MaxRune {
			b.WriteString("z")
			checkString(t, b.String())
			b.Reset()
		}
	}
	interesting := []string{"", "\"", "\\", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"\u2028", "\u2029", "\u2027", "\u202a", "\ufffd", "\xef\xbf\xbd", "\xff", "\xc0\x80", "\xed\xa0\x80",
		"\xe2\x80", "\xe2\x80\xa8", "\xf4\x90\x80\x80", "\U0010ffff", "é", "日本", "🙂", "\u00a0", "\x80abc"}
	for _, a := range interesting {
		for _, z := range interesting {
			checkString(t, a+z)
			checkString(t, "k"+a+"mid"+z+"k")
		}
	}
}

func TestAppendStrings(t *testing.T) {
	type id string
	for _, ss := range [][]id{nil, {}, {""}, {"a", "b\"c"}, {"\u2028", "\xff", "<&>"}} {
		got, want := AppendStrings([]byte("x"), ss), append([]byte("x"), stdlib(t, ss)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendStrings(%q) = %s, encoding/json writes %s", ss, got, want)
		}
		got, want = AppendStringsHTML([]byte("x"), ss), append([]byte("x"), marshal(t, ss)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendStringsHTML(%q) = %s, json.Marshal writes %s", ss, got, want)
		}
	}
}

// TestAppendAddr: the zero address, both families, a mapped address and
// zones that need escaping, with HTML escaping off and on.
func TestAppendAddr(t *testing.T) {
	v6 := netip.MustParseAddr("fe80::1")
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:192.0.2.1"), v6.WithZone("eth0"), v6.WithZone("<\"\u2028\xff&>")} {
		got, want := AppendAddr([]byte("x"), a), append([]byte("x"), stdlib(t, a)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendAddr(%v) = %s, encoding/json writes %s", a, got, want)
		}
		got, want = AppendAddrHTML([]byte("x"), a), append([]byte("x"), marshal(t, a)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendAddrHTML(%v) = %s, json.Marshal writes %s", a, got, want)
		}
	}
}

// TestAppendBytes: nil, empty and every padding length.
func TestAppendBytes(t *testing.T) {
	for _, p := range [][]byte{nil, {}, {0}, {0xff, 0xfe}, {1, 2, 3}, []byte("<&>\xff")} {
		got, want := AppendBytes([]byte("x"), p), append([]byte("x"), stdlib(t, p)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendBytes(%v) = %s, encoding/json writes %s", p, got, want)
		}
	}
}

type text int

func (text) MarshalText() ([]byte, error) { return []byte("t"), nil }

type js struct{}

func (*js) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

// TestFields: what a hand-written encoder must follow shows in the
// description, and changes it.
func TestFields(t *testing.T) {
	type s struct {
		A string `json:"a,omitempty"`
		B []text
		C map[string]*js
		d int
	}
	want := `A string json:"a,omitempty"
B []jsonenc.text text:jsonenc.text text:*jsonenc.text
C map[string]*jsonenc.js json:*jsonenc.js
d int
`
	if got := Fields(reflect.TypeFor[s]()); got != want {
		t.Errorf("Fields = %q, want %q", got, want)
	}
	type retagged struct {
		A string `json:"a"`
		B []text
		C map[string]*js
		d int
	}
	if Fields(reflect.TypeFor[retagged]()) == want {
		t.Error("a changed tag leaves Fields as it was")
	}
}

func TestAppendReflect(t *testing.T) {
	got, err := AppendReflect([]byte("x"), map[string]string{"k": "<\u2028>"})
	if want := "x{\"k\":\"<\\u2028>\"}"; err != nil || string(got) != want {
		t.Errorf("AppendReflect = %s, %v; want %s", got, err, want)
	}
	got, err = AppendReflect([]byte("x"), func() {})
	if err == nil || string(got) != "x" {
		t.Errorf("AppendReflect(func) = %s, %v; want x and an error", got, err)
	}
}

// BenchmarkAppendString: a finding's message, the most of a report line.
func BenchmarkAppendString(b *testing.B) {
	s := "The exchange backup.example.org has no IPv6 address: senders on IPv6-only networks cannot reach it (RFC 5321 §5.1)."
	var buf []byte
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
	b.SetBytes(int64(len(s)))
}

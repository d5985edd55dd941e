package jsonenc

import (
	"bytes"
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

func checkString(t *testing.T, s string) {
	t.Helper()
	prefix := []byte("x") // AppendString appends: what is there stays
	got := AppendString(prefix, s)
	want := append([]byte("x"), stdlib(t, s)...)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendString(%+q) = %s, encoding/json writes %s", s, got, want)
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

package printable

import (
	"fmt"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":           "plain text",
		"tab\there":            "tab\there",
		"esc \x1b[31mred":      `esc \x1b[31mred`,
		"nul \x00":             `nul \x00`,
		"cr lf \r\n":           `cr lf \x0d\x0a`,
		"del \x7f":             `del \x7f`,
		"bad utf8 \xff":        `bad utf8 \xff`,
		"ünïcödé ok":           "ünïcödé ok",
		"c1 \u0085 and \ufffd": `c1 \x85 and ` + "\ufffd",
		`back\slash`:           `back\\slash`,
		`\x01 written out`:     `\\x01 written out`,
		"\x01 the byte":        `\x01 the byte`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestControls: control characters and invalid UTF-8 are escaped as by
// String, but a backslash stays, so text String escaped comes through
// unchanged.
func TestControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":               "plain text",
		"esc \x1b[31mred\x07":      `esc \x1b[31mred\x07`,
		"bad utf8 \xff":            `bad utf8 \xff`,
		`back\slash`:               `back\slash`,
		String("\x01 and \\"):      `\x01 and \\`,
		"tab\there, ünïcödé stays": "tab\there, ünïcödé stays",
	} {
		if got := Controls(in); got != want {
			t.Errorf("Controls(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCut: at most n octets, cut at a character boundary, marked.
func TestCut(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text", 10, "a longe…"},
		{"ééééé", 6, "é…"},
	} {
		got := Cut(tt.in, tt.n)
		if got != tt.want || len(got) > tt.n {
			t.Errorf("Cut(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// FuzzString: the result is valid UTF-8 without control characters other
// than tab, whatever the input.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "220 mx ESMTP", "\x1b]0;title\x07", "\xff\xfe", "a\u0085b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if r != '\t' && (r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
				t.Fatalf("String(%q) = %q keeps control character %U", s, out, r)
			}
		}
	})
}

func ExampleString() {
	fmt.Println(String("220 mx.example.com ESMTP \x1b[2J"))
	// Output: 220 mx.example.com ESMTP \x1b[2J
}

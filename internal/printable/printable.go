// Package printable makes text from remote servers safe to print on a
// terminal and to keep in JSON. SMTP replies, certificate names and the
// like come from hosts mxtrace is pointed at because they may be broken or
// hostile: a reply can carry terminal escape sequences that move the
// cursor, recolour or retitle the user's terminal, or bytes that are not
// UTF-8.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with invalid UTF-8 and control characters (C0, DEL and
// C1, so ESC and CSI too) written as \xNN (\uNNNN above U+00FF) escapes,
// and a backslash written as \\, so that the escaped text reads back
// unambiguously (a server that sends the four characters \x01 is told from
// one that sends the byte 0x01); tabs stay. This is the one escape of
// server text: what it returns is printed and stored as it is, never
// quoted with %q or escaped again. Text that needs no escape is returned as
// it is, without copying.
func String(s string) string { return escape(s, true) }

// Controls escapes, as String does, invalid UTF-8 and control characters
// (tabs stay), but leaves backslashes alone: it guards text assembled from
// parts that should each be escaped already, such as a finding's message,
// so that one part that was not (a TXT record quoted as it is) cannot
// reach a terminal raw, while text escaped by String comes through
// unchanged, never escaped twice.
func Controls(s string) string { return escape(s, false) }

// escape writes invalid UTF-8 and control characters but tab as \xNN or
// \uNNNN, and with backslash, a backslash as \\; text that needs no
// escape is returned as it is.
func escape(s string, backslash bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (backslash && r == '\\') || (unicode.IsControl(r) && r != '\t') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case backslash && r == '\\':
			b.WriteString(`\\`)
		case unicode.IsControl(r) && r != '\t':
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Cut returns s cut to at most n octets at a character boundary, with
// "…" in place of what was cut.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + "…"
}

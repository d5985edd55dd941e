// Package jsonenc appends JSON values to a byte slice without reflection,
// byte for byte as encoding/json writes them with SetEscapeHTML(false).
//
// It exists for the scan's hot path: encoding/json's reflection was a
// noticeable share of a scan's CPU for the one line written per domain
// (docs/performance.md). The types that use it (route.Plan,
// finding.Finding, check.Report and every type a report holds) write
// their fields by hand with AppendString and strconv; differential tests
// and fuzz targets in route and check compare every byte with
// encoding/json's, and their tests use Fields to fail when a struct
// changes under a hand-written encoder. The HTML variants write what
// json.Marshal writes, for types whose MarshalJSON is built on it.
// AppendReflect is encoding/json itself, for every other value (those two
// use reflection, the encoders do not).
package jsonenc

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json escapes
// it with HTML escaping off:
//   - '"' and '\' get a backslash;
//   - control characters below U+0020 are \b, \f, \n, \r, \t or \u00XX
//     (lower-case hex); DEL (0x7f) is written as it is;
//   - each byte that is not part of valid UTF-8 becomes \ufffd;
//   - U+2028 and U+2029 become \u2028 and \u2029 (JavaScript reads them
//     as line ends inside a string);
//   - everything else, '<', '>' and '&' included, is written as it is.
func AppendString(b []byte, s string) []byte { return appendString(b, s, false) }

// Byte patterns for plain8.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// word is the eight bytes of w, the first lowest: one load.
func word(w string) uint64 {
	_ = w[7] // one bounds check
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// plain8 reports whether the eight bytes of x are all written as they
// are with HTML escaping off: ASCII, not below U+0020, not '"' or '\\'.
// It tests the eight at once (the bit tricks of "Determine if a word has
// a byte less than n" and "has a zero byte", Sean Eron Anderson's Bit
// Twiddling Hacks, exact as a yes or no): a report line is mostly such
// runs of prose, which appendString looked at one byte at a time
// (a finding's message of 115 bytes: 450–640 ns a string before, 200–270
// after, interleaved runs on the loaded machine; BenchmarkAppendString).
func plain8(x uint64) bool {
	return (x&highs | (x-0x20*ones)&^x&highs | zeroByte(x^'"'*ones) | zeroByte(x^'\\'*ones)) == 0
}

// noHTML8 reports whether none of the eight bytes of x is '<', '>' or '&'.
func noHTML8(x uint64) bool {
	return (zeroByte(x^'<'*ones) | zeroByte(x^'>'*ones) | zeroByte(x^'&'*ones)) == 0
}

// zeroByte is non-zero when a byte of x is zero.
func zeroByte(x uint64) uint64 { return (x - ones) &^ x & highs }

// AppendStringHTML appends s as a JSON string as json.Marshal writes it,
// with HTML escaping on: as AppendString, but '<', '>' and '&' become
// \u003c, \u003e and \u0026. A MarshalJSON method built on json.Marshal
// writes its strings so, and the Encoder keeps its bytes as they are
// (it compacts them without unescaping), so a hand-written encoder of
// such a type uses AppendStringHTML where the Encoder would not escape.
func AppendStringHTML(b []byte, s string) []byte { return appendString(b, s, true) }

func appendString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	done := 0 // s[:done] is in b; s[done:i] is copied as it is later
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			if x := word(s[i : i+8]); plain8(x) && (!html || noHTML8(x)) {
				i += 8
				continue
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// AppendStrings appends ss as a JSON array of strings; nil is null and an
// empty non-nil slice is [], as encoding/json has it. The element type must
// have no MarshalJSON or MarshalText of its own (Fields shows whether it
// does).
func AppendStrings[S ~string](b []byte, ss []S) []byte {
	return AppendArray(b, ss, func(s *S, b []byte) []byte { return AppendString(b, string(*s)) })
}

// AppendStringsHTML is AppendStrings with AppendStringHTML's escaping.
func AppendStringsHTML[S ~string](b []byte, ss []S) []byte {
	return AppendArray(b, ss, func(s *S, b []byte) []byte { return AppendStringHTML(b, string(*s)) })
}

// AppendAddr appends a as encoding/json writes a netip.Addr: its
// MarshalText (empty for the zero Addr) as a string. Only an IPv6 zone can
// hold characters that need escaping.
func AppendAddr(b []byte, a netip.Addr) []byte {
	if a.Zone() != "" {
		return AppendString(b, a.String())
	}
	b = append(b, '"')
	return append(a.AppendTo(b), '"')
}

// AppendAddrHTML is AppendAddr with AppendStringHTML's escaping.
func AppendAddrHTML(b []byte, a netip.Addr) []byte {
	if a.Zone() != "" {
		return AppendStringHTML(b, a.String())
	}
	return AppendAddr(b, a)
}

// AppendBytes appends p as encoding/json writes a []byte: standard base64
// in a string, or null for nil.
func AppendBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	return append(base64.StdEncoding.AppendEncode(b, p), '"')
}

// AppendArray appends xs as a JSON array, each element by each, or null
// for a nil slice (encoding/json's rule: an empty slice is []).
func AppendArray[T any](b []byte, xs []T, each func(*T, []byte) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(&xs[i], b)
	}
	return append(b, ']')
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// Fields describes the struct type t as encoding/json sees it, one line
// per field: name, type, tag, and which marshalers the field's type (or
// the element type of a slice, array, map or pointer) has. A hand-written
// encoder's test compares it with the description the encoder was written
// for: a field added, removed, retyped or retagged, or a MarshalText
// appearing on a field's type, would otherwise change the output silently.
func Fields(t reflect.Type) string {
	var b strings.Builder
	for f := range t.Fields() {
		words := []string{f.Name, f.Type.String()}
		if f.Tag != "" {
			words = append(words, string(f.Tag))
		}
		words = append(words, marshalers(f.Type)...)
		b.WriteString(strings.Join(words, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// AppendReflect appends v as encoding/json encodes it with
// SetEscapeHTML(false), without the Encoder's newline: values without a
// hand-written encoder, and the tests' reference. On error b is returned
// as it was.
func AppendReflect(b []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends the value with "\n"
}

// marshalers names the marshalers of t and of what it holds.
func marshalers(t reflect.Type) []string {
	var names []string
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for {
		for _, m := range []reflect.Type{t, reflect.PointerTo(t)} {
			if m.Implements(jsonMarshaler) {
				add("json:" + m.String())
			}
			if m.Implements(textMarshaler) {
				add("text:" + m.String())
			}
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Pointer:
			t = t.Elem()
		case reflect.Map:
			names = append(names, marshalers(t.Key())...)
			t = t.Elem()
		default:
			return names
		}
	}
}

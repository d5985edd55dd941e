package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MacroString is text that may contain macros (RFC 7208 §7): a
// domain-spec, an unknown modifier's value, or an explanation. Parse checks
// its syntax; expansion happens during evaluation.
type MacroString string

// HasMacros reports whether the string contains a "%{...}" expansion, i.e.
// whether its value depends on the message being checked.
func (m MacroString) HasMacros() bool { return strings.Contains(string(m), "%{") }

// Letters allowed in macros (RFC 7208 §7.2). c, r and t are allowed only in
// explanation text (RFC 7208 §7.2: "The following macro letters are allowed
// only in 'exp' text").
const (
	domainLetters = "slodipvh"
	allLetters    = "slodipvhcrt"
)

// maxMacroDigits caps the DIGIT transformer. RFC 7208 §7.3 lets a value
// exceed the number of parts (all are then used); a name has at most 127
// labels, so a larger number means the same thing.
const maxMacroDigits = 128

// macroToken is one piece of a macro-string: a literal run or an expansion.
type macroToken struct {
	off     int    // byte offset in the string
	literal string // for literal runs, and the fixed expansions %%, %_, %-
	letter  byte   // macro letter, 0 for literals
	upper   bool   // written in upper case: URL-escape the value (RFC 7208 §7.3)
	digits  int    // keep this many right-hand parts; 0 = all
	reverse bool   // the "r" transformer
	delims  string // delimiters; "" = "."
	expand  bool   // the token is a macro-expand (also true for %%, %_, %-)
}

// tokenizeMacro splits s into tokens, checking the macro-string grammar of
// RFC 7208 §7.1/§12. letters is the set of macro letters allowed; space
// allows SP (explanation text only).
func tokenizeMacro(s, letters string, space bool) ([]macroToken, *specError) {
	var toks []macroToken
	lit := strings.Builder{}
	litOff := 0
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, macroToken{off: litOff, literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			// RFC 7208 §7.1: macro-literal = %x21-24 / %x26-7E.
			if (c < 0x21 || c > 0x7e) && !(space && c == ' ') {
				return nil, &specError{i, fmt.Sprintf("character %s is not allowed", quoteByte(c))}
			}
			if lit.Len() == 0 {
				litOff = i
			}
			lit.WriteByte(c)
			i++
			continue
		}
		flush()
		if i+1 >= len(s) {
			return nil, &specError{i, `"%" at the end: write "%%" for a percent sign`}
		}
		switch s[i+1] {
		case '%':
			toks = append(toks, macroToken{off: i, literal: "%", expand: true})
			i += 2
			continue
		case '_':
			toks = append(toks, macroToken{off: i, literal: " ", expand: true})
			i += 2
			continue
		case '-':
			toks = append(toks, macroToken{off: i, literal: "%20", expand: true})
			i += 2
			continue
		case '{':
		default:
			// RFC 7208 §7.1: a "%" not followed by "{", "%", "-" or "_" is a
			// syntax error.
			return nil, &specError{i, fmt.Sprintf(`"%%" followed by %s: write "%%%%" for a percent sign, or a macro like "%%{d}"`, quoteByte(s[i+1]))}
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, &specError{i, `macro "%{" is not closed by "}"`}
		}
		body := s[i+2 : i+end]
		t := macroToken{off: i, expand: true}
		if body == "" {
			return nil, &specError{i, "empty macro %{}"}
		}
		l := body[0]
		lower := l | 0x20
		if !isAlpha(l) || !strings.ContainsRune(letters, rune(lower)) {
			msg := fmt.Sprintf("unknown macro letter %s", quoteByte(l))
			if isAlpha(l) && strings.ContainsRune(allLetters, rune(lower)) {
				msg = fmt.Sprintf("macro letter %q is allowed only in explanation text", lower)
			}
			return nil, &specError{i + 2, msg}
		}
		t.letter, t.upper = lower, l != lower
		j := 1
		for j < len(body) && isDigit(body[j]) {
			j++
		}
		if j > 1 {
			// RFC 7208 §7.3: "If a DIGIT is specified, the value MUST be
			// nonzero."
			n, err := strconv.Atoi(body[1:j])
			if err != nil || n > maxMacroDigits {
				n = maxMacroDigits
			}
			if n == 0 {
				return nil, &specError{i + 3, "macro transformer digits must be nonzero"}
			}
			t.digits = n
		}
		if j < len(body) && (body[j] == 'r' || body[j] == 'R') {
			t.reverse = true
			j++
		}
		t.delims = body[j:]
		for ; j < len(body); j++ {
			// RFC 7208 §7.1: delimiter = "." / "-" / "+" / "," / "/" / "_" / "=".
			if !strings.ContainsRune(".-+,/_=", rune(body[j])) {
				return nil, &specError{i + 2 + j, fmt.Sprintf("%s is not a macro delimiter (one of . - + , / _ =)", quoteByte(body[j]))}
			}
		}
		toks = append(toks, t)
		i += end + 1
	}
	flush()
	return toks, nil
}

// checkMacroString checks an unknown modifier's value (explain false) or an
// explanation text (explain true: SP and the letters c, r, t allowed).
func checkMacroString(s string, explain, anyLetter bool) *specError {
	letters := domainLetters
	if explain || anyLetter {
		letters = allLetters
	}
	_, err := tokenizeMacro(s, letters, explain)
	return err
}

// checkDomainSpec checks domain-spec = macro-string domain-end, where
// domain-end = ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 §7.1).
func checkDomainSpec(s string) *specError {
	toks, err := tokenizeMacro(s, domainLetters, false)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		return &specError{0, "empty domain"}
	}
	last := toks[len(toks)-1]
	if last.expand {
		return nil
	}
	text := strings.TrimSuffix(last.literal, ".")
	dot := strings.LastIndexByte(text, '.')
	if dot < 0 {
		return &specError{last.off, fmt.Sprintf("%q does not end in a top-level label after a dot (or in a macro)", s)}
	}
	top := text[dot+1:]
	if !isTopLabel(top) {
		return &specError{last.off + dot + 1, fmt.Sprintf("%q is not a valid top-level label (letters, digits and inner hyphens, not all digits)", top)}
	}
	return nil
}

// isTopLabel implements toplabel = ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) (RFC 7208 §7.1).
func isTopLabel(s string) bool {
	if s == "" {
		return false
	}
	alpha, dash := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			dash = true
		default:
			return false
		}
	}
	if dash {
		return s[0] != '-' && s[len(s)-1] != '-'
	}
	return alpha
}

// macroEnv holds the values macros expand to (RFC 7208 §7.2).
type macroEnv struct {
	sender   string // s
	local    string // l
	domainOf string // o
	domain   string // d
	ip       netip.Addr
	helo     string                     // h
	receiver string                     // r
	now      int64                      // t
	ptr      func(domain string) string // p, for the current domain
}

// Bounds on the memory an expansion takes. A domain-spec expansion (%{l}
// repeated over a long local part grows without limit) keeps only its last
// nameTail bytes once it passes maxExpansion: RFC 7208 §4.8, §7.3 keep the
// longest right-hand run of whole labels that fits in 253 characters, and
// whether the run starting at each of the last 254 positions is whole is
// decided by the byte before it, so the last 256 bytes (one more for a
// trailing dot) decide the query name exactly as the whole expansion would.
// An explanation has no such rule: over MaxRecordLength it is dropped, as
// an explanation that cannot be expanded is (RFC 7208 §6.2).
const (
	maxExpansion = 4096
	nameTail     = MaxNameLength + 3
)

// expand expands a macro-string already checked by tokenizeMacro. A
// domain-spec (space false) becomes a query name, so its expansion is
// truncated to 253 characters by removing labels on the left (RFC 7208
// §4.8, §7.3).
func (m MacroString) expand(env *macroEnv, letters string, space bool) (string, error) {
	toks, err := tokenizeMacro(string(m), letters, space)
	if err != nil {
		return "", fmt.Errorf("%w: position %d: %s", ErrSyntax, err.off, err.msg)
	}
	var b strings.Builder
	cut := false
	// A record may repeat one macro thousands of times over a long value:
	// each distinct macro is expanded once.
	applied := map[macroToken]string{}
	for _, t := range toks {
		out := t.literal
		if t.letter != 0 {
			t.off = 0
			v, ok := applied[t]
			if !ok {
				v = t.apply(env.value(t.letter))
				applied[t] = v
			}
			out = v
		}
		if !space && len(out) >= nameTail {
			// Everything before the last nameTail bytes is dropped
			// anyway: do not copy it.
			b.Reset()
			out, cut = out[len(out)-nameTail:], true
		}
		b.WriteString(out)
		if space {
			if b.Len() > MaxRecordLength {
				return "", fmt.Errorf("%w: explanation longer than %d bytes after macro expansion", ErrSyntax, MaxRecordLength)
			}
			continue
		}
		if b.Len() <= maxExpansion {
			continue
		}
		tail := b.String()[b.Len()-nameTail:]
		b.Reset()
		b.WriteString(tail)
		cut = true
	}
	s := b.String()
	if space {
		return s, nil
	}
	if cut {
		// nameTail bytes are over 253 even without a trailing dot, so
		// truncateName drops the first label of the tail, which is a piece
		// of a longer one.
		s = s[len(s)-nameTail:]
	}
	return truncateName(s), nil
}

// value returns the unmodified value of a macro letter (RFC 7208 §7.2).
func (env *macroEnv) value(letter byte) string {
	switch letter {
	case 's':
		return env.sender
	case 'l':
		return env.local
	case 'o':
		return env.domainOf
	case 'd':
		return env.domain
	case 'i':
		return dotFormat(env.ip)
	case 'p':
		if env.ptr == nil {
			return "unknown"
		}
		return env.ptr(env.domain)
	case 'v':
		if env.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return env.helo
	case 'c':
		// RFC 7208 §7.2: c is the IP in its readable form (RFC 5952 for
		// IPv6).
		return env.ip.String()
	case 'r':
		if env.receiver == "" {
			return "unknown"
		}
		return env.receiver
	case 't':
		return strconv.FormatInt(env.now, 10)
	}
	return ""
}

// apply splits, reverses, truncates and escapes a value (RFC 7208 §7.3).
func (t macroToken) apply(v string) string {
	if t.digits > 0 || t.reverse || t.delims != "" {
		delims := t.delims
		if delims == "" {
			delims = "."
		}
		// RFC 7208 §7.3: split on every delimiter, empty parts included.
		parts := splitAny(v, delims)
		if t.reverse {
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
		}
		if t.digits > 0 && t.digits < len(parts) {
			parts = parts[len(parts)-t.digits:]
		}
		// RFC 7208 §7.3: the parts are joined with ".".
		v = strings.Join(parts, ".")
	}
	if t.upper {
		v = urlEscape(v)
	}
	return v
}

func splitAny(s, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// urlEscape escapes every byte outside unreserved = ALPHA / DIGIT / "-" /
// "." / "_" / "~" (RFC 7208 §7.3, RFC 3986 §2.3).
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// dotFormat is the "i" macro: dotted quad for IPv4; for IPv6 the 32
// nibbles separated by dots, most significant first (RFC 7208 §7.3).
func dotFormat(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789abcdef"
	b := ip.As16()
	out := make([]byte, 0, 63)
	for i, x := range b {
		if i > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[x>>4], '.', hex[x&0xf])
	}
	return string(out)
}

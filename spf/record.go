package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxRecordLength caps the record text Parse accepts. DNS limits a TXT
// record to one RDATA of 65535 octets; real SPF records stay below 512
// (RFC 7208 §3.4 asks to keep them within a UDP answer). A longer input is
// rejected before any work is done on it.
const MaxRecordLength = 65535

// ErrSyntax is wrapped by every *SyntaxError.
var ErrSyntax = errors.New("spf: syntax error")

// SyntaxError is a record that does not follow the RFC 7208 §12 grammar.
// Pos is the byte offset of the problem in the record text (0 is the "v" of
// "v=spf1"), so a person can find it.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("position %d: %s", e.Pos, e.Msg) }

// Unwrap lets errors.Is(err, ErrSyntax) match.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Qualifier is the prefix of a mechanism (RFC 7208 §4.6.2).
type Qualifier byte

// Qualifiers. A mechanism written without one has the zero Qualifier,
// which means QualifierPass (Effective).
const (
	QualifierPass     Qualifier = '+'
	QualifierFail     Qualifier = '-'
	QualifierSoftFail Qualifier = '~'
	QualifierNeutral  Qualifier = '?'
)

// Effective returns q, or QualifierPass when q was not written.
func (q Qualifier) Effective() Qualifier {
	if q == 0 {
		return QualifierPass
	}
	return q
}

// Status is the result a matching mechanism with this qualifier produces
// (RFC 7208 §4.6.2).
func (q Qualifier) Status() Status {
	switch q.Effective() {
	case QualifierFail:
		return Fail
	case QualifierSoftFail:
		return SoftFail
	case QualifierNeutral:
		return Neutral
	}
	return Pass
}

// Mechanism and modifier names, lower case. Names are case-insensitive in
// records (RFC 7208 §12: ABNF strings are case-insensitive, RFC 5234 §2.3).
const (
	MechAll     = "all"
	MechInclude = "include"
	MechA       = "a"
	MechMX      = "mx"
	MechPTR     = "ptr"
	MechIP4     = "ip4"
	MechIP6     = "ip6"
	MechExists  = "exists"

	ModRedirect = "redirect"
	ModExp      = "exp"
)

// Term is one mechanism or modifier of a record.
type Term struct {
	// Pos is the byte offset of the term in the record text.
	Pos int
	// Raw is the term exactly as written.
	Raw string
	// Modifier is true for name=value terms (RFC 7208 §4.6.1).
	Modifier bool
	// Qualifier is the mechanism's qualifier as written; 0 when absent.
	Qualifier Qualifier
	// Name is the mechanism or modifier name in lower case.
	Name string
	// Domain is the domain-spec of all, include, a, mx, ptr, exists,
	// redirect and exp, or the value of an unknown modifier; "" when
	// absent. It may contain macros (RFC 7208 §7).
	Domain MacroString
	// Network is the address of ip4 and ip6, with the prefix length given
	// (or the full length when none was written).
	Network netip.Prefix
	// CIDR4 and CIDR6 are the prefix lengths written after a, mx, ip4 and
	// ip6 (ip4 uses CIDR4, ip6 CIDR6); -1 when absent.
	CIDR4, CIDR6 int
}

// QueriesDNS reports whether evaluating the term makes a DNS query that
// counts against the limit of 10 (RFC 7208 §4.6.4): include, a, mx, ptr,
// exists and redirect. exp is looked up only after evaluation and does not
// count; all, ip4, ip6 and unknown modifiers make no query.
func (t Term) QueriesDNS() bool {
	switch t.Name {
	case MechInclude, MechA, MechMX, MechPTR, MechExists:
		return !t.Modifier
	case ModRedirect:
		return t.Modifier
	}
	return false
}

// String formats the term in canonical form: lower-case name, the
// qualifier only when one was written.
func (t Term) String() string {
	var b strings.Builder
	if t.Modifier {
		b.WriteString(t.Name)
		b.WriteByte('=')
		b.WriteString(string(t.Domain))
		return b.String()
	}
	if t.Qualifier != 0 {
		b.WriteByte(byte(t.Qualifier))
	}
	b.WriteString(t.Name)
	switch t.Name {
	case MechIP4, MechIP6:
		b.WriteByte(':')
		b.WriteString(t.Network.Addr().String())
	default:
		if t.Domain != "" {
			b.WriteByte(':')
			b.WriteString(string(t.Domain))
		}
	}
	if t.CIDR4 >= 0 && t.Name != MechIP6 {
		b.WriteString("/" + strconv.Itoa(t.CIDR4))
	}
	if t.CIDR6 >= 0 {
		if t.Name != MechIP6 {
			b.WriteByte('/')
		}
		b.WriteString("/" + strconv.Itoa(t.CIDR6))
	}
	return b.String()
}

// Record is a parsed SPF record (RFC 7208 §4.6, §12).
type Record struct {
	// Text is the record as published (TXT strings concatenated).
	Text string
	// Terms are the mechanisms and modifiers in order.
	Terms []Term
}

// String formats the record in canonical form: "v=spf1", then each term
// separated by one space.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString(version)
	for _, t := range r.Terms {
		b.WriteByte(' ')
		b.WriteString(t.String())
	}
	return b.String()
}

// Redirect returns the redirect modifier, if any.
func (r *Record) Redirect() (Term, bool) { return r.modifier(ModRedirect) }

// Exp returns the exp modifier, if any.
func (r *Record) Exp() (Term, bool) { return r.modifier(ModExp) }

func (r *Record) modifier(name string) (Term, bool) {
	for _, t := range r.Terms {
		if t.Modifier && t.Name == name {
			return t, true
		}
	}
	return Term{}, false
}

// HasAll reports whether the record has an "all" mechanism; a redirect is
// then ignored (RFC 7208 §6.1).
func (r *Record) HasAll() bool {
	for _, t := range r.Terms {
		if !t.Modifier && t.Name == MechAll {
			return true
		}
	}
	return false
}

// Lookups counts the record's own DNS-querying terms (RFC 7208 §4.6.4).
// A redirect ignored because of "all" is not counted.
func (r *Record) Lookups() int {
	n := 0
	hasAll := r.HasAll()
	for _, t := range r.Terms {
		if t.QueriesDNS() && !(t.Name == ModRedirect && hasAll) {
			n++
		}
	}
	return n
}

// version is the record's first term (RFC 7208 §4.5).
const version = "v=spf1"

// IsRecord reports whether a TXT string is an SPF record: it starts with
// "v=spf1", in any case, followed by a space or the end (RFC 7208 §4.5).
func IsRecord(txt string) bool {
	if len(txt) < len(version) || !strings.EqualFold(txt[:len(version)], version) {
		return false
	}
	return len(txt) == len(version) || txt[len(version)] == ' '
}

// Parse parses an SPF record. Any syntax error anywhere makes the whole
// record invalid (RFC 7208 §4.6: check_host() then returns permerror
// without evaluating anything), so Parse reports the first one it finds,
// as a *SyntaxError.
func Parse(txt string) (*Record, error) {
	if len(txt) > MaxRecordLength {
		return nil, &SyntaxError{Pos: MaxRecordLength, Msg: fmt.Sprintf("record longer than %d bytes", MaxRecordLength)}
	}
	if !IsRecord(txt) {
		return nil, &SyntaxError{Pos: 0, Msg: `record does not start with "v=spf1" followed by a space`}
	}
	// At most one term per space: the Terms are made once, not grown.
	r := &Record{Text: txt, Terms: make([]Term, 0, strings.Count(txt[len(version):], " "))}
	seen := map[string]int{}
	// RFC 7208 §4.6.1: terms are separated by one or more spaces (SP only,
	// not tabs or other white space); trailing spaces are allowed (§12).
	for i := len(version); i < len(txt); {
		if txt[i] == ' ' {
			i++
			continue
		}
		if i > 0 && txt[i-1] != ' ' {
			// Only reachable right after the version, which IsRecord
			// checked; kept for safety.
			return nil, &SyntaxError{Pos: i, Msg: "terms must be separated by spaces"}
		}
		end := strings.IndexByte(txt[i:], ' ')
		if end < 0 {
			end = len(txt)
		} else {
			end += i
		}
		t, err := parseTerm(txt[i:end], i)
		if err != nil {
			return nil, err
		}
		if t.Modifier && (t.Name == ModRedirect || t.Name == ModExp) {
			// RFC 7208 §6: redirect and exp MUST NOT appear more than once.
			if p, dup := seen[t.Name]; dup {
				return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("second %s= modifier (the first is at position %d); it may appear only once", t.Name, p)}
			}
			seen[t.Name] = i
		}
		r.Terms = append(r.Terms, t)
		i = end
	}
	if len(r.Terms) == 0 {
		r.Terms = nil // no terms: nil, whatever spaces the record ends with
	}
	return r, nil
}

// parseTerm parses one term found at pos.
func parseTerm(s string, pos int) (Term, error) {
	t := Term{Pos: pos, Raw: s, CIDR4: -1, CIDR6: -1}
	bad := func(off int, format string, args ...any) (Term, error) {
		return Term{}, &SyntaxError{Pos: pos + off, Msg: fmt.Sprintf(format, args...)}
	}
	for j := 0; j < len(s); j++ {
		if c := s[j]; c < 0x21 || c > 0x7e {
			// RFC 7208 §3.1, §12: records are 7-bit ASCII; terms are
			// visible characters separated by SP.
			return bad(j, "character %s is not allowed (only visible ASCII characters and spaces)", quoteByte(c))
		}
	}

	// RFC 7208 §4.6.1: a modifier is name "=" value, where name =
	// ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) and the "=" comes right
	// after the name, before any ":" or "/".
	if eq := strings.IndexAny(s, "=:/"); eq > 0 && s[eq] == '=' && isModifierName(s[:eq]) {
		t.Modifier = true
		t.Name = strings.ToLower(s[:eq])
		value := s[eq+1:]
		t.Domain = MacroString(value)
		switch t.Name {
		case ModRedirect, ModExp:
			// RFC 7208 §6.1, §6.2: the value is a domain-spec. Known
			// modifier names never fall back to unknown-modifier (the
			// test suite's reading of the grammar).
			if value == "" {
				return bad(eq+1, "%s= needs a domain", t.Name)
			}
			if err := checkDomainSpec(value); err != nil {
				return bad(eq+1+err.off, "%s=: %s", t.Name, err.msg)
			}
		default:
			// RFC 7208 §6 and §12: unknown-modifier = name "=" macro-string.
			if err := checkMacroString(value, false, true); err != nil {
				return bad(eq+1+err.off, "modifier %s=: %s", t.Name, err.msg)
			}
		}
		return t, nil
	}

	// A directive: [ qualifier ] mechanism (RFC 7208 §4.6.2).
	rest := s
	off := 0
	switch q := Qualifier(s[0]); q {
	case QualifierPass, QualifierFail, QualifierSoftFail, QualifierNeutral:
		t.Qualifier = q
		rest, off = s[1:], 1
	}
	nameEnd := strings.IndexAny(rest, ":/=")
	if nameEnd < 0 {
		nameEnd = len(rest)
	}
	name := rest[:nameEnd]
	t.Name = strings.ToLower(name)
	args := rest[nameEnd:]
	argOff := off + nameEnd
	switch t.Name {
	case MechAll:
		// RFC 7208 §5.1: all takes no argument.
		if args != "" {
			return bad(argOff, "all takes no argument, found %q", args)
		}
	case MechInclude, MechExists:
		// RFC 7208 §5.2, §5.7: include/exists ":" domain-spec.
		if !strings.HasPrefix(args, ":") {
			return bad(argOff, "%s needs \":\" and a domain", t.Name)
		}
		if args == ":" {
			return bad(argOff+1, "%s needs a domain after \":\"", t.Name)
		}
		if err := checkDomainSpec(args[1:]); err != nil {
			return bad(argOff+1+err.off, "%s: %s", t.Name, err.msg)
		}
		t.Domain = MacroString(args[1:])
	case MechA, MechMX, MechPTR:
		// RFC 7208 §5.3, §5.4: a/mx [ ":" domain-spec ] [ dual-cidr-length ];
		// §5.5: ptr [ ":" domain-spec ].
		domain := args
		if t.Name != MechPTR {
			var err *specError
			domain, t.CIDR4, t.CIDR6, err = splitDualCIDR(args)
			if err != nil {
				return bad(argOff+err.off, "%s: %s", t.Name, err.msg)
			}
		}
		if domain != "" {
			if domain[0] != ':' {
				return bad(argOff, "unexpected %q after %s (a domain must follow \":\")", domain, t.Name)
			}
			if domain == ":" {
				return bad(argOff+1, "%s: empty domain after \":\"", t.Name)
			}
			if err := checkDomainSpec(domain[1:]); err != nil {
				return bad(argOff+1+err.off, "%s: %s", t.Name, err.msg)
			}
			t.Domain = MacroString(domain[1:])
		}
	case MechIP4, MechIP6:
		// RFC 7208 §5.6: ip4 ":" ip4-network [ ip4-cidr-length ],
		// ip6 ":" ip6-network [ ip6-cidr-length ].
		if !strings.HasPrefix(args, ":") || len(args) == 1 {
			return bad(argOff, "%s needs \":\" and an address", t.Name)
		}
		addrText, cidrText, hasCIDR := strings.Cut(args[1:], "/")
		addr, err := netip.ParseAddr(addrText)
		is4 := t.Name == MechIP4
		if err != nil || addr.Zone() != "" || addr.Is4() != is4 {
			family := "IPv6"
			if is4 {
				family = "IPv4"
			}
			return bad(argOff+1, "%s: %q is not an %s address", t.Name, addrText, family)
		}
		bits := addr.BitLen()
		if hasCIDR {
			n, err := parseCIDR(cidrText, bits)
			if err != nil {
				return bad(argOff+2+len(addrText)+err.off, "%s: %s", t.Name, err.msg)
			}
			if is4 {
				t.CIDR4 = n
			} else {
				t.CIDR6 = n
			}
			bits = n
		}
		t.Network = netip.PrefixFrom(addr, bits)
	case "":
		return bad(off, "missing mechanism name")
	default:
		if t.Name == ModRedirect || t.Name == ModExp {
			return bad(off, "%s is a modifier: write %s=domain", t.Name, t.Name)
		}
		return bad(off, "unknown mechanism %q", name)
	}
	return t, nil
}

// specError is a problem at offset off of the part being checked.
type specError struct {
	off int
	msg string
}

// splitDualCIDR splits [ ":" domain-spec ] [ dual-cidr-length ] (RFC 7208
// §5.3, §12). A domain-spec may itself contain "/", so the lengths are
// taken from the end: "//N" (IPv6), then "/N" (IPv4).
func splitDualCIDR(args string) (rest string, cidr4, cidr6 int, err *specError) {
	cidr4, cidr6 = -1, -1
	rest = args
	trailingDigits := func(s string) int {
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		return i
	}
	if i := trailingDigits(rest); i < len(rest) && i >= 2 && rest[i-2:i] == "//" {
		n, e := parseCIDR(rest[i:], 128)
		if e != nil {
			return "", -1, -1, &specError{i + e.off, "IPv6 prefix length: " + e.msg}
		}
		cidr6 = n
		rest = rest[:i-2]
	}
	if i := trailingDigits(rest); i < len(rest) && i >= 1 && rest[i-1] == '/' {
		n, e := parseCIDR(rest[i:], 32)
		if e != nil {
			return "", -1, -1, &specError{i + e.off, "IPv4 prefix length: " + e.msg}
		}
		cidr4 = n
		rest = rest[:i-1]
	}
	return rest, cidr4, cidr6, nil
}

// parseCIDR parses a prefix length: "0" or digits without a leading zero,
// at most max (RFC 7208 §12 ip4-cidr-length, ip6-cidr-length).
func parseCIDR(s string, max int) (int, *specError) {
	if s == "" {
		return 0, &specError{0, "missing prefix length after \"/\""}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, &specError{i, fmt.Sprintf("prefix length %q is not a number", s)}
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, &specError{0, fmt.Sprintf("prefix length %q has a leading zero", s)}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max {
		return 0, &specError{0, fmt.Sprintf("prefix length %s is larger than %d", s, max)}
	}
	return n, nil
}

// isModifierName reports whether s is name = ALPHA *( ALPHA / DIGIT / "-" /
// "_" / "." ) (RFC 7208 §12).
func isModifierName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("0x%02X", c)
}

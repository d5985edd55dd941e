// Package dnsname turns what a person types (a domain, an e-mail address, an
// internationalised name) into the one canonical form mxtrace works with: a
// lower-case, A-label domain name (RFC 5890) without the trailing dot.
//
// Every command takes its input through Parse, so a bad name is rejected once,
// with an error that names the offending label, before any query is sent.
package dnsname

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits from RFC 1035 §2.3.4. A name of 253 characters in text form is 255
// octets on the wire (length octets plus the root label).
const (
	MaxLabelLength = 63
	MaxNameLength  = 253
)

// ErrInvalid is wrapped by every error Parse returns, so callers can tell bad
// input (exit status 2) from everything else.
var ErrInvalid = errors.New("invalid domain name")

// Error describes why an input is not a usable domain name.
type Error struct {
	Input  string // what was given
	Label  string // the offending label, if the problem is in one label
	Reason string // one phrase a person understands
	// Address is set when the input is an IP address or an address
	// literal, not a name; Label then holds the address as written.
	Address bool
}

func (e *Error) Error() string {
	if e.Address {
		if strings.TrimSpace(e.Input) == e.Label {
			return e.Label + " " + e.Reason
		}
		return fmt.Sprintf("%q: %s %s", e.Input, e.Label, e.Reason)
	}
	if e.Label != "" {
		return fmt.Sprintf("invalid domain name %q: label %q %s", e.Input, e.Label, e.Reason)
	}
	return fmt.Sprintf("invalid domain name %q: %s", e.Input, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *Error) Unwrap() error { return ErrInvalid }

// Name is a canonical domain name: lower case, A-labels only, no trailing dot.
// The zero Name is invalid; the root is not a mail domain and is never a Name.
type Name string

// String returns the name as shown to people (no trailing dot).
func (n Name) String() string { return string(n) }

// FQDN returns the absolute form used on the wire, with the trailing dot.
func (n Name) FQDN() string { return string(n) + "." }

// Unicode returns the U-label form for display, or the name itself when it
// has no A-labels or cannot be converted.
func (n Name) Unicode() string {
	u, err := idna.Display.ToUnicode(string(n))
	if err != nil {
		return string(n)
	}
	return u
}

// Parent returns the name with its first label removed, and false at a
// top-level name (whose parent, the root, is not a Name).
func (n Name) Parent() (Name, bool) {
	p, ok := Parent(string(n))
	if !ok || p == "." {
		return "", false
	}
	return Name(p), true
}

// Parent returns the parent of a domain name in presentation format (RFC
// 1035 §5.1: a backslash escapes the next character, so "a\.b.example."
// has the labels "a.b" and "example"): the name without its first label,
// "." for a top-level name, and false for the root ("." or "") only.
//
// Every walk over a name's ancestors goes through Parent, and terminates:
// each parent is a strictly shorter suffix of the name, or the root, which
// has none. A name with or without the trailing dot is accepted.
func Parent(name string) (string, bool) {
	if name == "" || name == "." {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // the escaped character (or the first digit of \DDD) is not a separator
		case '.':
			if i+1 < len(name) {
				return name[i+1:], true
			}
			return ".", true
		}
	}
	return ".", true
}

// IsSubdomainOf reports whether n equals parent or lies below it.
func (n Name) IsSubdomainOf(parent Name) bool {
	return n == parent || strings.HasSuffix(string(n), "."+string(parent))
}

// profile is UTS #46 processing for lookup (non-transitional, as IDNA2008
// registries and browsers now use), with the STD 3 ASCII rules enforced so
// that spaces, underscores in host names and leading/trailing hyphens are
// reported. Hyphen rules are checked by us to name the label.
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.BidiRule(),
)

// Parse accepts a domain name or an e-mail address (the part after the last
// '@' is used), in any case, with at most one trailing dot, in Unicode or
// A-label form, and returns its canonical Name.
func Parse(input string) (Name, error) {
	s := strings.TrimSpace(input)
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		s = s[at+1:]
	}
	bad := func(label, reason string) (Name, error) {
		return "", &Error{Input: input, Label: label, Reason: reason}
	}
	if s == "" {
		return bad("", "is empty")
	}
	if !utf8.ValidString(s) {
		return bad("", "is not valid UTF-8")
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return bad("", "is the root, not a mail domain")
	}
	if reason := addressReason(s); reason != "" {
		return "", &Error{Input: input, Label: s, Reason: reason, Address: true}
	}
	// Check the raw labels before IDNA mapping so the error names what the
	// user typed, not a mapped form.
	for l := range strings.SplitSeq(s, ".") {
		if l == "" {
			return bad("", "has an empty label (two dots in a row, or a leading dot)")
		}
		if strings.ContainsAny(l, " \t\r\n") {
			return bad(l, "contains white space")
		}
	}
	ascii, err := toASCII(s)
	if err != nil {
		return bad("", "is not a valid internationalised name ("+trimIDNAError(err)+")")
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > MaxNameLength {
		return bad("", fmt.Sprintf("is %d characters long, more than %d", len(ascii), MaxNameLength))
	}
	i := 0 // the index of l
	for l := range strings.SplitSeq(ascii, ".") {
		if l == "" {
			// UTS #46 maps some labels to nothing: "xn--", a soft
			// hyphen alone. Only this error splits the raw name (a
			// scan parses every input line: no allocation otherwise).
			if raw := strings.Split(s, "."); len(raw) == strings.Count(ascii, ".")+1 {
				return bad(raw[i], "is empty once converted to an A-label (UTS #46)")
			}
			return bad("", "has a label that is empty once converted to A-labels (UTS #46)")
		}
		if err := checkLabel(l); err != "" {
			return bad(l, err)
		}
		i++
	}
	return Name(ascii), nil
}

// addressReason says why s is an address rather than a name, or "" when
// it is not one: an address literal (RFC 5321 §4.1.3: "[192.0.2.1]",
// "[IPv6:2001:db8::1]"), an IPv4 or IPv6 address, or a dotted name whose
// labels are all digits (such as "10.1", which resolvers take for
// 10.0.0.1; RFC 3696 §2: a top-level domain is never all-numeric).
func addressReason(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return "is an address literal, not a domain name"
	}
	// An IPv6 address has a colon, an IPv4 one only digits and dots: no
	// name has either form, and netip.ParseAddr allocates its error for
	// every name it is given.
	if strings.Contains(s, ":") || strings.Trim(s, "0123456789.") == "" {
		if _, err := netip.ParseAddr(s); err == nil {
			return "is an IP address, not a domain name"
		}
	}
	if !strings.Contains(s, ".") {
		return ""
	}
	for l := range strings.SplitSeq(s, ".") {
		// An empty label ("..") is a bad name, not an address.
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return ""
		}
	}
	return "looks like an IP address, not a domain name"
}

// toASCII maps s to its A-label form (UTS #46 ToASCII with profile) and
// decodes the result again, which catches A-labels that do not decode to
// a valid U-label (RFC 5891 §5.4), such as a hand-written "xn--zz".
//
// Nearly every name a scan reads is already plain ASCII: letters, digits,
// hyphens, underscores and dots, with no A-label. UTS #46 maps such a name
// to itself (but for case, which Parse folds after) and cannot reject it,
// so it is returned as it is, without the two IDNA passes, which showed
// in a scan's profile (docs/performance.md).
// TestToASCIIFastPath and FuzzToASCII hold the shortcut to what the full
// processing returns.
func toASCII(s string) (string, error) {
	if plainASCII(s) {
		return s, nil
	}
	return idnaASCII(s)
}

// idnaASCII is toASCII's full processing: both UTS #46 passes.
func idnaASCII(s string) (string, error) {
	ascii, err := profile.ToASCII(s)
	if err != nil {
		return "", err
	}
	if _, err := profile.ToUnicode(ascii); err != nil {
		return "", err
	}
	return ascii, nil
}

// plainASCII reports a name of non-empty labels of letters, digits,
// hyphens and underscores, none of them an A-label ("xn--" in any case).
func plainASCII(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			l := s[start:i]
			if l == "" || len(l) >= 4 && strings.EqualFold(l[:4], "xn--") {
				return false
			}
			start = i + 1
			continue
		}
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// MustParse is Parse for constants in tests and examples; it panics on bad
// input and must never see user input.
func MustParse(s string) Name {
	n, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

// checkLabel applies the host-name rules of RFC 1123 §2.1 and RFC 5891
// §4.2.3.1 (no leading or trailing hyphen) to one A-label. Underscores are
// allowed: mail names such as _dmarc.example.com and _mta-sts are looked up
// through the same type.
func checkLabel(l string) string {
	switch {
	case l == "":
		return "is empty"
	case len(l) > MaxLabelLength:
		return fmt.Sprintf("is %d octets long, more than %d", len(l), MaxLabelLength)
	case l[0] == '-':
		return "starts with a hyphen"
	case l[len(l)-1] == '-':
		return "ends with a hyphen"
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Sprintf("contains the character %q, not allowed in a host name", c)
		}
	}
	return ""
}

// trimIDNAError drops the package prefix from x/net/idna errors.
func trimIDNAError(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}

package relay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
)

// Length limits of RFC 5321 §4.5.3.1.
const (
	// MaxLocalPart is the longest local part (§4.5.3.1.1), in octets.
	MaxLocalPart = 64
	// MaxPath is the longest path, angle brackets included
	// (§4.5.3.1.3), in octets.
	MaxPath = 256
)

// The reasons ParseAddress refuses an address. Each error it returns wraps
// ErrAddress and exactly one of these, so a caller can count refusals by
// kind (AddressReason).
var (
	// ErrAddress is wrapped by every error of ParseAddress.
	ErrAddress = errors.New("relay: bad address")

	// ErrSyntax: not a Mailbox of RFC 5321 §4.1.2 (empty, a missing
	// "@" or bracket, white space, a bad dot-string or quoted string).
	ErrSyntax = errors.New("not an RFC 5321 mailbox")
	// ErrNotASCII: a control character (NUL, CR, LF, TAB...) or an
	// octet above 127. The server does not offer SMTPUTF8 (RFC 6531),
	// so addresses are ASCII (RFC 5321 §2.4).
	ErrNotASCII = errors.New("control or non-ASCII character")
	// ErrTooLong: over the limits of RFC 5321 §4.5.3.1.
	ErrTooLong = errors.New("too long")
	// ErrSourceRoute: "@a,@b:user@c" (RFC 5321 §4.1.2 A-d-l). Source
	// routes are deprecated (Appendix C) and the relay never follows
	// one.
	ErrSourceRoute = errors.New("source route")
	// ErrRouteInLocalPart: "@", "%" or "!" in the local part, quoted or
	// not: "user@other@D", "\"u@other\"@D", "user%other@D" (the
	// percent hack, RFC 1123 §5.2.16) and "other!user@D" (UUCP bang
	// paths). Each asks the next hop to relay the mail on, so none is
	// ever accepted.
	ErrRouteInLocalPart = errors.New("routing characters in the local part")
	// ErrAddressLiteral: "user@[192.0.2.1]" (RFC 5321 §4.1.3). The
	// relay takes mail for its domains by name only.
	ErrAddressLiteral = errors.New("address literal")
	// ErrTrailingDot: "user@example.com." is not an RFC 5321 Domain.
	ErrTrailingDot = errors.New("trailing dot in the domain")
	// ErrDomain: the domain is not an RFC 5321 Domain (sub-domains of
	// letters, digits and hyphens) or not a valid DNS name.
	ErrDomain = errors.New("bad domain")
)

// addressError is one refusal of ParseAddress: the kind (one of the Err
// values above) and what exactly was wrong.
type addressError struct {
	kind   error
	detail string
}

func (e *addressError) Error() string {
	return fmt.Sprintf("%v: %v: %s", ErrAddress, e.kind, e.detail)
}

func (e *addressError) Unwrap() []error { return []error{ErrAddress, e.kind} }

func refuse(kind error, format string, args ...any) error {
	return &addressError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// AddressReason is the metrics label of a ParseAddress error: "syntax",
// "not-ascii", "too-long", "source-route", "route-in-local-part",
// "address-literal", "trailing-dot", "bad-domain", or "bad-address" for
// an error that is none of those.
func AddressReason(err error) string {
	for _, r := range []struct {
		kind  error
		label string
	}{
		{ErrSyntax, "syntax"},
		{ErrNotASCII, "not-ascii"},
		{ErrTooLong, "too-long"},
		{ErrSourceRoute, "source-route"},
		{ErrRouteInLocalPart, "route-in-local-part"},
		{ErrAddressLiteral, "address-literal"},
		{ErrTrailingDot, "trailing-dot"},
		{ErrDomain, "bad-domain"},
	} {
		if errors.Is(err, r.kind) {
			return r.label
		}
	}
	return "bad-address"
}

// ParseAddress parses a Mailbox of RFC 5321 §4.1.2, strictly, optionally
// inside angle brackets (a Path without a source route). It is the one
// gate every envelope address of the relay passes.
//
// Accepted: a dot-string local part (atext atoms joined by single dots)
// or a quoted-string one (qtextSMTP and quoted-pairSMTP), then "@" and a
// Domain: sub-domains of letters, digits and hyphens (Let-dig [Ldh-str]),
// in any case. The domain comes back canonical (lower case), the local
// part as sent, except that a quoted local part that needs no quotes
// loses them (RFC 5321 §4.1.2: "\"user\"" and "user" are the same) and
// one that needs them is quoted minimally.
//
// Refused, each with its own error: a source route, "@", "%" or "!" in
// the local part (quoted or not), an address literal, a trailing dot, a
// control or non-ASCII octet anywhere, white space outside quotes, an
// empty local part or domain, a local part over 64 octets, a path over
// 256 octets (§4.5.3.1), and anything after the domain.
func ParseAddress(s string) (Address, error) {
	if len(s) > MaxPath {
		return Address{}, refuse(ErrTooLong, "%d octets, more than %d", len(s), MaxPath)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return Address{}, refuse(ErrNotASCII, "octet 0x%02x at %d", c, i)
		}
	}
	open, close := strings.HasPrefix(s, "<"), strings.HasSuffix(s, ">")
	switch {
	case open && close && len(s) >= 2:
		s = s[1 : len(s)-1]
	case open || close:
		return Address{}, refuse(ErrSyntax, "unbalanced angle brackets")
	}
	if strings.HasPrefix(s, "@") {
		return Address{}, refuse(ErrSourceRoute, "%q", s)
	}
	local, rest, err := parseLocalPart(s)
	if err != nil {
		return Address{}, err
	}
	if !strings.HasPrefix(rest, "@") {
		if rest == "" {
			return Address{}, refuse(ErrSyntax, "no @domain")
		}
		return Address{}, refuse(ErrSyntax, "%q after the local part", rest)
	}
	domain, err := parseDomain(rest[1:])
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// parseLocalPart reads the Local-part at the start of s (RFC 5321 §4.1.2)
// and returns it in its minimal form and the rest of s.
func parseLocalPart(s string) (local, rest string, err error) {
	var content string
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			c := s[i]
			if c == '\\' {
				// quoted-pairSMTP = %d92 %d32-126
				i++
				if i == len(s) {
					return "", "", refuse(ErrSyntax, "quoted string ends in a backslash")
				}
				c = s[i]
			}
			b.WriteByte(c)
		}
		if i == len(s) {
			return "", "", refuse(ErrSyntax, "unterminated quoted string")
		}
		content, rest = b.String(), s[i+1:]
	} else {
		end := strings.IndexByte(s, '@')
		if end < 0 {
			end = len(s)
		}
		content, rest = s[:end], s[end:]
		if err := checkDotString(content); err != nil {
			return "", "", err
		}
	}
	if content == "" {
		return "", "", refuse(ErrSyntax, "empty local part")
	}
	if i := strings.IndexAny(content, "@%!"); i >= 0 {
		return "", "", refuse(ErrRouteInLocalPart, "%q in %q", content[i], content)
	}
	local = minimalLocal(content)
	if len(local) > MaxLocalPart {
		return "", "", refuse(ErrTooLong, "local part of %d octets, more than %d", len(local), MaxLocalPart)
	}
	if strings.HasPrefix(rest, "@") && strings.Contains(rest[1:], "@") {
		return "", "", refuse(ErrRouteInLocalPart, "a second @ in %q", rest)
	}
	return local, rest, nil
}

// checkDotString reports whether s is a Dot-string: Atoms of atext
// joined by single dots (RFC 5321 §4.1.2, atext from RFC 5322 §3.2.3).
func checkDotString(s string) error {
	if s == "" {
		return refuse(ErrSyntax, "empty local part")
	}
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return refuse(ErrSyntax, "empty atom in %q (a leading, trailing or double dot)", s)
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return refuse(ErrSyntax, "%q is not allowed outside quotes", atom[i])
			}
		}
	}
	return nil
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// minimalLocal is the local part whose content is s: s itself when it is
// a Dot-string, else a Quoted-string escaping only '"' and '\'
// (RFC 5321 §4.1.2: quoting SHOULD NOT be used when not needed).
func minimalLocal(s string) string {
	if checkDotString(s) == nil {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseDomain checks s as an RFC 5321 §4.1.2 Domain (sub-domain *("."
// sub-domain), sub-domain = Let-dig [Ldh-str]) and returns it canonical.
func parseDomain(s string) (dnsname.Name, error) {
	switch {
	case s == "":
		return "", refuse(ErrSyntax, "empty domain")
	case strings.HasPrefix(s, "["):
		return "", refuse(ErrAddressLiteral, "%q", s)
	case strings.HasSuffix(s, "."):
		return "", refuse(ErrTrailingDot, "%q", s)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return "", refuse(ErrDomain, "empty label in %q", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "", refuse(ErrDomain, "label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return "", refuse(ErrDomain, "%q in label %q", c, label)
			}
		}
	}
	name, err := dnsname.Parse(s)
	if err != nil {
		if dnsErr, ok := errors.AsType[*dnsname.Error](err); ok && dnsErr.Address {
			// "user@192.0.2.1": an IPv4 address without the brackets.
			return "", refuse(ErrAddressLiteral, "%v", err)
		}
		return "", refuse(ErrDomain, "%v", err)
	}
	return name, nil
}

// mailboxOf turns a mailbox as go-smtp hands it to the session into an
// Address. go-smtp has already dropped a source route (RFC 5321 §4.1.1.3:
// servers SHOULD ignore it) and the quotes of a quoted local part, so the
// local part is everything before the last "@"; it is quoted again when
// it needs quotes and parsed as the client could have sent it. A local
// part that held "@" (quoted or not) still holds one and is refused.
func mailboxOf(m string) (Address, error) {
	at := strings.LastIndexByte(m, '@')
	if at < 0 {
		return ParseAddress(m)
	}
	local, domain := m[:at], m[at+1:]
	if local == "" || checkDotString(local) == nil {
		return ParseAddress(m)
	}
	if strings.ContainsAny(local, "@%!") {
		return Address{}, refuse(ErrRouteInLocalPart, "%q", local)
	}
	return ParseAddress(minimalLocal(local) + "@" + domain)
}

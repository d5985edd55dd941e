package mtasts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mode is the policy's enforcement mode (RFC 8461 §5).
type Mode string

// Modes.
const (
	ModeEnforce Mode = "enforce" // deliver only over validated TLS to a matching MX
	ModeTesting Mode = "testing" // report failures (RFC 8460), deliver anyway
	ModeNone    Mode = "none"    // the domain withdraws its policy
)

// MaxAgeLimit is the longest max_age a policy may give, in seconds (about
// one year; RFC 8461 §3.2: "maximum value of 31557600").
const MaxAgeLimit = 31557600

// MaxPolicySize bounds the policy body. RFC 8461 §3.3 lets senders limit
// the size of the response; 64 KiB is what deployed senders accept, and
// real policies are a few hundred bytes (docs/security.md#deadlines-and-caps).
const MaxPolicySize = 64 << 10

// ErrPolicySyntax is wrapped by every error of ParsePolicy.
var ErrPolicySyntax = errors.New("mta-sts: invalid policy")

// Policy is the policy file served at
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.2).
type Policy struct {
	Mode Mode `json:"mode"`
	// MX are the patterns an exchange must match (RFC 8461 §4.1), as
	// written: "mail.example.com" or "*.example.net".
	MX []string `json:"mx"`
	// MaxAge is how long senders may cache the policy, in seconds.
	MaxAge int64 `json:"max_age"`
	// Extensions are the fields RFC 8461 does not define, in order;
	// senders ignore them.
	Extensions []Extension `json:"extensions,omitempty"`
}

// ParsePolicy parses a policy file. Lines end in LF or CRLF (RFC 8461 §3.2:
// sts-policy-term = LF / CRLF); each is "key: value". version, mode and
// max_age are required once; mx is required at least once unless the mode
// is none; unknown keys are kept as extensions and otherwise ignored. Blank
// lines are skipped, as deployed senders do. Errors name the line.
func ParsePolicy(text string) (*Policy, error) {
	if len(text) > MaxPolicySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrPolicySyntax, MaxPolicySize)
	}
	p := &Policy{}
	var haveVersion, haveMode, haveMaxAge bool
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		// RFC 8461 §3.2: sts-policy-field-delim = ":" *WSP, and a field may
		// be followed by *WSP before the line ends.
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, lineErr(n, "no ':' (want key: value)")
		}
		value = strings.Trim(value, " \t")
		if value == "" {
			return nil, lineErr(n, "%q has no value", key)
		}
		switch key {
		case "version":
			if haveVersion {
				return nil, lineErr(n, "second version field")
			}
			// RFC 8461 §3.2: sts-policy-version-value = %s"STSv1".
			if value != Version {
				return nil, lineErr(n, "version is %q, want %q", value, Version)
			}
			haveVersion = true
		case "mode":
			if haveMode {
				return nil, lineErr(n, "second mode field")
			}
			// RFC 8461 §3.2: %s"testing" / %s"enforce" / %s"none".
			switch m := Mode(value); m {
			case ModeEnforce, ModeTesting, ModeNone:
				p.Mode = m
			default:
				return nil, lineErr(n, "mode is %q, want enforce, testing or none", value)
			}
			haveMode = true
		case "max_age":
			if haveMaxAge {
				return nil, lineErr(n, "second max_age field")
			}
			age, err := parseMaxAge(value)
			if err != nil {
				return nil, lineErr(n, "%v", err)
			}
			p.MaxAge, haveMaxAge = age, true
		case "mx":
			if err := checkPattern(value); err != nil {
				return nil, lineErr(n, "mx %q: %v", value, err)
			}
			p.MX = append(p.MX, value)
		default:
			if !validExtName(key) {
				return nil, lineErr(n, "field name %q is not valid (letters, digits, '_', '-', '.'; at most 32 characters; no space before ':')", key)
			}
			if !validPolicyExtValue(value) {
				return nil, lineErr(n, "field %s has control characters or invalid UTF-8", key)
			}
			p.Extensions = append(p.Extensions, Extension{Name: key, Value: value})
		}
	}
	switch {
	case !haveVersion:
		return nil, fmt.Errorf("%w: no version field", ErrPolicySyntax)
	case !haveMode:
		return nil, fmt.Errorf("%w: no mode field", ErrPolicySyntax)
	case !haveMaxAge:
		return nil, fmt.Errorf("%w: no max_age field", ErrPolicySyntax)
	case len(p.MX) == 0 && p.Mode != ModeNone:
		// RFC 8461 §3.2: mx is "required at least once, except when mode
		// is none".
		return nil, fmt.Errorf("%w: no mx field (required unless mode is none)", ErrPolicySyntax)
	}
	return p, nil
}

// String formats the policy as a policy file, CRLF-terminated lines in the
// order version, mode, mx, max_age, extensions.
func (p *Policy) String() string {
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	line("version", Version)
	line("mode", string(p.Mode))
	for _, mx := range p.MX {
		line("mx", mx)
	}
	line("max_age", strconv.FormatInt(p.MaxAge, 10))
	for _, e := range p.Extensions {
		line(e.Name, e.Value)
	}
	return b.String()
}

// Matches reports whether host (an exchange name, with or without the
// trailing dot) matches one of the policy's mx patterns.
func (p *Policy) Matches(host string) bool {
	for _, pat := range p.MX {
		if MatchPattern(pat, host) {
			return true
		}
	}
	return false
}

// NotCovered returns the hosts no mx pattern matches, in the order given.
// In enforce mode a sender will not deliver to them (RFC 8461 §4.1, §5.1).
func (p *Policy) NotCovered(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if !p.Matches(h) {
			out = append(out, h)
		}
	}
	return out
}

// MatchPattern reports whether host matches one mx pattern, ignoring case
// and a trailing dot. RFC 8461 §4.1: a pattern "*.example.com" matches a
// name with exactly one more label to the left ("mx1.example.com"), never
// "example.com" or "a.b.example.com"; any other pattern matches only
// itself.
func MatchPattern(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if parent, ok := strings.CutPrefix(pattern, "*."); ok {
		first, rest, ok := strings.Cut(host, ".")
		return ok && first != "" && rest == parent
	}
	return host == pattern
}

func lineErr(n int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrPolicySyntax, n, fmt.Sprintf(format, args...))
}

// parseMaxAge applies RFC 8461 §3.2: sts-policy-max-age-value = 1*10(DIGIT),
// "maximum value of 31557600".
func parseMaxAge(s string) (int64, error) {
	if len(s) > 10 {
		return 0, fmt.Errorf("max_age %q has more than 10 digits", s)
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("max_age %q is not a number of seconds", s)
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("max_age %q: %w", s, err)
	}
	if v > MaxAgeLimit {
		return 0, fmt.Errorf("max_age %d is above the limit of %d seconds (one year)", v, MaxAgeLimit)
	}
	return v, nil
}

// checkPattern applies RFC 8461 §3.2: sts-policy-mx-value = ["*."] Domain,
// with Domain as in RFC 5321 §4.1.2 (letters, digits and inner hyphens, no
// trailing dot).
func checkPattern(s string) error {
	name := strings.TrimPrefix(s, "*.")
	if len(name) > 253 {
		return errors.New("name longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return errors.New("empty label (leading, trailing or double dot)")
		case label == "*":
			return errors.New("a wildcard is only allowed as the whole leftmost label")
		case len(label) > 63:
			return fmt.Errorf("label %q is longer than 63 characters", label)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' {
				return fmt.Errorf("label %q has %q: only letters, digits and hyphens are allowed", label, string(rune(c)))
			}
		}
	}
	return nil
}

// validPolicyExtValue applies RFC 8461 §3.2: sts-policy-ext-value is
// visible characters and spaces, UTF-8 allowed, no control characters.
func validPolicyExtValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\t' {
			return false
		}
	}
	return true
}

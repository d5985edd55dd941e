// Package dmarc audits a domain's DMARC policy (RFC 7489): it finds the
// policy record the way a receiver does (at _dmarc of the domain, else at
// _dmarc of its organizational domain), parses it with messages a person
// can act on, and checks that every external report address has agreed to
// receive reports (RFC 7489 §7.1).
//
// DMARC tells receivers what to do with mail whose From domain is not
// aligned with a passing SPF or DKIM result (p=none, quarantine or reject)
// and where to send aggregate (rua) and failure (ruf) reports. A missing,
// duplicated or broken record means receivers apply no policy at all.
package dmarc

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
)

// Version is the only DMARC version (RFC 7489 §6.3, "v").
const Version = "DMARC1"

// Policy is a requested handling of failing mail (RFC 7489 §6.3, "p").
type Policy string

// Policies.
const (
	None       Policy = "none"
	Quarantine Policy = "quarantine"
	Reject     Policy = "reject"
)

// Alignment is an identifier alignment mode (RFC 7489 §3.1, "adkim", "aspf").
type Alignment string

// Alignment modes.
const (
	Relaxed Alignment = "r"
	Strict  Alignment = "s"
)

// Defaults from RFC 7489 §6.3, applied by Parse for absent tags and left out
// by Record.String.
const (
	DefaultPercent        = 100
	DefaultReportInterval = 86400
	DefaultReportFormat   = "afrf"
	DefaultFailureOption  = "0"
)

// URI is one report destination of rua or ruf (RFC 7489 §6.4, dmarc-uri):
// a URI with an optional maximum report size.
type URI struct {
	URI string `json:"uri"`
	// Size is the maximum report size after the "!", as written but with
	// the unit in lower case ("10m"); "" when none is given.
	Size string `json:"size,omitempty"`
}

func (u URI) String() string {
	if u.Size == "" {
		return u.URI
	}
	return u.URI + "!" + u.Size
}

// MaxBytes returns the size limit in bytes (k, m, g and t are powers of
// 1024, RFC 7489 §6.2), saturating at the largest uint64, and false when no
// limit is given.
func (u URI) MaxBytes() (uint64, bool) {
	if u.Size == "" {
		return 0, false
	}
	digits, shift := u.Size, 0
	if i := strings.IndexByte("kmgt", u.Size[len(u.Size)-1]); i >= 0 {
		digits, shift = u.Size[:len(u.Size)-1], 10*(i+1)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return math.MaxUint64, true
	}
	return n << shift, true
}

// MailtoDomain returns the domain of a mailto: URI's address (the part after
// the last "@", as an A-label name), and false for other URIs.
func (u URI) MailtoDomain() (dnsname.Name, bool) {
	addr, ok := mailtoAddress(u.URI)
	if !ok {
		return "", false
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	d, err := dnsname.Parse(addr[at+1:])
	if err != nil {
		return "", false
	}
	return d, true
}

// mailtoAddress returns the percent-decoded address of a mailto: URI
// (RFC 6068 §2), without its header fields.
func mailtoAddress(uri string) (string, bool) {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(scheme, "mailto") {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	addr, err := url.PathUnescape(rest)
	if err != nil {
		return "", false
	}
	return addr, true
}

// Tag is a tag this package does not know, kept as published (RFC 7489 §6.3:
// unknown tags MUST be ignored; DMARCbis adds np, psd and t).
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is a parsed DMARC policy record (RFC 7489 §6.3), with the defaults
// of absent tags filled in.
type Record struct {
	Policy          Policy    `json:"p"`
	SubdomainPolicy Policy    `json:"sp,omitempty"` // "" = as p
	DKIMAlignment   Alignment `json:"adkim"`
	SPFAlignment    Alignment `json:"aspf"`
	Percent         int       `json:"pct"`
	FailureOptions  []string  `json:"fo"` // "0", "1", "d", "s"
	ReportFormats   []string  `json:"rf"`
	ReportInterval  uint32    `json:"ri"` // seconds
	AggregateURIs   []URI     `json:"rua,omitempty"`
	FailureURIs     []URI     `json:"ruf,omitempty"`
	Unknown         []Tag     `json:"unknown,omitempty"`
}

// PolicyFor returns the policy that applies to mail from the domain that
// published the record (subdomain false) or from a subdomain that inherits
// it (RFC 7489 §6.3 "sp": absent means the same as p).
func (r *Record) PolicyFor(subdomain bool) Policy {
	if subdomain && r.SubdomainPolicy != "" {
		return r.SubdomainPolicy
	}
	return r.Policy
}

// String formats the record with its tags in a fixed order, leaving out
// tags whose value is the default. Parse(r.String()) gives r back.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=" + Version)
	tag := func(name, value string) {
		b.WriteString("; " + name + "=" + value)
	}
	tag("p", string(r.Policy))
	if r.SubdomainPolicy != "" {
		tag("sp", string(r.SubdomainPolicy))
	}
	if r.DKIMAlignment != Relaxed {
		tag("adkim", string(r.DKIMAlignment))
	}
	if r.SPFAlignment != Relaxed {
		tag("aspf", string(r.SPFAlignment))
	}
	if r.Percent != DefaultPercent {
		tag("pct", strconv.Itoa(r.Percent))
	}
	if len(r.FailureOptions) != 1 || r.FailureOptions[0] != DefaultFailureOption {
		tag("fo", strings.Join(r.FailureOptions, ":"))
	}
	if len(r.ReportFormats) != 1 || r.ReportFormats[0] != DefaultReportFormat {
		tag("rf", strings.Join(r.ReportFormats, ":"))
	}
	if r.ReportInterval != DefaultReportInterval {
		tag("ri", strconv.FormatUint(uint64(r.ReportInterval), 10))
	}
	uris := func(us []URI) string {
		s := make([]string, len(us))
		for i, u := range us {
			s[i] = u.String()
		}
		return strings.Join(s, ",")
	}
	if len(r.AggregateURIs) > 0 {
		tag("rua", uris(r.AggregateURIs))
	}
	if len(r.FailureURIs) > 0 {
		tag("ruf", uris(r.FailureURIs))
	}
	for _, t := range r.Unknown {
		tag(t.Name, t.Value)
	}
	return b.String()
}

// ErrSyntax is wrapped by every *SyntaxError.
var ErrSyntax = errors.New("dmarc: invalid record")

// SyntaxError lists every problem Parse found in a record, each naming the
// tag and what is wrong with it.
type SyntaxError struct {
	Problems []string
}

func (e *SyntaxError) Error() string {
	return "dmarc: " + strings.Join(e.Problems, "; ")
}

// Unwrap lets errors.Is(err, ErrSyntax) match.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// IsDMARC reports whether a TXT record is a DMARC record candidate: one
// that starts with the tag v=DMARC1 (RFC 7489 §6.6.3 step 2: other records
// at _dmarc are discarded). A candidate may still fail Parse, which then
// says what is wrong ("v=DMARC1 p=none" lacks its ";").
func IsDMARC(txt string) bool {
	v, ok := versionTag(txt)
	return ok && strings.HasPrefix(v, Version)
}

// versionTag returns the value of the record's first tag when that tag is v
// (RFC 7489 §6.4 dmarc-version: "v" *WSP "=" *WSP "DMARC1"; the tag name is
// case-insensitive ABNF, the version %x-coded and so exact).
func versionTag(txt string) (string, bool) {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	if !ok || !strings.EqualFold(strings.TrimRight(name, " \t"), "v") {
		return "", false
	}
	return trimWSP(value), true
}

// Parse parses a DMARC record (RFC 7489 §6.3, §6.4) and reports every
// problem in one *SyntaxError.
//
// Like a receiver, Parse keeps what it can: RFC 7489 §6.3 says syntax errors
// in tags other than v are discarded in favour of defaults, so a record
// with, say, a bad pct comes back with pct=100 beside the error. A record
// without a valid p (or with an invalid sp) is treated as p=none when it has
// a valid rua, and is discarded otherwise (§6.6.3 step 6). The Record is nil
// when a receiver would discard it: when v=DMARC1 is not the first tag, or
// p/sp is unusable and there is no valid rua.
func Parse(txt string) (*Record, error) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	rec := &Record{
		DKIMAlignment:  Relaxed,
		SPFAlignment:   Relaxed,
		Percent:        DefaultPercent,
		FailureOptions: []string{DefaultFailureOption},
		ReportFormats:  []string{DefaultReportFormat},
		ReportInterval: DefaultReportInterval,
	}
	// RFC 7489 §6.3: "v" MUST be present and MUST be the first tag.
	switch v, ok := versionTag(txt); {
	case !ok:
		return nil, &SyntaxError{Problems: []string{"the record must start with v=DMARC1 (RFC 7489 §6.3)"}}
	case strings.HasPrefix(v, Version+" ") || strings.HasPrefix(v, Version+"\t"):
		return nil, &SyntaxError{Problems: []string{fmt.Sprintf("v=%s: a semicolon must follow v=DMARC1; receivers discard the record", v)}}
	case v != Version:
		return nil, &SyntaxError{Problems: []string{fmt.Sprintf("v=%s: the version must be exactly DMARC1 (RFC 7489 §6.3); receivers discard the record", v)}}
	}
	parts := strings.Split(txt, ";")
	seen := map[string]bool{"v": true}
	pValid, spValid := false, true
	for _, part := range parts[1:] {
		part = trimWSP(part)
		if part == "" {
			continue // "; ;" or a trailing ";": harmless, receivers skip it
		}
		name, value, ok := strings.Cut(part, "=")
		name, value = trimWSP(name), trimWSP(value)
		if !ok {
			bad("%q is not a tag=value pair", part)
			continue
		}
		// RFC 7489 §6.4: dmarc-tag = 1*ALPHA (checked before lower-casing,
		// which maps some non-ASCII letters to ASCII ones).
		if !isAlpha(name) {
			bad("%q is not a valid tag name (letters only)", name)
			continue
		}
		name = strings.ToLower(name)
		if seen[name] {
			bad("%s appears more than once; only the first is used", name)
			continue
		}
		seen[name] = true
		if value == "" {
			bad("%s has an empty value", name)
			if name == "sp" {
				spValid = false
			}
			continue
		}
		// RFC 7489 §6.4 dmarc-value: printable US-ASCII except ";".
		if i := strings.IndexFunc(value, func(c rune) bool { return c < 0x20 || c > 0x7e }); i >= 0 {
			bad("%s=%q contains a character that is not printable US-ASCII", name, value)
			if name == "sp" {
				spValid = false
			}
			continue
		}
		switch name {
		case "p":
			if p, ok := parsePolicy(value); ok {
				rec.Policy, pValid = p, true
			} else {
				bad("p=%s: the policy must be none, quarantine or reject", value)
			}
		case "sp":
			if p, ok := parsePolicy(value); ok {
				rec.SubdomainPolicy = p
			} else {
				spValid = false
				bad("sp=%s: the subdomain policy must be none, quarantine or reject", value)
			}
		case "adkim", "aspf":
			a := Alignment(strings.ToLower(value))
			if a != Relaxed && a != Strict {
				bad("%s=%s: the alignment mode must be r (relaxed) or s (strict)", name, value)
			} else if name == "adkim" {
				rec.DKIMAlignment = a
			} else {
				rec.SPFAlignment = a
			}
		case "pct":
			// RFC 7489 §6.4 dmarc-percent: 1*3DIGIT; §6.3: 0 to 100.
			n, err := strconv.Atoi(value)
			if err != nil || !isDigits(value) || len(value) > 3 || n > 100 {
				bad("pct=%s: must be a whole number from 0 to 100", value)
			} else {
				rec.Percent = n
			}
		case "ri":
			// RFC 7489 §6.3: a 32-bit unsigned integer of seconds.
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil || !isDigits(value) {
				bad("ri=%s: must be a number of seconds (0 to 4294967295)", value)
			} else {
				rec.ReportInterval = uint32(n)
			}
		case "fo":
			if fo, ok := parseList(value, func(s string) bool { return s == "0" || s == "1" || s == "d" || s == "s" }); ok {
				rec.FailureOptions = fo
			} else {
				bad("fo=%s: must be a colon-separated list of 0, 1, d and s", value)
			}
		case "rf":
			// RFC 7489 §6.4 dmarc-rfmt: registered formats only; the IANA
			// registry (§11.5) holds just afrf.
			if rf, ok := parseList(value, func(s string) bool { return s == DefaultReportFormat }); ok {
				rec.ReportFormats = rf
			} else {
				bad("rf=%s: the only report format is afrf", value)
			}
		case "rua", "ruf":
			uris, msgs := parseURIs(name, value)
			problems = append(problems, msgs...)
			if name == "rua" {
				rec.AggregateURIs = uris
			} else {
				rec.FailureURIs = uris
			}
		case "v":
			// seen["v"] is preset: never reached.
		default:
			rec.Unknown = append(rec.Unknown, Tag{Name: name, Value: value})
		}
	}
	if !seen["p"] {
		bad("the p tag (policy) is missing; it is required (RFC 7489 §6.3)")
	}
	if !pValid || !spValid {
		// RFC 7489 §6.6.3 step 6.
		if len(rec.AggregateURIs) == 0 {
			bad("without a valid p and sp and without a valid rua, receivers discard the record (RFC 7489 §6.6.3)")
			return nil, &SyntaxError{Problems: problems}
		}
		bad("receivers treat the record as p=none because it has a valid rua (RFC 7489 §6.6.3)")
		rec.Policy, rec.SubdomainPolicy = None, ""
	}
	if len(problems) > 0 {
		return rec, &SyntaxError{Problems: problems}
	}
	return rec, nil
}

func parsePolicy(s string) (Policy, bool) {
	switch p := Policy(strings.ToLower(s)); p {
	case None, Quarantine, Reject:
		return p, true
	}
	return "", false
}

// parseList splits a colon-separated list (with optional WSP around the
// colons), lower-cases the items and checks each with ok.
func parseList(s string, ok func(string) bool) ([]string, bool) {
	var out []string
	for item := range strings.SplitSeq(s, ":") {
		item = strings.ToLower(trimWSP(item))
		if !ok(item) {
			return nil, false
		}
		out = append(out, item)
	}
	return out, true
}

// parseURIs parses a comma-separated list of dmarc-uri (RFC 7489 §6.4),
// keeping the valid ones and describing the others.
func parseURIs(tag, s string) ([]URI, []string) {
	var uris []URI
	var problems []string
	for item := range strings.SplitSeq(s, ",") {
		item = trimWSP(item)
		u, err := parseURI(item)
		if err != "" {
			problems = append(problems, fmt.Sprintf("%s=%s: %s", tag, item, err))
			continue
		}
		uris = append(uris, u)
	}
	return uris, problems
}

// parseURI parses one dmarc-uri: URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
// (RFC 7489 §6.4). It returns a problem description, or "".
func parseURI(s string) (URI, string) {
	if s == "" {
		return URI{}, "empty URI in the list"
	}
	// RFC 7489 §6.4: "!" and "," inside the URI MUST be percent-encoded, so
	// the first "!" starts the size.
	raw, size, hasSize := strings.Cut(s, "!")
	u := URI{URI: raw}
	if hasSize {
		digits, unit := size, ""
		if n := len(size); n > 0 && strings.ContainsRune("kmgtKMGT", rune(size[n-1])) {
			digits, unit = size[:n-1], strings.ToLower(size[n-1:])
		}
		// RFC 7489 §6.4: the number MUST fit an unsigned 64-bit integer.
		if _, err := strconv.ParseUint(digits, 10, 64); err != nil || !isDigits(digits) {
			return URI{}, fmt.Sprintf("the size limit %q must be a number with an optional k, m, g or t", "!"+size)
		}
		u.Size = digits + unit
	}
	for _, c := range []byte(raw) {
		// RFC 3986 §2: no controls, spaces, non-ASCII or these in a URI.
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			return URI{}, fmt.Sprintf("%q is not a valid URI (character %q must be percent-encoded)", raw, c)
		}
	}
	parsed, err := url.Parse(raw)
	if err != nil || parsed.Scheme == "" {
		if strings.Contains(raw, "@") && !strings.Contains(raw, ":") {
			return URI{}, fmt.Sprintf("%q is not a URI: write mailto:%s", raw, raw)
		}
		return URI{}, fmt.Sprintf("%q is not an absolute URI (RFC 3986)", raw)
	}
	if strings.EqualFold(parsed.Scheme, "mailto") {
		addr, ok := mailtoAddress(raw)
		at := strings.LastIndexByte(addr, '@')
		if !ok || at <= 0 {
			return URI{}, fmt.Sprintf("%q has no mailbox (local@domain)", raw)
		}
		if _, err := dnsname.Parse(addr[at+1:]); err != nil {
			return URI{}, fmt.Sprintf("%q: %v", raw, err)
		}
	}
	return u, ""
}

// trimWSP removes RFC 5234 WSP (space and tab) from both ends.
func trimWSP(s string) string { return strings.Trim(s, " \t") }

func isAlpha(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

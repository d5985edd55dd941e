// Package tlsrpt audits a domain's SMTP TLS Reporting record (RFC 8460): the
// TXT record at _smtp._tls.DOMAIN that tells sending MTAs where to report
// failures to negotiate TLS (MTA-STS or DANE) with the domain's exchanges.
//
// Without one, a domain never hears that senders fail to deliver securely
// to it, for instance after an expired certificate or a policy mismatch.
package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// Version is the record version, which must open the record (RFC 8460 §3).
const Version = "TLSRPTv1"

// Extension is a field other than v and rua, kept as published (RFC 8460
// §3: unknown fields SHALL be ignored).
type Extension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is a parsed TLS-RPT record (RFC 8460 §3).
type Record struct {
	// RUA are the report destinations, mailto: or https: URIs.
	RUA        []string    `json:"rua"`
	Extensions []Extension `json:"extensions,omitempty"`
}

// String formats the record. Parse(r.String()) gives r back.
func (r *Record) String() string {
	parts := []string{"v=" + Version, "rua=" + strings.Join(r.RUA, ",")}
	for _, e := range r.Extensions {
		parts = append(parts, e.Name+"="+e.Value)
	}
	return strings.Join(parts, "; ")
}

// ErrSyntax is wrapped by every *SyntaxError.
var ErrSyntax = errors.New("tlsrpt: invalid record")

// SyntaxError lists every problem Parse found in a record.
type SyntaxError struct {
	Problems []string
}

func (e *SyntaxError) Error() string { return "tlsrpt: " + strings.Join(e.Problems, "; ") }

// Unwrap lets errors.Is(err, ErrSyntax) match.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// IsTLSRPT reports whether a TXT record is a TLS-RPT record candidate: one
// that starts with v=TLSRPTv1 (RFC 8460 §3: records that do not are
// discarded). Parse says what is wrong with a candidate.
func IsTLSRPT(txt string) bool { return strings.HasPrefix(txt, "v="+Version) }

// Parse parses a TLS-RPT record (RFC 8460 §3) and reports every problem in
// one *SyntaxError; the Record is then nil, since a sender cannot use it.
func Parse(txt string) (*Record, error) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(txt, ";")
	// RFC 8460 §3: tlsrpt-version = %s"v=TLSRPTv1", first, then field-delim
	// = *WSP ";" *WSP.
	if first := strings.TrimRight(parts[0], " \t"); first != "v="+Version {
		if strings.HasPrefix(first, "v="+Version+" ") || strings.HasPrefix(first, "v="+Version+"\t") {
			bad("a semicolon must follow v=%s", Version)
		} else {
			bad("the record must start with v=%s; (RFC 8460 §3)", Version)
		}
		return nil, &SyntaxError{Problems: problems}
	}
	r := &Record{}
	seenRUA := false
	for _, part := range parts[1:] {
		part = strings.Trim(part, " \t")
		if part == "" {
			continue // a trailing ";" (allowed) or ";;"
		}
		name, value, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			bad("%q is not a name=value field", part)
		case strings.TrimRight(name, " \t") != name || strings.TrimLeft(value, " \t") != value:
			bad("%q: no spaces are allowed around \"=\" (RFC 8460 §3)", part)
		case name == "rua":
			// RFC 8460 §3, note 1: rua MUST appear exactly once.
			if seenRUA {
				bad("rua appears more than once; it must appear exactly once")
				continue
			}
			seenRUA = true
			r.RUA = parseRUA(value, bad)
		case !isExtName(name):
			bad("%q is not a valid field name (letters, digits, _ - ., at most 32)", name)
		case value == "" || strings.IndexFunc(value, func(c rune) bool { return c <= 0x20 || c >= 0x7f || c == '=' }) >= 0:
			// RFC 8460 §3: tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E).
			bad("%s=%q: an extension value must be printable US-ASCII without spaces, \"=\" or \";\"", name, value)
		default:
			r.Extensions = append(r.Extensions, Extension{Name: name, Value: value})
		}
	}
	if !seenRUA {
		bad("the rua field (where to send reports) is missing; it is required (RFC 8460 §3)")
	}
	if len(problems) > 0 {
		return nil, &SyntaxError{Problems: problems}
	}
	return r, nil
}

// parseRUA parses tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) (RFC 8460 §3).
func parseRUA(value string, bad func(string, ...any)) []string {
	var uris []string
	for u := range strings.SplitSeq(value, ",") {
		u = strings.Trim(u, " \t")
		if msg := checkURI(u); msg != "" {
			// msg quotes the URI (escaped by %q): the raw value may
			// carry control characters.
			bad("rua: %s", msg)
			continue
		}
		uris = append(uris, u)
	}
	return uris
}

// checkURI checks one report URI; RFC 8460 §3 supports mailto: and https:.
func checkURI(u string) string {
	if u == "" {
		return "empty URI in the list"
	}
	for _, c := range []byte(u) {
		// RFC 3986 §2, and RFC 8460 §3: "!" and "," must be encoded.
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}!", c) >= 0 {
			return fmt.Sprintf("%q is not a valid URI (character %q must be percent-encoded)", u, c)
		}
	}
	p, err := url.Parse(u)
	switch {
	case err != nil || p.Scheme == "":
		if strings.Contains(u, "@") && !strings.Contains(u, ":") {
			return fmt.Sprintf("%q is not a URI: write mailto:%s", u, u)
		}
		return fmt.Sprintf("%q is not an absolute URI", u)
	case strings.EqualFold(p.Scheme, "mailto"):
		addr, err := url.PathUnescape(p.Opaque)
		at := strings.LastIndexByte(addr, '@')
		if err != nil || at <= 0 {
			return fmt.Sprintf("%q has no mailbox (local@domain)", u)
		}
		if _, err := dnsname.Parse(addr[at+1:]); err != nil {
			return fmt.Sprintf("%q: %v", u, err)
		}
	case strings.EqualFold(p.Scheme, "https"):
		if p.Host == "" {
			return fmt.Sprintf("%q has no host", u)
		}
	default:
		return fmt.Sprintf("%q: reports go only to mailto: or https: URIs", u)
	}
	return ""
}

// isExtName: tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
// "-" / ".") (RFC 8460 §3).
func isExtName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// Result is what Lookup found for one domain.
type Result struct {
	Domain string `json:"domain"`
	Name   string `json:"name"` // _smtp._tls.DOMAIN, without the final dot
	// Records are the TLS-RPT candidates at Name (IsTLSRPT), as published;
	// anything but one means no TLS reporting (RFC 8460 §3).
	Records []string `json:"records"`
	// Record is the parsed record when there is exactly one and it is
	// valid; Problems are Parse's problems otherwise.
	Record   *Record  `json:"record,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Lookup asks for the TLS-RPT record of domain (RFC 8460 §3). A temporary
// failure is an error with a nil Result, never "no record".
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "tlsrpt lookup", []any{"domain", domain},
		func() (*Result, error) { return lookup(ctx, r, domain) },
		func(res *Result) []any { return []any{"records", len(res.Records)} })
}

// Options configure Lookup; the zero value is ready to use.
type Options struct {
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

// RecordQuestion is the question for domain's TLS-RPT record: the TXT
// records at _smtp._tls.DOMAIN (RFC 8460 §3), which Lookup asks first.
func RecordQuestion(domain dnsname.Name) resolve.Question {
	return resolve.Q("_smtp._tls."+domain.FQDN(), dns.TypeTXT)
}

func lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name) (*Result, error) {
	ans, err := resolve.Follow(ctx, r, RecordQuestion(domain))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: %w", err)
	}
	res := &Result{Domain: domain.String(), Name: "_smtp._tls." + domain.String(), Records: []string{}}
	for _, rr := range ans.Records {
		if t := resolve.TXTData(rr.(*dns.TXT)); IsTLSRPT(t) {
			res.Records = append(res.Records, t)
		}
	}
	if len(res.Records) == 1 {
		res.Record, err = Parse(res.Records[0])
		if se, ok := errors.AsType[*SyntaxError](err); ok {
			res.Problems = se.Problems
		}
	}
	return res, nil
}

// Findings turns a Lookup result into tlsrpt-missing (no record) or
// tlsrpt-invalid (more than one record, or one that does not parse).
func Findings(res *Result) []finding.Finding {
	switch {
	case res == nil:
		return nil
	case len(res.Records) == 0:
		// Most domains of a scan: worded without fmt.
		return []finding.Finding{finding.New(finding.TLSRPTMissing, res.Name,
			"No TLS reporting record at "+res.Name+": "+res.Domain+" never hears of senders that cannot deliver to it over TLS.")}
	case len(res.Records) > 1:
		// RFC 8460 §3: with more than one record, senders assume the
		// domain does not implement TLS-RPT.
		return []finding.Finding{finding.Newf(finding.TLSRPTInvalid, res.Name,
			"%s has %d records starting with v=%s; senders then send no reports at all (RFC 8460 §3).", res.Name, len(res.Records), Version)}
	case res.Record == nil:
		return []finding.Finding{finding.Newf(finding.TLSRPTInvalid, res.Name,
			"The TLS reporting record at %s is invalid, so senders ignore it: %s.", res.Name, strings.Join(res.Problems, "; "))}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

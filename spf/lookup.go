package spf

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// Errors that explain a none, permerror or temperror result, for errors.Is.
// DNS failures are *resolve.Error values wrapped by ErrDNS.
var (
	ErrNoRecord         = errors.New("spf: no SPF record")
	ErrMultipleRecords  = errors.New("spf: more than one SPF record")
	ErrInvalidDomain    = errors.New("spf: not a usable domain name")
	ErrInvalidIP        = errors.New("spf: invalid IP address")
	ErrLookupLimit      = errors.New("spf: more than 10 DNS-querying terms")
	ErrVoidLookupLimit  = errors.New("spf: more than 2 void lookups")
	ErrTooManyMX        = errors.New("spf: more than 10 MX records")
	ErrIncludeNone      = errors.New("spf: included domain has no SPF record")
	ErrRedirectNone     = errors.New("spf: redirect target has no SPF record")
	ErrDNS              = errors.New("spf: DNS lookup failed")
	ErrDepth            = errors.New("spf: include/redirect nesting too deep")
	ErrAnalysisTooLarge = errors.New("spf: record tree too large to analyse")
)

// MaxNameLength is the longest domain name in text form (RFC 1035 §2.3.4,
// without the trailing dot), the length macro expansions are truncated to
// (RFC 7208 §4.8, §7.3).
const MaxNameLength = 253

// truncateName implements RFC 7208 §4.8 and §7.3 for the result of a macro
// expansion used as a query name: over 253 characters (a trailing dot not
// counted), labels and their dots are removed from the left until it fits.
// A name whose last label alone is too long stays as it is, for queryName
// to reject. The name is raw text, where every dot separates labels.
func truncateName(domain string) string {
	trimmed := strings.TrimSuffix(domain, ".")
	for len(trimmed) > MaxNameLength {
		dot := strings.IndexByte(trimmed, '.')
		if dot < 0 {
			return domain
		}
		trimmed, domain = trimmed[dot+1:], domain[dot+1:]
	}
	return domain
}

// queryName turns a domain into an absolute query name. It reports false
// for a name no DNS query can be made for: empty or over-long labels, or
// more than 253 characters (RFC 7208 §4.3 and §4.8 treat those as
// non-existent). A macro expansion is first cut to length by truncateName.
//
// The domain is raw text, where every dot separates labels and a backslash
// is an octet like any other, not presentation format: its labels are cut
// from a split, not walked with dnsname.Parent, which reads escapes.
func queryName(domain string) (string, bool) {
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" || len(domain) > MaxNameLength {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(domain) + 1) // the name, unless escaped, and its dot
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			// Presentation format (RFC 1035 §5.1): a backslash and
			// unprintable bytes are escaped, so the query asks for exactly
			// these octets.
			c := label[i]
			switch {
			case c == '\\':
				b.WriteString(`\\`)
			case c < 0x21 && c != ' ' || c > 0x7e:
				fmt.Fprintf(&b, `\%03d`, c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('.')
	}
	return b.String(), true
}

// whyUnusable says, for a domain check_host() cannot take (queryName or
// multiLabel rejects it, or it is an address literal), what is wrong with
// it, in words.
func whyUnusable(domain string) string {
	d := strings.TrimSuffix(domain, ".")
	switch {
	case d == "":
		return "is empty"
	case strings.HasPrefix(d, "["):
		return "is an address literal, not a domain"
	}
	if len(d) > MaxNameLength {
		return fmt.Sprintf("is %d characters long, more than %d", len(d), MaxNameLength)
	}
	for label := range strings.SplitSeq(d, ".") {
		switch {
		case label == "":
			return "has an empty label"
		case len(label) > 63:
			return fmt.Sprintf("has a label of %d octets, more than 63", len(label))
		}
	}
	if !strings.Contains(d, ".") {
		return "is a single label, not a fully qualified domain"
	}
	return "is not a usable name"
}

// quoteName quotes a domain for an error message: whole up to 253
// characters, else its first 253 and "…", so a hostile sender's domain does
// not fill the message (its length is in whyUnusable's words).
func quoteName(domain string) string {
	if len(domain) <= MaxNameLength {
		return strconv.Quote(domain)
	}
	return strconv.Quote(domain[:MaxNameLength]) + "…"
}

// multiLabel reports whether a query name has at least two labels (RFC 7208
// §4.3: a single-label domain gives "none").
func multiLabel(qname string) bool {
	return strings.Count(strings.TrimSuffix(qname, "."), ".") >= 1
}

// fetched is the outcome of looking up a domain's SPF record.
type fetched struct {
	text   string   // the SPF record, TXT strings concatenated
	others []string // every SPF record found when there are several
	void   bool     // NXDOMAIN or no TXT records at all (RFC 7208 §4.6.4)
	nx     bool     // NXDOMAIN
}

// fetchRecord asks for the TXT records of qname and selects the SPF record
// (RFC 7208 §4.4, §4.5). It returns ErrNoRecord, ErrMultipleRecords, or an
// error wrapping ErrDNS and the *resolve.Error for temporary failures.
func fetchRecord(ctx context.Context, r resolve.Resolver, qname string) (fetched, error) {
	res, err := resolve.Follow(ctx, r, resolve.Q(qname, dns.TypeTXT))
	if err != nil {
		// RFC 7208 §4.4: a server failure, any other error or a time-out
		// ends check_host() with temperror.
		return fetched{}, fmt.Errorf("%w: %w", ErrDNS, err)
	}
	var f fetched
	f.void, f.nx = len(res.Records) == 0, res.NXDomain
	for _, rr := range res.Records {
		// RFC 7208 §3.3: the strings of one TXT record are concatenated
		// without spaces.
		txt := resolve.TXTData(rr.(*dns.TXT))
		// RFC 7208 §4.5: records that do not begin with "v=spf1" (and a
		// space or the end) are discarded.
		if IsRecord(txt) {
			f.others = append(f.others, txt)
		}
	}
	switch len(f.others) {
	case 0:
		what := "no TXT record starting with \"v=spf1\""
		if f.nx {
			what = "NXDOMAIN: the name does not exist"
		} else if f.void {
			what = "no TXT records"
		}
		return f, &noRecordError{domain: strings.TrimSuffix(qname, "."), reason: what}
	case 1:
		f.text = f.others[0]
		f.others = nil
		return f, nil
	}
	// RFC 7208 §4.5: more than one record is a permerror.
	return f, fmt.Errorf("%w at %s (%d records)", ErrMultipleRecords, strings.TrimSuffix(qname, "."), len(f.others))
}

// noRecordError is ErrNoRecord with what was found instead, so a finding
// can say why in its own words rather than repeat the error chain.
type noRecordError struct{ domain, reason string }

func (e *noRecordError) Error() string {
	return fmt.Sprintf("%v at %s: %s", ErrNoRecord, e.domain, e.reason)
}

func (e *noRecordError) Unwrap() error { return ErrNoRecord }

// targetNoneError is ErrIncludeNone or ErrRedirectNone with the target's
// own error (a noRecordError, or ErrInvalidDomain for a name that is not
// usable). Its text names the target once and reads as one sentence; it
// unwraps to both, for errors.Is.
type targetNoneError struct {
	kind   error // ErrIncludeNone or ErrRedirectNone
	target string
	inner  error
}

func (e *targetNoneError) Error() string {
	what := "included domain"
	if e.kind == ErrRedirectNone {
		what = "redirect target"
	}
	if nr, ok := errors.AsType[*noRecordError](e.inner); ok {
		return fmt.Sprintf("spf: the %s %s has no SPF record: %s", what, nr.domain, nr.reason)
	}
	return fmt.Sprintf("spf: the %s %s: %s", what, e.target, strings.TrimPrefix(e.inner.Error(), "spf: "))
}

func (e *targetNoneError) Unwrap() []error { return []error{e.kind, e.inner} }

// noRecordReason returns what was found instead of an SPF record ("no TXT
// records"), or err's text when err is not a noRecordError.
func noRecordReason(err error) string {
	if nr, ok := errors.AsType[*noRecordError](err); ok {
		return nr.reason
	}
	// The text goes into a finding: without the sentinels' "spf: ".
	return strings.TrimPrefix(err.Error(), "spf: ")
}

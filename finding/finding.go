// Package finding defines the result of every mxtrace check: a Finding with a
// stable ID, a severity, the name or address it is about, a sentence for a
// person, the RFC that applies and what to change.
//
// The IDs are a public interface (scripts match on them), so they are
// constants listed in one catalogue, Catalogue, from which docs/findings.md is
// generated; a test checks that the two agree.
package finding

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/mxtrace/mxtrace/internal/printable"
)

// Severity orders findings; a higher value is worse.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota + 1
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity parses "info", "warning" or "error".
func ParseSeverity(s string) (Severity, error) {
	for _, v := range []Severity{Info, Warning, Error} {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want info, warning or error)", s)
}

// MarshalText writes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ID is a stable finding identifier such as "mx-target-cname".
type ID string

// Finding is one observation about a domain's mail setup.
type Finding struct {
	ID        ID       `json:"id"`
	Severity  Severity `json:"severity"`
	Subject   string   `json:"subject"`
	Message   string   `json:"message"`
	Reference string   `json:"reference"`
	Fix       string   `json:"fix"`
}

// MaxMessage bounds a finding's message (and subject), in octets: a
// message is one sentence for a person, and what it quotes comes from
// servers that may send records of 64 KiB.
const MaxMessage = 2048

// New builds a Finding for id from the catalogue entry, with the subject and
// a message specific to this occurrence. It panics on an ID missing from the
// catalogue: that is a programming error caught by every test that runs it.
//
// A message is one sentence, and ends with one period: a sentence that
// ends with text it quotes (an SMTP reply such as "554 Go away.", an error
// naming an absolute name) would end in "..", and loses one.
//
// The subject and message are the last guard before a terminal or a JSON
// consumer (docs/security.md): a control character that reached them
// unescaped (a TXT record quoted as served) is escaped, and each is cut to
// MaxMessage octets. Text already escaped (internal/printable) is kept as
// it is.
func New(id ID, subject, message string) Finding {
	e, ok := Lookup(id)
	if !ok {
		panic("finding: ID not in catalogue: " + string(id))
	}
	if strings.HasSuffix(message, "..") && !strings.HasSuffix(message, "...") {
		message = message[:len(message)-1]
	}
	return Finding{ID: id, Severity: e.Severity, Subject: guard(subject), Message: guard(message), Reference: e.Reference, Fix: e.Fix}
}

// guard escapes control characters and bounds the length of text that
// quotes what servers sent.
func guard(s string) string {
	// A message is one line: errors.Join's newlines separate a list.
	s = strings.ReplaceAll(s, "\n", "; ")
	return printable.Cut(printable.Controls(s), MaxMessage)
}

// Newf is New with a formatted message.
func Newf(id ID, subject, format string, args ...any) Finding {
	return New(id, subject, fmt.Sprintf(format, args...))
}

// Sort orders findings worst first, then by ID and subject, so output is
// deterministic whatever order concurrent checks finished in.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Subject, b.Subject),
		)
	})
}

// Worst returns the highest severity among fs, or 0 when fs is empty.
func Worst(fs []Finding) Severity {
	var w Severity
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	return w
}

// Area is a part of the audit: the catalogue groups its entries by area,
// and check judges and reports one area at a time.
type Area string

// Areas, in report order.
const (
	AreaRouting     Area = "routing"
	AreaNameservers Area = "nameservers"
	AreaPTR         Area = "reverse DNS"
	AreaSPF         Area = "SPF"
	AreaDMARC       Area = "DMARC"
	AreaDKIM        Area = "DKIM"
	AreaMTASTS      Area = "MTA-STS"
	AreaTLSRPT      Area = "TLS-RPT"
	AreaDANE        Area = "DANE"
	AreaDNSBL       Area = "blacklists"
	AreaSMTP        Area = "SMTP"
	AreaTiers       Area = "tiers"
)

// Entry is the catalogue's description of one ID.
type Entry struct {
	ID        ID
	Area      Area
	Severity  Severity
	Title     string // what the finding means, one line
	Reference string
	Fix       string
	Example   string // a zone fragment or situation that triggers it
}

// Lookup returns the catalogue entry for id.
func Lookup(id ID) (Entry, bool) {
	i := index(id) // index.go, generated from Catalogue
	if i < 0 {
		return Entry{}, false
	}
	return Catalogue[i], true
}

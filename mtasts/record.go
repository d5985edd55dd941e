package mtasts

import (
	"errors"
	"fmt"
	"strings"
)

// Version is the only version of the TXT record and the policy (RFC 8461
// §3.1, §3.2).
const Version = "STSv1"

// recordPrefix starts every MTA-STS TXT record (RFC 8461 §3.1: %s"v=STSv1",
// case-sensitive).
const recordPrefix = "v=" + Version

// MaxIDLength is the longest policy id (RFC 8461 §3.1: 1*32(ALPHA / DIGIT)).
const MaxIDLength = 32

// Errors about the _mta-sts TXT record, for errors.Is.
var (
	ErrRecordSyntax    = errors.New("mta-sts: invalid TXT record")
	ErrMultipleRecords = errors.New("mta-sts: more than one TXT record starting with v=STSv1")
)

// Record is the TXT record at _mta-sts.DOMAIN (RFC 8461 §3.1). It says the
// domain has a policy and names its current version.
type Record struct {
	ID         string      `json:"id"`
	Extensions []Extension `json:"extensions,omitempty"`
}

// Extension is a field the RFC does not define, kept in the order served.
// RFC 8461 §3.1 and §3.2 allow extension fields; senders ignore them.
type Extension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// IsRecord reports whether txt (the strings of one TXT record, joined)
// claims to be an MTA-STS record. RFC 8461 §3.1: records that do not begin
// with "v=STSv1" are discarded before counting, so a domain's SPF or
// verification records beside it do not matter.
func IsRecord(txt string) bool {
	if !strings.HasPrefix(txt, recordPrefix) {
		return false
	}
	rest := txt[len(recordPrefix):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// Parse parses one MTA-STS TXT record (its strings already joined).
// It follows the ABNF of RFC 8461 §3.1:
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field-delim = *WSP ";" *WSP
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//
// Extension fields are kept; a missing or repeated id is an error.
func Parse(txt string) (*Record, error) {
	if !IsRecord(txt) {
		return nil, recordErr("does not start with %q", recordPrefix)
	}
	rest := txt[len(recordPrefix):]
	parts := strings.Split(rest, ";")
	// RFC 8461 §3.1: sts-version is followed by at least one delimiter and
	// field; only WSP may stand between the version and the first ";".
	if strings.Trim(parts[0], " \t") != "" {
		return nil, recordErr("unexpected text %q after %q", parts[0], recordPrefix)
	}
	if len(parts) < 2 {
		return nil, recordErr("no fields after %q (an id= field is required)", recordPrefix)
	}
	rec := &Record{}
	haveID := false
	for i, p := range parts[1:] {
		field := strings.Trim(p, " \t")
		if field == "" {
			// Only one trailing delimiter is allowed: [sts-field-delim].
			if i == len(parts)-2 && i > 0 {
				break
			}
			return nil, recordErr("empty field (two semicolons in a row, or no field after the version)")
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return nil, recordErr("field %q has no '='", field)
		}
		if name == "id" {
			if haveID {
				return nil, recordErr("more than one id= field")
			}
			if err := checkID(value); err != nil {
				return nil, err
			}
			rec.ID, haveID = value, true
			continue
		}
		if !validExtName(name) {
			return nil, recordErr("field name %q is not valid (letters, digits, '_', '-', '.'; at most 32 characters)", name)
		}
		if !validRecordExtValue(value) {
			return nil, recordErr("field %s has an invalid value %q (no spaces, '=', ';' or control characters)", name, value)
		}
		rec.Extensions = append(rec.Extensions, Extension{Name: name, Value: value})
	}
	if !haveID {
		return nil, recordErr("no id= field (field names are case-sensitive)")
	}
	return rec, nil
}

// String formats the record in its canonical form, "v=STSv1; id=...".
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString(recordPrefix)
	b.WriteString("; id=")
	b.WriteString(r.ID)
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Name)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

func recordErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRecordSyntax, fmt.Sprintf(format, args...))
}

// checkID applies RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT).
func checkID(id string) error {
	switch {
	case id == "":
		return recordErr("id= is empty")
	case len(id) > MaxIDLength:
		return recordErr("id %q is longer than %d characters", id, MaxIDLength)
	}
	for _, c := range []byte(id) {
		if !isAlnum(c) {
			return recordErr("id %q has %q: only letters and digits are allowed", id, string(rune(c)))
		}
	}
	return nil
}

// validExtName applies RFC 8461 §3.1 and §3.2:
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func validExtName(s string) bool {
	if s == "" || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validRecordExtValue applies RFC 8461 §3.1:
// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E).
func validRecordExtValue(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

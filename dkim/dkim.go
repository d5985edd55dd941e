// Package dkim audits a domain's DKIM public keys (RFC 6376): it probes
// common selectors and caller-supplied ones at SELECTOR._domainkey.DOMAIN,
// parses each key record (RFC 6376 §3.6.1, Ed25519 keys per RFC 8463) and
// judges the key's strength (RFC 8301).
//
// DKIM lets a domain sign its mail; receivers fetch the public key named by
// the signature's selector. Selectors cannot be listed through DNS, so an
// audit can only try likely names: "no key found" means none at the probed
// selectors, never that the domain does not sign.
package dkim

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Version is the only key record version (RFC 6376 §3.6.1, "v").
const Version = "DKIM1"

// KeyType is a key record's k= value.
type KeyType string

// Key types (RFC 6376 §3.6.1; RFC 8463 §4.2).
const (
	RSA     KeyType = "rsa"
	Ed25519 KeyType = "ed25519"
)

// Tag is a tag this package does not know, kept as published (RFC 6376
// §3.2: unrecognised tags MUST be ignored).
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is a parsed DKIM key record (RFC 6376 §3.6.1).
type Record struct {
	Version  string   `json:"v,omitempty"` // "DKIM1", or "" when v= is absent
	KeyType  KeyType  `json:"k"`           // "rsa" when k= is absent
	Hashes   []string `json:"h,omitempty"` // h=; nil means every hash algorithm
	Services []string `json:"s,omitempty"` // s=; nil means "*"
	Flags    []string `json:"t,omitempty"` // t=: "y" testing, "s" strict
	Notes    string   `json:"n,omitempty"` // n=, for people
	Unknown  []Tag    `json:"unknown,omitempty"`
	// PublicKey is p= decoded from base64; empty when the key is revoked
	// (RFC 6376 §3.6.1).
	PublicKey []byte `json:"p"`
	// Bits is the key size: the RSA modulus length, 256 for Ed25519, and
	// 0 for a revoked key.
	Bits int `json:"bits"`
}

// Revoked reports whether the key was revoked with an empty p= (RFC 6376
// §3.6.1): signatures made with it fail.
func (r *Record) Revoked() bool { return len(r.PublicKey) == 0 }

// Testing reports the t=y flag: the domain is testing DKIM, and verifiers
// must not treat its signatures differently from unsigned mail (RFC 6376
// §3.6.1).
func (r *Record) Testing() bool { return slices.Contains(r.Flags, "y") }

// AllowsSHA256 reports whether h= permits SHA-256, the one hash RFC 8301
// §3.1 lets verifiers accept.
func (r *Record) AllowsSHA256() bool { return r.Hashes == nil || slices.Contains(r.Hashes, "sha256") }

// String formats the record: v first when present, k only when not rsa,
// p last. Parse(r.String()) gives r back.
func (r *Record) String() string {
	var parts []string
	if r.Version != "" {
		parts = append(parts, "v="+r.Version)
	}
	if r.KeyType != RSA {
		parts = append(parts, "k="+string(r.KeyType))
	}
	if r.Hashes != nil {
		parts = append(parts, "h="+strings.Join(r.Hashes, ":"))
	}
	if r.Services != nil {
		parts = append(parts, "s="+strings.Join(r.Services, ":"))
	}
	if r.Flags != nil {
		parts = append(parts, "t="+strings.Join(r.Flags, ":"))
	}
	if r.Notes != "" {
		parts = append(parts, "n="+r.Notes)
	}
	for _, t := range r.Unknown {
		parts = append(parts, t.Name+"="+t.Value)
	}
	parts = append(parts, "p="+base64.StdEncoding.EncodeToString(r.PublicKey))
	return strings.Join(parts, "; ")
}

// ErrSyntax is wrapped by every *SyntaxError.
var ErrSyntax = errors.New("dkim: invalid key record")

// SyntaxError lists every problem Parse found in a key record.
type SyntaxError struct {
	Problems []string
}

func (e *SyntaxError) Error() string { return "dkim: " + strings.Join(e.Problems, "; ") }

// Unwrap lets errors.Is(err, ErrSyntax) match.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// IsKeyRecord reports whether a TXT record at a selector looks like a DKIM
// key record: it starts with v=DKIM1, or has no v= tag and has a p= tag.
// Anything else is some other TXT record — often a wildcard's SPF or site
// verification string — that a verifier ignores (RFC 6376 §3.6.1: records
// with another v= value MUST be discarded) and that is no key.
func IsKeyRecord(txt string) bool {
	tags, _ := splitTags(txt)
	if len(tags) > 0 && tags[0].Name == "v" {
		return tags[0].Value == Version
	}
	for _, t := range tags {
		if t.Name == "p" {
			return true
		}
	}
	return false
}

// Parse parses a DKIM key record (RFC 6376 §3.6.1), checks the public key
// (RFC 8463 §4.2 for Ed25519) and reports every problem in one *SyntaxError.
// A record with any problem is unusable to a verifier (RFC 6376 §3.2 and
// §6.1.2 treat it as a key syntax error), so the Record is then nil.
//
// RFC 6376 makes values case-sensitive; like common verifiers, Parse reads
// k, h, s and t case-insensitively and keeps them in lower case.
func Parse(txt string) (*Record, error) {
	tags, problems := splitTags(txt)
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	r := &Record{KeyType: RSA}
	var pValue *string
	for i, t := range tags {
		switch t.Name {
		case "v":
			// RFC 6376 §3.6.1: if present, v MUST be first and DKIM1.
			if i != 0 {
				bad("v=%s must be the first tag", t.Value)
			} else if t.Value != Version {
				bad("v=%s: the version must be DKIM1; verifiers discard the record", t.Value)
			}
			r.Version = Version
		case "k":
			k := strings.ToLower(t.Value)
			switch KeyType(k) {
			case RSA, Ed25519:
				r.KeyType = KeyType(k)
			default:
				bad("k=%s: unknown key type (rsa or ed25519); verifiers ignore the key", t.Value)
			}
		case "h":
			r.Hashes = list(t, isWord, bad)
		case "s":
			r.Services = list(t, func(s string) bool { return s == "*" || isWord(s) }, bad)
		case "t":
			r.Flags = list(t, isWord, bad)
		case "n":
			r.Notes = t.Value
		case "p":
			pValue = &t.Value
		default:
			r.Unknown = append(r.Unknown, t)
		}
	}
	if pValue == nil {
		// RFC 6376 §3.6.1: p= is REQUIRED.
		bad("the p= tag (public key) is missing")
	} else if len(problems) == 0 {
		if msg := r.setKey(*pValue); msg != "" {
			bad("%s", msg)
		}
	}
	if len(problems) > 0 {
		return nil, &SyntaxError{Problems: problems}
	}
	return r, nil
}

// setKey decodes p= and measures the key; it returns a problem, or "".
func (r *Record) setKey(p string) string {
	// RFC 6376 §3.6.1: base64string may hold FWS, which is ignored.
	p = strings.Map(func(c rune) rune {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			return -1
		}
		return c
	}, p)
	if p == "" {
		r.PublicKey = []byte{} // revoked
		return ""
	}
	key, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return fmt.Sprintf("p= is not valid base64 (%v); the key is often truncated or split badly across TXT strings", err)
	}
	r.PublicKey = key
	switch r.KeyType {
	case Ed25519:
		// RFC 8463 §4.2: the raw 32-byte key, not SubjectPublicKeyInfo.
		if len(key) == ed25519.PublicKeySize {
			r.Bits = 256
			return ""
		}
		if pub, err := x509.ParsePKIXPublicKey(key); err == nil {
			if _, ok := pub.(ed25519.PublicKey); ok {
				return "k=ed25519 needs the raw 32-byte key in p=, not a SubjectPublicKeyInfo (RFC 8463 §4.2)"
			}
		}
		return fmt.Sprintf("p= holds %d bytes; an Ed25519 key is 32 (RFC 8463 §4.2)", len(key))
	default:
		// RFC 6376 §3.6.1 names RSAPublicKey; nearly everyone publishes
		// SubjectPublicKeyInfo, and verifiers accept both.
		if pub, err := x509.ParsePKIXPublicKey(key); err == nil {
			switch pub := pub.(type) {
			case *rsa.PublicKey:
				r.Bits = pub.N.BitLen()
				return ""
			case ed25519.PublicKey:
				return "p= holds an Ed25519 key but the key type is rsa; add k=ed25519 (and publish the raw key, RFC 8463 §4.2)"
			default:
				return fmt.Sprintf("p= holds a %T, not an RSA key", pub)
			}
		}
		pub, err := x509.ParsePKCS1PublicKey(key)
		if err != nil {
			return "p= is not an RSA public key (neither SubjectPublicKeyInfo nor RSAPublicKey); it is often truncated"
		}
		r.Bits = pub.N.BitLen()
		return ""
	}
}

// list splits a colon-separated tag value (RFC 6376 §3.6.1 h, s, t), with
// optional FWS around the colons, lower-cased; every item must pass ok.
func list(t Tag, ok func(string) bool, bad func(string, ...any)) []string {
	var out []string
	for item := range strings.SplitSeq(t.Value, ":") {
		item = strings.ToLower(trimFWS(item))
		if !ok(item) {
			bad("%s=%s: %q is not a valid list item", t.Name, t.Value, item)
			return nil
		}
		out = append(out, item)
	}
	return out
}

// splitTags splits a tag-list (RFC 6376 §3.2) and checks its syntax: tag
// names, value characters and duplicates.
func splitTags(s string) ([]Tag, []string) {
	var tags []Tag
	var problems []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ";") {
		part = trimFWS(part)
		if part == "" {
			continue // a trailing ";" (allowed), or ";;" that verifiers skip
		}
		name, value, ok := strings.Cut(part, "=")
		name, value = trimFWS(name), trimFWS(value)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q is not a tag=value pair", part))
			continue
		case !isTagName(name):
			problems = append(problems, fmt.Sprintf("%q is not a valid tag name", name))
			continue
		case seen[name]:
			// RFC 6376 §3.2: a duplicate makes the entire tag-list invalid.
			problems = append(problems, fmt.Sprintf("%s appears more than once, which makes the whole record invalid (RFC 6376 §3.2)", name))
			continue
		}
		seen[name] = true
		// RFC 6376 §3.2: tval = 1*VALCHAR, VALCHAR = %x21-3A / %x3C-7E,
		// separated by whitespace.
		if i := strings.IndexFunc(value, func(c rune) bool {
			return (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n'
		}); i >= 0 {
			problems = append(problems, fmt.Sprintf("%s= contains the character %q, which is not allowed", name, value[i]))
			continue
		}
		tags = append(tags, Tag{Name: name, Value: value})
	}
	return tags, problems
}

// trimFWS removes folding white space (RFC 5322 §3.2.2) from both ends.
func trimFWS(s string) string { return strings.Trim(s, " \t\r\n") }

// isTagName: tag-name = ALPHA *ALNUMPUNC, ALNUMPUNC = ALPHA / DIGIT / "_"
// (RFC 6376 §3.2).
func isTagName(s string) bool {
	for i, c := range []byte(s) {
		if !isAlpha(c) && (i == 0 || !isDigit(c) && c != '_') {
			return false
		}
	}
	return s != ""
}

// isWord: hyphenated-word = ALPHA [ *(ALPHA / DIGIT / "-") (ALPHA / DIGIT) ]
// (RFC 6376 §2.10).
func isWord(s string) bool {
	if s == "" || !isAlpha(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

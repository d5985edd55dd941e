package dane

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Usage is the TLSA certificate usage field (RFC 6698 §2.1.1, names from
// RFC 7218 §2.1).
type Usage uint8

// Certificate usages.
const (
	PKIXTA Usage = 0 // CA constraint with PKIX validation; not for SMTP
	PKIXEE Usage = 1 // service certificate constraint with PKIX; not for SMTP
	DANETA Usage = 2 // trust anchor assertion
	DANEEE Usage = 3 // domain-issued certificate
)

func (u Usage) String() string {
	switch u {
	case PKIXTA:
		return "PKIX-TA(0)"
	case PKIXEE:
		return "PKIX-EE(1)"
	case DANETA:
		return "DANE-TA(2)"
	case DANEEE:
		return "DANE-EE(3)"
	}
	return fmt.Sprintf("usage(%d)", uint8(u))
}

// Selector says which part of the certificate is matched (RFC 6698 §2.1.2).
type Selector uint8

// Selectors.
const (
	SelectorCert Selector = 0 // the full certificate
	SelectorSPKI Selector = 1 // the SubjectPublicKeyInfo
)

func (s Selector) String() string {
	switch s {
	case SelectorCert:
		return "Cert(0)"
	case SelectorSPKI:
		return "SPKI(1)"
	}
	return fmt.Sprintf("selector(%d)", uint8(s))
}

// MatchingType says how the selected data is compared (RFC 6698 §2.1.3).
type MatchingType uint8

// Matching types.
const (
	MatchFull   MatchingType = 0 // the data itself
	MatchSHA256 MatchingType = 1
	MatchSHA512 MatchingType = 2
)

func (m MatchingType) String() string {
	switch m {
	case MatchFull:
		return "Full(0)"
	case MatchSHA256:
		return "SHA2-256(1)"
	case MatchSHA512:
		return "SHA2-512(2)"
	}
	return fmt.Sprintf("matching-type(%d)", uint8(m))
}

// maxData bounds the association data: an RR's data is at most 65535
// octets, three of them the parameters.
const maxData = 65535 - 3

// Errors of Parse and Record.Check, for errors.Is.
var (
	ErrSyntax          = errors.New("dane: invalid TLSA record")
	ErrPKIXUsage       = errors.New("PKIX certificate usages are not used by SMTP")
	ErrUsage           = errors.New("unknown certificate usage")
	ErrSelector        = errors.New("unknown selector")
	ErrMatchingType    = errors.New("unknown matching type")
	ErrDigestLength    = errors.New("digest has the wrong length")
	ErrAssociationData = errors.New("association data is not a certificate or public key")
)

// Record is a TLSA record's data with the association data decoded.
type Record struct {
	Usage        Usage
	Selector     Selector
	MatchingType MatchingType
	Data         []byte
}

// FromRR converts a miekg/dns TLSA record, decoding its hex data.
func FromRR(rr *dns.TLSA) (*Record, error) {
	data, err := hex.DecodeString(rr.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: association data is not hex: %v", ErrSyntax, err)
	}
	return &Record{Usage: Usage(rr.Usage), Selector: Selector(rr.Selector), MatchingType: MatchingType(rr.MatchingType), Data: data}, nil
}

// Parse parses the presentation form of a TLSA record's data, as in
// a zone file after "TLSA": three decimal fields and the association data
// in hex, which may be split by white space (RFC 6698 §2.2). Any value
// 0–255 parses; Check says whether SMTP can use it.
func Parse(txt string) (*Record, error) {
	f := strings.Fields(txt)
	if len(f) < 4 {
		return nil, fmt.Errorf("%w: want usage, selector, matching type and data, got %d fields", ErrSyntax, len(f))
	}
	var params [3]uint8
	for i, name := range []string{"usage", "selector", "matching type"} {
		v, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q is not a number from 0 to 255", ErrSyntax, name, f[i])
		}
		params[i] = uint8(v)
	}
	hexData := strings.Join(f[3:], "")
	if len(hexData) > 2*maxData {
		return nil, fmt.Errorf("%w: association data longer than %d bytes", ErrSyntax, maxData)
	}
	data, err := hex.DecodeString(hexData)
	if err != nil {
		return nil, fmt.Errorf("%w: association data is not hex: %v", ErrSyntax, err)
	}
	return &Record{Usage: Usage(params[0]), Selector: Selector(params[1]), MatchingType: MatchingType(params[2]), Data: data}, nil
}

// String formats the record's data as in a zone file: "3 1 1 <hex>".
func (r *Record) String() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// MarshalText writes the presentation form.
func (r Record) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the presentation form.
func (r *Record) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*r = *v
	return nil
}

// RR returns the record as a miekg/dns TLSA record owned by name.
func (r *Record) RR(name string, ttl uint32) *dns.TLSA {
	return &dns.TLSA{
		Hdr:          dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTLSA, Class: dns.ClassINET, Ttl: ttl},
		Usage:        uint8(r.Usage),
		Selector:     uint8(r.Selector),
		MatchingType: uint8(r.MatchingType),
		Certificate:  hex.EncodeToString(r.Data),
	}
}

// Check reports why an SMTP sender cannot use the record, or nil. Such a
// record is "unusable" (RFC 7672 §2.2, RFC 6698 §4.1): the sender ignores
// it, and when no usable record is left, falls back to unauthenticated TLS.
func (r *Record) Check() error {
	switch {
	case r.Usage == PKIXTA || r.Usage == PKIXEE:
		// RFC 7672 §3.1.3: SMTP clients do not use the PKIX usages; with
		// no agreed set of CAs for MTAs they would fail anyway.
		return fmt.Errorf("%s: %w (only DANE-TA(2) and DANE-EE(3) are)", r.Usage, ErrPKIXUsage)
	case r.Usage > DANEEE:
		return fmt.Errorf("%w %d (RFC 6698 §2.1.1 defines 0–3)", ErrUsage, r.Usage)
	case r.Selector > SelectorSPKI:
		return fmt.Errorf("%w %d (RFC 6698 §2.1.2 defines 0 and 1)", ErrSelector, r.Selector)
	case r.MatchingType > MatchSHA512:
		return fmt.Errorf("%w %d (RFC 6698 §2.1.3 defines 0–2)", ErrMatchingType, r.MatchingType)
	}
	switch r.MatchingType {
	case MatchSHA256:
		// RFC 6698 §2.1.3: SHA-256 digests are 32 bytes.
		if len(r.Data) != 32 {
			return fmt.Errorf("%w: %d bytes for SHA2-256, want 32", ErrDigestLength, len(r.Data))
		}
	case MatchSHA512:
		if len(r.Data) != 64 {
			return fmt.Errorf("%w: %d bytes for SHA2-512, want 64", ErrDigestLength, len(r.Data))
		}
	case MatchFull:
		// RFC 6698 §2.1.3: Full(0) holds the DER certificate or SPKI.
		if r.Selector == SelectorCert {
			if _, err := x509.ParseCertificate(r.Data); err != nil {
				return fmt.Errorf("%w: %v", ErrAssociationData, err)
			}
		} else if !isSPKI(r.Data) {
			return fmt.Errorf("%w: not a DER SubjectPublicKeyInfo", ErrAssociationData)
		}
	}
	return nil
}

// isSPKI reports whether b is one DER SubjectPublicKeyInfo (RFC 5280
// §4.1.2.7). It checks the structure only, so keys of algorithms Go does
// not know still count.
func isSPKI(b []byte) bool {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(b, &spki)
	return err == nil && len(rest) == 0
}

// Matches reports whether the record's association data matches cert
// (RFC 6698 §2.1.2, §2.1.3), ignoring the usage.
func (r *Record) Matches(cert *x509.Certificate) bool {
	want, err := dns.CertificateToDANE(uint8(r.Selector), uint8(r.MatchingType), cert)
	if err != nil {
		return false
	}
	return strings.EqualFold(want, hex.EncodeToString(r.Data))
}

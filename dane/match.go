package dane

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Errors of Match, for errors.Is.
var (
	ErrNoMatch       = errors.New("dane: no usable TLSA record matches the server's certificate chain")
	ErrNoCertificate = errors.New("dane: the server presented no certificate")
)

// Match checks the certificate chain a server presented (leaf first, as in
// tls.ConnectionState.PeerCertificates) against the TLSA records of its
// TLSA base domain, as an SMTP client does (RFC 7672 §3):
//
//   - DANE-EE(3) matches the leaf certificate or its public key; names and
//     validity dates are not checked (RFC 7672 §3.1.1, §3.2.1).
//   - DANE-TA(2) matches some certificate of the presented chain, which is
//     then the trust anchor: the leaf must chain to it, be within its
//     validity dates, and carry one of names (RFC 7672 §3.1.2, §3.2.2).
//   - PKIX-TA(0), PKIX-EE(1) and malformed records are unusable and
//     skipped (RFC 7672 §3.1.3; Record.Check).
//
// names are the reference identifiers for DANE-TA(2): the TLSA base domain
// first, then the MX host name when it differs (RFC 7672 §3.2.3). Without
// names no DANE-TA(2) record can match.
//
// usable is false when no record is usable; the sender then uses TLS
// without authentication and err is nil (or ErrNoCertificate). With usable
// records, matched is the first record that matched, or err wraps ErrNoMatch
// and says why each candidate failed.
func Match(records []*dns.TLSA, chain []*x509.Certificate, names ...string) (usable bool, matched *dns.TLSA, err error) {
	var why []string
	type candidate struct {
		rr  *dns.TLSA
		rec *Record
	}
	var cands []candidate
	for _, rr := range records {
		rec, err := FromRR(rr)
		if err != nil || rec.Check() != nil {
			continue
		}
		cands = append(cands, candidate{rr, rec})
	}
	usable = len(cands) > 0
	if len(chain) == 0 {
		return usable, nil, ErrNoCertificate
	}
	if !usable {
		return false, nil, nil
	}
	leaf := chain[0]
	now := time.Now()
	for _, c := range cands {
		switch c.rec.Usage {
		case DANEEE:
			// RFC 7672 §3.1.1: the leaf alone; no name or date checks.
			if c.rec.Matches(leaf) {
				return true, c.rr, nil
			}
			why = append(why, fmt.Sprintf("%s does not match the server certificate", c.rec.brief()))
		case DANETA:
			i := -1
			for j, cert := range chain {
				if c.rec.Matches(cert) {
					i = j
					break
				}
			}
			if i < 0 {
				// RFC 7672 §3.1.2: the server must send the trust anchor
				// (or, with SPKI(1), a certificate with its key).
				why = append(why, fmt.Sprintf("%s matches no certificate of the presented chain", c.rec.brief()))
				continue
			}
			if err := verifyToAnchor(chain, i, names, now); err != nil {
				why = append(why, fmt.Sprintf("%s matches %q, but %v", c.rec.brief(), chain[i].Subject.CommonName, err))
				continue
			}
			return true, c.rr, nil
		}
	}
	return true, nil, fmt.Errorf("%w: %s", ErrNoMatch, strings.Join(why, "; "))
}

// verifyToAnchor checks that the leaf chains to chain[anchor] through the
// other presented certificates, is valid now, and is valid for one of
// names (RFC 7672 §3.2.2: name checks apply to DANE-TA(2)).
func verifyToAnchor(chain []*x509.Certificate, anchor int, names []string, now time.Time) error {
	if len(names) == 0 {
		return errors.New("no reference name was given to check the certificate against")
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[anchor])
	inter := x509.NewCertPool()
	for j, c := range chain[1:] {
		if j+1 != anchor {
			inter.AddCert(c)
		}
	}
	var firstErr error
	for _, name := range names {
		_, err := chain[0].Verify(x509.VerifyOptions{
			DNSName:       strings.TrimSuffix(name, "."),
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   now,
			// RFC 7672 §3.2.2 asks for the name and the chain, not for a
			// particular extended key usage.
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// brief names a record in messages: its parameters and the start of its
// data.
func (r *Record) brief() string {
	s := r.String()
	if len(s) > 24 {
		s = s[:24] + "…"
	}
	return "TLSA " + s
}

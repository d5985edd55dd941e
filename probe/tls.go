package probe

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math"
	"time"

	"github.com/mxtrace/mxtrace/internal/printable"
)

// maxChainSummary bounds the certificates summarised in TLS.Chain.
const maxChainSummary = 10

// judgeTLS describes a completed handshake and verifies the presented
// chain against roots (nil: the system's), for host, at now. Verification
// is split in three so each failure has its own finding: the chain's
// trust (whatever the dates), the dates, and the name.
func judgeTLS(st tls.ConnectionState, host string, roots *x509.CertPool, now time.Time) *TLS {
	t := &TLS{
		Version:   versionName(st.Version),
		VersionID: st.Version,
		Cipher:    tls.CipherSuiteName(st.CipherSuite),
		Chain:     []Certificate{},
		NameOK:    true,
	}
	chain := st.PeerCertificates
	for _, c := range chain[:min(len(chain), maxChainSummary)] {
		t.Chain = append(t.Chain, summarise(c))
	}
	if len(chain) == 0 {
		t.VerifyError = "the server presented no certificate"
		t.NameOK = false
		return t
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := func(name string, at time.Time) x509.VerifyOptions {
		return x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: at}
	}
	// RFC 5280 §6: the path to a trust anchor, with dates; RFC 6125 §6
	// (and RFC 8461 §4.2, RFC 7672 §3.2.3 for DANE-TA): the reference
	// identifier is the MX host name.
	name := host
	if isAddressLiteral(host) {
		name = ""
	}
	if _, err := leaf.Verify(opts(name, now)); err != nil {
		t.VerifyError = err.Error()
	} else {
		t.Verified = true
	}
	// RFC 5280 §4.1.2.5: the validity period of every certificate.
	for _, c := range chain {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			t.Expired = true
		}
	}
	// Trust, judged at a time when the leaf is valid, so an expired
	// certificate from a trusted CA is "expired", not also "untrusted".
	at := now
	if t.Expired {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	if _, err := leaf.Verify(opts("", at)); err == nil {
		t.Trusted = true
	} else if ie, ok := errors.AsType[x509.CertificateInvalidError](err); ok && ie.Reason == x509.Expired {
		// An intermediate is outside its dates at the leaf's midpoint
		// too: the expiry is the finding.
		t.Trusted = true
		t.Expired = true
	}
	if name != "" {
		t.NameOK = leaf.VerifyHostname(name) == nil
	}
	t.ExpiresInDays = int(math.Floor(leaf.NotAfter.Sub(now).Hours() / 24))
	return t
}

func summarise(c *x509.Certificate) Certificate {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	out := Certificate{
		Subject:    printable.Cut(printable.String(c.Subject.String()), 512),
		Issuer:     printable.Cut(printable.String(c.Issuer.String()), 512),
		SANs:       []string{},
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		SPKISHA256: hex.EncodeToString(sum[:]),
	}
	for _, n := range c.DNSNames {
		if len(out.SANs) < 100 {
			out.SANs = append(out.SANs, printable.Cut(printable.String(n), 255))
		}
	}
	for _, ip := range c.IPAddresses {
		if len(out.SANs) < 100 {
			out.SANs = append(out.SANs, ip.String())
		}
	}
	return out
}

// versionName names a TLS version the way the output shows it: "TLS1.3".
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return tls.VersionName(v)
}

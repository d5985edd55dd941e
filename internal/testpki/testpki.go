// Package testpki makes throw-away X.509 certificates (RFC 5280) for tests:
// a root certificate authority (NewCA), intermediates (CA.Intermediate),
// server certificates issued by either (CA.Leaf) and self-signed ones
// (SelfSigned), plus PEM files for programs that read them from disk
// (CA.WriteCertFile for mxtrace's --ca, WriteKeyPair for Postfix), and the
// TLSA 3 1 1 data that pins a certificate's key for DANE (SPKIHash).
//
// Everything is made in memory with fresh keys; nothing touches the
// network. Keys are ECDSA P-256 unless a test asks for RSA. Failures stop
// the test through tb.Fatal, so every function can be called in one line.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Default lifetimes.
const (
	// caLifetime is how long a test CA lasts from now.
	caLifetime = 10 * 365 * 24 * time.Hour
	// leafLifetime is how long a leaf lasts from now when LeafOptions.NotAfter is zero.
	leafLifetime = 90 * 24 * time.Hour
	// backdate is how far before now certificates start, so clock skew
	// between the test and the verifier does not matter.
	backdate = time.Hour
	// maxRSABits keeps a test from asking for a key that takes minutes.
	maxRSABits = 8192
)

// CA is a throw-away certificate authority for tests.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	Pool    *x509.CertPool // contains only this CA
	CertPEM []byte

	// parent is the CA that signed this one; nil for a root.
	parent *CA
}

// NewCA makes a self-signed root CA with an ECDSA P-256 key, valid from an
// hour ago for ten years.
func NewCA(tb testing.TB, commonName string) *CA {
	tb.Helper()
	return newCA(tb, commonName, nil)
}

// Intermediate makes an intermediate CA signed by ca. Pass it as
// LeafOptions.Intermediate to issue leaves from it; its Pool holds only the
// intermediate itself, so verifiers should trust the root's Pool.
func (ca *CA) Intermediate(tb testing.TB, commonName string) *CA {
	tb.Helper()
	return newCA(tb, commonName, ca)
}

func newCA(tb testing.TB, commonName string, parent *CA) *CA {
	tb.Helper()
	key := newKey(tb, 0)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"mxtrace testpki"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// RFC 5280 §4.2.1.3: a CA certificate asserts keyCertSign.
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
		// An intermediate cannot outlive its issuer in a sane PKI.
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
	}
	cert := create(tb, tmpl, signer, key.Public(), signerKey)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		Cert:    cert,
		Key:     key,
		Pool:    pool,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		parent:  parent,
	}
}

// LeafOptions: zero values mean sensible defaults.
type LeafOptions struct {
	Names        []string  // DNS SANs (also IPs if they parse as IPs)
	NotBefore    time.Time // zero: now-1h (or NotAfter-90d when NotAfter is already in the past)
	NotAfter     time.Time // zero: now+90d
	RSABits      int       // 0: ECDSA P-256; else RSA of that size (1024 is allowed, for speed)
	Intermediate *CA       // optional: issue from an intermediate and include it in the chain
}

// Leaf issues a server certificate signed by ca, or by o.Intermediate when
// set (which must descend from ca). The returned Certificate holds the
// chain leaf first, then every intermediate up to but not including the
// root, as a TLS server sends it (RFC 8446 §4.4.2); its Leaf field is set.
func (ca *CA) Leaf(tb testing.TB, o LeafOptions) tls.Certificate {
	tb.Helper()
	issuer := ca
	if o.Intermediate != nil {
		if !descends(o.Intermediate, ca) {
			tb.Fatalf("testpki: intermediate %q was not issued under CA %q", o.Intermediate.Cert.Subject.CommonName, ca.Cert.Subject.CommonName)
		}
		issuer = o.Intermediate
	}
	key := newKey(tb, o.RSABits)
	tmpl := leafTemplate(tb, o)
	cert := create(tb, tmpl, issuer.Cert, key.Public(), issuer.Key)
	chain := [][]byte{cert.Raw}
	for c := issuer; c.parent != nil; c = c.parent {
		chain = append(chain, c.Cert.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
}

// SelfSigned makes a self-signed server certificate (not a CA) for names,
// with an ECDSA P-256 key, valid from an hour ago for 90 days.
func SelfSigned(tb testing.TB, names ...string) tls.Certificate {
	tb.Helper()
	key := newKey(tb, 0)
	tmpl := leafTemplate(tb, LeafOptions{Names: names})
	cert := create(tb, tmpl, tmpl, key.Public(), key)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// SPKIHash is the association data of a TLSA 3 1 1 record for c's leaf
// (RFC 7218: DANE-EE, SPKI, SHA2-256; RFC 6698 §2.1): the hex SHA-256 of
// its SubjectPublicKeyInfo. DANE-EE pins the key alone (RFC 7672 §3.1.1),
// so the certificate's names and issuer do not matter.
func SPKIHash(c tls.Certificate) string {
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// WriteCertFile writes the CA certificate as PEM to a file in tb.TempDir()
// and returns its path, for --ca FILE.
func (ca *CA) WriteCertFile(tb testing.TB) string {
	tb.Helper()
	name := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(name, ca.CertPEM, 0o644); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	return name
}

// WriteKeyPair writes c's chain (leaf first) and its private key (PKCS #8)
// as PEM files in tb.TempDir(), in the form Postfix's smtpd_tls_cert_file
// and smtpd_tls_key_file expect.
func WriteKeyPair(tb testing.TB, c tls.Certificate) (certFile, keyFile string) {
	tb.Helper()
	if len(c.Certificate) == 0 {
		tb.Fatal("testpki: WriteKeyPair: certificate has no chain")
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		tb.Fatalf("testpki: WriteKeyPair: %v", err)
	}
	dir := tb.TempDir()
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	return certFile, keyFile
}

// leafTemplate is the template of a TLS server certificate for o.
func leafTemplate(tb testing.TB, o LeafOptions) *x509.Certificate {
	tb.Helper()
	now := time.Now()
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = now.Add(leafLifetime)
	}
	notBefore := o.NotBefore
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate)
		if !notBefore.Before(notAfter) {
			// An expired certificate asked for by NotAfter alone.
			notBefore = notAfter.Add(-leafLifetime)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.RSABits != 0 {
		// RSA key exchange (TLS 1.2 without ECDHE) encrypts to the key.
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	tmpl.Subject = pkix.Name{CommonName: "testpki leaf"}
	if len(o.Names) > 0 {
		tmpl.Subject.CommonName = o.Names[0]
	}
	return tmpl
}

// descends reports whether c is ca or was issued, directly or through
// intermediates, by ca.
func descends(c, ca *CA) bool {
	for ; c != nil; c = c.parent {
		if c == ca {
			return true
		}
	}
	return false
}

func newKey(tb testing.TB, rsaBits int) crypto.Signer {
	tb.Helper()
	if rsaBits == 0 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatalf("testpki: %v", err)
		}
		return key
	}
	if rsaBits < 0 || rsaBits > maxRSABits {
		tb.Fatalf("testpki: RSABits %d outside 1..%d", rsaBits, maxRSABits)
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		tb.Fatalf("testpki: RSA %d: %v", rsaBits, err)
	}
	return key
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	// RFC 5280 §4.1.2.2: positive, unique per issuer, at most 20 octets.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func create(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatalf("testpki: create %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse %q: %v", tmpl.Subject.CommonName, err)
	}
	return cert
}

package dane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// issued is a certificate with its key, made up for a test.
type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type certOpts struct {
	ca        bool
	names     []string
	notBefore time.Time
	notAfter  time.Time
}

// issue makes a certificate for cn, signed by parent (self-signed when
// parent is nil).
func issue(t *testing.T, cn string, parent *issued, o certOpts) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     o.names,
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
	}
	if o.ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{cert: cert, key: key}
}

// tlsa makes a TLSA record for cert with miekg/dns's helper.
func tlsa(t *testing.T, usage, selector, mtype uint8, cert *x509.Certificate) *dns.TLSA {
	t.Helper()
	rr := &dns.TLSA{Hdr: dns.RR_Header{Name: "_25._tcp.mx.example.test.", Rrtype: dns.TypeTLSA, Class: dns.ClassINET, Ttl: 300}}
	if err := rr.Sign(int(usage), int(selector), int(mtype), cert); err != nil {
		t.Fatal(err)
	}
	return rr
}

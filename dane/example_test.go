package dane_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
)

// Check a server certificate against the TLSA records of its exchange, as
// the SMTP probe does after STARTTLS.
func ExampleMatch() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)

	// _25._tcp.mx.example.com. TLSA 3 1 1 <SHA-256 of the public key>
	rr := &dns.TLSA{Hdr: dns.RR_Header{Name: "_25._tcp.mx.example.com.", Rrtype: dns.TypeTLSA, Class: dns.ClassINET}}
	_ = rr.Sign(3, 1, 1, cert)
	pkixEE, _ := dane.Parse("1 1 1 " + rr.Certificate)

	usable, matched, err := dane.Match([]*dns.TLSA{pkixEE.RR("_25._tcp.mx.example.com", 300), rr}, []*x509.Certificate{cert}, "mx.example.com")
	fmt.Println(usable, dane.Usage(matched.Usage), err)
	fmt.Println(pkixEE.Check())
	// Output:
	// true DANE-EE(3) <nil>
	// PKIX-EE(1): PKIX certificate usages are not used by SMTP (only DANE-TA(2) and DANE-EE(3) are)
}

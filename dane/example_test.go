package dane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/resolve"
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

// Look up the TLSA records of one exchange, as a validating sender does,
// and judge them. The zone file is not signed, so the records are not
// DNSSEC-validated and senders ignore them.
func ExampleLookup() {
	zone := `$TTL 3600
example.com. SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300
mx.example.com. A 192.0.2.25
_25._tcp.mx.example.com. TLSA 3 1 1 8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1
`
	r, err := resolve.ParseZones(strings.NewReader(zone), "example")
	if err != nil {
		panic(err)
	}
	res, err := dane.Lookup(context.Background(), r, "mx.example.com", dane.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Name, len(res.Records), "secure:", res.Secure)
	for _, f := range dane.Findings(res) {
		fmt.Println(f.ID, f.Severity, f.Subject)
	}
	// Output:
	// _25._tcp.mx.example.com 1 secure: false
	// dane-tlsa-insecure warning _25._tcp.mx.example.com
}

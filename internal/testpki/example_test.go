package testpki_test

import (
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/mxtrace/mxtrace/internal/testpki"
)

// A CA, an intermediate and a server certificate issued from it, verified
// as a TLS client does. In a test, pass t instead of tb.
func Example() {
	var tb testing.TB = exampleTB{}

	ca := testpki.NewCA(tb, "Example Test CA")
	inter := ca.Intermediate(tb, "Example Intermediate")
	cert := ca.Leaf(tb, testpki.LeafOptions{Names: []string{"mx.example.test"}, Intermediate: inter})

	chain := x509.NewCertPool()
	chain.AddCert(inter.Cert)
	_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "mx.example.test", Roots: ca.Pool, Intermediates: chain})
	fmt.Println("chain length:", len(cert.Certificate), "verified:", err == nil)
	// Output: chain length: 2 verified: true
}

// exampleTB stands in for a *testing.T outside a test; the functions used
// here call only Helper and, on failure, Fatalf.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                           {}
func (exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

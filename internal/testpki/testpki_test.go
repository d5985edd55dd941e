package testpki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// verify checks c's chain against roots for name, as a TLS client would.
func verify(c tls.Certificate, roots *x509.CertPool, name string, at time.Time) error {
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(cert)
	}
	_, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: at})
	return err
}

func TestLeaf(t *testing.T) {
	ca := NewCA(t, "test root")
	inter := ca.Intermediate(t, "test intermediate")
	other := NewCA(t, "other root")
	past := time.Now().Add(-48 * time.Hour)
	for _, tc := range []struct {
		name      string
		o         LeafOptions
		verifyFor string
		roots     *x509.CertPool
		chainLen  int
		wantErr   bool
	}{
		{"ecdsa", LeafOptions{Names: []string{"mx.example.test"}}, "mx.example.test", ca.Pool, 1, false},
		{"wrong name", LeafOptions{Names: []string{"mx.example.test"}}, "mx2.example.test", ca.Pool, 1, true},
		{"wrong root", LeafOptions{Names: []string{"mx.example.test"}}, "mx.example.test", other.Pool, 1, true},
		{"ip SAN", LeafOptions{Names: []string{"127.0.0.2"}}, "127.0.0.2", ca.Pool, 1, false},
		{"rsa", LeafOptions{Names: []string{"mx.example.test"}, RSABits: 1024}, "mx.example.test", ca.Pool, 1, false},
		{"intermediate", LeafOptions{Names: []string{"mx.example.test"}, Intermediate: inter}, "mx.example.test", ca.Pool, 2, false},
		{"expired", LeafOptions{Names: []string{"mx.example.test"}, NotAfter: past}, "mx.example.test", ca.Pool, 1, true},
		{"not yet valid", LeafOptions{Names: []string{"mx.example.test"}, NotBefore: time.Now().Add(time.Hour)}, "mx.example.test", ca.Pool, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Leaf(t, tc.o)
			if c.Leaf == nil || len(c.Certificate) != tc.chainLen {
				t.Fatalf("Leaf set %v, chain length %d, want %d", c.Leaf != nil, len(c.Certificate), tc.chainLen)
			}
			err := verify(c, tc.roots, tc.verifyFor, time.Now())
			if (err != nil) != tc.wantErr {
				t.Errorf("verify: %v, want error %v", err, tc.wantErr)
			}
			switch k := c.PrivateKey.(type) {
			case *rsa.PrivateKey:
				if tc.o.RSABits == 0 || k.N.BitLen() != tc.o.RSABits {
					t.Errorf("RSA key of %d bits, asked for %d", k.N.BitLen(), tc.o.RSABits)
				}
			case *ecdsa.PrivateKey:
				if tc.o.RSABits != 0 {
					t.Errorf("ECDSA key, asked for RSA %d", tc.o.RSABits)
				}
			default:
				t.Errorf("key of type %T", k)
			}
		})
	}
}

// An expired leaf asked for by NotAfter alone was valid before it expired.
func TestLeafExpiredWindow(t *testing.T) {
	ca := NewCA(t, "test root")
	end := time.Now().Add(-24 * time.Hour)
	c := ca.Leaf(t, LeafOptions{Names: []string{"a.test"}, NotAfter: end})
	if !c.Leaf.NotBefore.Before(end) {
		t.Fatalf("NotBefore %v not before NotAfter %v", c.Leaf.NotBefore, end)
	}
	if err := verify(c, ca.Pool, "a.test", time.Now()); err == nil {
		t.Error("an expired leaf verified")
	}
}

func TestTwoIntermediates(t *testing.T) {
	ca := NewCA(t, "root")
	i1 := ca.Intermediate(t, "i1")
	i2 := i1.Intermediate(t, "i2")
	c := ca.Leaf(t, LeafOptions{Names: []string{"a.test"}, Intermediate: i2})
	if len(c.Certificate) != 3 {
		t.Fatalf("chain length %d, want 3", len(c.Certificate))
	}
	if err := verify(c, ca.Pool, "a.test", time.Now()); err != nil {
		t.Error(err)
	}
	if !i1.Cert.IsCA || i1.Pool == nil || len(i1.CertPEM) == 0 {
		t.Error("intermediate fields not set")
	}
}

// fatalTB records a fatal failure instead of failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = format
	runtime.Goexit()
}

func TestLeafForeignIntermediate(t *testing.T) {
	ca, other := NewCA(t, "root"), NewCA(t, "other root")
	inter := other.Intermediate(t, "other intermediate")
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ca.Leaf(f, LeafOptions{Intermediate: inter})
	}()
	<-done
	if f.msg == "" {
		t.Error("Leaf issued from an intermediate of another CA")
	}
}

func TestSelfSigned(t *testing.T) {
	c := SelfSigned(t, "mx.example.test", "::1")
	if len(c.Certificate) != 1 || c.Leaf.IsCA {
		t.Fatalf("chain %d, IsCA %v", len(c.Certificate), c.Leaf.IsCA)
	}
	if err := c.Leaf.CheckSignature(c.Leaf.SignatureAlgorithm, c.Leaf.RawTBSCertificate, c.Leaf.Signature); err != nil || c.Leaf.Issuer.String() != c.Leaf.Subject.String() {
		t.Errorf("not self-signed: %v", err)
	}
	if len(c.Leaf.IPAddresses) != 1 || !c.Leaf.IPAddresses[0].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs %v", c.Leaf.IPAddresses)
	}
	if err := verify(c, NewCA(t, "root").Pool, "mx.example.test", time.Now()); err == nil {
		t.Error("a self-signed certificate verified against a CA")
	}
}

func TestFiles(t *testing.T) {
	ca := NewCA(t, "root")
	data, err := os.ReadFile(ca.WriteCertFile(t))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("CA file holds no certificate")
	}
	c := ca.Leaf(t, LeafOptions{Names: []string{"a.test"}, Intermediate: ca.Intermediate(t, "i")})
	certFile, keyFile := WriteKeyPair(t, c)
	loaded, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Certificate) != 2 {
		t.Errorf("chain in file: %d certificates, want 2", len(loaded.Certificate))
	}
	if err := verify(loaded, pool, "a.test", time.Now()); err != nil {
		t.Errorf("chain from files does not verify against the CA file: %v", err)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file mode %v (%v), want private", st.Mode(), err)
	}
	raw, _ := os.ReadFile(keyFile)
	if b, _ := pem.Decode(raw); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key file is not PKCS #8 PEM")
	}
}

// A TLS handshake between a server with a leaf and a client trusting the CA.
func TestHandshake(t *testing.T) {
	ca := NewCA(t, "root")
	for _, o := range []LeafOptions{
		{Names: []string{"mx.example.test"}},
		{Names: []string{"mx.example.test"}, RSABits: 1024},
		{Names: []string{"mx.example.test"}, Intermediate: ca.Intermediate(t, "i")},
	} {
		cert := ca.Leaf(t, o)
		cc, sc := net.Pipe()
		srv := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{cert}})
		errc := make(chan error, 1)
		go func() { errc <- srv.HandshakeContext(t.Context()); sc.Close() }()
		cli := tls.Client(cc, &tls.Config{RootCAs: ca.Pool, ServerName: "mx.example.test"})
		cc.SetDeadline(time.Now().Add(5 * time.Second))
		sc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := cli.HandshakeContext(t.Context()); err != nil {
			t.Errorf("RSA %d, chain %d: client handshake: %v", o.RSABits, len(cert.Certificate), err)
		}
		cc.Close()
		if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("server handshake: %v", err)
		}
	}
}

package probe

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

// tlsa builds a TLSA record for _25._tcp.mx.example.test from the DER of
// a certificate (selector 0) or its SubjectPublicKeyInfo (selector 1).
func tlsa(t *testing.T, usage, selector, mtype uint8, der []byte) *dns.TLSA {
	t.Helper()
	var data string
	switch mtype {
	case 0:
		data = hex.EncodeToString(der)
	case 1:
		s := sha256.Sum256(der)
		data = hex.EncodeToString(s[:])
	case 2:
		s := sha512.Sum512(der)
		data = hex.EncodeToString(s[:])
	}
	rr, err := dns.NewRR(fmt.Sprintf("_25._tcp.mx.example.test. 300 IN TLSA %d %d %d %s", usage, selector, mtype, data))
	if err != nil {
		t.Fatal(err)
	}
	return rr.(*dns.TLSA)
}

func daneResult(t *testing.T, secure bool, rrs ...*dns.TLSA) *dane.Result {
	t.Helper()
	d := &dane.Result{Host: "mx.example.test", Base: "mx.example.test", Name: "_25._tcp.mx.example.test", Secure: secure, AddressSecure: secure}
	for _, rr := range rrs {
		rec, err := dane.FromRR(rr)
		if err != nil {
			t.Fatal(err)
		}
		d.Records = append(d.Records, *rec)
		d.RRs = append(d.RRs, rr)
	}
	return d
}

// TestMatchDANE: a live TLS session against a server with a test-CA chain
// (leaf, intermediate), matched against TLSA records of every usage,
// selector and matching type SMTP uses (RFC 7672 §3).
func TestMatchDANE(t *testing.T) {
	ca := testpki.NewCA(t, "mxtrace test root")
	inter := ca.Intermediate(t, "mxtrace test intermediate")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}, Intermediate: inter})
	other := testpki.SelfSigned(t, "mx.example.test")
	srv := smtptest.Start(t, smtptest.Options{Addr: "127.0.0.3:0", Hostname: "mx.example.test", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	// DANE needs no PKI: the probe does not trust the CA.
	r := quick(int(srv.Addr().Port()), nil).Probe(t.Context(), "mx.example.test", srv.Addr().Addr())
	if r.TLS == nil || len(r.Chain) != 2 {
		t.Fatalf("no TLS session with a chain of 2: %+v", r.Err)
	}
	leaf, interDER := cert.Leaf, inter.Cert.Raw

	for _, tt := range []struct {
		name   string
		d      *dane.Result
		status DANEStatus
	}{
		{"3 1 1", daneResult(t, true, tlsa(t, 3, 1, 1, leaf.RawSubjectPublicKeyInfo)), DANEMatch},
		{"3 0 1", daneResult(t, true, tlsa(t, 3, 0, 1, leaf.Raw)), DANEMatch},
		{"3 1 2", daneResult(t, true, tlsa(t, 3, 1, 2, leaf.RawSubjectPublicKeyInfo)), DANEMatch},
		{"3 0 0", daneResult(t, true, tlsa(t, 3, 0, 0, leaf.Raw)), DANEMatch},
		{"2 0 1 intermediate", daneResult(t, true, tlsa(t, 2, 0, 1, interDER)), DANEMatch},
		{"2 1 1 intermediate", daneResult(t, true, tlsa(t, 2, 1, 1, inter.Cert.RawSubjectPublicKeyInfo)), DANEMatch},
		{"one of two matches", daneResult(t, true, tlsa(t, 3, 1, 1, other.Leaf.RawSubjectPublicKeyInfo), tlsa(t, 3, 1, 1, leaf.RawSubjectPublicKeyInfo)), DANEMatch},
		{"3 1 1 other key", daneResult(t, true, tlsa(t, 3, 1, 1, other.Leaf.RawSubjectPublicKeyInfo)), DANEMismatch},
		// The root is not in the presented chain (RFC 7672 §3.1.2).
		{"2 0 1 root not sent", daneResult(t, true, tlsa(t, 2, 0, 1, ca.Cert.Raw)), DANEMismatch},
		{"unsigned zone", daneResult(t, false, tlsa(t, 3, 1, 1, other.Leaf.RawSubjectPublicKeyInfo)), DANEInsecure},
		{"PKIX usages only", daneResult(t, true, tlsa(t, 1, 1, 1, other.Leaf.RawSubjectPublicKeyInfo)), DANEUnusable},
		{"no records", daneResult(t, true), DANENone},
		{"no lookup", nil, DANENone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := MatchDANE(r, tt.d)
			if c.Status != tt.status {
				t.Fatalf("status %s (%s), want %s", c.Status, c.Reason, tt.status)
			}
			if c.Status == DANEMatch && c.Record == "" {
				t.Errorf("matched record not named")
			}
			fs := DANEFindings([]*DANECheck{c})
			want := []finding.ID{}
			if tt.status == DANEMismatch {
				want = []finding.ID{finding.DANEMismatch}
			}
			if got := ids(fs); !slices.Equal(got, want) {
				t.Errorf("findings %v, want %v", got, want)
			}
			for _, f := range fs {
				if f.Subject != r.Subject() {
					t.Errorf("subject %q, want %q", f.Subject, r.Subject())
				}
			}
		})
	}
}

// TestMatchDANENoTLS: with usable TLSA records, a server without STARTTLS
// or with a failing handshake cannot take mail from a DANE sender; a
// server that was not reached is not a DANE problem.
func TestMatchDANENoTLS(t *testing.T) {
	other := testpki.SelfSigned(t, "mx.example.test")
	d := daneResult(t, true, tlsa(t, 3, 1, 1, other.Leaf.RawSubjectPublicKeyInfo))
	for _, tt := range []struct {
		b      smtptest.Behaviour
		status DANEStatus
	}{
		{smtptest.NoSTARTTLS, DANENoTLS},
		{smtptest.RefuseSTARTTLS, DANENoTLS},
		{smtptest.BrokenSTARTTLS, DANENoTLS},
		{smtptest.WrongCode, DANENotReach},
	} {
		raw := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: tt.b, Hostname: "mx.example.test"})
		r := quick(int(raw.Addr().Port()), nil).Probe(t.Context(), "mx.example.test", raw.Addr().Addr())
		c := MatchDANE(r, d)
		if c.Status != tt.status {
			t.Errorf("%v: status %s (%s), want %s", tt.b, c.Status, c.Reason, tt.status)
		}
		n := len(DANEFindings([]*DANECheck{c}))
		if want := map[bool]int{true: 1, false: 0}[tt.status == DANENoTLS]; n != want {
			t.Errorf("%v: %d findings, want %d", tt.b, n, want)
		}
	}
}

// TestMatchTLSA: the one matching of check and probe's Auditor. A failed
// TLSA lookup is lookup-failed with its error; an exchange without
// records, or not looked up, is none; nil endpoints are skipped.
func TestMatchTLSA(t *testing.T) {
	ep := func(host string) *Result {
		return &Result{Host: host, Address: netip.MustParseAddr("192.0.2.1"), Port: 25}
	}
	checks := MatchTLSA([]*Result{ep("mx1.d.test"), nil, ep("mx2.d.test"), ep("mx3.d.test")},
		[]string{"mx1.d.test", "mx2.d.test"},
		[]*dane.Result{nil, {Host: "mx2.d.test", Records: []dane.Record{}}},
		[]error{errors.New("dane: lookup _25._tcp.mx1.d.test. TLSA: server failure (SERVFAIL)"), nil})
	var got []string
	for _, c := range checks {
		got = append(got, c.Host+" "+string(c.Status)+" "+c.Reason)
	}
	want := []string{
		"mx1.d.test lookup-failed dane: lookup _25._tcp.mx1.d.test. TLSA: server failure (SERVFAIL)",
		"mx2.d.test none ",
		"mx3.d.test none ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checks\n%q\nwant\n%q", got, want)
	}
}

package dane

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestMatch(t *testing.T) {
	root := issue(t, "Test Root", nil, certOpts{ca: true})
	inter := issue(t, "Test Intermediate", root, certOpts{ca: true})
	leaf := issue(t, "mx.example.test", inter, certOpts{names: []string{"mx.example.test", "*.mail.example.test"}})
	expiredLeaf := issue(t, "mx.example.test", inter, certOpts{names: []string{"mx.example.test"},
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	// A self-signed, expired certificate for another name: DANE-EE does
	// not care.
	oddLeaf := issue(t, "localhost", nil, certOpts{names: []string{"localhost"},
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	other := issue(t, "other", nil, certOpts{})

	full := []*x509.Certificate{leaf.cert, inter.cert, root.cert}
	noRoot := []*x509.Certificate{leaf.cert, inter.cert}
	names := []string{"mx.example.test"}

	badLength := tlsa(t, 3, 1, 1, leaf.cert)
	badLength.Certificate = badLength.Certificate[:62]

	for _, tt := range []struct {
		name        string
		records     []*dns.TLSA
		chain       []*x509.Certificate
		names       []string
		wantUsable  bool
		wantMatched int // index into records, -1 for none
		wantErr     error
		wantWhy     string // a fragment of the error
	}{
		{"DANE-EE SPKI SHA-256", []*dns.TLSA{tlsa(t, 3, 1, 1, leaf.cert)}, full, nil, true, 0, nil, ""},
		{"DANE-EE cert SHA-256", []*dns.TLSA{tlsa(t, 3, 0, 1, leaf.cert)}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE SPKI SHA-512", []*dns.TLSA{tlsa(t, 3, 1, 2, leaf.cert)}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE cert SHA-512", []*dns.TLSA{tlsa(t, 3, 0, 2, leaf.cert)}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE full cert", []*dns.TLSA{tlsa(t, 3, 0, 0, leaf.cert)}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE full SPKI", []*dns.TLSA{tlsa(t, 3, 1, 0, leaf.cert)}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE ignores name and dates", []*dns.TLSA{tlsa(t, 3, 1, 1, oddLeaf.cert)},
			[]*x509.Certificate{oddLeaf.cert}, names, true, 0, nil, ""},
		{"DANE-EE upper-case hex", []*dns.TLSA{upper(tlsa(t, 3, 1, 1, leaf.cert))}, noRoot, nil, true, 0, nil, ""},
		{"DANE-EE other key", []*dns.TLSA{tlsa(t, 3, 1, 1, other.cert)}, full, names, true, -1, ErrNoMatch, "does not match the server certificate"},
		{"DANE-EE matches only the leaf", []*dns.TLSA{tlsa(t, 3, 1, 1, inter.cert)}, full, names, true, -1, ErrNoMatch, ""},
		{"DANE-TA intermediate", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, noRoot, names, true, 0, nil, ""},
		{"DANE-TA root in chain", []*dns.TLSA{tlsa(t, 2, 0, 1, root.cert)}, full, names, true, 0, nil, ""},
		{"DANE-TA wildcard name", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, noRoot, []string{"mx1.mail.example.test."}, true, 0, nil, ""},
		{"DANE-TA second reference name", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, noRoot, []string{"base.example.test", "mx.example.test"}, true, 0, nil, ""},
		{"DANE-TA root not presented", []*dns.TLSA{tlsa(t, 2, 1, 1, root.cert)}, noRoot, names, true, -1, ErrNoMatch, "matches no certificate of the presented chain"},
		{"DANE-TA wrong name", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, noRoot, []string{"other.example.test"}, true, -1, ErrNoMatch, "not other.example.test"},
		{"DANE-TA no names", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, noRoot, nil, true, -1, ErrNoMatch, "no reference name"},
		{"DANE-TA expired leaf", []*dns.TLSA{tlsa(t, 2, 1, 1, inter.cert)}, []*x509.Certificate{expiredLeaf.cert, inter.cert}, names, true, -1, ErrNoMatch, "expired"},
		{"DANE-TA leaf does not chain", []*dns.TLSA{tlsa(t, 2, 1, 1, other.cert)}, []*x509.Certificate{leaf.cert, other.cert}, names, true, -1, ErrNoMatch, ""},
		{"PKIX only is unusable", []*dns.TLSA{tlsa(t, 1, 1, 1, leaf.cert), tlsa(t, 0, 1, 1, root.cert)}, full, names, false, -1, nil, ""},
		{"wrong digest length is unusable", []*dns.TLSA{badLength}, full, names, false, -1, nil, ""},
		{"unusable skipped, usable matched", []*dns.TLSA{tlsa(t, 1, 1, 1, leaf.cert), tlsa(t, 3, 1, 1, other.cert), tlsa(t, 2, 1, 1, inter.cert)},
			noRoot, names, true, 2, nil, ""},
		{"no records", nil, full, names, false, -1, nil, ""},
		{"no certificate", []*dns.TLSA{tlsa(t, 3, 1, 1, leaf.cert)}, nil, names, true, -1, ErrNoCertificate, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			usable, matched, err := Match(tt.records, tt.chain, tt.names...)
			if usable != tt.wantUsable {
				t.Errorf("usable = %v, want %v", usable, tt.wantUsable)
			}
			var want *dns.TLSA
			if tt.wantMatched >= 0 {
				want = tt.records[tt.wantMatched]
			}
			if matched != want {
				t.Errorf("matched = %v, want %v", matched, want)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantWhy != "" && (err == nil || !strings.Contains(err.Error(), tt.wantWhy)) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantWhy)
			}
		})
	}
}

func upper(rr *dns.TLSA) *dns.TLSA {
	rr.Certificate = strings.ToUpper(rr.Certificate)
	return rr
}

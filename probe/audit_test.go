package probe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// auditZone is a signed zone (a DNSKEY at the apex makes the zone
// resolver answer with AD) whose primary has TLSA records, and a reverse
// zone naming the backup's address.
const auditZone = `
$ORIGIN example.test.
@            3600 IN SOA ns hostmaster 1 3600 600 86400 300
@            3600 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
@            3600 IN MX 10 mx1
@            3600 IN MX 20 mx2
mx1          3600 IN A    127.0.0.2
mx1          3600 IN AAAA ::1
mx2          3600 IN A    127.0.0.3
_25._tcp.mx1 3600 IN TLSA 3 1 1 %s
nomx         3600 IN TXT  "no address"

$ORIGIN 0.0.127.in-addr.arpa.
@ 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
3 3600 IN PTR relay.provider.test.
`

func TestAudit(t *testing.T) {
	ca := testpki.NewCA(t, "mxtrace test root")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.example.test"}})
	spki := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	zones, err := resolve.ParseZones(strings.NewReader(fmt.Sprintf(auditZone, hex.EncodeToString(spki[:]))), "audit")
	if err != nil {
		t.Fatal(err)
	}
	port := smtptest.Port(t)
	at := func(a string) string { return netip.AddrPortFrom(netip.MustParseAddr(a), uint16(port)).String() }
	smtptest.Start(t, smtptest.Options{Addr: at("127.0.0.2"), Hostname: "mx1.example.test", TLS: serverTLS(cert)})
	smtptest.Start(t, smtptest.Options{Addr: at("::1"), Hostname: "mx1.example.test", TLS: serverTLS(cert)})
	// The backup greets with its PTR name, which is fine.
	smtptest.Start(t, smtptest.Options{Addr: at("127.0.0.3"), Hostname: "relay.provider.test"})

	a := &Auditor{
		Prober:   quick(port, ca),
		Resolver: zones,
		Planner:  &route.Planner{Resolver: zones},
		DANE:     &dane.Options{},
	}

	t.Run("domain", func(t *testing.T) {
		rep, err := a.Audit(t.Context(), Target{Domain: dnsname.MustParse("example.test")})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Kind != "domain" || rep.Plan == nil || rep.Target != "example.test" || rep.Schema != SchemaVersion {
			t.Errorf("report %+v", rep)
		}
		var got []string
		for _, r := range rep.Results {
			got = append(got, r.Subject())
			if r.Err != nil {
				t.Errorf("%s: %v", r.Subject(), r.Err)
			}
		}
		p := fmt.Sprint(port)
		want := []string{"mx1.example.test[127.0.0.2]:" + p, "mx1.example.test[::1]:" + p, "mx2.example.test[127.0.0.3]:" + p}
		if !slices.Equal(got, want) {
			t.Errorf("probed %v, want %v", got, want)
		}
		var status []DANEStatus
		for _, c := range rep.DANE {
			status = append(status, c.Status)
		}
		if !slices.Equal(status, []DANEStatus{DANEMatch, DANEMatch, DANENone}) {
			t.Errorf("DANE %v", status)
		}
		if names := rep.PTR[netip.MustParseAddr("127.0.0.3")]; !slices.Equal(names, []string{"relay.provider.test"}) {
			t.Errorf("PTR %v", rep.PTR)
		}
		if len(rep.Findings) != 1 || rep.Findings[0].ID != finding.SMTPStartTLSMissing || rep.Findings[0].Subject != want[2] {
			t.Errorf("findings %v, want smtp-starttls-missing for the backup only", rep.Findings)
		}
	})

	t.Run("host", func(t *testing.T) {
		rep, err := a.Audit(t.Context(), Target{Host: "MX1.example.test.", Port: port})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Kind != "host" || rep.Plan != nil || len(rep.Results) != 2 || rep.Results[0].Preference != nil {
			t.Fatalf("report %+v", rep)
		}
		if rep.Target != "MX1.example.test.:"+fmt.Sprint(port) || rep.Results[0].Host != "mx1.example.test" {
			t.Errorf("target %q host %q", rep.Target, rep.Results[0].Host)
		}
		if len(rep.Findings) != 0 || len(rep.DANE) != 2 || rep.DANE[1].Status != DANEMatch {
			t.Errorf("findings %v DANE %v", rep.Findings, rep.DANE)
		}
	})

	t.Run("address", func(t *testing.T) {
		rep, err := a.Audit(t.Context(), Target{Host: "::1", Port: port})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 || rep.Results[0].Host != "" || rep.Target != fmt.Sprintf("[::1]:%d", port) {
			t.Fatalf("report %+v", rep)
		}
		// No name to check the certificate or the greeting against.
		if r := rep.Results[0]; r.TLS == nil || !r.TLS.NameOK || !r.TLS.Trusted || r.TLS.ServerName != "" || len(rep.Findings) != 0 {
			t.Errorf("tls %+v findings %v", r.TLS, rep.Findings)
		}
		if rep.DANE[0].Status != DANENone {
			t.Errorf("DANE for a bare address: %v", rep.DANE[0])
		}
	})

	t.Run("IPv6 only", func(t *testing.T) {
		b := *a
		b.IPv6 = true
		rep, err := b.Audit(t.Context(), Target{Host: "mx1.example.test", Port: port})
		if err != nil || len(rep.Results) != 1 || !rep.Results[0].Address.Is6() {
			t.Fatalf("%v %+v", err, rep.Results)
		}
	})

	t.Run("nothing to probe", func(t *testing.T) {
		rep, err := a.Audit(t.Context(), Target{Domain: dnsname.MustParse("nosuch.example.test")})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Plan.Result != route.ResultNXDomain || len(rep.Results) != 0 || !slices.Contains(ids(rep.Findings), finding.MXNXDomain) {
			t.Errorf("plan %s results %d findings %v", rep.Plan.Result, len(rep.Results), rep.Findings)
		}
	})

	t.Run("host without address", func(t *testing.T) {
		_, err := a.Audit(t.Context(), Target{Host: "nomx.example.test"})
		if !errors.Is(err, ErrNoAddress) {
			t.Errorf("error %v, want ErrNoAddress", err)
		}
		_, err = a.Audit(t.Context(), Target{Host: "elsewhere.example.org"})
		if !errors.Is(err, resolve.ErrNotInZone) {
			t.Errorf("error %v, want ErrNotInZone", err)
		}
	})
}

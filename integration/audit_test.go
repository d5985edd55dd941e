package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// The audit world: a parent zone "test." and children delegated from it,
// served by two Knot servers on one port at 127.0.0.1 (ns1) and 127.0.0.2
// (ns2), the way a zone's primary and secondary both answer on port 53.
// Nothing listens at 127.0.0.3 (ns3). A validating Unbound resolves
// through ns1 and trusts the signed zones' keys.
const (
	auditParent = `$TTL 300
@        SOA  ns1.test. hostmaster.test. 1 7200 900 1209600 300
@        NS   ns1.test.
ns1      A    127.0.0.1
agree    NS   ns1.agree
agree    NS   ns2.agree
ns1.agree A   127.0.0.1
ns2.agree A   127.0.0.2
disagree NS   ns1.disagree
disagree NS   ns2.disagree
ns1.disagree A 127.0.0.1
ns2.disagree A 127.0.0.2
lame     NS   ns1.lame
ns1.lame A    127.0.0.1
`
	// agree.test: both servers serve this text.
	auditAgree = `$TTL 300
@     SOA  ns1 hostmaster 2026112401 7200 900 1209600 300
@     NS   ns1
@     NS   ns2
ns1   A    127.0.0.1
ns2   A    127.0.0.2
@     MX   10 mx1
@     MX   20 mx2
mx1   A    192.0.2.1
mx2   A    192.0.2.2
_mta-sts TXT "v=STSv1; id=1"
mta-sts A  127.0.0.1
`
	// disagree.test on ns1; ns2 serves auditDisagreeOld, an older serial
	// with another MX set: a secondary that missed an update.
	auditDisagreeNew = `$TTL 300
@     SOA  ns1 hostmaster 2026112402 7200 900 1209600 300
@     NS   ns1
@     NS   ns2
ns1   A    127.0.0.1
ns2   A    127.0.0.2
@     MX   10 mx-new
mx-new A   192.0.2.10
`
	auditDisagreeOld = `$TTL 300
@     SOA  ns1 hostmaster 2026110901 7200 900 1209600 300
@     NS   ns1
@     NS   ns2
ns1   A    127.0.0.1
ns2   A    127.0.0.2
@     MX   10 mx-old
mx-old A   192.0.2.11
`
	// lame.test lists ns2 (which does not serve the zone: lame) and ns3
	// (where nothing listens: unreachable).
	auditLame = `$TTL 300
@     SOA  ns1 hostmaster 2026112401 7200 900 1209600 300
@     NS   ns1
@     NS   ns2
@     NS   ns3
ns1   A    127.0.0.1
ns2   A    127.0.0.2
ns3   A    127.0.0.3
@     MX   10 mx
mx    A    192.0.2.20
`
	// A signed zone audited through the validating resolver. Its only
	// server is ns1, so ns2's own signing keys cannot disagree.
	auditSigned = `$TTL 300
@     SOA  ns1 hostmaster 2026112401 7200 900 1209600 300
@     NS   ns1
ns1   A    127.0.0.1
@     MX   10 mx
mx    A    192.0.2.30
@     TXT  "v=spf1 -all"
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@signed.test"
_mta-sts TXT "v=STSv1; id=20261124"
mta-sts A  127.0.0.1
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@signed.test"
`
)

// auditEnv is the running audit world and the resolvers pointed at it.
type auditEnv struct {
	port      uint16
	recursive resolve.Resolver
	cd        resolve.Resolver
}

func startAudit(t *testing.T) *auditEnv {
	t.Helper()
	ns1 := peers.StartKnot(t,
		peers.Zone{Origin: "test.", Text: auditParent},
		peers.Zone{Origin: "agree.test.", Text: auditAgree},
		peers.Zone{Origin: "disagree.test.", Text: auditDisagreeNew},
		peers.Zone{Origin: "lame.test.", Text: auditLame},
		peers.Zone{Origin: "signed.test.", Text: auditSigned, DNSSEC: peers.Signed},
		peers.Zone{Origin: "bogus.test.", Text: auditSigned, DNSSEC: peers.Bogus},
	)
	peers.StartKnotAt(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(ns1.Port)),
		peers.Zone{Origin: "agree.test.", Text: auditAgree},
		peers.Zone{Origin: "disagree.test.", Text: auditDisagreeOld},
	)
	u := peers.StartUnbound(t, ns1.UnboundConfig())
	return &auditEnv{
		port:      uint16(ns1.Port),
		recursive: resolve.NewCache(newStub(t, stub.Config{Servers: []string{u.Addr}}), 0),
		cd:        resolve.NewCache(newStub(t, stub.Config{Servers: []string{u.Addr}, CheckingDisabled: true}), 0),
	}
}

func (e *auditEnv) nameservers() *nameserver.Options {
	return &nameserver.Options{
		CDResolver: e.cd,
		Direct:     nameserver.StubDirect{Timeout: time.Second, Attempts: 2},
		Port:       e.port,
		IPv4:       true,
	}
}

// TestNameserverAudit runs the nameserver audit against real servers: two
// Knots that agree or disagree, a lame and an unreachable server, and the
// DNSSEC verdicts from a validating Unbound with a trust anchor, so the AD
// bit is real.
func TestNameserverAudit(t *testing.T) {
	e := startAudit(t)
	a := e.nameservers()
	tests := []struct {
		domain string
		want   []finding.ID // exactly these, in catalogue order
		state  nameserver.DNSSECState
	}{
		{"agree.test", []finding.ID{finding.DNSSECUnsigned}, nameserver.DNSSECUnsigned},
		{"disagree.test", []finding.ID{finding.DNSSECUnsigned, finding.NSInconsistent, finding.NSSerialMismatch}, nameserver.DNSSECUnsigned},
		{"lame.test", []finding.ID{finding.DNSSECUnsigned, finding.NSLame, finding.NSUnreachable}, nameserver.DNSSECUnsigned},
		{"signed.test", nil, nameserver.DNSSECSecure},
		{"bogus.test", []finding.ID{finding.DNSSECBogus}, nameserver.DNSSECBogus},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			ctx, cancel := contextFor(t)
			defer cancel()
			rep, err := nameserver.Lookup(ctx, e.recursive, dnsname.MustParse(tc.domain), *a)
			if err != nil {
				t.Fatalf("Audit: %v", err)
			}
			if got := ids(nameserver.Findings(rep)); !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v\n%s", got, tc.want, describe(nameserver.Findings(rep)))
			}
			if rep.DNSSEC.State != tc.state {
				t.Errorf("DNSSEC %s (%s), want %s", rep.DNSSEC.State, rep.DNSSEC.Note, tc.state)
			}
			if rep.Apex != tc.domain+"." && rep.Apex != tc.domain {
				t.Errorf("apex %q, want %s", rep.Apex, tc.domain)
			}
		})
	}

	// The findings name the servers that disagree and what each says.
	ctx, cancel := contextFor(t)
	defer cancel()
	rep, err := nameserver.Lookup(ctx, e.recursive, dnsname.MustParse("disagree.test"), *a)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range nameserver.Findings(rep) {
		switch f.ID {
		case finding.NSInconsistent:
			if !strings.Contains(f.Message, "mx-new") || !strings.Contains(f.Message, "mx-old") {
				t.Errorf("ns-inconsistent does not show both MX sets: %s", f.Message)
			}
		case finding.NSSerialMismatch:
			if !strings.Contains(f.Message, "2026112402") || !strings.Contains(f.Message, "2026110901") {
				t.Errorf("ns-serial-mismatch does not show both serials: %s", f.Message)
			}
		}
	}
}

// policies are the MTA-STS policies served, by policy host. agree.test's
// names an MX it does not have.
var policies = map[string]string{
	"mta-sts.signed.test": "version: STSv1\nmode: enforce\nmx: mx.signed.test\nmax_age: 86400\n",
	"mta-sts.agree.test":  "version: STSv1\nmode: enforce\nmx: mx1.agree.test\nmax_age: 86400\n",
}

// startPolicyServer serves policies over HTTPS on loopback with a
// certificate from a test CA, and returns a dialer that sends the
// fetcher's connections to port 443 there instead: the policy host's
// address still comes from the zone, through Unbound.
func startPolicyServer(t *testing.T) (*x509.CertPool, dial.Dialer) {
	t.Helper()
	ca := testpki.NewCA(t, "mxtrace integration CA")
	var names []string
	for n := range policies {
		names = append(names, n)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := policies[r.Host]
		if !ok || r.URL.Path != mtasts.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, p)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: names})}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	target := srv.Listener.Addr().String()
	return ca.Pool, dialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port != "443" || !netip.MustParseAddr(host).IsLoopback() {
			return nil, fmt.Errorf("test dialer: refusing %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	})
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// TestCheckAudit runs the whole check (without blacklists, which would
// leave loopback) through the validating resolver, with the MTA-STS
// policies fetched over HTTPS from a loopback server, and checks the
// areas a postmaster reads first.
func TestCheckAudit(t *testing.T) {
	e := startAudit(t)
	roots, dialer := startPolicyServer(t)
	a := &check.Auditor{
		Resolver:    e.recursive,
		Planner:     &route.Planner{Resolver: e.recursive, IPv4: true},
		Nameservers: e.nameservers(),
		MTASTS: &mtasts.Options{
			Fetcher: &mtasts.Fetcher{Resolver: e.recursive, Dialer: dialer, RootCAs: roots, Timeout: 10 * time.Second}},
		SkipReason: "the test stays on loopback",
	}
	ctx, cancel := contextFor(t)
	defer cancel()
	rep := a.Audit(ctx, dnsname.MustParse("signed.test"))
	if errs := rep.Errors(); len(errs) > 0 {
		t.Fatalf("areas could not be judged: %v", errs)
	}
	if rep.Result != route.ResultOK || len(rep.Order) != 1 || rep.Order[0] != "mx.signed.test" {
		t.Errorf("plan: result %s, order %v", rep.Result, rep.Order)
	}
	got := ids(rep.Findings)
	for _, id := range []finding.ID{finding.DNSSECUnsigned, finding.DNSSECBogus, finding.SPFMissing, finding.DMARCMissing, finding.NSInconsistent} {
		if slices.Contains(got, id) {
			t.Errorf("%s reported for a signed zone with SPF and DMARC: %s", id, describe(rep.Findings))
		}
	}
	area := func(name finding.Area) check.AreaResult {
		i := slices.IndexFunc(rep.Areas, func(a check.AreaResult) bool { return a.Area == name })
		if i < 0 {
			t.Fatalf("no area %q in %v", name, rep.Areas)
		}
		return rep.Areas[i]
	}
	if ns := area(finding.AreaNameservers); ns.Status != check.StatusPass {
		t.Errorf("nameservers area %s: %s %v", ns.Status, ns.Summary, ns.Findings)
	}
	for _, name := range []finding.Area{finding.AreaMTASTS, finding.AreaTLSRPT} {
		if ar := area(name); ar.Status != check.StatusPass || len(ar.Findings) > 0 {
			t.Errorf("%s area %s (%s): %s", name, ar.Status, ar.Summary, describe(ar.Findings))
		}
	}
	if got := area("MTA-STS").Summary; !strings.Contains(got, "mode enforce") {
		t.Errorf("MTA-STS summary %q: the policy was not fetched", got)
	}

	// agree.test's policy does not name mx2.
	rep = a.Audit(ctx, dnsname.MustParse("agree.test"))
	var covered []string
	for _, f := range rep.Findings {
		if f.ID == finding.MTASTSNotCovered {
			covered = append(covered, f.Subject+": "+f.Message)
		}
	}
	if len(covered) != 1 || !strings.Contains(covered[0], "mx2.agree.test") {
		t.Errorf("agree.test: mta-sts-mx-not-covered %q, want one naming mx2.agree.test\n%s", covered, describe(rep.Findings))
	}

	rep = a.Audit(ctx, dnsname.MustParse("bogus.test"))
	if !slices.Contains(ids(rep.Findings), finding.DNSSECBogus) {
		t.Errorf("bogus.test: no dnssec-bogus in %s", describe(rep.Findings))
	}
	// A validating resolver refuses the bogus zone's MX: the plan is a
	// temporary error, never "no MX" or an implicit MX.
	if rep.Result != route.ResultError {
		t.Errorf("bogus.test plan result %s, want error", rep.Result)
	}
}

func contextFor(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 30*time.Second)
}

func ids(fs []finding.Finding) []finding.ID {
	out := []finding.ID{}
	for _, f := range fs {
		if !slices.Contains(out, f.ID) {
			out = append(out, f.ID)
		}
	}
	slices.Sort(out)
	return out
}

func describe(fs []finding.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + string(f.ID) + " " + f.Subject + ": " + f.Message + "\n")
	}
	return b.String()
}

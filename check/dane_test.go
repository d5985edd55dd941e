package check

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// tlsaFails answers SERVFAIL for the TLSA records of mx1.d.test.
type tlsaFails struct{ next resolve.Resolver }

func (r tlsaFails) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Type == dns.TypeTLSA && q.Name == "_25._tcp.mx1.d.test." {
		return nil, &resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return r.next.Lookup(ctx, q)
}

// TestDANELookupFailed: an endpoint whose exchange's TLSA lookup failed is
// lookup-failed in check's DANE match, as in probe's (it was "none", as if
// the exchange had no TLSA records); the other exchange's stays none.
func TestDANELookupFailed(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN test.
@ 3600 SOA ns.test. hostmaster.test. 1 7200 900 1209600 300
d 3600 MX 10 mx1.d.test.
d 3600 MX 20 mx2.d.test.
mx1.d 3600 A 192.0.2.1
mx2.d 3600 A 192.0.2.2
`), "dane")
	if err != nil {
		t.Fatal(err)
	}
	r := tlsaFails{z}
	a := &Auditor{Resolver: r, Planner: &route.Planner{Resolver: r, Seed: 1, HasSeed: true}, SkipReason: "offline"}
	f := a.Gather(t.Context(), dnsname.MustParse("d.test"))
	f.SMTP = []*probe.Result{
		{Host: "mx1.d.test", Address: netip.MustParseAddr("192.0.2.1"), Port: 25},
		{Host: "mx2.d.test", Address: netip.MustParseAddr("192.0.2.2"), Port: 25},
	}
	checks := daneChecks(f)
	if len(checks) != 2 || checks[0].Status != probe.DANELookup || !strings.Contains(checks[0].Reason, "SERVFAIL") || checks[1].Status != probe.DANENone {
		t.Errorf("checks %v, want mx1 lookup-failed (SERVFAIL) and mx2 none", checks)
	}
}

package check_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// brokenZones holds domains whose DNS answers but is broken for good: alias
// chains that loop or run too long, for the domain or its exchange.
const brokenZones = `
$ORIGIN test.
$TTL 3600
@      SOA ns.test. h.test. 1 7200 900 1209600 300
@      NS  ns.test.
ns     A   192.0.2.53
loop   CNAME loop2
loop2  CNAME loop
long   CNAME c1
c1 CNAME c2
c2 CNAME c3
c3 CNAME c4
c4 CNAME c5
c5 CNAME c6
c6 CNAME c7
c7 CNAME c8
c8 CNAME c9
c9 MX 10 mx.ok
mx.ok  A 192.0.2.1
mxloop MX 10 ml1
ml1    CNAME ml2
ml2    CNAME ml1
out    MX 10 mx.elsewhere.example.
`

// TestAuditRoutingBroken: check's routing area judges an alias loop or a
// chain too long as a configuration error with its own finding (not "could
// not check" with mx-lookup-failed), an exchange in a loop likewise, and a
// name outside the zone files says so.
func TestAuditRoutingBroken(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(brokenZones), "broken")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		domain string
		status check.Status
		id     finding.ID
	}{
		{"loop.test", check.StatusProblems, finding.MXAliasLoop},
		{"long.test", check.StatusProblems, finding.MXAliasTooLong},
		{"mxloop.test", check.StatusProblems, finding.MXTargetAliasLoop},
		{"out.test", check.StatusProblems, finding.MXNotInZones},
		{"nosuch.example", check.StatusError, finding.MXNotInZones},
	} {
		r := auditor(resolve.NewCache(z, 0)).Audit(t.Context(), dnsname.MustParse(tt.domain))
		a, ok := area(r, finding.AreaRouting)
		if !ok || a.Status != tt.status {
			t.Errorf("%s: routing %+v, want status %s", tt.domain, a, tt.status)
		}
		if !slices.ContainsFunc(a.Findings, func(f finding.Finding) bool { return f.ID == tt.id }) {
			t.Errorf("%s: routing findings %v lack %s", tt.domain, a.Findings, tt.id)
		}
		if slices.ContainsFunc(a.Findings, func(f finding.Finding) bool { return f.ID == finding.MXLookupFailed }) {
			t.Errorf("%s: routing reports mx-lookup-failed (temporary) for a permanent problem: %v", tt.domain, a.Findings)
		}
	}
	// A real temporary failure is still "could not check".
	r := auditor(failType{z, dns.TypeMX}).Audit(t.Context(), dnsname.MustParse("mxloop.test"))
	if a, _ := area(r, finding.AreaRouting); a.Status != check.StatusError || !slices.ContainsFunc(a.Findings, func(f finding.Finding) bool { return f.ID == finding.MXLookupFailed }) {
		t.Errorf("SERVFAIL on MX: routing %+v, want status error with mx-lookup-failed", a)
	}
}

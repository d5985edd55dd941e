package route_test

import (
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// TestMessagesSingular: a count of one reads in the singular ("a TTL of
// 1 second", "1 more repeated MX record"); null-mixed.json pins "1 other MX record".
func TestMessagesSingular(t *testing.T) {
	const zone = `$ORIGIN test.
@ 3600 SOA ns.test. hostmaster.test. 1 7200 900 1209600 300
ttl 1 MX 10 mx.ttl.test.
mx.ttl 3600 A 192.0.2.1
dup 3600 MX 10 mx.dup.test.
dup 3600 MX 20 mx.dup.test.
dup 3600 MX 30 mx.dup.test.
mx.dup 3600 A 192.0.2.2
`
	z, err := resolve.ParseZones(strings.NewReader(zone), "singular")
	if err != nil {
		t.Fatal(err)
	}
	p := &route.Planner{Resolver: z, Seed: 1, HasSeed: true, MaxExchanges: 1}
	for domain, want := range map[string]string{
		"ttl.test": "have a TTL of 1 second, outside",
		"dup.test": "dup.test has 1 more repeated MX record, not reported",
	} {
		plan, err := p.Plan(t.Context(), dnsname.MustParse(domain))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range plan.Findings {
			found = found || strings.Contains(f.Message, want)
		}
		if !found {
			t.Errorf("%s: no finding says %q: %+v", domain, want, plan.Findings)
		}
	}
}

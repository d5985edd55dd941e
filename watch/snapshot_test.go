package watch_test

import (
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/watch"
)

// TestSnapshotPolicies: the policy a snapshot holds is the one that
// applies, not only the record's text: SPF's "all" through redirect= or
// its default, DMARC's through the organizational domain's sp=.
func TestSnapshotPolicies(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN org.test.
@            300 SOA ns h 1 7200 900 1209600 300
@            300 MX  10 mx
mx           300 A   192.0.2.1
@            300 TXT "v=spf1 redirect=_spf.org.test"
_spf         300 TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc       300 TXT "v=DMARC1; p=reject; sp=quarantine; pct=50"
sub          300 MX  10 mx
sub          300 TXT "v=spf1 mx"
broken       300 MX  10 mx
broken       300 TXT "v=spf1 mx bogus:x -all"
`), "org")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline"}
	snap := func(d string) *watch.Snapshot {
		return watch.SnapshotOf(a.Audit(t.Context(), dnsname.MustParse(d)))
	}
	for _, tc := range []struct {
		domain, all string
		dmarc       watch.DMARC
	}{
		{"org.test", "-all", watch.DMARC{Record: "v=DMARC1; p=reject; sp=quarantine; pct=50", PolicyDomain: "org.test",
			Policy: dmarc.Reject, Subdomain: dmarc.Quarantine, Percent: 50}},
		// RFC 7489 §6.6.3: sp= of the organizational domain applies.
		{"sub.org.test", "?all", watch.DMARC{Record: "v=DMARC1; p=reject; sp=quarantine; pct=50", PolicyDomain: "org.test",
			Policy: dmarc.Quarantine, Subdomain: dmarc.Quarantine, Percent: 50}},
		{"broken.org.test", "", watch.DMARC{Record: "v=DMARC1; p=reject; sp=quarantine; pct=50", PolicyDomain: "org.test",
			Policy: dmarc.Quarantine, Subdomain: dmarc.Quarantine, Percent: 50}},
	} {
		s := snap(tc.domain)
		if s.SPF == nil || s.SPF.All != tc.all {
			t.Errorf("%s: SPF %+v, want all %q", tc.domain, s.SPF, tc.all)
		}
		if s.DMARC == nil || *s.DMARC != tc.dmarc {
			t.Errorf("%s: DMARC\n got %+v\nwant %+v", tc.domain, s.DMARC, tc.dmarc)
		}
	}
}

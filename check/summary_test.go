package check

import (
	"net/netip"
	"testing"

	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/route"
)

// TestSummariesSingular pins the areas' summaries where a count can be
// one: "1 MX pattern", "1 backup tier", one address outside the zones (the
// golden files pin "1 server asked" and "1 listing").
func TestSummariesSingular(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "mx1.d.test", Addresses: []string{"192.0.2.1"}}}},
		{Preference: 20, Hosts: []route.Host{{Name: "mx2.d.test", Addresses: []string{"192.0.2.2"}}}},
	}}
	f := &Facts{
		Plan:   plan,
		MTASTS: &mtasts.Result{Domain: "d.test", Policy: &mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"mx1.d.test"}}},
		SMTP: []*probe.Result{
			{Host: "mx1.d.test", Address: netip.MustParseAddr("192.0.2.1"), Port: 25},
			{Host: "mx2.d.test", Address: netip.MustParseAddr("192.0.2.2"), Port: 25},
		},
		PTR: []probe.HostPTR{{Host: "mx1.d.test", Results: []*rdns.Result{{Address: netip.MustParseAddr("192.0.2.1")}}, Outside: 1}},
	}
	for _, tt := range []struct {
		name  string
		judge func(*Facts) Verdict
		want  string
	}{
		{"MTA-STS", judgeMTASTS, "mode enforce, 1 MX pattern"},
		{"tiers", judgeTiers, "1 backup tier compared with the primary"},
		{"PTR", judgePTR, "1 address checked, 1 not checked (its reverse zone is not in the --zone files)"},
	} {
		if got := tt.judge(f).Summary; got != tt.want {
			t.Errorf("%s: summary %q, want %q", tt.name, got, tt.want)
		}
	}
}

package serve

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// TestPeers asks the API about zones served by a real Knot through a
// real validating Unbound, wired as mxtrace serve wires a resolver: the
// bodies are what the library (and so the command line) computes through
// the same resolver, a DNSSEC-bogus zone is a temporary failure (result
// "error", never "no-mail"), and the nameservers the zone names at
// documentation addresses are refused, not asked. It fails under CI=true
// when knot or unbound is missing.
func TestPeers(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	signed := read("testdata/signed.zone")
	k := peers.StartKnot(t,
		peers.Zone{Origin: "example.", Text: read(testZone)},
		peers.Zone{Origin: "signed.example.", Text: signed, DNSSEC: peers.Signed},
		peers.Zone{Origin: "bogus.example.", Text: signed, DNSSEC: peers.Bogus},
	)
	u := peers.StartUnbound(t, k.UnboundConfig())
	network := func(cd bool) resolve.Resolver {
		r, err := stub.New(stub.Config{Servers: []string{u.Addr}, Timeout: 2 * time.Second, CheckingDisabled: cd})
		if err != nil {
			t.Fatal(err)
		}
		return resolve.NewCache(r, 0)
	}
	r := network(false)
	e := newEnv(t, r, func(c *Config) {
		c.Planner = &route.Planner{Resolver: r, Seed: 1, HasSeed: true}
		c.Auditor = &check.Auditor{
			Resolver:    r,
			Planner:     c.Planner,
			Nameservers: &nameserver.Options{CDResolver: network(true), Policy: &dial.Policy{}},
			SkipReason:  "not in this test",
		}
	})

	for _, domain := range []string{"tiers.example", "signed.example", "nullmx.example", "implicit.example", "nosuch.example", "bogus.example"} {
		status, _, body := e.get(t, "/api/v1/route/"+domain)
		plan, _ := e.planner.Plan(t.Context(), dnsname.MustParse(domain))
		if diff := cmp.Diff(normalized(t, jsonOf(t, plan)), normalized(t, body)); status != 200 || diff != "" {
			t.Errorf("route %s: %d, differs from the library's (-lib +api):\n%s", domain, status, diff)
		}
		status, _, body = e.get(t, "/api/v1/check/"+domain+"?smtp=0")
		rep := e.auditor.Audit(t.Context(), dnsname.MustParse(domain))
		if diff := cmp.Diff(normalized(t, jsonOf(t, rep)), normalized(t, body)); status != 200 || diff != "" {
			t.Errorf("check %s: %d, differs from the library's (-lib +api):\n%s", domain, status, diff)
		}
	}

	_, _, body := e.get(t, "/api/v1/route/bogus.example")
	var plan route.Plan
	if err := json.Unmarshal(body, &plan); err != nil || plan.Result != route.ResultError {
		t.Errorf("a DNSSEC-bogus zone: result %q (%v), want %q (a temporary failure, not no MX)", plan.Result, err, route.ResultError)
	}
	_, _, body = e.get(t, "/api/v1/check/signed.example")
	var rep struct {
		Findings []struct{ ID string } `json:"findings"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, f := range rep.Findings {
		refused = refused || f.ID == "ns-target-refused"
	}
	if !refused {
		t.Errorf("the nameserver at a documentation address was not refused: %s", body)
	}
	if status, _, _ := e.get(t, "/api/v1/check/signed.example/events"); status != http.StatusOK {
		t.Errorf("events: %d", status)
	}
}

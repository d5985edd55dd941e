package route

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// TestHostReadyNames: Plan asks hostReady and resolveHost with the
// exchange's absolute name, as served (which its questions share, so
// nothing is copied); the answer is the same as for the displayed name,
// and an address literal is ready either way.
func TestHostReadyNames(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader("test. 300 SOA ns.test. h.test. 1 7200 900 1209600 300\nmx.test. 300 A 192.0.2.1\n"), "ready")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 0)
	p := &Planner{Resolver: c}
	if p.hostReady("mx.test.") || p.hostReady("mx.test") {
		t.Fatal("ready before any lookup")
	}
	for _, q := range []resolve.Question{resolve.Q("mx.test.", dns.TypeA), resolve.Q("mx.test.", dns.TypeAAAA)} {
		if _, err := c.Lookup(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if !p.hostReady("mx.test.") || !p.hostReady("mx.test") {
		t.Error("not ready after the lookups")
	}
	if !p.hostReady("192.0.2.1.") || !p.hostReady("192.0.2.1") {
		t.Error("an address literal is not ready")
	}
	for _, name := range []string{"mx.test.", "mx.test"} {
		h, fs := p.resolveHost(t.Context(), "d.test", name, p.hostReady(name))
		if h.Name != "mx.test" || len(h.Addresses) != 1 || h.Addresses[0] != "192.0.2.1" || len(fs) != 0 {
			t.Errorf("resolveHost(%q) = %+v, %v", name, h, fs)
		}
	}
}

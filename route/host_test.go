package route

import (
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// TestCachedHostNames: Plan asks cachedHost and resolveHost with the
// exchange's absolute name, as served (which its questions share, so
// nothing is copied); the answer is the same as for the displayed name.
// cachedHost answers only from memory; an address literal needs nothing.
func TestCachedHostNames(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader("test. 300 SOA ns.test. h.test. 1 7200 900 1209600 300\nmx.test. 300 A 192.0.2.1\n"), "ready")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 0)
	p := &Planner{Resolver: c}
	for _, name := range []string{"mx.test.", "mx.test"} {
		if h, fs, ok := p.cachedHost("d.test", name); ok {
			t.Fatalf("cachedHost(%q) before any lookup = %+v, %v: answered from an empty cache", name, h, fs)
		}
	}
	if st := c.Stats(); st.Misses != 0 {
		t.Fatalf("cachedHost asked the zone: %+v", st)
	}
	want := func(how, name string, h Host, fs []finding.Finding) {
		t.Helper()
		if h.Name != "mx.test" || len(h.Addresses) != 1 || h.Addresses[0] != "192.0.2.1" || len(fs) != 0 {
			t.Errorf("%s(%q) = %+v, %v", how, name, h, fs)
		}
	}
	for _, name := range []string{"mx.test.", "mx.test"} {
		h, fs := p.resolveHost(t.Context(), "d.test", name)
		want("resolveHost", name, h, fs)
	}
	for _, name := range []string{"mx.test.", "mx.test"} {
		h, fs, ok := p.cachedHost("d.test", name)
		if !ok {
			t.Fatalf("cachedHost(%q) after the lookups: not in memory", name)
		}
		want("cachedHost", name, h, fs)
	}
	if st := c.Stats(); st.Misses != 2 {
		t.Errorf("A and AAAA asked %d times, want once each: %+v", st.Misses, st)
	}
	for _, name := range []string{"192.0.2.1.", "192.0.2.1"} {
		h, fs, ok := p.cachedHost("d.test", name)
		if !ok || h.Name != "192.0.2.1" || len(fs) != 1 || fs[0].ID != finding.MXTargetIP || !slices.Equal(h.Problems, []finding.ID{finding.MXTargetIP}) {
			t.Errorf("cachedHost(%q) = %+v, %v, %v: want the address literal's finding, no lookup", name, h, fs, ok)
		}
	}
}

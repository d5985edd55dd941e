package scan

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// counting counts the lookups that reach it.
type counting struct {
	next resolve.Resolver
	n    atomic.Int64
}

func (c *counting) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.n.Add(1)
	return c.next.Lookup(ctx, q)
}

// TestRouteCached: RouteCached never asks past the cache. With a domain's
// answers not in memory it reports so (not ok), and with them there it
// makes exactly the plan Route makes, for every kind of domain in the
// world (a provider's, its own exchanges, implicit MX, Null MX, a dangling
// exchange, no such domain).
func TestRouteCached(t *testing.T) {
	zone, list := world(24)
	z, err := resolve.ParseZones(strings.NewReader(zone), "world")
	if err != nil {
		t.Fatal(err)
	}
	network := &counting{next: z}
	p := &route.Planner{Resolver: resolve.NewCache(network, 0), Seed: 7, HasSeed: true}
	cached := RouteCached(p)
	for line := range strings.Lines(list) {
		name, err := dnsname.Parse(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		asked := network.n.Load()
		if _, _, ok := cached(name); ok {
			t.Errorf("%s: planned from memory before anything was asked", name)
		}
		if network.n.Load() != asked {
			t.Fatalf("%s: RouteCached asked %d questions past the cache", name, network.n.Load()-asked)
		}
		want, werr := Route(p)(t.Context(), name)
		asked = network.n.Load()
		got, gerr, ok := cached(name)
		if !ok || network.n.Load() != asked {
			t.Fatalf("%s: not planned from memory after Route (ok %v, %d asked)", name, ok, network.n.Load()-asked)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(gj) != string(wj) || (gerr == nil) != (werr == nil) {
			t.Errorf("%s: from memory\n%s (%v)\nRoute\n%s (%v)", name, gj, gerr, wj, werr)
		}
	}
}

package route_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/route"
)

// TestShuffleUniform (docs/routing.md#tiers-and-shuffle): the order
// inside a tier is uniformly random. Over 6000 seeds every order of a
// 3-host tier must appear, and the counts must pass a chi-squared test (5 degrees of freedom, p = 0.001 → 20.52).
// Seeds make the test deterministic: it cannot flake.
func TestShuffleUniform(t *testing.T) {
	c := loadCase(t, "equal-tier")
	const runs = 6000
	counts := map[string]int{}
	for seed := range uint64(runs) {
		p := &route.Planner{Resolver: c.zones, Seed: seed, HasSeed: true}
		plan, err := p.Plan(t.Context(), c.domain)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Order[3] != "z.d.test" {
			t.Fatalf("seed %d: order %v: the preference-20 host must come after the whole tier 10", seed, plan.Order)
		}
		counts[strings.Join(plan.Order[:3], " ")]++
	}
	if len(counts) != 6 {
		t.Fatalf("saw %d of the 6 orders: %v", len(counts), counts)
	}
	expected := float64(runs) / 6
	chi2 := 0.0
	for _, n := range counts {
		d := float64(n) - expected
		chi2 += d * d / expected
	}
	if chi2 > 20.52 {
		t.Errorf("chi-squared %.1f > 20.52: the shuffle is not uniform: %v", chi2, counts)
	}
	t.Logf("orders %v, chi-squared %.2f", counts, chi2)
}

// TestShuffleUnseeded: without --seed every order still appears.
func TestShuffleUnseeded(t *testing.T) {
	c := loadCase(t, "equal-tier")
	seen := map[string]bool{}
	p := &route.Planner{Resolver: c.zones}
	for i := 0; i < 2000 && len(seen) < 6; i++ {
		plan, err := p.Plan(t.Context(), c.domain)
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Join(plan.Order[:3], " ")] = true
	}
	if len(seen) != 6 {
		t.Errorf("unseeded: saw %d of the 6 orders in 2000 plans", len(seen))
	}
}

// TestSeedReproducible: the same seed gives the same order, whatever else
// the planner routed before; another seed gives another order for some
// domain.
func TestSeedReproducible(t *testing.T) {
	c := loadCase(t, "equal-tier")
	order := func(seed uint64, warmup int) []string {
		p := &route.Planner{Resolver: c.zones, Seed: seed, HasSeed: true}
		var plan *route.Plan
		for range warmup + 1 {
			var err error
			if plan, err = p.Plan(t.Context(), c.domain); err != nil {
				t.Fatal(err)
			}
		}
		return plan.Order
	}
	first := order(42, 0)
	if again := order(42, 5); !slices.Equal(first, again) {
		t.Errorf("seed 42: %v then %v", first, again)
	}
	differs := false
	for seed := range uint64(20) {
		if !slices.Equal(order(seed, 0), first) {
			differs = true
		}
	}
	if !differs {
		t.Errorf("20 seeds all gave the order %v", first)
	}
}

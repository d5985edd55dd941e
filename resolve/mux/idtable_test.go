package mux

import (
	"math/rand/v2"
	"testing"
)

// TestIDTableAgainstMap runs random puts and removes against an
// idTable and a map side by side, with the IDs crowded into a few home
// slots so that probe runs collide and wrap around the end of the slots,
// where backward-shift deletion is easiest to get wrong.
func TestIDTableAgainstMap(t *testing.T) {
	for _, spread := range []int{8, 100, 1 << 16} {
		rng := rand.New(rand.NewPCG(1, uint64(spread)))
		var tab idTable
		model := map[uint16]*query{}
		queries := make([]*query, 1<<16)
		for i := range queries {
			queries[i] = &query{}
		}
		// IDs near the end of the 16-bit space and near 0 share home
		// slots at the end and the start of every table size.
		pick := func() uint16 { return uint16(65536 - spread/2 + rng.IntN(spread)) }
		for step := range 200000 {
			id := pick()
			switch {
			case model[id] == nil && rng.IntN(3) > 0 && len(model) < 3000:
				tab.put(id, queries[id])
				model[id] = queries[id]
			default:
				tab.remove(id)
				delete(model, id)
			}
			if tab.n != len(model) {
				t.Fatalf("spread %d, step %d: table counts %d, map has %d", spread, step, tab.n, len(model))
			}
			if 2*tab.n > len(tab.slots) {
				t.Fatalf("spread %d, step %d: %d in %d slots, more than half full", spread, step, tab.n, len(tab.slots))
			}
			if step%997 == 0 {
				// Every ID held, and as many drawn as the others are.
				check := func(id uint16) {
					if got, want := tab.get(id), model[id]; got != want {
						t.Fatalf("spread %d, step %d: get(%d) = %p, want %p", spread, step, id, got, want)
					}
				}
				for id := range model {
					check(id)
				}
				for range 1000 {
					check(pick())
				}
			}
		}
		seen := map[uint16]bool{}
		tab.drain(func(id uint16, p *query) {
			if model[id] != p || seen[id] {
				t.Fatalf("spread %d: drain gave %d twice or not from the table", spread, id)
			}
			seen[id] = true
		})
		if len(seen) != len(model) || tab.n != 0 || tab.get(pick()) != nil {
			t.Fatalf("spread %d: drain gave %d of %d and left n = %d", spread, len(seen), len(model), tab.n)
		}
	}
}

// TestIDTableEmpty: an empty table answers nothing and removes nothing.
func TestIDTableEmpty(t *testing.T) {
	var tab idTable
	tab.remove(7)
	if tab.get(7) != nil || tab.n != 0 || len(tab.slots) != 0 {
		t.Fatalf("empty table: get %p, n %d, %d slots", tab.get(7), tab.n, len(tab.slots))
	}
	p := &query{}
	tab.put(7, p)
	tab.remove(7 + minTableSlots) // same home slot, not there
	if tab.get(7) != p || tab.get(7+minTableSlots) != nil {
		t.Fatal("removing an absent ID with the same home slot disturbed the table")
	}
}

// BenchmarkIDTable and BenchmarkIDMap do what a socket does per query
// (claim a random free ID, look it up as the reply arrives, look it up
// again as the sweeper passes, remove it) with 512 queries in flight: a
// socket's share of DefaultInFlight over DefaultSockets.
func BenchmarkIDTable(b *testing.B) {
	var tab idTable
	benchIDs(b, func(id uint16) bool { return tab.get(id) != nil },
		func(id uint16, p *query) { tab.put(id, p) }, tab.get, tab.remove)
}

func BenchmarkIDMap(b *testing.B) {
	m := map[uint16]*query{}
	benchIDs(b, func(id uint16) bool { return m[id] != nil },
		func(id uint16, p *query) { m[id] = p },
		func(id uint16) *query { return m[id] },
		func(id uint16) { delete(m, id) })
}

func benchIDs(b *testing.B, used func(uint16) bool, put func(uint16, *query), get func(uint16) *query, remove func(uint16)) {
	const inFlight = 512
	p := &query{}
	var ring [inFlight]uint16
	claim := func() uint16 {
		id := uint16(rand.Uint32())
		for used(id) {
			id++
		}
		put(id, p)
		return id
	}
	for i := range ring {
		ring[i] = claim()
	}
	b.ResetTimer()
	for i := range b.N {
		slot := i % inFlight
		id := ring[slot]
		if get(id) != p || get(id) != p {
			b.Fatal("lost an ID")
		}
		remove(id)
		ring[slot] = claim()
	}
}

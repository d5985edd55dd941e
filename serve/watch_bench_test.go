package serve

import (
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/watch"
)

// BenchmarkHistory is GET /api/v1/history and the history section of a
// report page for a domain with 1,000 stored results on SQLite, each
// with changes.
func BenchmarkHistory(b *testing.B) {
	st := openStore(b)
	s := historyServer(b, st, "")
	now := time.Now().UTC()
	a := snapshotOf(b, s, "tiers.example", now.Add(90*24*time.Hour))
	c := without(a)
	var prev *watch.Snapshot
	for i := range 1000 {
		cur := a
		if i%2 == 1 {
			cur = c
		}
		record(b, st, now.Add(time.Duration(i-1000)*time.Hour), cur, prev, false)
		prev = cur
	}
	b.Run("api", func(b *testing.B) {
		for b.Loop() {
			if res, _ := get(b, s, "/api/v1/history/tiers.example"); res.StatusCode != 200 {
				b.Fatal(res.Status)
			}
		}
	})
	b.Run("timeline", func(b *testing.B) {
		for b.Loop() {
			if s.timeline(b.Context(), "tiers.example") == nil {
				b.Fatal("no timeline")
			}
		}
	})
}

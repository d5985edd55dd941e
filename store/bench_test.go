package store_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/store"
)

// benchReport is a report of about the size of a real check's --json
// object (4 KB).
var benchReport = []byte(`{"domain":"example.org","pad":"` + string(bytes.Repeat([]byte("x"), 4000)) + `"}`)

// BenchmarkStore measures, on each backend, recording one result with a
// change and an alert (one transaction), and reading a domain's history:
// its 1,000 results and their changes, newest first.
func BenchmarkStore(b *testing.B) {
	bench := func(b *testing.B, dsn func() string) {
		b.Run("Record", func(b *testing.B) {
			s, err := store.Open(b.Context(), dsn())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			at := t0
			for b.Loop() {
				at = at.Add(time.Second)
				r := store.Result{Domain: "example.org", At: at, Status: store.StatusOK, Report: benchReport, Facts: []byte(`{"version":1}`)}
				c := []store.Change{{Kind: "ttl-changed", Subject: "mx.example.org", Severity: "info", Message: "ttl", Old: "300", New: "600"}}
				a := []store.Alert{{Target: "log", Kind: store.AlertChange, Body: []byte(`{}`)}}
				if _, err := s.Record(b.Context(), "", r, c, a, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("History1000", func(b *testing.B) {
			s, err := store.Open(b.Context(), dsn())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range 1000 {
				for _, d := range []string{"example.org", fmt.Sprintf("other%d.example", i%10)} {
					r := store.Result{Domain: d, At: t0.Add(time.Duration(i) * time.Hour), Status: store.StatusOK, Report: benchReport, Facts: []byte(`{"version":1}`)}
					c := []store.Change{{Kind: "ttl-changed", Subject: "mx." + d, Severity: "info", Message: "ttl", Old: "300", New: "600"}}
					if _, err := s.Record(b.Context(), "", r, c, nil, time.Time{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			for b.Loop() {
				rs, err := s.Results(b.Context(), "example.org", time.Time{}, 0)
				if err != nil || len(rs) != 1000 {
					b.Fatalf("%d results, %v", len(rs), err)
				}
				cs, err := s.Changes(b.Context(), "example.org", time.Time{}, 0)
				if err != nil || len(cs) != 1000 {
					b.Fatalf("%d changes, %v", len(cs), err)
				}
			}
		})
	}
	b.Run("sqlite", func(b *testing.B) {
		dir := b.TempDir()
		n := 0
		bench(b, func() string { n++; return filepath.Join(dir, fmt.Sprintf("%d.db", n)) })
	})
	b.Run("postgres", func(b *testing.B) {
		pg := peers.StartPostgres(b)
		bench(b, func() string { return pg.NewDatabase(b) })
	})
}

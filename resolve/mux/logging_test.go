package mux_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// TestLookupQuietLogger: a logger that drops debug records (a scan's, at
// warning level) costs Lookup nothing: no record is built for it (the
// record's question text, duration and values were 5 allocations a
// lookup).
func TestLookupQuietLogger(t *testing.T) {
	srv := dnstest.NewZone(t, resolvetest.ManyZone(1))
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	plain, warn := newMux(t, mux.Config{}, srv), newMux(t, mux.Config{Config: stub.Config{Logger: quiet}}, srv)
	q := resolve.Q("n0.test.", dns.TypeA)
	// The fewest of three measures: the reader's and the in-process
	// server's allocations are counted too, and a busy machine (a CI run
	// beside other packages' tests) once added one on average to one
	// side (31 against 30). A record costs five: more than two apart is
	// one built.
	allocs := func(m *mux.Mux) float64 {
		least := 0.0
		for i := range 3 {
			n := testing.AllocsPerRun(50, func() {
				if _, err := m.Lookup(t.Context(), q); err != nil {
					t.Fatal(err)
				}
			})
			if i == 0 || n < least {
				least = n
			}
		}
		return least
	}
	if a, b := allocs(plain), allocs(warn); b > a+2 {
		t.Errorf("%v allocations a lookup with a warning-level logger, %v without one", b, a)
	}
}

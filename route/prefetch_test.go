package route_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// TestPrefetch: for every test zone, served over UDP and asked through a
// Cache over a Mux as a scan asks it, Prefetch asks everything Plan will
// ask — Plan then sends no query at all — except where Plan follows an
// alias itself or a lookup failed (failures are not cached); and the plan
// is the golden one, byte for byte once the server's address in error
// messages is the zone file's name.
func TestPrefetch(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, name)
			text, err := os.ReadFile(filepath.Join("testdata", "route", name+".zone"))
			if err != nil {
				t.Fatal(err)
			}
			srv := dnstest.NewZone(t, string(text))
			m, err := mux.New(mux.Config{Config: stub.Config{Servers: []string{srv.Addr}, Timeout: 2 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p := &route.Planner{Resolver: resolve.NewCache(m, 0), Self: c.self, Seed: 1, HasSeed: true}

			done := make(chan struct{})
			p.Prefetch(c.domain, func() { close(done) })
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Prefetch never called done")
			}
			prefetched := m.Stats().Sent
			if prefetched == 0 {
				t.Fatal("Prefetch sent no query")
			}
			plan, _ := p.Plan(t.Context(), c.domain)
			alias := len(plan.AliasChain) > 0
			for _, h := range plan.Hosts() {
				alias = alias || h.CanonicalName != ""
			}
			failed := false
			for _, f := range plan.Findings {
				failed = failed || f.ID == "mx-lookup-failed"
			}
			if extra := m.Stats().Sent - prefetched; extra > 0 && !alias && !failed {
				t.Errorf("Plan sent %d queries after Prefetch (%d)", extra, prefetched)
			}
			if strings.HasSuffix(name, "not-in-zones") {
				// A name outside the zone file is no question for the
				// files (mx-not-in-zones) but one the server refuses,
				// which is a failed lookup: the plans differ there.
				if !failed {
					t.Errorf("a name the server refuses: no mx-lookup-failed in %+v", plan.Findings)
				}
				return
			}
			plan.ElapsedMS = 0
			got, err := json.MarshalIndent(plan, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			zone := "zone:" + filepath.Join("testdata", "route", name+".zone")
			got = bytes.ReplaceAll(got, []byte(srv.Addr), []byte(zone))
			golden.Check(t, filepath.Join("testdata", "route", name+".json"), append(got, '\n'))
		})
	}
}

// TestPrefetchWithoutAsync: over a resolver that cannot start lookups
// without waiting, Prefetch calls done at once and asks nothing.
func TestPrefetchWithoutAsync(t *testing.T) {
	c := loadCase(t, "tiers")
	p := &route.Planner{Resolver: resolve.NewCache(c.zones, 0)}
	called := false
	p.Prefetch(c.domain, func() { called = true })
	if !called {
		t.Error("done not called before Prefetch returned")
	}
	if resolve.IsReady(p.Resolver, resolve.Q(c.domain.FQDN(), 15)) {
		t.Error("Prefetch asked the zone files")
	}
}

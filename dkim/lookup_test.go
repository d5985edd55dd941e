package dkim_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
)

// zoneCase loads testdata/NAME.zone and the domain of its "; domain:" line.
func zoneCase(t *testing.T, name string) (*resolve.Zones, dnsname.Name) {
	t.Helper()
	return dnstest.ZoneCase(t, filepath.Join("testdata", name+".zone"))
}

func lookup(t *testing.T, name string, selectors ...string) (*dkim.Result, error) {
	t.Helper()
	z, domain := zoneCase(t, name)
	return dkim.Lookup(t.Context(), z, domain, dkim.Options{Selectors: selectors})
}

type idSev struct {
	ID       finding.ID
	Severity finding.Severity
}

func idSevs(fs []finding.Finding) []idSev {
	var out []idSev
	for _, f := range fs {
		out = append(out, idSev{f.ID, f.Severity})
	}
	return out
}

// TestFindings: every DKIM finding ID has a zone that triggers it (about
// the expected subject, with the expected severity) and one that must not.
func TestFindings(t *testing.T) {
	type testCase struct {
		id              finding.ID
		trigger, absent string
		subject         string
		severity        finding.Severity
	}
	tests := []testCase{
		{finding.DKIMNoneFound, "none", "good", "d.test", finding.Info},
		{finding.DKIMNoneFound, "unguessable", "cname", "d.test", finding.Info},
		{finding.DKIMNoneFound, "revoked", "cname", "d.test", finding.Info},
		{finding.DKIMNoneFound, "wildcard", "weak-1024", "d.test", finding.Info},
		{finding.DKIMSyntax, "syntax", "good", "selector1._domainkey.d.test", finding.Error},
		{finding.DKIMSyntax, "syntax", "wildcard", "selector1._domainkey.d.test", finding.Error},
		{finding.DKIMWeakKey, "weak-1024", "good", "google._domainkey.d.test", finding.Warning},
		{finding.DKIMWeakKey, "weak-512", "cname", "k1._domainkey.d.test", finding.Error},
		{finding.DKIMWeakKey, "weak-sha1", "good", "s1._domainkey.d.test", finding.Error},
	}
	for _, tt := range tests {
		t.Run(string(tt.id)+"/"+tt.trigger, func(t *testing.T) {
			res, _ := lookup(t, tt.trigger)
			got := dkim.Findings(res)
			if !slices.ContainsFunc(got, func(f finding.Finding) bool {
				return f.ID == tt.id && f.Subject == tt.subject && f.Severity == tt.severity
			}) {
				t.Errorf("%s: no %s %s finding about %s in %v", tt.trigger, tt.severity, tt.id, tt.subject, got)
			}
			res, _ = lookup(t, tt.absent)
			if got := dkim.Findings(res); slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == tt.id }) {
				t.Errorf("%s: unexpected %s finding in %v", tt.absent, tt.id, got)
			}
		})
	}
	for _, e := range finding.Catalogue {
		if e.Area == finding.AreaDKIM && !slices.ContainsFunc(tests, func(tt testCase) bool { return tt.id == e.ID }) {
			t.Errorf("no test case triggers %s", e.ID)
		}
	}
}

// TestExactFindings pins whole finding lists, so clean cases stay clean.
func TestExactFindings(t *testing.T) {
	for _, tt := range []struct {
		name      string
		selectors []string
		want      []idSev
	}{
		{"good", nil, nil},
		{"cname", nil, nil},
		{"unguessable", []string{"s20260101"}, nil},
		{"none", nil, []idSev{{finding.DKIMNoneFound, finding.Info}}},
		{"wildcard", nil, []idSev{{finding.DKIMNoneFound, finding.Info}}},
		{"syntax", nil, []idSev{{finding.DKIMSyntax, finding.Error}, {finding.DKIMNoneFound, finding.Info}}},
		{"weak-512", nil, []idSev{{finding.DKIMWeakKey, finding.Error}}},
		{"weak-1024", nil, []idSev{{finding.DKIMWeakKey, finding.Warning}}},
	} {
		res, err := lookup(t, tt.name, tt.selectors...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if d := cmp.Diff(tt.want, idSevs(dkim.Findings(res))); d != "" {
			t.Errorf("%s: findings (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Run("keys in probe order", func(t *testing.T) {
		res, err := lookup(t, "good")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range res.Keys {
			got = append(got, k.Name+" "+string(k.Record.KeyType))
		}
		want := []string{"default._domainkey.d.test ed25519", "selector1._domainkey.d.test rsa"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("keys (-want +got):\n%s", d)
		}
		if res.Keys[1].Record.Bits != 2048 || !res.Keys[1].Usable() {
			t.Errorf("selector1: %d bits, usable %v", res.Keys[1].Record.Bits, res.Keys[1].Usable())
		}
		if res.NoKeyTree || len(res.Probed) != len(dkim.DefaultSelectors) {
			t.Errorf("NoKeyTree %v, %d probed", res.NoKeyTree, len(res.Probed))
		}
	})
	t.Run("caller selectors first, deduplicated", func(t *testing.T) {
		res, err := lookup(t, "unguessable", "S20260101.", "google", "s20260101")
		if err != nil {
			t.Fatal(err)
		}
		if res.Probed[0] != "s20260101" || res.Probed[1] != "google" || len(res.Probed) != len(dkim.DefaultSelectors)+1 {
			t.Errorf("probed %v", res.Probed)
		}
		if len(res.Keys) != 1 || res.Keys[0].Selector != "s20260101" {
			t.Errorf("keys %+v", res.Keys)
		}
	})
	t.Run("revoked keys are kept", func(t *testing.T) {
		res, _ := lookup(t, "cname")
		var revoked []string
		for _, k := range res.Keys {
			if k.Record != nil && k.Record.Revoked() {
				revoked = append(revoked, k.Selector)
			}
		}
		if d := cmp.Diff([]string{"selector2"}, revoked); d != "" {
			t.Errorf("revoked (-want +got):\n%s", d)
		}
	})
	t.Run("wildcard TXT is not a key", func(t *testing.T) {
		res, _ := lookup(t, "wildcard")
		if len(res.Keys) != 0 {
			t.Errorf("keys %+v, want none", res.Keys)
		}
	})
	t.Run("bad selectors", func(t *testing.T) {
		for _, s := range []string{"", "a b", "a..b", strings.Repeat("x", 64), "é", "\u212a1"} {
			if _, err := lookup(t, "good", s); !errors.Is(err, dkim.ErrBadSelector) {
				t.Errorf("selector %q: error %v, want ErrBadSelector", s, err)
			}
		}
		if _, err := lookup(t, "good", make([]string, dkim.MaxSelectors+1)...); !errors.Is(err, dkim.ErrBadSelector) {
			t.Errorf("too many selectors: error %v", err)
		}
	})
	t.Run("a failed probe is an error, never 'none found'", func(t *testing.T) {
		z, domain := zoneCase(t, "none")
		// _domainkey fails too, so the defaults are probed, and one fails.
		r := &failing{Resolver: z, fail: map[string]bool{"_domainkey.d.test.": true, "google._domainkey.d.test.": true}}
		res, err := dkim.Lookup(t.Context(), r, domain, dkim.Options{})
		if !errors.Is(err, resolve.ErrServerFailure) {
			t.Errorf("error %v, want the SERVFAIL", err)
		}
		if d := cmp.Diff([]string{"google"}, res.Failed); d != "" {
			t.Errorf("failed (-want +got):\n%s", d)
		}
		if res.NoKeyTree || len(res.Probed) != len(dkim.DefaultSelectors) {
			t.Errorf("a failed _domainkey query must not skip the defaults: NoKeyTree %v, %d probed", res.NoKeyTree, len(res.Probed))
		}
		if fs := dkim.Findings(res); len(fs) != 0 {
			t.Errorf("findings %v, want none while a probe failed", fs)
		}
	})
	t.Run("a resolver that is down is one line, not one per selector", func(t *testing.T) {
		z, domain := zoneCase(t, "none")
		fail := map[string]bool{"_domainkey.d.test.": true}
		for _, s := range dkim.DefaultSelectors {
			fail[s+"._domainkey.d.test."] = true
		}
		res, err := dkim.Lookup(t.Context(), &failing{Resolver: z, fail: fail}, domain, dkim.Options{})
		if !errors.Is(err, resolve.ErrServerFailure) || len(res.Failed) != len(dkim.DefaultSelectors) {
			t.Fatalf("error %v, %d failed; want the SERVFAIL of every selector", err, len(res.Failed))
		}
		want := fmt.Sprintf("dkim: %d of %d selectors could not be looked up (default, dkim, mail, …); the first: ", len(fail)-1, len(fail)-1)
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, want) || strings.Count(msg, "SERVFAIL") > 1 {
			t.Errorf("error %q, want one line starting %q", msg, want)
		}
		if se, ok := errors.AsType[*dkim.SelectorError](err); !ok || len(se.Errs) != len(fail)-1 {
			t.Errorf("error %#v, want a *dkim.SelectorError with every failure", err)
		}
	})
}

// TestRFC8020: NXDOMAIN at _domainkey spares the default selectors but not
// the caller's; NODATA there (an empty non-terminal) does not.
func TestRFC8020(t *testing.T) {
	for _, tt := range []struct {
		zone      string
		selectors []string
		queries   int
		noKeyTree bool
	}{
		{"none", nil, 1, true},
		{"none", []string{"mine", "yours"}, 3, true},
		{"unguessable", nil, 1 + len(dkim.DefaultSelectors), false},
	} {
		z, domain := zoneCase(t, tt.zone)
		c := &counting{Resolver: z}
		res, err := dkim.Lookup(t.Context(), c, domain, dkim.Options{Selectors: tt.selectors})
		if err != nil {
			t.Fatal(err)
		}
		if got := int(c.n.Load()); got != tt.queries || res.NoKeyTree != tt.noKeyTree {
			t.Errorf("%s %v: %d queries, NoKeyTree %v; want %d, %v", tt.zone, tt.selectors, got, res.NoKeyTree, tt.queries, tt.noKeyTree)
		}
		if d := cmp.Diff(tt.selectors, res.Probed, cmpopts.EquateEmpty()); tt.noKeyTree && d != "" {
			t.Errorf("probed (-want +got):\n%s", d)
		}
		// The finding says why nothing was probed, not "any of the 0
		// probed selectors ()".
		for _, f := range dkim.Findings(res) {
			if tt.noKeyTree && (!strings.Contains(f.Message, "_domainkey."+domain.String()+" does not exist") || strings.Contains(f.Message, "()")) {
				t.Errorf("%s %v: message %q", tt.zone, tt.selectors, f.Message)
			}
			for _, s := range tt.selectors {
				if !strings.Contains(f.Message, s) {
					t.Errorf("%s: message does not name selector %s: %q", tt.zone, s, f.Message)
				}
			}
		}
	}
}

// TestBoundedParallelism: the selector queries run in parallel, never more
// than MaxParallel in flight. synctest.Wait lets every goroutine that can
// reach the gate reach it before one query is released.
func TestBoundedParallelism(t *testing.T) {
	z, domain := zoneCase(t, "unguessable")
	synctest.Test(t, func(t *testing.T) {
		c := &counting{Resolver: z, gate: make(chan struct{})}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := dkim.Lookup(t.Context(), c, domain, dkim.Options{}); err != nil {
				t.Error(err)
			}
		}()
		peak := 0
		for range 1 + len(dkim.DefaultSelectors) {
			synctest.Wait()
			c.mu.Lock()
			peak = max(peak, c.inFlight)
			c.mu.Unlock()
			c.gate <- struct{}{}
		}
		<-done
		if want := min(dkim.MaxParallel, len(dkim.DefaultSelectors)); peak != want {
			t.Errorf("peak of %d queries in flight, want %d", peak, want)
		}
	})
}

// failing is a Resolver that fails (SERVFAIL) for some names.
type failing struct {
	resolve.Resolver
	fail map[string]bool
}

func (f *failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if f.fail[q.Name] {
		return nil, &resolve.Error{Question: q, Rcode: 2, Err: resolve.ErrServerFailure}
	}
	return f.Resolver.Lookup(ctx, q)
}

// counting counts queries and those in flight; with a gate, each query
// waits for a token.
type counting struct {
	resolve.Resolver
	gate     chan struct{}
	n        atomic.Int32
	mu       sync.Mutex
	inFlight int
}

func (c *counting) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Resolver.Lookup(ctx, q)
}

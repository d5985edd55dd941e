package tlsrpt_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// zoneCase loads testdata/NAME.zone and the domain of its "; domain:" line.
func zoneCase(t *testing.T, name string) (*resolve.Zones, dnsname.Name) {
	t.Helper()
	return dnstest.ZoneCase(t, filepath.Join("testdata", name+".zone"))
}

func lookup(t *testing.T, name string) *tlsrpt.Result {
	t.Helper()
	z, domain := zoneCase(t, name)
	res, err := tlsrpt.Lookup(t.Context(), z, domain, tlsrpt.Options{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// TestFindings: each TLS-RPT finding ID has a zone that triggers it and
// one that must not; the clean zones give no finding at all.
func TestFindings(t *testing.T) {
	type testCase struct {
		id              finding.ID
		trigger, absent string
	}
	tests := []testCase{
		{finding.TLSRPTMissing, "missing", "good"},
		{finding.TLSRPTMissing, "missing", "invalid"},
		{finding.TLSRPTInvalid, "invalid", "good-two"},
		{finding.TLSRPTInvalid, "multiple", "good"},
		{finding.TLSRPTInvalid, "invalid", "missing"},
	}
	for _, tt := range tests {
		got := tlsrpt.Findings(lookup(t, tt.trigger))
		if !slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == tt.id && f.Subject == "_smtp._tls.d.test" }) {
			t.Errorf("%s: no %s finding about _smtp._tls.d.test in %v", tt.trigger, tt.id, got)
		}
		if len(got) != 1 {
			t.Errorf("%s: %d findings, want 1: %v", tt.trigger, len(got), got)
		}
		if got := tlsrpt.Findings(lookup(t, tt.absent)); slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == tt.id }) {
			t.Errorf("%s: unexpected %s finding in %v", tt.absent, tt.id, got)
		}
	}
	for _, name := range []string{"good", "good-two", "cname"} {
		if got := tlsrpt.Findings(lookup(t, name)); len(got) != 0 {
			t.Errorf("%s: findings %v, want none", name, got)
		}
	}
	for _, e := range finding.Catalogue {
		if e.Area == finding.AreaTLSRPT && !slices.ContainsFunc(tests, func(tt testCase) bool { return tt.id == e.ID }) {
			t.Errorf("no test case triggers %s", e.ID)
		}
	}
}

func TestLookup(t *testing.T) {
	res := lookup(t, "good-two")
	want := &tlsrpt.Record{RUA: []string{"mailto:tls@d.test", "https://reporting.example/v1/tlsrpt"}}
	if d := cmp.Diff(want, res.Record); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
	if res.Name != "_smtp._tls.d.test" || len(res.Records) != 1 {
		t.Errorf("name %q, records %q", res.Name, res.Records)
	}
	if res := lookup(t, "cname"); res.Record == nil || res.Record.RUA[0] != "https://provider.example/r/d-test" {
		t.Errorf("CNAME not followed: %+v", res)
	}
	if res := lookup(t, "good"); len(res.Records) != 1 {
		t.Errorf("unrelated TXT records must not count: %q", res.Records)
	}
	// A temporary failure is an error, never "missing".
	z, _ := zoneCase(t, "good")
	res, err := tlsrpt.Lookup(t.Context(), z, "elsewhere.example", tlsrpt.Options{})
	if res != nil || !errors.Is(err, resolve.ErrNotInZone) {
		t.Errorf("got %+v, %v; want nil and the lookup error", res, err)
	}
}

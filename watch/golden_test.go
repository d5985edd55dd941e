package watch_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/watch"
)

func zones(t *testing.T, file string) *resolve.Zones {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	z, err := resolve.ParseZones(bytes.NewReader(b), file)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// audit checks example.test offline over zones, its second nameserver
// answering from ns2.
func audit(t *testing.T, zones, ns2 *resolve.Zones) *check.Report {
	t.Helper()
	r := resolve.NewCache(zones, 0)
	a := &check.Auditor{
		Resolver: r,
		Planner:  &route.Planner{Resolver: r, Seed: 1, HasSeed: true},
		Nameservers: &nameserver.Options{Direct: dnstest.Servers{
			netip.MustParseAddr("192.0.2.53"): zones,
			netip.MustParseAddr("192.0.2.54"): ns2,
		}},
		DNSBL:          &dnsbl.Options{Lists: []string{"bl.test"}},
		DKIMSelectors:  []string{"mail"},
		SMTPSkipReason: "the test does not connect",
		SkipReason:     "the test has no HTTPS server",
	}
	return a.Audit(t.Context(), dnsname.MustParse("example.test"))
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestDiffGolden checks example.test over two versions of its zone, the
// second served stale by one nameserver, and pins both snapshots and the
// changes. Rewrite with go test ./watch -run TestDiffGolden -update, and
// review the diff.
func TestDiffGolden(t *testing.T) {
	v1, v2 := zones(t, "v1.zone"), zones(t, "v2.zone")
	before := watch.SnapshotOf(audit(t, v1, v1))
	after := watch.SnapshotOf(audit(t, v2, v1))
	changes := watch.Diff(before, after)

	golden.Check(t, filepath.Join("testdata", "v1.snapshot.json"), marshal(t, before))
	golden.Check(t, filepath.Join("testdata", "v2.snapshot.json"), marshal(t, after))
	golden.Check(t, filepath.Join("testdata", "diff.json"), marshal(t, changes))

	if d := watch.Diff(after, after); len(d) != 0 {
		t.Errorf("Diff(s, s) = %+v", d)
	}
	// What is stored diffs as what was checked.
	stored, err := watch.ParseSnapshot(marshal(t, before))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(changes, watch.Diff(stored, after)); d != "" {
		t.Errorf("Diff from the stored snapshot differs (-live +stored):\n%s", d)
	}
	// Every kind the zones were built to show is there.
	for _, k := range []watch.ChangeKind{
		watch.KindExchangeAdded, watch.KindExchangeRemoved, watch.KindPreferenceChanged, watch.KindTTLChanged,
		watch.KindAddressChanged, watch.KindNSMXDisagree, watch.KindNSSerialDisagree, watch.KindSPFWeakened,
		watch.KindDMARCWeakened, watch.KindDKIMWeakened, watch.KindMTASTSWeakened, watch.KindTLSRPTChanged,
		watch.KindDNSBLListed, watch.KindFindingNew, watch.KindFindingResolved,
	} {
		if !slices.ContainsFunc(changes, func(c watch.Change) bool { return c.Kind == k }) {
			t.Errorf("no %s in the golden diff", k)
		}
	}
}

// TestStoredVersion1 reads a snapshot stored by version 1 (a frozen copy,
// never rewritten by -update): it must decode, and diff as nothing
// against a fresh snapshot of the same zone, whatever fields were added
// since.
func TestStoredVersion1(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "stored-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := watch.ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	v1 := zones(t, "v1.zone")
	if d := watch.Diff(stored, watch.SnapshotOf(audit(t, v1, v1))); len(d) != 0 {
		t.Errorf("Diff(stored v1, fresh) = %+v, want nothing", d)
	}
	for _, bad := range []string{`{}`, `{"version":0}`, `[1]`, `{"version":"1"}`} {
		if _, err := watch.ParseSnapshot([]byte(bad)); err == nil {
			t.Errorf("ParseSnapshot(%s) succeeded", bad)
		}
	}
}

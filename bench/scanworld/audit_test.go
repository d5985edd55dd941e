package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/bench/internal/truth"
	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

func genAudit(t *testing.T, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := generate(testN, 3, seed, dir, true); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readAuditTruth(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range lines(t, filepath.Join(dir, "findings.jsonl")) {
		var d truth.AuditDomain
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		out[d.Domain] = d.Findings
	}
	return out
}

// TestAuditWorldChecks audits every domain of a small audit world with the
// real auditor over the generated zone files (no server), and checks that
// its findings are the ground truth's: the truth is what check says, not
// what the generator believes. Offline the nameserver audit and the
// MTA-STS fetch are skipped, so dnssec-unsigned is not expected here
// (bench/audit.sh checks it against knot).
func TestAuditWorldChecks(t *testing.T) {
	dir := genAudit(t, 7)
	var files []string
	for _, l := range lines(t, filepath.Join(dir, "zones.txt")) {
		files = append(files, strings.Fields(l)[1])
	}
	zones, err := resolve.LoadZones(files...)
	if err != nil {
		t.Fatal(err)
	}
	a := &check.Auditor{Resolver: zones, Planner: &route.Planner{Resolver: zones}}
	want := readAuditTruth(t, dir)
	input := lines(t, filepath.Join(dir, "input.txt"))
	if len(want) != testN || len(input) != testN {
		t.Fatalf("%d truths, %d input lines; want %d", len(want), len(input), testN)
	}
	ids := map[string]int{}
	for _, name := range input {
		w, ok := want[name]
		if !ok {
			t.Fatalf("%s has no truth", name)
		}
		d, err := dnsname.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		r := a.Audit(context.Background(), d)
		var got []string
		for _, f := range r.Findings {
			if !slices.Contains(got, string(f.ID)) {
				got = append(got, string(f.ID))
			}
		}
		slices.Sort(got)
		w = slices.DeleteFunc(slices.Clone(w), func(id string) bool { return id == "dnssec-unsigned" })
		if !slices.Equal(got, w) {
			t.Errorf("%s: findings %v, want %v", name, got, w)
		}
		for _, id := range w {
			ids[id]++
		}
	}
	// The world exercises every area it publishes for.
	for _, id := range []string{"spf-missing", "spf-include-none", "spf-lookup-limit", "spf-redirect-none", "spf-multiple",
		"spf-syntax", "spf-ptr", "spf-void-lookups", "spf-neutral-all", "dmarc-missing", "dmarc-policy-none", "dmarc-no-rua",
		"dmarc-rua-unauthorized", "dmarc-syntax", "dkim-none-found", "dkim-weak-key", "dkim-syntax", "mta-sts-missing",
		"mta-sts-txt-invalid", "tlsrpt-missing", "tlsrpt-invalid", "dane-tlsa-insecure", "dane-tlsa-invalid", "ptr-missing",
		"ptr-mismatch"} {
		if ids[id] == 0 {
			t.Errorf("no domain of the world should get %s", id)
		}
	}
}

// TestAuditWorldFiles checks the audit world's files: the same seed gives
// the same files, world.json counts what the query files hold, every
// recursive question is asked once, and the routing world is the one
// without -audit.
func TestAuditWorldFiles(t *testing.T) {
	dir := genAudit(t, 7)
	again := genAudit(t, 7)
	for _, f := range []string{"findings.jsonl", "audit-queries.txt", "audit-direct.txt", "zones/com.test.zone", "zones/hosting.example.zone"} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(again, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with one seed (or is empty)", f)
		}
	}
	plain := gen(t, 7)
	for _, f := range []string{"input.txt", "truth.jsonl", "queries.txt"} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(plain, f))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs with -audit: the routing world must stay the same", f)
		}
	}
	var c counts
	b, err := os.ReadFile(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	rec := lines(t, filepath.Join(dir, "audit-queries.txt"))
	direct := lines(t, filepath.Join(dir, "audit-direct.txt"))
	if c.Audit == nil || c.Audit.Recursive != len(rec) || c.Audit.Direct != len(direct) || c.Audit.Queries != len(rec)+len(direct) {
		t.Fatalf("world.json audit %+v; the files hold %d recursive and %d direct questions", c.Audit, len(rec), len(direct))
	}
	seen := map[string]bool{}
	for _, q := range rec {
		if seen[q] {
			t.Fatalf("question %q twice", q)
		}
		seen[q] = true
	}
	// Every domain's own questions are there: its MX, SOA, NS and TXT.
	for _, name := range lines(t, filepath.Join(dir, "input.txt"))[:50] {
		for _, typ := range []string{"MX", "SOA", "NS", "TXT"} {
			if !seen[name+". "+typ] {
				t.Errorf("no %s %s question", name, typ)
			}
		}
	}
	if got := c.Audit.QueriesPerDomain; got < 10 || got > 25 {
		t.Errorf("%.2f audit queries per domain; the mix should give about 15", got)
	}
}

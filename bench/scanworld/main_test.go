package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/bench/internal/truth"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

const testN = 3000

func gen(t *testing.T, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := generate(testN, 3, seed, dir, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func readTruth(t *testing.T, dir string) map[string]*truth.Domain {
	t.Helper()
	out := map[string]*truth.Domain{}
	for _, l := range lines(t, filepath.Join(dir, "truth.jsonl")) {
		d := &truth.Domain{}
		if err := json.Unmarshal([]byte(l), d); err != nil {
			t.Fatal(err)
		}
		if out[d.Domain] != nil {
			t.Fatalf("%s twice in the truth", d.Domain)
		}
		out[d.Domain] = d
	}
	return out
}

// TestWorldRoutes plans every domain of a small world with the real planner
// over the generated zone files (no server), and checks the planner's view
// matches the ground truth: the truth is what route --json says, not what
// the generator believes.
func TestWorldRoutes(t *testing.T) {
	dir := gen(t, 7)
	var files []string
	for _, l := range lines(t, filepath.Join(dir, "zones.txt")) {
		files = append(files, strings.Fields(l)[1])
	}
	zones, err := resolve.LoadZones(files...)
	if err != nil {
		t.Fatal(err)
	}
	p := &route.Planner{Resolver: zones}
	want := readTruth(t, dir)
	input := lines(t, filepath.Join(dir, "input.txt"))
	if len(input) != testN || len(want) != testN {
		t.Fatalf("%d input lines and %d truths, want %d each", len(input), len(want), testN)
	}
	kinds := map[string]int{}
	for _, name := range input {
		d := want[name]
		if d == nil {
			t.Fatalf("input %s has no truth", name)
		}
		kinds[d.Kind]++
		n, err := dnsname.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		plan, _ := p.Plan(t.Context(), n)
		b, err := json.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		var got truth.Plan
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if why := truth.Compare(d, &got); why != "" {
			t.Errorf("%s (%s): %s\nplan  %s", name, d.Kind, why, b)
		}
	}
	for k := range numKinds {
		if kinds[kindNames[k]] == 0 {
			t.Errorf("no domain of kind %s", kindNames[k])
		}
	}
}

// TestWorldFiles checks the counts, the query file and determinism.
func TestWorldFiles(t *testing.T) {
	dir := gen(t, 7)
	var c counts
	b, err := os.ReadFile(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range c.Kinds {
		sum += n
	}
	if c.Domains != testN || sum != testN {
		t.Errorf("world.json: %d domains, kinds sum to %d, want %d", c.Domains, sum, testN)
	}
	if want := testN * perMille[kindOwn] / 1000; c.Kinds["own"] != want {
		t.Errorf("own: %d domains, want %d", c.Kinds["own"], want)
	}

	// Every question once; one MX per domain; A and AAAA in pairs.
	qs := lines(t, filepath.Join(dir, "queries.txt"))
	if len(qs) != c.PerfectQueries || c.PerfectQueries != c.MXQueries+c.AddressQueries {
		t.Errorf("%d queries in the file, world.json says %d = %d + %d", len(qs), c.PerfectQueries, c.MXQueries, c.AddressQueries)
	}
	seen := map[string]bool{}
	mx := 0
	for i, q := range qs {
		if seen[q] {
			t.Fatalf("question %q twice", q)
		}
		seen[q] = true
		name, typ, _ := strings.Cut(q, " ")
		switch typ {
		case "MX":
			mx++
		case "A":
			if i+1 >= len(qs) || qs[i+1] != name+" AAAA" {
				t.Errorf("%s A is not followed by its AAAA", name)
			}
		case "AAAA":
		default:
			t.Fatalf("query %q: unexpected type", q)
		}
	}
	if mx != testN {
		t.Errorf("%d MX questions, want %d", mx, testN)
	}
	if got := float64(len(qs)) / testN; got < 2 || got > 3 {
		t.Errorf("%.2f queries per domain; the mix should give about 2.35", got)
	}

	// The same seed gives the same files; another seed another order.
	again := gen(t, 7)
	for _, f := range []string{"input.txt", "truth.jsonl", "queries.txt", "zones/com.test.zone"} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(again, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with one seed (or is empty)", f)
		}
	}
	other := gen(t, 8)
	x, _ := os.ReadFile(filepath.Join(dir, "input.txt"))
	y, _ := os.ReadFile(filepath.Join(other, "input.txt"))
	if bytes.Equal(x, y) {
		t.Error("input.txt is the same for seeds 7 and 8")
	}
}

// TestReservedOnly checks that nothing real is in the zones: names under
// .test or .example (or the fake root), documentation addresses only.
func TestReservedOnly(t *testing.T) {
	dir := gen(t, 1)
	for _, l := range lines(t, filepath.Join(dir, "zones.txt")) {
		f, err := os.Open(strings.Fields(l)[1])
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 5 || strings.HasPrefix(fs[0], "$") {
				continue
			}
			if owner := fs[0]; owner != "." && !strings.HasSuffix(owner, ".test.") && !strings.HasSuffix(owner, ".example.") {
				t.Errorf("owner %s is not reserved", owner)
			}
			switch fs[3] {
			case "A":
				if !strings.HasPrefix(fs[4], "192.0.2.") && !strings.HasPrefix(fs[4], "198.51.100.") && !strings.HasPrefix(fs[4], "203.0.113.") {
					t.Errorf("address %s is not a documentation address", fs[4])
				}
			case "AAAA":
				if !strings.HasPrefix(fs[4], "2001:db8:") {
					t.Errorf("address %s is not a documentation address", fs[4])
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/store"
)

// TestScanDB: scan --db stores a scan of a zone while printing what scan
// prints without it; after the zone changed a second scan is stored, and
// scan diff shows exactly the typed changes, on SQLite and PostgreSQL.
func TestScanDB(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testScanDB(t, filepath.Join(t.TempDir(), "scans.db")) })
	t.Run("postgres", func(t *testing.T) { testScanDB(t, peers.StartPostgres(t).NewDatabase(t)) })
}

var elapsedMS = regexp.MustCompile(`"elapsed_ms":\d+`)

func testScanDB(t *testing.T, db string) {
	e := newWatchEnv(t)
	e.db = db
	dir := t.TempDir()
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("shop.example\nblog.example\ngone.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := e.runNoDB(t, exitOK, "scan", list)
	stored := e.run(t, exitOK, "scan", list)
	if elapsedMS.ReplaceAllString(stored, "") != elapsedMS.ReplaceAllString(plain, "") {
		t.Errorf("scan --db printed\n%s\nscan without it\n%s", stored, plain)
	}
	e.run(t, exitOK, "scan", "--mode", "check", list)

	e.setZone(t, shopZoneLater)
	if err := os.WriteFile(list, []byte("shop.example\nblog.example\nnew.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run(t, exitOK, "scan", list)
	e.run(t, exitOK, "scan", "--mode", "check", list)

	out := e.run(t, exitOK, "scan", "list", "--json")
	scans := jsonArray(t, out)
	if len(scans) != 4 {
		t.Fatalf("scan list: %s", out)
	}
	for i, s := range scans {
		if s["results"] != 3.0 || s["finished"] == nil || s["mode"] != []string{"route", "check"}[i%2] {
			t.Errorf("scan %d: %v", i+1, s)
		}
	}

	type kinds struct{ domain, kinds string }
	diff := func(want int, a, b string) []kinds {
		lines := jsonLines(t, e.run(t, want, "scan", "diff", "--json", a, b))
		var got []kinds
		for _, l := range lines[:len(lines)-1] {
			var ks []string
			for _, c := range asSlice(l["changes"]) {
				c := c.(map[string]any)
				ks = append(ks, c["kind"].(string)+" "+c["subject"].(string))
			}
			if o, ok := l["only"].(string); ok {
				ks = append(ks, "only "+o)
			}
			got = append(got, kinds{l["domain"].(string), strings.Join(ks, ", ")})
		}
		if _, ok := lines[len(lines)-1]["summary"]; !ok {
			t.Errorf("scan diff %s %s: the last line is not the summary: %v", a, b, lines[len(lines)-1])
		}
		return got
	}
	if got, want := diff(exitOK, "1", "3"), []kinds{
		{"gone.example", "only old"},
		{"new.example", "only new"},
		{"shop.example", "exchange-removed mx2.shop.example"},
	}; !slices.Equal(got, want) {
		t.Errorf("route scans: %v\nwant %v", got, want)
	}
	if got, want := diff(exitFindings, "2", "4") /* dmarc-weakened is an error */, []kinds{
		{"gone.example", "only old"},
		{"new.example", "only new"},
		{"shop.example", "exchange-removed mx2.shop.example, dmarc-weakened _dmarc.shop.example"},
	}; !slices.Equal(got, want) {
		t.Errorf("check scans: %v\nwant %v", got, want)
	}

	out = e.run(t, exitOK, "scan", "diff", "1", "3")
	for _, want := range []string{
		"shop.example  1 change (ok to ok)\n  warning  exchange-removed  mx2.shop.example",
		"gone.example  only in scan 1",
		"scan 1: 3 domains, scan 3: 3 domains; 2 in both: 1 changed, 0 not compared; 1 only in scan 1, 1 only in scan 3\n  exchange-removed         1 domain\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scan diff 1 3 lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := mxtrace(t, "scan", "diff", "--db", e.db, "1", "9"); code != exitUsage || !strings.Contains(errOut, "scan 9") {
		t.Errorf("scan diff of an unknown scan: exit %d, %s", code, errOut)
	}
	if code, _, errOut := mxtrace(t, "scan", "--db", e.db, "--resume", "-o", filepath.Join(dir, "out"), list); code != exitUsage {
		t.Errorf("scan --db --resume: exit %d, %s", code, errOut)
	}

	// --format csv prints CSV and stores the JSON lines: the same diff.
	e.setZone(t, shopZone)
	if out := e.run(t, exitOK, "scan", "--format", "csv", list); !strings.HasPrefix(out, "line,domain,") {
		t.Errorf("scan --format csv --db printed:\n%s", out)
	}
	if got, want := diff(exitOK, "5", "3"), []kinds{{"shop.example", "exchange-removed mx2.shop.example"}}; !slices.Equal(got, want) {
		t.Errorf("a csv scan against a json one: %v\nwant %v", got, want)
	}
}

// runNoDB runs a command line with --zone only.
func (e *watchEnv) runNoDB(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := mxtrace(t, append([]string{"--zone", e.zone}, args...)...)
	if code != want {
		t.Fatalf("mxtrace %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

func jsonArray(t *testing.T, out string) []map[string]any {
	t.Helper()
	var v []map[string]any
	if err := jsonUnmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return v
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestScanDBKilled: a scan --db killed with SIGKILL part way keeps every
// committed batch, in input order the first lines of the list, and stays
// unfinished, its count matching the stored lines.
func TestScanDBKilled(t *testing.T) {
	e := newWatchEnv(t)
	list := filepath.Join(t.TempDir(), "list.txt")
	var b strings.Builder
	const n = 500_000
	for i := range n {
		fmt.Fprintf(&b, "d%07d.example\n", i)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ := startWatchRun(t, "--zone", e.zone, "scan", "--db", e.db, "-o", filepath.Join(t.TempDir(), "out.jsonl"), list)

	s, err := store.Open(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss := s.(store.ScanStore)
	deadline := time.Now().Add(30 * time.Second)
	for {
		scans, err := ss.Scans(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(scans) == 1 && scans[0].Results >= 2*store.ScanBatchSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no batch committed in 30s: %v", scans)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	scans, err := ss.Scans(t.Context())
	if err != nil || len(scans) != 1 {
		t.Fatalf("scans %v, %v", scans, err)
	}
	sc := scans[0]
	if !sc.Finished.IsZero() || sc.Results >= n {
		t.Fatalf("scan %+v: want it unfinished, killed part way", sc)
	}
	i := int64(0)
	for r, err := range ss.ScanResults(t.Context(), sc.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("d%07d.example", i); r.Domain != want || r.Status != "nxdomain" {
			t.Fatalf("stored line %d is %s (%s); want %s, nxdomain", i, r.Domain, r.Status, want)
		}
		i++
	}
	if i != sc.Results {
		t.Errorf("%d lines stored; the scan counts %d", i, sc.Results)
	}
	t.Logf("killed after %d of %d lines committed", i, n)
}

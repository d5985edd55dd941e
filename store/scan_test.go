package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to measure the database

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/store"
)

// TestScans runs the scan tests on SQLite and on a real PostgreSQL
// (skipped when it is missing, failed under CI=true).
func TestScans(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.ScanStore)
	}{
		{"BatchesCommitted", testScanBatchesCommitted},
		{"InterruptedScanKeepsCommittedBatches", testScanInterrupted},
		{"ResultsInDomainOrder", testScanResultsInDomainOrder},
		{"BatchCommittedAfterDelay", testScanBatchDelay},
		{"InvalidJSONRefused", testScanInvalidJSON},
	}
	run := func(t *testing.T, newDSN func(t *testing.T) string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t, newDSN(t)).(store.ScanStore)) })
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "mxtrace.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		pg := peers.StartPostgres(t)
		run(t, func(t *testing.T) string { return pg.NewDatabase(t) })
	})
}

func scanResult(i int) store.ScanResult {
	d := fmt.Sprintf("d%05d.example", i)
	r := store.ScanResult{Domain: d, Status: "ok", Line: []byte(`{"domain":"` + d + `","result":"ok"}`),
		Facts: []byte(`{"version":1,"domain":"` + d + `"}`)}
	if i%10 == 0 {
		r.Status, r.Facts = store.StatusError, nil
	}
	return r
}

// testScanBatchesCommitted: more results than a batch holds are all
// stored, counted, and the scan marked finished.
func testScanBatchesCommitted(t *testing.T, s store.ScanStore) {
	const n = 3*store.ScanBatchSize + 17
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Started: t0, Mode: "route", Input: "list.txt"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Add(scanResult(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Finish: %v", err)
	}
	si, err := s.Scan(t.Context(), w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if si.Results != n || si.Errors != (n+9)/10 || si.Finished.IsZero() || !si.Started.Equal(t0.Truncate(time.Microsecond)) ||
		si.Mode != "route" || si.Input != "list.txt" {
		t.Errorf("scan = %+v; want %d results, %d errors, finished", si, n, (n+9)/10)
	}
	got := 0
	for r, err := range s.ScanResults(t.Context(), w.ID()) {
		if err != nil {
			t.Fatal(err)
		}
		if want := scanResult(got); r.Domain != want.Domain || r.Status != want.Status ||
			string(r.Line) != string(want.Line) || string(r.Facts) != string(want.Facts) {
			t.Fatalf("result %d = %+v; want %+v", got, r, want)
		}
		got++
	}
	if got != n {
		t.Errorf("%d results read back; want %d", got, n)
	}
	if _, err := s.Scan(t.Context(), w.ID()+1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Scan of an unknown id: %v; want ErrNotFound", err)
	}
}

// testScanInterrupted: Close without Finish commits what was added and
// leaves the scan unfinished.
func testScanInterrupted(t *testing.T, s store.ScanStore) {
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Mode: "check", Input: "-"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := w.Add(scanResult(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ss, err := s.Scans(t.Context())
	if err != nil || len(ss) != 1 {
		t.Fatalf("Scans = %v, %v; want one", ss, err)
	}
	if ss[0].Results != 7 || !ss[0].Finished.IsZero() || ss[0].Started.IsZero() {
		t.Errorf("scan = %+v; want 7 results, not finished", ss[0])
	}
}

// testScanResultsInDomainOrder: results come back in Go's string order,
// whatever the order they were added in and the database's collation.
func testScanResultsInDomainOrder(t *testing.T, s store.ScanStore) {
	domains := []string{"b.example", "a.example", "B.example", "a-b.example", "ab.example", "a.example", "xn--bcher-kva.example", "_x.example", "0.example"}
	rand.Shuffle(len(domains), func(i, j int) { domains[i], domains[j] = domains[j], domains[i] })
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Mode: "route", Input: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range domains {
		if err := w.Add(store.ScanResult{Domain: d, Status: "ok", Line: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for r, err := range s.ScanResults(t.Context(), w.ID()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Domain)
	}
	want := slices.Sorted(slices.Values(domains))
	if !slices.Equal(got, want) {
		t.Errorf("order %v; want %v", got, want)
	}
}

// testScanBatchDelay: a batch that does not fill is committed after
// ScanBatchDelay, while the scan still runs (a slow scan loses little when
// it is killed).
func testScanBatchDelay(t *testing.T, s store.ScanStore) {
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Mode: "route", Input: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		if err := w.Add(scanResult(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		si, err := s.Scan(t.Context(), w.ID())
		if err != nil {
			t.Fatal(err)
		}
		if si.Results == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan = %+v; the 3 results were never committed", si)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkScanStore measures storing a scan's results on each backend
// (each about the size of a --mode route line and its facts): results a
// second, and the database's size per 100,000 results.
func BenchmarkScanStore(b *testing.B) {
	line := []byte(`{"domain":"d.example","result":"ok","tiers":[{"preference":10,"hosts":[{"name":"mx1.provider.example","addresses":["192.0.2.1","2001:db8::1"]}]}],"findings":[],"pad":"` + strings.Repeat("x", 600) + `"}`)
	facts := []byte(`{"version":1,"domain":"d.example","result":"ok","records":[{"exchange":"mx1.provider.example","preference":10,"ttl":3600}],"hosts":[{"name":"mx1.provider.example","addresses":["192.0.2.1","2001:db8::1"]}],"findings":[],"checked":["routing"]}`)
	bench := func(b *testing.B, dsn string, size func(s store.Store) int64) {
		s, err := store.Open(b.Context(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		w, err := s.(store.ScanStore).BeginScan(b.Context(), store.ScanInfo{Mode: "route", Input: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		before := size(s)
		n := 0
		start := time.Now()
		for b.Loop() {
			n++
			if err := w.Add(store.ScanResult{Domain: fmt.Sprintf("d%09d.example", n), Status: "ok", Line: line, Facts: facts}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "results/s")
		if n >= 10_000 {
			b.ReportMetric(float64(size(s)-before)/float64(n)*100_000/(1<<20), "MB/100k")
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "scan.db")
		bench(b, path, func(store.Store) int64 {
			var total int64
			for _, p := range []string{path, path + "-wal"} {
				if st, err := os.Stat(p); err == nil {
					total += st.Size()
				}
			}
			return total
		})
	})
	b.Run("postgres", func(b *testing.B) {
		pg := peers.StartPostgres(b)
		dsn := pg.NewDatabase(b)
		bench(b, dsn, func(store.Store) int64 { return postgresSize(b, dsn) })
	})
}

// postgresSize is the size of the database dsn names, in bytes.
func postgresSize(tb testing.TB, dsn string) int64 {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(tb.Context(), `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// testScanInvalidJSON: a line that is not JSON is refused on both engines
// alike (SQLite would store it): its batch is not stored, and Finish says
// why.
func testScanInvalidJSON(t *testing.T, s store.ScanStore) {
	w, err := s.BeginScan(t.Context(), store.ScanInfo{Mode: "route", Input: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(scanResult(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(store.ScanResult{Domain: "bad.example", Status: "ok", Line: []byte(`{"domain":`)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err == nil || !strings.Contains(err.Error(), "bad.example is not valid JSON") {
		t.Errorf("Finish = %v; want the line refused", err)
	}
	si, err := s.Scan(t.Context(), w.ID())
	if err != nil || si.Results != 0 || !si.Finished.IsZero() {
		t.Errorf("scan %+v, %v; want nothing stored, unfinished", si, err)
	}
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/store/sqlite"
)

// TestSQLiteConcurrentWriters records from 64 goroutines at once on one
// SQLite store whose connections wait only 1 ms for a lock: every write
// succeeds, because the store's writers take turns in the process instead
// of on SQLite's busy handler. Without the turns most of them fail with
// SQLITE_BUSY (as `watch run --concurrency 64` did with the 10 s timeout).
func TestSQLiteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	migrated, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	migrated.Close()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		t.Fatal(err)
	}
	s := newSQLite(db)
	defer s.Close()

	const writers, each = 64, 10
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, writers*(each+1))
	for g := range writers {
		wg.Go(func() {
			domain := fmt.Sprintf("d%02d.example", g)
			if err := s.AddWatch(ctx, Watch{Domain: domain, Every: time.Hour, Added: at}); err != nil {
				errs <- err
			}
			for i := range each {
				r := Result{Domain: domain, At: at.Add(time.Duration(i) * time.Second), Status: "ok"}
				if _, err := s.Record(ctx, "", r, nil, nil, time.Time{}); err != nil {
					errs <- err
				}
			}
			if _, err := s.Results(ctx, domain, time.Time{}, 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed == 0 {
			t.Error(err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d writes failed", failed, writers*(each+1))
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM results`).Scan(&n); err != nil || n != writers*each {
		t.Errorf("%d results stored (%v), want %d", n, err, writers*each)
	}
}

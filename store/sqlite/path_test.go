package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mxtrace/mxtrace/store/sqlite"
)

// TestOpenPath: a path with characters a file: URI gives meaning to is
// still that file, created with its directory (0700), and every connection
// has the settings Open promises.
func TestOpenPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "sub")
	path := filepath.Join(dir, "my db.sqlite")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
	var busy int
	if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != int(sqlite.BusyTimeout.Milliseconds()) {
		t.Errorf("busy_timeout %d, %v", busy, err)
	}
	var sync, fk int
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous %d, %v; want 2 (FULL)", sync, err)
	}
	if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d, %v; want 1", fk, err)
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, %v; want 0700", st.Mode().Perm(), err)
	}
}

// Package sqlite opens mxtrace's default database: one SQLite file, through
// the pure-Go driver modernc.org/sqlite, so watch runs on a fresh machine
// with no database server and no C compiler. Its schema is the SQL files
// under migrations/, embedded and applied by goose on every Open.
//
// The package knows the connection and the schema only; store wraps the
// database as a store.Store.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// BusyTimeout is how long a statement waits for another connection's or
// process's write lock before it fails with SQLITE_BUSY: long enough for
// several watch processes on one file to take turns.
const BusyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the schema, one goose SQL file per version.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists: a build error otherwise
	}
	return sub
}

// Open opens (creating it, and its directory with mode 0700, when missing)
// the database file at path and brings its schema up to date.
//
// Every connection runs in WAL mode (readers never block the writer, and a
// commit is one append to the log), waits BusyTimeout for a lock, enforces
// foreign keys, and syncs the log on every commit (synchronous=FULL), so a
// committed result survives a crash of the process and of the machine.
// Transactions start with BEGIN IMMEDIATE: every transaction of the store
// writes, and taking the write lock first means two of them never both
// read and then fail to upgrade; they queue on the busy timeout instead
// (across processes: package store makes one process's writers take turns
// before they reach SQLite).
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := setUp(ctx, db, abs+".lock"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}
	return db, nil
}

// setUp makes the first connection (which turns a new file to WAL mode) and
// applies the migrations holding an exclusive lock on the file lockPath:
// two processes opening a new database at once (a cron job and `watch
// add`) would otherwise both see an empty schema and one fail to create
// it, or find the database locked while the other changes its journal mode,
// which does not wait on the busy timeout.
func setUp(ctx context.Context, db *sql.DB, lockPath string) error {
	unlock, err := lockFile(lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	return migrate(ctx, db)
}

// migrate applies the embedded migrations that db has not seen yet.
func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, Migrations())
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

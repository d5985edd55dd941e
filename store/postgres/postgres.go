// Package postgres opens mxtrace's database on PostgreSQL, for several
// watch processes on several machines sharing the work: the pgx driver
// through database/sql. Its schema is the SQL files under migrations/,
// embedded and applied by goose on every Open, under an advisory lock so
// workers starting together migrate once.
//
// The package knows the connection and the schema only; store wraps the
// database as a store.Store.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

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

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string, as libpq reads them) and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return db, nil
}

// migrate applies the embedded migrations that db has not seen yet, holding
// goose's session advisory lock (pg_advisory_lock) meanwhile: the second of
// two workers started together waits, then finds nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	// Retried every second (goose's default is every 5) for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, Migrations(), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Package store is the database seam of mxtrace watch: the watched domains
// and their schedule, every check result stored whole with the facts a diff
// needs, the changes found between two results, and the alerts they cause.
//
// It knows results and facts, not DNS, HTTP or SMTP: a result's report and
// facts are opaque JSON to it, written by the watch package and read back by
// history, diff and serve.
//
// Two promises hold on every backend (SQLite by default, PostgreSQL for
// several workers):
//
//   - One transaction per unit of work. Record commits a result, its
//     changes, the alerts they cause (a transactional outbox), the watch's
//     next run and the release of its lease together, so a crash (kill -9)
//     never leaves a result without its alerts, nor an alert without its
//     result.
//   - Work is shared by leases held in the database. Claim hands a due
//     watch to one worker until its lease ends; a worker that dies loses
//     nothing but time, as the watch is claimable again once the lease has
//     passed. On PostgreSQL this is SELECT ... FOR UPDATE SKIP LOCKED; on
//     SQLite a write transaction.
//
// Alerts are delivered at least once: a deliverer takes due alerts on a
// lease too (DueAlerts), so two deliverers never send the same alert at the
// same time; an alert is sent again only when its deliverer died between
// sending it and marking it sent. The alert's ID travels with it so the
// receiver can drop that duplicate.
//
// Every time is stored and returned in UTC, to the microsecond. A domain is
// the canonical A-label name without the trailing dot, as mxtrace prints it.
//
// Open picks the engine by the DSN. Packages store/sqlite and
// store/postgres hold each engine's connection settings and its embedded
// migrations; the Store itself is one implementation over database/sql
// here, the few differences between the engines named in one dialect
// value.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/store/postgres"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// Errors returned (wrapped) by a Store.
var (
	// ErrLeaseLost is returned by Record when worker no longer holds the
	// watch's lease: the lease ran out and another worker claimed the watch,
	// or the watch was removed. Nothing is stored, so the other worker's
	// result is the only one for that run and no alert is sent twice.
	ErrLeaseLost = errors.New("store: the watch's lease is not held by this worker")
	// ErrNotFound is returned for an alert ID that does not exist.
	ErrNotFound = errors.New("store: not found")
)

// Result statuses: the whole check's outcome.
const (
	StatusOK       = "ok"       // nothing above info
	StatusProblems = "problems" // findings at warning or error
	StatusError    = "error"    // the check could not be done or an area could not be judged
)

// Alert kinds: why an alert was queued.
const (
	AlertChange           = "change"            // one change found between two results
	AlertReminder         = "reminder"          // an error still lasts after the reminder period
	AlertRecovery         = "recovery"          // the error has ended
	AlertConfirmedFailure = "confirmed-failure" // a temporary failure confirmed by the next check
)

// Watch is one watched domain and its schedule.
type Watch struct {
	Domain string
	// Every is the period between two checks.
	Every time.Duration
	// Alerts are the targets of the domain's alerts: "https://..." (a
	// webhook) or "mailto:addr" (e-mail); empty means a log line only.
	Alerts []string
	// NextRun is when the watch is due next; AddWatch takes zero as now.
	NextRun time.Time
	// Added is when the watch was first added (AddWatch: zero is now); AddWatch
	// on an existing domain keeps it.
	Added time.Time
}

// WatchStatus is a watch with what `watch list` shows about it.
type WatchStatus struct {
	Watch
	// LastRun is the time of the latest stored result (zero: never checked).
	LastRun time.Time
	// LastStatus is that result's status: StatusOK, StatusProblems,
	// StatusError, or "" when never checked.
	LastStatus string
	// Worker holds the watch's lease until LeaseUntil; both are zero when
	// no worker holds it. A LeaseUntil in the past is a lease that ran out
	// (its worker died or is late) and is free.
	Worker     string
	LeaseUntil time.Time
}

// Result is one stored check: the --json object whole, and the typed facts
// (the watch package's snapshot, as JSON) that a diff reads, so a diff never
// parses report text.
type Result struct {
	ID     int64 // assigned by Record
	Domain string
	At     time.Time // when the check ran
	Status string    // StatusOK, StatusProblems or StatusError
	Report []byte    // the check's --json object
	Facts  []byte    // the facts a diff reads (JSON)
	// Temporary is true when the domain could not be checked (a temporary
	// failure such as a DNS time-out): the facts are not a new state of the
	// domain, and the alert policy waits for the next check to confirm it.
	Temporary bool
}

// Change is one difference between two results of a domain, computed on the
// typed facts by the watch package. The store keeps its fields as they come.
type Change struct {
	ResultID int64     // the result that showed it; set by Record
	Domain   string    // set by Record from the result
	At       time.Time // set by Record from the result
	Kind     string    // what changed, e.g. "mx-added"
	Subject  string    // what it changed on, e.g. an exchange's name
	Severity string    // the finding severity vocabulary: info, warning, error
	Message  string    // one line for people
	Old, New string    // the values before and after, "" when none
}

// Alert is one message to one target, queued by Record (the outbox) and
// taken by a deliverer with DueAlerts until AlertSent or it is given up.
type Alert struct {
	ID       int64 // assigned by Record
	ResultID int64 // the result that caused it; set by Record
	Domain   string
	Target   string // "https://...", "mailto:addr", or "log"
	Kind     string // AlertChange, AlertReminder, AlertRecovery, AlertConfirmedFailure
	Body     []byte // JSON, what the target receives
	// Attempts counts the failed deliveries.
	Attempts int
	// NextAttempt is when the alert is due; zero when it is sent or given up.
	NextAttempt time.Time
	// Sent is when it was delivered; zero until then.
	Sent      time.Time
	LastError string
	// Created is when Record queued it.
	Created time.Time
}

// Store is the database: SQLite or PostgreSQL behind one interface. Every
// method is safe for concurrent use, also by several processes sharing the
// database.
type Store interface {
	// AddWatch adds w or updates the watch of w.Domain (its period, alert
	// targets and next run), keeping its Added time, its results and its
	// lease.
	AddWatch(ctx context.Context, w Watch) error
	// AddWatches is AddWatch for each of ws, in one transaction: all of
	// them or none, and one commit (one sync to disk) for a list of
	// thousands.
	AddWatches(ctx context.Context, ws []Watch) error
	// RemoveWatch removes the watch of domain, reporting whether there was
	// one. Its results, changes and alerts stay: history still shows them.
	RemoveWatch(ctx context.Context, domain string) (bool, error)
	// Watches lists every watch by domain, with its last status and lease.
	Watches(ctx context.Context) ([]WatchStatus, error)
	// Watch returns the watch of domain with its last status and lease, or
	// nil, nil when domain is not watched: adding one watch reads one row,
	// not every watch.
	Watch(ctx context.Context, domain string) (*WatchStatus, error)
	// NextDue returns the earliest next run of any watch, leased or not
	// (the zero time when nothing is watched): when a daemon has work
	// again, without listing every watch.
	NextDue(ctx context.Context) (time.Time, error)

	// Claim leases to worker, until now+lease, up to limit watches whose
	// next run is at or before now (every watch when all is true), earliest
	// due first, and returns them. A watch leased to another worker is
	// skipped until its lease has passed, so no watch is handed out twice
	// while a lease holds and none is lost when its worker dies.
	// limit <= 0 means no limit.
	Claim(ctx context.Context, worker string, now time.Time, limit int, lease time.Duration, all bool) ([]Watch, error)
	// Record commits, in one transaction: the result r, its changes, its
	// alerts (queued, due at once), and, when worker is not "", the watch's
	// next run and the release of worker's lease. It returns the result's
	// ID. When worker does not hold the watch's lease it stores nothing and
	// returns ErrLeaseLost. A worker of "" records a result with no watch
	// behind it (a scan, a one-off check): no lease is checked and no
	// schedule changes.
	Record(ctx context.Context, worker string, r Result, changes []Change, alerts []Alert, nextRun time.Time) (int64, error)

	// Last returns domain's newest result, or nil, nil when there is none.
	Last(ctx context.Context, domain string) (*Result, error)
	// Results returns domain's results at or after since, newest first, at
	// most limit (limit <= 0: all).
	Results(ctx context.Context, domain string, since time.Time, limit int) ([]Result, error)
	// Summaries returns what Results returns without each result's Report
	// and Facts (both nil): some 50 octets a result instead of the 5 to 16
	// KB of a report, for a timeline, or to pick the results to read
	// whole with Result.
	Summaries(ctx context.Context, domain string, since time.Time, limit int) ([]Result, error)
	// Result returns the result id whole, or nil, nil when there is none.
	Result(ctx context.Context, id int64) (*Result, error)
	// Changes returns domain's changes at or after since, newest first, at
	// most limit (limit <= 0: all).
	Changes(ctx context.Context, domain string, since time.Time, limit int) ([]Change, error)
	// Alerts returns domain's alerts created at or after since, newest
	// first, at most limit (limit <= 0: all): the alert policy reads when
	// the last reminder went out.
	Alerts(ctx context.Context, domain string, since time.Time, limit int) ([]Alert, error)

	// DueAlerts takes up to limit alerts due at now for delivery and moves
	// their next attempt to now+lease, so no other deliverer takes them
	// while this one delivers; a deliverer that dies leaves them due again
	// after the lease. Oldest first.
	DueAlerts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Alert, error)
	// AlertSent marks alert id delivered at at: it is never due again.
	AlertSent(ctx context.Context, id int64, at time.Time) error
	// AlertFailed records a failed delivery of alert id: one more attempt,
	// errText, and the next attempt at next; a zero next gives the alert up
	// (never due again, kept with its error). An alert already marked sent
	// (by a deliverer that took it after this one's lease ran out) stays
	// sent.
	AlertFailed(ctx context.Context, id int64, next time.Time, errText string) error

	Close() error
}

// Open opens the database named by dsn and brings its schema up to date:
// a postgres:// or postgresql:// URL is PostgreSQL, anything else the path
// of a SQLite file (created, with its directory, when missing), and ""
// DefaultPath().
func Open(ctx context.Context, dsn string) (Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return &sqlStore{db: db, d: postgresDialect}, nil
	}
	if dsn == "" {
		dsn = DefaultPath()
	}
	db, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return newSQLite(db), nil
}

// DefaultPath is the SQLite database used when no --db is given:
// $XDG_DATA_HOME/mxtrace/mxtrace.db, or ~/.local/share/mxtrace/mxtrace.db
// when XDG_DATA_HOME is unset or not absolute (XDG Base Directory
// Specification), so watch runs on a fresh machine with nothing installed.
func DefaultPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "mxtrace", "mxtrace.db")
}

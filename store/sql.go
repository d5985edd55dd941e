package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/internal/sqlcol"
)

// dialect is what differs between the two engines; every statement is
// otherwise the same text (both read $1, $2 ... as positional parameters).
type dialect struct {
	name string
	// lockRows ends the SELECT that picks the rows a worker leases. On
	// PostgreSQL it is FOR UPDATE SKIP LOCKED: a row another worker is
	// leasing right now is passed over instead of waited for, and a row it
	// has just leased is re-checked after its commit (READ COMMITTED), so
	// its new lease excludes it. SQLite has one writer at a time (every
	// transaction here begins IMMEDIATE), which gives the same guarantee
	// with nothing added.
	lockRows string
	// timeArg is a time as the engine's column holds it: timestamptz on
	// PostgreSQL, microseconds since the epoch on SQLite (an INTEGER sorts
	// and compares exactly; SQLite has no time type).
	timeArg func(time.Time) any
}

var (
	sqliteDialect = dialect{
		name:    "sqlite",
		timeArg: func(t time.Time) any { return t.UnixMicro() },
	}
	postgresDialect = dialect{
		name:     "postgres",
		lockRows: "FOR UPDATE SKIP LOCKED",
		timeArg:  func(t time.Time) any { return t },
	}
)

// sqlStore is the Store on either engine.
type sqlStore struct {
	db *sql.DB
	d  dialect
	// write, on SQLite only, is this process's turn to write: a buffered
	// channel of one, held for every write transaction and single write
	// statement. SQLite has one writer per database at a time anyway
	// (https://www.sqlite.org/lockingv3.html, section 5), and its busy
	// handler is no queue: 64 goroutines each in BEGIN IMMEDIATE poll and
	// sleep until some of them outwait the busy timeout and fail with
	// SQLITE_BUSY. Taking turns here first means a writer of this process
	// never waits on the busy timeout for another; only other processes
	// on the same file do. Readers take no turn (WAL: they never wait for
	// the writer). nil on PostgreSQL, whose writers lock rows, not the
	// database.
	write chan struct{}
}

// newSQLite is the Store on the SQLite database db.
func newSQLite(db *sql.DB) *sqlStore {
	return &sqlStore{db: db, d: sqliteDialect, write: make(chan struct{}, 1)}
}

// lockWrite waits for this process's turn to write (see sqlStore.write), or
// for ctx to end; unlock gives the turn back.
func (s *sqlStore) lockWrite(ctx context.Context) (unlock func(), err error) {
	if s.write == nil {
		return func() {}, nil
	}
	select {
	case s.write <- struct{}{}:
		return func() { <-s.write }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: waiting to write: %w", context.Cause(ctx))
	}
}

// exec runs one write statement in its turn.
func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.db.ExecContext(ctx, query, args...)
}

// utc is t as stored: UTC, to the microsecond (both engines keep no more).
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// at is t as a column value.
func (s *sqlStore) at(t time.Time) any { return s.d.timeArg(utc(t)) }

// nullAt is t as a nullable column value: NULL for the zero time.
func (s *sqlStore) nullAt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.at(t)
}

// scanBytes reads a BLOB (SQLite) or json (PostgreSQL) column into a copy.
type scanBytes struct{ b *[]byte }

func (s scanBytes) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.b = nil
	case []byte:
		*s.b = slices.Clone(v)
	case string:
		*s.b = []byte(v)
	default:
		return fmt.Errorf("store: a JSON column holds %T", src)
	}
	return nil
}

// limitArg is limit as a LIMIT value; <= 0 means no limit.
func limitArg(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt32
	}
	return int64(limit)
}

// jsonArg is a JSON value to store: nil or empty is JSON null. Invalid JSON
// is refused here, so both engines refuse it alike (PostgreSQL's json type
// would, SQLite's BLOB would not).
func jsonArg(what string, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return []byte("null"), nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("store: %s is not valid JSON", what)
	}
	return b, nil
}

// rowScanner is a row to read: *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryAll runs query and reads every row it returns with scan.
func queryAll[T any](ctx context.Context, q queryer, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// inTx runs fn in one transaction and commits it, or rolls it back when fn
// or the commit fails.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) AddWatch(ctx context.Context, w Watch) error {
	return s.AddWatches(ctx, []Watch{w})
}

func (s *sqlStore) AddWatches(ctx context.Context, ws []Watch) error {
	// Every watch is checked before the transaction begins.
	args := make([][]any, len(ws))
	now := time.Now()
	for i, w := range ws {
		if w.Domain == "" {
			return errors.New("store: watch without a domain")
		}
		if w.Every < time.Millisecond {
			return fmt.Errorf("store: watch %s: period %v is under a millisecond", w.Domain, w.Every)
		}
		alerts, err := json.Marshal(orEmpty(w.Alerts))
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if w.Added.IsZero() {
			w.Added = now
		}
		if w.NextRun.IsZero() {
			w.NextRun = w.Added
		}
		args[i] = []any{w.Domain, w.Every.Milliseconds(), string(alerts), s.at(w.NextRun), s.at(w.Added)}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, a := range args {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO watches (domain, every_ms, alerts, next_run, added)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (domain) DO UPDATE
				SET every_ms = excluded.every_ms, alerts = excluded.alerts, next_run = excluded.next_run`,
				a...)
			if err != nil {
				return fmt.Errorf("store: add watch %s: %w", a[0], err)
			}
		}
		return nil
	})
}

// orEmpty is ss, or an empty list for nil, so a watch without targets is
// stored as [] rather than null.
func orEmpty(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func (s *sqlStore) RemoveWatch(ctx context.Context, domain string) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM watches WHERE domain = $1`, domain)
	if err != nil {
		return false, fmt.Errorf("store: remove watch %s: %w", domain, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: remove watch %s: %w", domain, err)
	}
	return n > 0, nil
}

const watchColumns = `domain, every_ms, alerts, next_run, added`

// scanWatch reads the watchColumns, then extra.
func scanWatch(row rowScanner, extra ...any) (Watch, error) {
	var (
		w       Watch
		everyMS int64
		alerts  string
	)
	dest := append([]any{&w.Domain, &everyMS, &alerts, sqlcol.Time(&w.NextRun), sqlcol.Time(&w.Added)}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Watch{}, fmt.Errorf("store: %w", err)
	}
	w.Every = time.Duration(everyMS) * time.Millisecond
	if err := json.Unmarshal([]byte(alerts), &w.Alerts); err != nil {
		return Watch{}, fmt.Errorf("store: watch %s: alert targets: %w", w.Domain, err)
	}
	if len(w.Alerts) == 0 {
		w.Alerts = nil
	}
	return w, nil
}

// watchStatusColumns are what scanWatchStatus reads.
const watchStatusColumns = watchColumns + `, last_run, last_status, worker, lease_until`

func scanWatchStatus(row rowScanner) (WatchStatus, error) {
	var ws WatchStatus
	w, err := scanWatch(row, sqlcol.Time(&ws.LastRun), sqlcol.String(&ws.LastStatus), sqlcol.String(&ws.Worker), sqlcol.Time(&ws.LeaseUntil))
	ws.Watch = w
	return ws, err
}

func (s *sqlStore) Watches(ctx context.Context) ([]WatchStatus, error) {
	out, err := queryAll(ctx, s.db, scanWatchStatus, `SELECT `+watchStatusColumns+` FROM watches ORDER BY domain`)
	if err != nil {
		return nil, fmt.Errorf("store: watches: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Watch(ctx context.Context, domain string) (*WatchStatus, error) {
	ws, err := scanWatchStatus(s.db.QueryRowContext(ctx, `SELECT `+watchStatusColumns+` FROM watches WHERE domain = $1`, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: watch %s: %w", domain, err)
	}
	return &ws, nil
}

func (s *sqlStore) NextDue(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_run) FROM watches`).Scan(sqlcol.Time(&t)); err != nil {
		return time.Time{}, fmt.Errorf("store: next due watch: %w", err)
	}
	return t, nil
}

func (s *sqlStore) Claim(ctx context.Context, worker string, now time.Time, limit int, lease time.Duration, all bool) ([]Watch, error) {
	if worker == "" {
		return nil, errors.New("store: claim without a worker name")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("store: claim: lease %v is not positive", lease)
	}
	var out []Watch
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// One statement: pick the due rows no live lease holds, lease them,
		// return them. $5 (all) takes every free watch, due or not.
		var err error
		out, err = queryAll(ctx, tx, func(row rowScanner) (Watch, error) { return scanWatch(row) }, `
			UPDATE watches SET worker = $1, lease_until = $2
			WHERE domain IN (
				SELECT domain FROM watches
				WHERE ($5 OR next_run <= $3) AND (lease_until IS NULL OR lease_until <= $3)
				ORDER BY next_run, domain
				LIMIT $4 `+s.d.lockRows+`)
			RETURNING `+watchColumns,
			worker, s.at(now.Add(lease)), s.at(now), limitArg(limit), all)
		if err != nil {
			return fmt.Errorf("store: claim: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// RETURNING has no order: earliest due first, as picked.
	slices.SortFunc(out, func(a, b Watch) int {
		if c := a.NextRun.Compare(b.NextRun); c != 0 {
			return c
		}
		return strings.Compare(a.Domain, b.Domain)
	})
	return out, nil
}

func (s *sqlStore) Record(ctx context.Context, worker string, r Result, changes []Change, alerts []Alert, nextRun time.Time) (int64, error) {
	if r.Domain == "" {
		return 0, errors.New("store: result without a domain")
	}
	report, err := jsonArg("the result's report", r.Report)
	if err != nil {
		return 0, err
	}
	facts, err := jsonArg("the result's facts", r.Facts)
	if err != nil {
		return 0, err
	}
	bodies := make([][]byte, len(alerts))
	for i, a := range alerts {
		if bodies[i], err = jsonArg("an alert's body", a.Body); err != nil {
			return 0, err
		}
	}
	var id int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The watch row first: it is the lease check, and on PostgreSQL it
		// locks the row, so a worker claiming it after an expired lease
		// either waits for this commit (and then finds it leased to no one,
		// due at nextRun) or has already taken it (and this fails).
		if worker != "" {
			res, err := tx.ExecContext(ctx, `
				UPDATE watches
				SET next_run = $1, worker = NULL, lease_until = NULL, last_run = $2, last_status = $3
				WHERE domain = $4 AND worker = $5`,
				s.at(nextRun), s.at(r.At), r.Status, r.Domain, worker)
			if err != nil {
				return fmt.Errorf("store: record %s: %w", r.Domain, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: record %s: %w", r.Domain, err)
			} else if n == 0 {
				return fmt.Errorf("%w: %s, worker %s", ErrLeaseLost, r.Domain, worker)
			}
		} else {
			// A result from outside the schedule (a scan) still tells
			// watch list the domain's latest status, unless it is older.
			_, err := tx.ExecContext(ctx, `
				UPDATE watches SET last_run = $1, last_status = $2
				WHERE domain = $3 AND (last_run IS NULL OR last_run <= $1)`,
				s.at(r.At), r.Status, r.Domain)
			if err != nil {
				return fmt.Errorf("store: record %s: %w", r.Domain, err)
			}
		}
		err := tx.QueryRowContext(ctx, `
			INSERT INTO results (domain, at, status, temporary, report, facts)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			r.Domain, s.at(r.At), r.Status, r.Temporary, report, facts).Scan(&id)
		if err != nil {
			return fmt.Errorf("store: record %s: result: %w", r.Domain, err)
		}
		for _, c := range changes {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO changes (result_id, domain, at, kind, subject, severity, message, old_value, new_value)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				id, r.Domain, s.at(r.At), c.Kind, c.Subject, c.Severity, c.Message, c.Old, c.New)
			if err != nil {
				return fmt.Errorf("store: record %s: change: %w", r.Domain, err)
			}
		}
		for i, a := range alerts {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO alerts (result_id, domain, target, kind, body, next_attempt, created)
				VALUES ($1, $2, $3, $4, $5, $6, $6)`,
				id, r.Domain, a.Target, a.Kind, bodies[i], s.at(r.At))
			if err != nil {
				return fmt.Errorf("store: record %s: alert: %w", r.Domain, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

const resultColumns = `id, domain, at, status, temporary, report, facts`

func scanResult(row rowScanner) (Result, error) {
	var r Result
	err := row.Scan(&r.ID, &r.Domain, sqlcol.Time(&r.At), &r.Status, &r.Temporary, scanBytes{&r.Report}, scanBytes{&r.Facts})
	return r, err
}

func (s *sqlStore) Last(ctx context.Context, domain string) (*Result, error) {
	r, err := scanResult(s.db.QueryRowContext(ctx, `
		SELECT `+resultColumns+` FROM results WHERE domain = $1
		ORDER BY at DESC, id DESC LIMIT 1`, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: last result of %s: %w", domain, err)
	}
	return &r, nil
}

func (s *sqlStore) Results(ctx context.Context, domain string, since time.Time, limit int) ([]Result, error) {
	return s.results(ctx, resultColumns, scanResult, domain, since, limit)
}

// summaryColumns are resultColumns without the report and the facts.
const summaryColumns = `id, domain, at, status, temporary`

func scanSummary(row rowScanner) (Result, error) {
	var r Result
	err := row.Scan(&r.ID, &r.Domain, sqlcol.Time(&r.At), &r.Status, &r.Temporary)
	return r, err
}

func (s *sqlStore) Summaries(ctx context.Context, domain string, since time.Time, limit int) ([]Result, error) {
	return s.results(ctx, summaryColumns, scanSummary, domain, since, limit)
}

// results reads columns of domain's results at or after since, newest
// first, at most limit.
func (s *sqlStore) results(ctx context.Context, columns string, scan func(rowScanner) (Result, error), domain string, since time.Time, limit int) ([]Result, error) {
	out, err := queryAll(ctx, s.db, scan, `
		SELECT `+columns+` FROM results WHERE domain = $1 AND at >= $2
		ORDER BY at DESC, id DESC LIMIT $3`, domain, s.at(since), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("store: results of %s: %w", domain, err)
	}
	return out, nil
}

func (s *sqlStore) Result(ctx context.Context, id int64) (*Result, error) {
	r, err := scanResult(s.db.QueryRowContext(ctx, `SELECT `+resultColumns+` FROM results WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: result %d: %w", id, err)
	}
	return &r, nil
}

func (s *sqlStore) Changes(ctx context.Context, domain string, since time.Time, limit int) ([]Change, error) {
	out, err := queryAll(ctx, s.db, func(row rowScanner) (Change, error) {
		var c Change
		err := row.Scan(&c.ResultID, &c.Domain, sqlcol.Time(&c.At), &c.Kind, &c.Subject, &c.Severity, &c.Message, &c.Old, &c.New)
		return c, err
	}, `
		SELECT result_id, domain, at, kind, subject, severity, message, old_value, new_value
		FROM changes WHERE domain = $1 AND at >= $2
		ORDER BY at DESC, id DESC LIMIT $3`, domain, s.at(since), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("store: changes of %s: %w", domain, err)
	}
	return out, nil
}

const alertColumns = `id, result_id, domain, target, kind, body, attempts, next_attempt, sent, last_error, created`

func scanAlert(row rowScanner) (Alert, error) {
	var (
		a        Alert
		resultID sql.NullInt64
	)
	err := row.Scan(&a.ID, &resultID, &a.Domain, &a.Target, &a.Kind, scanBytes{&a.Body}, &a.Attempts,
		sqlcol.Time(&a.NextAttempt), sqlcol.Time(&a.Sent), &a.LastError, sqlcol.Time(&a.Created))
	a.ResultID = resultID.Int64
	return a, err
}

func (s *sqlStore) Alerts(ctx context.Context, domain string, since time.Time, limit int) ([]Alert, error) {
	out, err := queryAll(ctx, s.db, scanAlert, `
		SELECT `+alertColumns+` FROM alerts WHERE domain = $1 AND created >= $2
		ORDER BY created DESC, id DESC LIMIT $3`, domain, s.at(since), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("store: alerts of %s: %w", domain, err)
	}
	return out, nil
}

func (s *sqlStore) DueAlerts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Alert, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("store: due alerts: lease %v is not positive", lease)
	}
	var out []Alert
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, scanAlert, `
			UPDATE alerts SET next_attempt = $1
			WHERE id IN (
				SELECT id FROM alerts
				WHERE next_attempt IS NOT NULL AND next_attempt <= $2
				ORDER BY next_attempt, id
				LIMIT $3 `+s.d.lockRows+`)
			RETURNING `+alertColumns,
			s.at(now.Add(lease)), s.at(now), limitArg(limit))
		if err != nil {
			return fmt.Errorf("store: due alerts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (s *sqlStore) AlertSent(ctx context.Context, id int64, at time.Time) error {
	// An alert already marked sent keeps its first time: a late duplicate
	// confirmation changes nothing.
	res, err := s.exec(ctx, `
		UPDATE alerts SET sent = COALESCE(sent, $1), next_attempt = NULL WHERE id = $2`,
		s.at(at), id)
	return s.oneAlert(res, err, "sent", id)
}

func (s *sqlStore) AlertFailed(ctx context.Context, id int64, next time.Time, errText string) error {
	// Only an alert not yet sent: a deliverer whose lease ran out must not
	// put back an alert another one has delivered meanwhile.
	res, err := s.exec(ctx, `
		UPDATE alerts SET attempts = attempts + 1, last_error = $1, next_attempt = $2
		WHERE id = $3 AND sent IS NULL`,
		errText, s.nullAt(next), id)
	if err := s.oneAlert(res, err, "failed", id); !errors.Is(err, ErrNotFound) {
		return err
	}
	var sent bool
	if err := s.db.QueryRowContext(ctx, `SELECT sent IS NOT NULL FROM alerts WHERE id = $1`, id).Scan(&sent); err == nil && sent {
		return nil
	}
	return fmt.Errorf("%w: alert %d", ErrNotFound, id)
}

// oneAlert checks that an UPDATE of alert id changed one row.
func (s *sqlStore) oneAlert(res sql.Result, err error, what string, id int64) error {
	if err != nil {
		return fmt.Errorf("store: alert %d %s: %w", id, what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: alert %d %s: %w", id, what, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: alert %d", ErrNotFound, id)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.db.Close() }

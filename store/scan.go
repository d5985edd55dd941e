package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/internal/sqlcol"
)

// A scan (`mxtrace scan --db`) is stored apart from the watches: one row
// per run, and its results, written in batches so a million domains cost a
// few thousand transactions rather than a million (one commit, so one
// fsync on SQLite, per batch). Two scans of the same list are compared
// domain by domain by reading both in domain order (ScanResults), so the
// comparison holds two results in memory, not two maps of a million.

// Batching of a ScanWriter: a batch is committed when it holds
// ScanBatchSize results, or ScanBatchDelay after its first result came,
// whichever is first. A crash loses at most the batch not yet committed.
const (
	ScanBatchSize  = 500
	ScanBatchDelay = 200 * time.Millisecond
	// ScanBuffer results wait at most for their batch: four batches, so
	// the scan fills the next ones while one is committed (an fsync on
	// SQLite) instead of waiting for it.
	ScanBuffer = 4 * ScanBatchSize
)

// ScanInfo describes one stored scan.
type ScanInfo struct {
	ID int64 // assigned by BeginScan
	// Started is when the scan began (BeginScan: zero is now); Finished
	// when it ended, zero while it runs or when it was interrupted (the
	// process stopped or was killed): such a scan holds the results
	// committed until then, and is never continued.
	Started, Finished time.Time
	Mode              string // the scan's --mode: "route" or "check"
	Input             string // what was scanned, for people: a file name, "-"
	// Results counts the committed results, Errors those of status
	// "error".
	Results, Errors int64
}

// ScanResult is one line of a scan.
type ScanResult struct {
	Domain string // the line's domain, or the input entry that was not one
	// Status is the line's result: ok, null-mx, no-mail, nxdomain or error.
	Status string
	Line   []byte // the JSON line as scan printed it, without the newline
	// Facts are the typed facts a diff reads (a watch snapshot, JSON);
	// nil when the line has none (an entry that could not be scanned).
	Facts []byte
}

// ScanStore is the part of a store that keeps scans. Every Store that Open
// returns is one: s.(ScanStore).
type ScanStore interface {
	// BeginScan stores a new scan described by info (its ID, Finished and
	// counts are ignored) and returns the writer of its results.
	BeginScan(ctx context.Context, info ScanInfo) (*ScanWriter, error)
	// Scans lists the stored scans, oldest first.
	Scans(ctx context.Context) ([]ScanInfo, error)
	// Scan returns scan id, or an error wrapping ErrNotFound.
	Scan(ctx context.Context, id int64) (ScanInfo, error)
	// ScanResults yields scan id's results in domain order (by the bytes
	// of the name, as Go compares strings), streamed from the database. A
	// domain scanned twice in one scan (a list with duplicates) yields
	// each of its lines. The first error ends the sequence.
	ScanResults(ctx context.Context, id int64) iter.Seq2[ScanResult, error]
}

func (s *sqlStore) BeginScan(ctx context.Context, info ScanInfo) (*ScanWriter, error) {
	if info.Started.IsZero() {
		info.Started = time.Now()
	}
	info.Finished, info.Results, info.Errors = time.Time{}, 0, 0
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	err = s.db.QueryRowContext(ctx, `INSERT INTO scans (started, mode, input) VALUES ($1, $2, $3) RETURNING id`,
		s.at(info.Started), info.Mode, info.Input).Scan(&info.ID)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("store: begin scan: %w", err)
	}
	info.Started = utc(info.Started)
	// The batches are committed in the background on a context that is
	// not cancelled with ctx: an interrupted scan (Ctrl-C cancels ctx)
	// still commits what it wrote when it is closed.
	w := &ScanWriter{s: s, ctx: context.WithoutCancel(ctx), info: info,
		in: make(chan ScanResult, ScanBuffer), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// ScanWriter stores one scan's results in batches (ScanBatchSize,
// ScanBatchDelay), each batch and the scan's counts in one transaction.
// Add is for one goroutine, and not to be called after Finish or Close.
type ScanWriter struct {
	s    *sqlStore
	ctx  context.Context
	info ScanInfo
	in   chan ScanResult
	done chan struct{}

	full *sql.Stmt // the INSERT of a full batch, prepared at the first

	mu     sync.Mutex
	err    error // the first failure; nothing more is stored after it
	closed bool
}

// ID is the scan's ID.
func (w *ScanWriter) ID() int64 { return w.info.ID }

// Add queues r for the next batch. It blocks while the batches are behind
// (the database is slower than the scan: ScanBuffer results wait), so
// memory stays bounded. It returns the error of an earlier batch (the
// database's, or a line or facts that are not JSON), after which nothing
// more is stored.
func (w *ScanWriter) Add(r ScanResult) error {
	if err := w.failed(); err != nil {
		return err
	}
	if r.Domain == "" || r.Status == "" {
		return errors.New("store: a scan result without a domain or a status")
	}
	w.in <- r
	return nil
}

func (w *ScanWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Finish commits the results not yet committed and marks the scan
// finished. It closes the writer.
func (w *ScanWriter) Finish() error { return w.end(true) }

// Close commits the results not yet committed and leaves the scan
// unfinished (it was interrupted). After Finish it does nothing.
func (w *ScanWriter) Close() error { return w.end(false) }

func (w *ScanWriter) end(finish bool) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.in)
	<-w.done
	if err := w.failed(); err != nil {
		return err
	}
	if !finish {
		return nil
	}
	_, err := w.s.exec(w.ctx, `UPDATE scans SET finished = $1 WHERE id = $2`, w.s.at(time.Now()), w.info.ID)
	if err != nil {
		return fmt.Errorf("store: finish scan %d: %w", w.info.ID, err)
	}
	return nil
}

// run commits the batches until in is closed.
func (w *ScanWriter) run() {
	defer close(w.done)
	batch := make([]ScanResult, 0, ScanBatchSize)
	timer := time.NewTimer(ScanBatchDelay)
	timer.Stop()
	commit := func() {
		timer.Stop()
		if len(batch) == 0 {
			return
		}
		if w.failed() == nil {
			if err := w.commit(batch); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case r, ok := <-w.in:
			if !ok {
				commit()
				if w.full != nil {
					w.full.Close()
				}
				return
			}
			batch = append(batch, r)
			if len(batch) == 1 {
				timer.Reset(ScanBatchDelay)
			}
			if len(batch) == ScanBatchSize {
				commit()
			}
		case <-timer.C:
			commit()
		}
	}
}

const scanResultColumns = 5

// insertText is the multi-row INSERT of n results. SQLite gets anonymous
// parameters (?): it looks each numbered one ($N) up by name in a list, so
// a statement of thousands of them spends most of its time there.
func (w *ScanWriter) insertText(n int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO scan_results (scan_id, domain, status, line, facts) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		if w.s.d.name == sqliteDialect.name {
			q.WriteString("(?,?,?,?,?)")
			continue
		}
		k := i * scanResultColumns
		fmt.Fprintf(&q, "($%d,$%d,$%d,$%d,$%d)", k+1, k+2, k+3, k+4, k+5)
	}
	return q.String()
}

// commit stores batch and adds it to the scan's counts, in one
// transaction: one multi-row INSERT (on both engines far cheaper than a
// statement per row), prepared once for the full batches.
func (w *ScanWriter) commit(batch []ScanResult) error {
	args := make([]any, 0, len(batch)*scanResultColumns)
	var errs int64
	for _, r := range batch {
		// Checked here, beside the scan rather than in its way: the
		// scan's one writer calls Add.
		line, err := jsonArg("the line of "+r.Domain, r.Line)
		if err != nil {
			return fmt.Errorf("store: scan %d: %w", w.info.ID, err)
		}
		var facts any
		if len(r.Facts) > 0 {
			if _, err := jsonArg("the facts of "+r.Domain, r.Facts); err != nil {
				return fmt.Errorf("store: scan %d: %w", w.info.ID, err)
			}
			facts = r.Facts
		}
		args = append(args, w.info.ID, r.Domain, r.Status, line, facts)
		if r.Status == StatusError {
			errs++
		}
	}
	if len(batch) == ScanBatchSize && w.full == nil {
		stmt, err := w.s.db.PrepareContext(w.ctx, w.insertText(ScanBatchSize))
		if err != nil {
			return fmt.Errorf("store: scan %d: %w", w.info.ID, err)
		}
		w.full = stmt
	}
	err := w.s.inTx(w.ctx, func(tx *sql.Tx) error {
		var err error
		if len(batch) == ScanBatchSize {
			_, err = tx.StmtContext(w.ctx, w.full).ExecContext(w.ctx, args...)
		} else {
			_, err = tx.ExecContext(w.ctx, w.insertText(len(batch)), args...)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(w.ctx, `UPDATE scans SET results = results + $1, errors = errors + $2 WHERE id = $3`,
			int64(len(batch)), errs, w.info.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: scan %d: storing %d results: %w", w.info.ID, len(batch), err)
	}
	return nil
}

const scanColumns = `id, started, finished, mode, input, results, errors`

func scanScanInfo(row rowScanner) (ScanInfo, error) {
	var si ScanInfo
	err := row.Scan(&si.ID, sqlcol.Time(&si.Started), sqlcol.Time(&si.Finished), &si.Mode, &si.Input, &si.Results, &si.Errors)
	return si, err
}

func (s *sqlStore) Scans(ctx context.Context) ([]ScanInfo, error) {
	out, err := queryAll(ctx, s.db, scanScanInfo, `SELECT `+scanColumns+` FROM scans ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: scans: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Scan(ctx context.Context, id int64) (ScanInfo, error) {
	si, err := scanScanInfo(s.db.QueryRowContext(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ScanInfo{}, fmt.Errorf("%w: scan %d", ErrNotFound, id)
	}
	if err != nil {
		return ScanInfo{}, fmt.Errorf("store: scan %d: %w", id, err)
	}
	return si, nil
}

func (s *sqlStore) ScanResults(ctx context.Context, id int64) iter.Seq2[ScanResult, error] {
	return func(yield func(ScanResult, error) bool) {
		rows, err := s.db.QueryContext(ctx, `
			SELECT domain, status, line, facts FROM scan_results WHERE scan_id = $1 ORDER BY domain`, id)
		if err != nil {
			yield(ScanResult{}, fmt.Errorf("store: results of scan %d: %w", id, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var r ScanResult
			if err := rows.Scan(&r.Domain, &r.Status, scanBytes{&r.Line}, scanBytes{&r.Facts}); err != nil {
				yield(ScanResult{}, fmt.Errorf("store: results of scan %d: %w", id, err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(ScanResult{}, fmt.Errorf("store: results of scan %d: %w", id, err))
		}
	}
}

var _ ScanStore = (*sqlStore)(nil)

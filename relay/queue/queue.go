// Package queue is the relay's durable mail queue: SQLite in WAL mode with
// synchronous=FULL by default, or PostgreSQL for several relay nodes
// sharing one queue. A message is committed (fsynced) before the relay
// answers 250 to its data (RFC 5321 §6.1: once a server accepts a message
// it is responsible for it), and deliveries are leased, so a kill -9 at any
// moment loses no accepted message and repeats a delivery at most once.
//
// The schema is store's migration 00003 (store/sqlite/migrations and
// store/postgres/migrations), so one database can hold watch and relay
// data. A message's recipients are grouped by destination domain into
// deliveries: the unit a delivery process claims (Claim), tries and
// finishes (Finish). A delivery is held by its claimant until its lease
// ends; one claimed by a process that died is claimed again once the lease
// has passed. A message with no pending recipient left is deleted, data
// and all.
//
// Enqueue commits in groups: callers that arrive while a commit is in
// progress are written together by the next one, in one transaction and
// one fsync, and each returns once its own message is committed.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxtrace/mxtrace/store/postgres"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// ID names a queued message.
type ID int64

// String is the ID as the relay prints it (in its 250 reply and in logs).
func (id ID) String() string { return fmt.Sprintf("%d", int64(id)) }

// DefaultLifetime is how long a message stays queued when its Expires is
// not set: five days, the lower end of RFC 5321 §4.5.4.1's "at least 4-5
// days" give-up time.
const DefaultLifetime = 5 * 24 * time.Hour

// ErrNotFound is returned (wrapped) for a message ID that is not queued.
var ErrNotFound = errors.New("queue: message not found")

// Message is one accepted message with its envelope.
type Message struct {
	ID ID
	// Sender is the envelope sender (MAIL FROM) without angle brackets;
	// "" is the null sender (RFC 5321 §4.5.5), to which no notification
	// is ever sent.
	Sender string
	// Recipients are the accepted RCPT TO addresses, domains in
	// canonical form.
	Recipients []string
	// Data is the whole message as it will be sent on, the relay's own
	// Received and Received-SPF fields already at its top.
	Data []byte
	// Client and Helo name the SMTP client the message came from.
	Client netip.Addr
	Helo   string
	// Received is when the message was accepted; Expires is when, still
	// undelivered, it is returned to its sender (RFC 5321 §4.5.4.1).
	Received time.Time
	Expires  time.Time
}

// Delivery is one message's pending recipients at one destination domain,
// as Claim or Expired hands it out.
type Delivery struct {
	ID ID
	// Message is the ID of the message; its data is Queue.Data(Message).
	Message ID
	// Domain is the recipients' domain, the destination whose exchanges
	// the delivery goes to.
	Domain string
	Sender string
	// Recipients are the delivery's pending recipients, in RCPT TO order.
	Recipients []string
	// Attempts counts the delivery's finished attempts so far.
	Attempts          int
	Received, Expires time.Time
	// LastError is the reason the last attempt was deferred.
	LastError string
	// Owner and LeaseUntil are the lease Claim took ("" and zero from
	// Expired): Finish releases it only while it is still Owner's.
	Owner      string
	LeaseUntil time.Time
}

// Outcome is what one delivery attempt did with each of the delivery's
// recipients. A recipient of the delivery named nowhere is deferred.
type Outcome struct {
	// Delivered were accepted by the destination.
	Delivered []string
	// Failed were refused for good (5xx): recipient -> reply text, for
	// the delivery status notification.
	Failed map[string]string
	// Deferred are to be tried again: recipient -> reason.
	Deferred map[string]string
	// Next is the deferred recipients' next attempt; zero is now.
	Next time.Time
	// Notify, when set, is a message (a delivery status notification,
	// RFC 3464) enqueued in the same transaction as the outcome, so a
	// crash never records a failure without its notice nor sends the
	// notice twice. When Failed is not empty and none of its recipients
	// was still pending (another process finished them first), Notify is
	// dropped.
	Notify *Message
}

// State is a recipient's state in the queue.
type State string

// Recipient states.
const (
	StateQueued    State = "queued"    // not tried yet
	StateDeferred  State = "deferred"  // tried, to be tried again
	StateDelivered State = "delivered" // accepted by the destination
	StateFailed    State = "failed"    // refused for good, or expired
)

// RecipientState is one recipient of a queued message.
type RecipientState struct {
	Address  string
	Domain   string
	State    State
	Attempts int
	// Next is the recipient's next attempt while it is pending (queued or
	// deferred); zero once it is delivered or failed.
	Next      time.Time
	LastError string
}

// Entry is a queued message as the queue operations show it: the message
// (without its Data in List), whether it is held, and each recipient's
// state.
type Entry struct {
	Message
	Held       bool
	Recipients []RecipientState
}

// Filter selects the messages List returns.
type Filter struct {
	// Domain, when set, keeps the messages with a pending recipient at
	// that domain.
	Domain string
	// Limit caps the number of messages; 0 is no limit.
	Limit int
}

// dialect is what differs between SQLite and PostgreSQL; every statement is
// otherwise the same text ($1, $2 ... as positional parameters).
type dialect struct {
	// lockRows ends the SELECT that picks the deliveries to lease: FOR
	// UPDATE SKIP LOCKED on PostgreSQL, so two nodes never lease the same
	// delivery and neither waits for the other's rows. SQLite has one
	// writer at a time (every transaction begins IMMEDIATE), which gives
	// the same guarantee with nothing added.
	lockRows string
	// lockRow ends the SELECT of the one message and delivery Finish
	// updates.
	lockRow string
	// timeArg is a time as a column holds it: timestamptz on PostgreSQL,
	// microseconds since the epoch on SQLite.
	timeArg func(time.Time) any
}

var (
	sqliteDialect = dialect{
		timeArg: func(t time.Time) any { return t.UnixMicro() },
	}
	postgresDialect = dialect{
		lockRows: "FOR UPDATE OF d SKIP LOCKED",
		lockRow:  "FOR UPDATE",
		timeArg:  func(t time.Time) any { return t },
	}
)

// Queue is the mail queue on one database. Its methods are safe for
// concurrent use.
type Queue struct {
	db *sql.DB
	d  dialect
	// owned is whether Close closes db (Open made it).
	owned bool
	// Now is the queue's clock for Flush, FlushDomain and the times
	// Enqueue fills in; nil is time.Now.
	Now func() time.Time

	// write, on SQLite only, is this process's turn to write: a buffered
	// channel of one, held for every write transaction. SQLite has one
	// writer at a time anyway, and its busy handler polls rather than
	// queues; taking turns here means a writer of this process never
	// waits on the busy timeout for another. On PostgreSQL it is held by
	// the Enqueue group committer only.
	write chan struct{}

	// mu guards pending, the Enqueue calls waiting for the next group
	// commit.
	mu      sync.Mutex
	pending []*request
	// groups counts the group transactions committed, for the tests.
	groups atomic.Int64

	// stmts are Enqueue's prepared statements by their text.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// Open opens the queue in the database named by dsn, applying store's
// migrations: a postgres:// or postgresql:// URL is PostgreSQL, anything
// else the path of a SQLite file (created, with its directory, when
// missing; WAL mode, synchronous=FULL, see store/sqlite.Open).
func Open(ctx context.Context, dsn string) (*Queue, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		q := New(db, true)
		q.owned = true
		return q, nil
	}
	if dsn == "" {
		return nil, errors.New("queue: no database path")
	}
	db, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := New(db, false)
	q.owned = true
	return q, nil
}

// New is the queue on db, a database store/sqlite.Open or (postgres true)
// store/postgres.Open opened, whose schema is therefore up to date. Close
// leaves db open for its caller.
func New(db *sql.DB, postgres bool) *Queue {
	q := &Queue{db: db, d: sqliteDialect, write: make(chan struct{}, 1)}
	if postgres {
		q.d = postgresDialect
	}
	return q
}

// Close releases the queue's prepared statements and closes the database
// if Open opened it.
func (q *Queue) Close() error {
	q.stmtMu.Lock()
	var errs []error
	for _, st := range q.stmts {
		errs = append(errs, st.Close())
	}
	q.stmts = nil
	q.stmtMu.Unlock()
	if q.owned {
		errs = append(errs, q.db.Close())
	}
	return errors.Join(errs...)
}

func (q *Queue) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

// lockWrite waits for this process's turn to write, or for ctx to end;
// unlock gives the turn back.
func (q *Queue) lockWrite(ctx context.Context) (unlock func(), err error) {
	select {
	case q.write <- struct{}{}:
		return func() { <-q.write }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("queue: waiting to write: %w", context.Cause(ctx))
	}
}

// inTx runs fn in one write transaction, in this process's turn on SQLite
// (PostgreSQL locks rows, not the database).
func (q *Queue) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if q.d.lockRows == "" {
		unlock, err := q.lockWrite(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	return q.tx(ctx, fn)
}

// tx runs fn in one transaction and commits it.
func (q *Queue) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("queue: commit: %w", err)
	}
	return nil
}

// utc is t as stored: UTC, to the microsecond (both engines keep no more).
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// at is t as a column value.
func (q *Queue) at(t time.Time) any { return q.d.timeArg(utc(t)) }

// MaxBatch is the most deliveries one Claim or Expired returns.
const MaxBatch = 1000

// batchArg is max as the LIMIT of a Claim or Expired: MaxBatch when it is
// not positive or larger.
func batchArg(max int) int64 {
	if max <= 0 || max > MaxBatch {
		return MaxBatch
	}
	return int64(max)
}

// limitArg is limit as a LIMIT value; <= 0 means no limit.
func limitArg(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt32
	}
	return int64(limit)
}

// placeholders is "$from, $from+1, ..." for n arguments.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

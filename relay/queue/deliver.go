package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mxtrace/mxtrace/internal/sqlcol"
)

// pendingStates is the SQL list of a pending recipient's states.
const pendingStates = `('queued', 'deferred')`

// Claim leases up to max due deliveries (max <= 0 or over MaxBatch:
// MaxBatch) to owner
// until now+lease and returns them, earliest due first: a delivery is due
// when its next attempt is at or before now, its message is not held, and
// no lease holds it or its lease has ended (its owner died or overran it).
// domain, when not "", keeps the deliveries to that domain.
//
// Two owners never hold the same delivery: on PostgreSQL the deliveries
// are picked with SELECT ... FOR UPDATE SKIP LOCKED, on SQLite in one write
// transaction. The lease should outlast a delivery attempt (the SMTP
// session's timeouts, RFC 5321 §4.5.3.2): a delivery claimed again while
// its first owner is still sending is sent twice.
func (q *Queue) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, max int, domain string) ([]Delivery, error) {
	if owner == "" {
		return nil, errors.New("queue: claim without an owner")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("queue: claim: lease %v is not positive", lease)
	}
	query := `
		SELECT d.id FROM relay_deliveries d JOIN relay_messages m ON m.id = d.message_id
		WHERE d.next_attempt IS NOT NULL AND d.next_attempt <= $1
			AND (d.lease_until IS NULL OR d.lease_until <= $1) AND m.held = FALSE`
	args := []any{q.at(now), batchArg(max)}
	if domain != "" {
		query += ` AND d.domain = $3`
		args = append(args, domain)
	}
	query += ` ORDER BY d.next_attempt, d.id LIMIT $2 ` + q.d.lockRows
	until := utc(now.Add(lease))
	var out []Delivery
	err := q.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := queryIDs(ctx, tx, query, args...)
		if err != nil {
			return fmt.Errorf("queue: claim: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE relay_deliveries SET owner = $1, lease_until = $2 WHERE id IN (`+
			placeholders(3, len(ids))+`)`, append([]any{owner, q.at(until)}, ids...)...); err != nil {
			return fmt.Errorf("queue: claim: %w", err)
		}
		out, err = q.deliveries(ctx, tx, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Owner, out[i].LeaseUntil = owner, until
	}
	return out, nil
}

// Expired returns up to max (max <= 0 or over MaxBatch: MaxBatch)
// deliveries with pending
// recipients whose message expired at or before now, oldest first, for the
// delivery status notification (RFC 3464) that returns them to their
// sender (RFC 5321 §4.5.4.1). It leases nothing; it passes over held
// messages and deliveries leased now. Finish with the recipients Failed
// (and the notice as Notify) ends them.
func (q *Queue) Expired(ctx context.Context, now time.Time, max int) ([]Delivery, error) {
	ids, err := queryIDs(ctx, q.db, `
		SELECT d.id FROM relay_deliveries d JOIN relay_messages m ON m.id = d.message_id
		WHERE d.message_id IN (SELECT id FROM relay_messages WHERE expires <= $1)
			AND d.next_attempt IS NOT NULL AND m.expires <= $1
			AND (d.lease_until IS NULL OR d.lease_until <= $1) AND m.held = FALSE
		ORDER BY m.expires, d.id LIMIT $2`, q.at(now), batchArg(max))
	if err != nil {
		return nil, fmt.Errorf("queue: expired: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := q.deliveries(ctx, q.db, ids)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return a.Expires.Compare(b.Expires) })
	return out, nil
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryIDs runs a query of one integer column.
func queryIDs(ctx context.Context, db queryer, query string, args ...any) ([]any, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deliveries reads the deliveries ids (in that order) with their pending
// recipients; one left with no pending recipient is left out.
func (q *Queue) deliveries(ctx context.Context, db queryer, ids []any) ([]Delivery, error) {
	in := placeholders(1, len(ids))
	rows, err := db.QueryContext(ctx, `
		SELECT d.id, d.message_id, d.domain, d.attempts, d.last_error, m.sender, m.received, m.expires
		FROM relay_deliveries d JOIN relay_messages m ON m.id = d.message_id
		WHERE d.id IN (`+in+`)`, ids...)
	if err != nil {
		return nil, fmt.Errorf("queue: deliveries: %w", err)
	}
	byID := map[ID]*Delivery{}
	for rows.Next() {
		d := new(Delivery)
		if err := rows.Scan(&d.ID, &d.Message, &d.Domain, &d.Attempts, &d.LastError, &d.Sender,
			sqlcol.Time(&d.Received), sqlcol.Time(&d.Expires)); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: deliveries: %w", err)
		}
		byID[d.ID] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: deliveries: %w", err)
	}
	rows, err = db.QueryContext(ctx, `
		SELECT delivery_id, address FROM relay_recipients
		WHERE delivery_id IN (`+in+`) AND state IN `+pendingStates+`
		ORDER BY message_id, position`, ids...)
	if err != nil {
		return nil, fmt.Errorf("queue: deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id ID
		var addr string
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, fmt.Errorf("queue: deliveries: %w", err)
		}
		if d := byID[id]; d != nil {
			d.Recipients = append(d.Recipients, addr)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: deliveries: %w", err)
	}
	out := make([]Delivery, 0, len(ids))
	for _, id := range ids {
		if d := byID[ID(id.(int64))]; d != nil && len(d.Recipients) > 0 {
			out = append(out, *d)
		}
	}
	return out, nil
}

// Data returns the data of message id, ErrNotFound once it has left the
// queue.
func (q *Queue) Data(ctx context.Context, id ID) ([]byte, error) {
	var data []byte
	err := q.db.QueryRowContext(ctx, `SELECT data FROM relay_messages WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: data of %d: %w", id, err)
	}
	return data, nil
}

// Finish records the outcome of an attempt at d in one transaction: the
// delivered and failed recipients leave the pending set, the deferred ones
// (and any recipient of d the outcome does not name) wait until o.Next,
// the delivery's attempt count grows by one and its lease is released. A
// message with no pending recipient left is removed, data and all. The
// outcome's Notify is enqueued in the same transaction.
//
// A delivered or failed recipient is recorded even when d's lease has
// passed to another owner (the mail went out; the other owner's attempt
// will find the recipient no longer pending), but its deferrals are then
// left to the lease's new owner. Finishing a delivery whose message was
// deleted meanwhile does nothing.
func (q *Queue) Finish(ctx context.Context, d Delivery, o Outcome) error {
	var notify *prepared
	now := q.now()
	if o.Notify != nil {
		var err error
		if notify, err = prepare(o.Notify, now); err != nil {
			return fmt.Errorf("queue: finish %d: notice: %w", d.ID, err)
		}
	}
	next := o.Next
	if next.IsZero() {
		next = now
	}
	done := map[string]bool{}
	for _, r := range o.Delivered {
		done[r] = true
	}
	for r := range o.Failed {
		done[r] = true
	}
	var deferred []string
	reason := ""
	for _, r := range d.Recipients {
		if !done[r] {
			deferred = append(deferred, r)
			if reason == "" {
				reason = o.Deferred[r]
			}
		}
	}
	return q.inTx(ctx, func(tx *sql.Tx) error {
		// The message row first, locked on PostgreSQL: two deliveries of
		// one message finishing at once then take turns, so the second
		// sees the first's recipients done and removes the message (each
		// would otherwise count the other's as pending). Then the delivery
		// row, also locked: its lease owner is the one Finish checks.
		var msg ID
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT message_id FROM relay_deliveries WHERE id = $1`, d.ID).Scan(&msg)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT id FROM relay_messages WHERE id = $1 `+q.d.lockRow, msg).Scan(&msg)
		}
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT owner FROM relay_deliveries WHERE id = $1 `+q.d.lockRow, d.ID).Scan(sqlcol.String(&owner))
		}
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the message was deleted
		}
		if err != nil {
			return fmt.Errorf("queue: finish %d: %w", d.ID, err)
		}
		ours := owner == d.Owner
		set := func(r string, state State, text string) (int64, error) {
			res, err := tx.ExecContext(ctx, `
				UPDATE relay_recipients SET state = $1, attempts = attempts + 1,
					last_error = CASE WHEN $2 = '' AND $1 = 'deferred' THEN last_error ELSE $2 END
				WHERE delivery_id = $3 AND address = $4 AND state IN `+pendingStates,
				string(state), clean(text), d.ID, r)
			if err != nil {
				return 0, fmt.Errorf("queue: finish %d: %w", d.ID, err)
			}
			return res.RowsAffected()
		}
		for _, r := range o.Delivered {
			if _, err := set(r, StateDelivered, ""); err != nil {
				return err
			}
		}
		failed := int64(0)
		for r, text := range o.Failed {
			n, err := set(r, StateFailed, text)
			if err != nil {
				return err
			}
			failed += n
		}
		if ours {
			for _, r := range deferred {
				if _, err := set(r, StateDeferred, o.Deferred[r]); err != nil {
					return err
				}
			}
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM relay_recipients WHERE delivery_id = $1 AND state IN `+pendingStates,
			d.ID).Scan(&pending); err != nil {
			return fmt.Errorf("queue: finish %d: %w", d.ID, err)
		}
		var nextArg any
		if pending > 0 {
			nextArg = q.at(next)
		}
		switch {
		case ours:
			_, err = tx.ExecContext(ctx, `
				UPDATE relay_deliveries SET attempts = attempts + 1, next_attempt = $1, owner = NULL, lease_until = NULL,
					last_error = CASE WHEN $2 = '' THEN last_error ELSE $2 END
				WHERE id = $3`, nextArg, clean(reason), d.ID)
		case pending == 0:
			_, err = tx.ExecContext(ctx, `UPDATE relay_deliveries SET next_attempt = NULL, owner = NULL, lease_until = NULL WHERE id = $1`, d.ID)
		}
		if err != nil {
			return fmt.Errorf("queue: finish %d: %w", d.ID, err)
		}
		if pending == 0 {
			var left int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM relay_recipients WHERE message_id = $1 AND state IN `+pendingStates,
				msg).Scan(&left); err != nil {
				return fmt.Errorf("queue: finish %d: %w", d.ID, err)
			}
			if left == 0 {
				if _, err := tx.ExecContext(ctx, `DELETE FROM relay_messages WHERE id = $1`, msg); err != nil {
					return fmt.Errorf("queue: finish %d: remove message %d: %w", d.ID, msg, err)
				}
			}
		}
		if notify != nil && (len(o.Failed) == 0 || failed > 0) {
			if _, err := q.insert(ctx, tx, notify); err != nil {
				return fmt.Errorf("queue: finish %d: notice: %w", d.ID, err)
			}
		}
		return nil
	})
}

// Pending returns the domains the queue holds mail for (pending
// recipients of messages not held), sorted: the destinations whose primary
// exchanges the relay watches out of band.
//
// The deliverer asks on every pass: the domains come from the index on
// (domain, next_attempt), and each domain's messages are looked at only
// until one is not held, not every pending delivery's message.
func (q *Queue) Pending(ctx context.Context) ([]string, error) {
	rows, err := q.db.QueryContext(ctx, `
		SELECT x.domain FROM (SELECT DISTINCT domain FROM relay_deliveries WHERE next_attempt IS NOT NULL) x
		WHERE EXISTS (SELECT 1 FROM relay_deliveries d JOIN relay_messages m ON m.id = d.message_id
			WHERE d.domain = x.domain AND d.next_attempt IS NOT NULL AND m.held = FALSE)
		ORDER BY x.domain`)
	if err != nil {
		return nil, fmt.Errorf("queue: pending: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("queue: pending: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: pending: %w", err)
	}
	return out, nil
}

// FlushDomain makes every pending delivery to domain (of a message not
// held) due now, as when its primary exchange answers again, and returns
// how many there are.
func (q *Queue) FlushDomain(ctx context.Context, domain string) (int, error) {
	var n int64
	err := q.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE relay_deliveries SET next_attempt = CASE WHEN next_attempt > $1 THEN $1 ELSE next_attempt END
			WHERE domain = $2 AND next_attempt IS NOT NULL
				AND message_id IN (SELECT id FROM relay_messages WHERE held = FALSE)`, q.at(q.now()), domain)
		if err != nil {
			return fmt.Errorf("queue: flush %s: %w", domain, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

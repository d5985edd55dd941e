package queue

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mxtrace/mxtrace/internal/sqlcol"
)

// List returns the queued messages, oldest first, without their data:
// those with a pending recipient at f.Domain when it is set, at most
// f.Limit of them when it is positive.
func (q *Queue) List(ctx context.Context, f Filter) ([]Entry, error) {
	query := `SELECT m.id, m.sender, m.client, m.helo, m.received, m.expires, m.held FROM relay_messages m`
	args := []any{limitArg(f.Limit)}
	if f.Domain != "" {
		query += ` WHERE EXISTS (SELECT 1 FROM relay_deliveries d
			WHERE d.message_id = m.id AND d.domain = $2 AND d.next_attempt IS NOT NULL)`
		args = append(args, f.Domain)
	}
	query += ` ORDER BY m.received, m.id LIMIT $1`
	es, err := q.entries(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	return es, nil
}

// Show returns message id with its data and each recipient's state, or
// ErrNotFound.
func (q *Queue) Show(ctx context.Context, id ID) (*Entry, error) {
	es, err := q.entries(ctx, `SELECT m.id, m.sender, m.client, m.helo, m.received, m.expires, m.held
		FROM relay_messages m WHERE m.id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("queue: show %d: %w", id, err)
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	e := &es[0]
	if e.Data, err = q.Data(ctx, id); err != nil {
		return nil, err
	}
	return e, nil
}

// entries runs query, which selects messages (id, sender, client, helo,
// received, expires, held), and adds each message's recipients.
func (q *Queue) entries(ctx context.Context, query string, args ...any) ([]Entry, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []Entry
	var ids []any
	for rows.Next() {
		var e Entry
		var client string
		if err := rows.Scan(&e.ID, &e.Sender, &client, &e.Helo, sqlcol.Time(&e.Received), sqlcol.Time(&e.Expires), &e.Held); err != nil {
			rows.Close()
			return nil, err
		}
		e.Client, _ = netip.ParseAddr(client) // stored by Enqueue from a valid address, or ""
		out = append(out, e)
		ids = append(ids, int64(e.ID))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	index := make(map[ID]int, len(out))
	for i, e := range out {
		index[e.ID] = i
	}
	// The recipients, a chunk of messages at a time: a statement takes a
	// bounded number of parameters (SQLite 32,766, PostgreSQL 65,535).
	for chunk := range slices.Chunk(ids, 500) {
		if err := q.recipientStates(ctx, chunk, out, index); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recipientStates adds the recipients of the messages ids to out[index[id]].
func (q *Queue) recipientStates(ctx context.Context, ids []any, out []Entry, index map[ID]int) error {
	rows, err := q.db.QueryContext(ctx, `
		SELECT r.message_id, r.address, d.domain, r.state, r.attempts, r.last_error, d.next_attempt
		FROM relay_recipients r JOIN relay_deliveries d ON d.id = r.delivery_id
		WHERE r.message_id IN (`+placeholders(1, len(ids))+`)
		ORDER BY r.message_id, r.position`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id ID
		var r RecipientState
		var state string
		if err := rows.Scan(&id, &r.Address, &r.Domain, &state, &r.Attempts, &r.LastError, sqlcol.Time(&r.Next)); err != nil {
			return err
		}
		r.State = State(state)
		if r.State == StateDelivered || r.State == StateFailed {
			r.Next = time.Time{}
		}
		i, ok := index[id]
		if !ok {
			continue
		}
		out[i].Recipients = append(out[i].Recipients, r)
		out[i].Message.Recipients = append(out[i].Message.Recipients, r.Address)
	}
	return rows.Err()
}

// Flush makes message id's pending deliveries due now (postqueue -i).
func (q *Queue) Flush(ctx context.Context, id ID) error {
	return q.update(ctx, "flush", id, `
		UPDATE relay_deliveries SET next_attempt = CASE WHEN next_attempt > $2 THEN $2 ELSE next_attempt END
		WHERE message_id = $1 AND next_attempt IS NOT NULL`, q.at(q.now()))
}

// Hold keeps message id from delivery (and from expiry) until Release
// (postsuper -h). A delivery already claimed goes on.
func (q *Queue) Hold(ctx context.Context, id ID) error {
	return q.update(ctx, "hold", id, `UPDATE relay_messages SET held = TRUE WHERE id = $1`)
}

// Release undoes Hold: message id is delivered again when due.
func (q *Queue) Release(ctx context.Context, id ID) error {
	return q.update(ctx, "release", id, `UPDATE relay_messages SET held = FALSE WHERE id = $1`)
}

// Delete removes message id and its data from the queue, without any
// notice to its sender (postsuper -d).
func (q *Queue) Delete(ctx context.Context, id ID) error {
	return q.update(ctx, "delete", id, `DELETE FROM relay_messages WHERE id = $1`)
}

// update runs one write statement whose $1 is the message id, and
// returns ErrNotFound when it changed no row: a queued message always has
// a pending delivery (it is removed with its last one).
func (q *Queue) update(ctx context.Context, op string, id ID, query string, args ...any) error {
	return q.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, append([]any{id}, args...)...)
		if err != nil {
			return fmt.Errorf("queue: %s %d: %w", op, id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("queue: %s %d: %w", op, id, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		return nil
	})
}

// Stats sums up the queue.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := q.db.QueryRowContext(ctx, `
		SELECT count(*), CAST(coalesce(sum(CASE WHEN held THEN 1 ELSE 0 END), 0) AS BIGINT), min(received),
			CAST(coalesce(sum(size), 0) AS BIGINT)
		FROM relay_messages`).Scan(&s.Messages, &s.Held, sqlcol.Time(&s.Oldest), &s.Bytes)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	if err := q.db.QueryRowContext(ctx, `SELECT count(*) FROM relay_recipients WHERE state IN `+pendingStates).
		Scan(&s.Recipients); err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	return s, nil
}

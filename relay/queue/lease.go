package queue

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LeaseOwners returns the owners whose leases hold at now, each once.
func (q *Queue) LeaseOwners(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := q.db.QueryContext(ctx, `
		SELECT DISTINCT owner FROM relay_deliveries
		WHERE owner IS NOT NULL AND lease_until IS NOT NULL AND lease_until > $1
		ORDER BY owner`, q.at(now))
	if err != nil {
		return nil, fmt.Errorf("queue: lease owners: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("queue: lease owners: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: lease owners: %w", err)
	}
	return out, nil
}

// ReleaseLeases ends every lease owner holds, and returns how many: its
// deliveries are due again at their next attempt (which a claim does not
// move, so at once). It is for an owner known to be dead, a relay process
// killed on this host, whose claims would otherwise wait out their lease
// (DefaultLease, 15 minutes) before anyone delivers them. Releasing the
// leases of an owner that is still sending can deliver a message twice.
func (q *Queue) ReleaseLeases(ctx context.Context, owner string) (int, error) {
	var n int64
	err := q.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE relay_deliveries SET owner = NULL, lease_until = NULL WHERE owner = $1`, owner)
		if err != nil {
			return fmt.Errorf("queue: release the leases of %s: %w", owner, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

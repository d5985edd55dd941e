// Package sqlcol reads the columns mxtrace's two database engines return
// in different types, for store (watch) and relay/queue, which share the
// schema conventions: a time is an INTEGER of microseconds since the
// epoch on SQLite and a timestamptz on PostgreSQL; text may be NULL.
package sqlcol

import (
	"database/sql"
	"fmt"
	"time"
)

// Time reads a time column of either engine into *t, in UTC; NULL is the
// zero time.
func Time(t *time.Time) sql.Scanner { return timeCol{t} }

type timeCol struct{ T *time.Time }

func (s timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.T = time.Time{}
	case int64:
		*s.T = time.UnixMicro(v).UTC()
	case time.Time:
		*s.T = v.UTC()
	default:
		return fmt.Errorf("a time column holds %T", src)
	}
	return nil
}

// String reads a nullable text column into *s; NULL is "".
func String(s *string) sql.Scanner { return stringCol{s} }

type stringCol struct{ S *string }

func (s stringCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.S = ""
	case string:
		*s.S = v
	case []byte:
		*s.S = string(v)
	default:
		return fmt.Errorf("a text column holds %T", src)
	}
	return nil
}

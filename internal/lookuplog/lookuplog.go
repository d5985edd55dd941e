// Package lookuplog logs a standard's lookup once, at debug, when it
// returns: the one shape the Lookup functions of spf's siblings (dmarc,
// dkim, tlsrpt, rdns, mtasts, dane, dnsbl) share.
package lookuplog

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Run returns lookup's result. When logger is not nil and logs at debug, it
// logs msg once, at debug, when lookup returns: the subject attributes, the
// duration, the attributes result gives for the Result when it is not nil,
// and the error when it is not nil. Otherwise it only runs lookup: a scan's
// logger is at warning level, and building the attributes it would drop
// (the clock, the result's attributes) was 2 KB of every audit's garbage.
func Run[R any](logger *slog.Logger, msg string, subject []any, lookup func() (*R, error), result func(*R) []any) (*R, error) {
	if logger == nil || !logger.Enabled(context.Background(), slog.LevelDebug) {
		return lookup()
	}
	start := time.Now()
	res, err := lookup()
	args := append(slices.Clip(subject), "duration", time.Since(start))
	if res != nil {
		args = append(args, result(res)...)
	}
	if err != nil {
		args = append(args, "err", err)
	}
	logger.Debug(msg, args...)
	return res, err
}

package watch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/store"
)

// Update is w stored over old, the watch of its domain (nil: none), as
// watch add and serve's POST /api/v1/watches store it: a new
// watch is due at now and added now; a watch that exists keeps its
// schedule, but never waits longer than the new period (a shorter period
// takes effect at once), and keeps its Added time, last run and status.
func Update(old *store.WatchStatus, w store.Watch, now time.Time) store.WatchStatus {
	w.NextRun, w.Added = now, now
	if old == nil {
		return store.WatchStatus{Watch: w}
	}
	w.NextRun, w.Added = old.NextRun, old.Added
	if latest := now.Add(w.Every); w.NextRun.After(latest) {
		w.NextRun = latest
	}
	return store.WatchStatus{Watch: w, LastRun: old.LastRun, LastStatus: old.LastStatus}
}

// Event is one entry of a domain's timeline: a stored result with the
// changes it showed.
type Event struct {
	Result store.Result
	// First is the domain's first stored check.
	First bool
	// Changes in the order Diff gave them (route first).
	Changes []store.Change
}

// Timeline is the timeline of results (newest first, as Store.Summaries
// gives them; Report and Facts are not read) with their changes (newest
// first, as Store.Changes gives them), newest first: each result that
// showed changes, each whose status differs from the result before it, and
// the oldest read (First when complete says results reach back to the
// domain's first check). A run of checks that found the same status and nothing new is
// the event that began it.
func Timeline(results []store.Result, changes []store.Change, complete bool) []Event {
	// One result's changes in the order Diff gave them: the store numbers
	// them in that order.
	byResult := map[int64][]store.Change{}
	for _, c := range slices.Backward(changes) {
		byResult[c.ResultID] = append(byResult[c.ResultID], c)
	}
	var events []Event
	for i, r := range results {
		older := i + 1
		first := older == len(results) && complete
		cs := byResult[r.ID]
		if len(cs) == 0 && !first && older < len(results) && results[older].Status == r.Status {
			continue
		}
		events = append(events, Event{Result: r, First: first, Changes: cs})
	}
	return events
}

// ParseSince reads the start of a window of history, as history and diff
// take --since and serve ?since=: an RFC 3339 time, a date (midnight UTC),
// a date and time without a zone (UTC), or a while before now (36h, 90m,
// or days: 7d). "" is the zero time: no start.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		// Bounded so that the duration does not overflow.
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n < 100_000 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q: want a time (2026-01-31, 2026-01-31T12:00:00Z) or a while ago (36h, 7d)", v)
}

// ShortEvery is a watch's period without its zero units (1h, 30m, 1h30m),
// as watch list and serve show it.
func ShortEvery(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ChangeJSON is a stored change as history --json, diff --json, watch run
// --once --json and serve's history API print it. A change diff computes
// has no time or result yet: they are left out.
type ChangeJSON struct {
	At       time.Time `json:"at,omitzero"`
	ResultID int64     `json:"result_id,omitempty"`
	Kind     string    `json:"kind"`
	Subject  string    `json:"subject"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
	Old      string    `json:"old"`
	New      string    `json:"new"`
}

// ChangesJSON is cs as printed: [] for none, never null.
func ChangesJSON(cs []store.Change) []ChangeJSON {
	out := make([]ChangeJSON, len(cs))
	for i, c := range cs {
		out[i] = ChangeJSON{At: c.At.UTC(), ResultID: c.ResultID, Kind: c.Kind, Subject: c.Subject, Severity: c.Severity, Message: c.Message, Old: c.Old, New: c.New}
	}
	return out
}

// EventJSON is an Event as history --json and serve's history API print
// it.
type EventJSON struct {
	At        time.Time    `json:"at"`
	ResultID  int64        `json:"result_id"`
	Status    string       `json:"status"`
	Temporary bool         `json:"temporary"`
	First     bool         `json:"first,omitempty"`
	Changes   []ChangeJSON `json:"changes"`
}

// JSON is e as printed.
func (e Event) JSON() EventJSON {
	r := e.Result
	return EventJSON{At: r.At.UTC(), ResultID: r.ID, Status: r.Status, Temporary: r.Temporary, First: e.First, Changes: ChangesJSON(e.Changes)}
}

package watch

import (
	"slices"
	"time"

	"github.com/mxtrace/mxtrace/store"
)

// Upsert is w (its domain, period and alert targets) as watch add and
// serve's POST /api/v1/watches store it, given the watches that exist: a
// new watch is due at now and added now; a watch that exists keeps its
// schedule, but never waits longer than the new period (a shorter period
// takes effect at once), and keeps its Added time, last run and status.
// isNew says there was no watch of w.Domain.
func Upsert(existing []store.WatchStatus, w store.Watch, now time.Time) (ws store.WatchStatus, isNew bool) {
	w.NextRun, w.Added = now, now
	i := slices.IndexFunc(existing, func(e store.WatchStatus) bool { return e.Domain == w.Domain })
	if i < 0 {
		return store.WatchStatus{Watch: w}, true
	}
	old := existing[i]
	w.NextRun, w.Added = old.NextRun, old.Added
	if latest := now.Add(w.Every); w.NextRun.After(latest) {
		w.NextRun = latest
	}
	return store.WatchStatus{Watch: w, LastRun: old.LastRun, LastStatus: old.LastStatus}, false
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

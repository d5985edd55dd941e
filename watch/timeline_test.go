package watch

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/store"
)

func TestUpdate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	added := now.Add(-48 * time.Hour)
	existing := []store.WatchStatus{
		{Watch: store.Watch{Domain: "soon.example", Every: time.Hour, NextRun: now.Add(10 * time.Minute), Added: added}, LastRun: now.Add(-50 * time.Minute), LastStatus: store.StatusOK},
		{Watch: store.Watch{Domain: "late.example", Every: 24 * time.Hour, NextRun: now.Add(20 * time.Hour), Added: added}},
	}
	tests := []struct {
		domain        string
		every         time.Duration
		next, wantAdd time.Time
		isNew         bool
	}{
		{"new.example", time.Hour, now, now, true},
		// The schedule kept: due sooner than the new period.
		{"soon.example", 2 * time.Hour, now.Add(10 * time.Minute), added, false},
		// Never waits longer than the new period.
		{"late.example", time.Hour, now.Add(time.Hour), added, false},
	}
	for _, tt := range tests {
		i := slices.IndexFunc(existing, func(e store.WatchStatus) bool { return e.Domain == tt.domain })
		var old *store.WatchStatus
		if i >= 0 {
			old = &existing[i]
		}
		ws, isNew := Update(old, store.Watch{Domain: tt.domain, Every: tt.every, Alerts: []string{"log"}}, now), old == nil
		if isNew != tt.isNew || !ws.NextRun.Equal(tt.next) || !ws.Added.Equal(tt.wantAdd) || ws.Every != tt.every || len(ws.Alerts) != 1 {
			t.Errorf("%s every %v: %+v, new %v; want next run %v, added %v, new %v", tt.domain, tt.every, ws, isNew, tt.next, tt.wantAdd, tt.isNew)
		}
	}
	if ws := Update(&existing[0], store.Watch{Domain: "soon.example", Every: time.Hour}, now); ws.LastStatus != store.StatusOK || !ws.LastRun.Equal(existing[0].LastRun) {
		t.Errorf("a changed watch lost its last run: %+v", ws)
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Newest first, as the store gives them.
	var results []store.Result
	for i, st := range []string{"ok", "ok", "problems", "problems", "ok", "ok"} {
		results = append([]store.Result{{ID: int64(i + 1), At: t0.Add(time.Duration(i) * time.Hour), Status: st}}, results...)
	}
	changes := []store.Change{
		{ResultID: 6, Kind: "ttl-changed"}, {ResultID: 6, Kind: "mx-added"}, // newest first: mx-added came first
		{ResultID: 2, Kind: "mx-removed"},
	}
	ids := func(es []Event) (out []int64) {
		for _, e := range es {
			out = append(out, e.Result.ID)
		}
		return out
	}
	es := Timeline(results, changes, true)
	if got, want := ids(es), []int64{6, 5, 3, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("events of results %v; want %v", got, want)
	}
	if es[0].Changes[0].Kind != "mx-added" || es[0].Changes[1].Kind != "ttl-changed" || !es[4].First || es[3].First {
		t.Errorf("events: %+v", es)
	}
	// Not back to the first check: the oldest result read is an event
	// (the earliest in the window), not the first.
	if got, want := ids(Timeline(results[:4], changes, false)), []int64{6, 5, 3}; !slices.Equal(got, want) {
		t.Errorf("a window of the timeline: %v; want %v", got, want)
	}
	// As history --json prints an event: no change is [], not null.
	b, err := json.Marshal(es[1].JSON())
	if want := `{"at":"2026-03-01T16:00:00Z","result_id":5,"status":"ok","temporary":false,"changes":[]}`; err != nil || string(b) != want {
		t.Errorf("event as JSON: %s, %v; want %s", b, err, want)
	}
	if es := Timeline(nil, nil, true); es != nil {
		t.Errorf("no results: %v", es)
	}
}

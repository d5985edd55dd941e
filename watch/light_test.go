package watch

import (
	"context"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/store"
)

// lightStore fails the test when every watch is listed or results are
// read whole in bulk: what the idle daemon and the search for the last
// good result must not do.
type lightStore struct {
	store.Store
	t *testing.T
}

func (s lightStore) Watches(ctx context.Context) ([]store.WatchStatus, error) {
	s.t.Error("every watch was listed")
	return s.Store.Watches(ctx)
}

func (s lightStore) Results(ctx context.Context, domain string, since time.Time, limit int) ([]store.Result, error) {
	s.t.Errorf("results of %s were read whole, %d of them", domain, limit)
	return s.Store.Results(ctx, domain, since, limit)
}

// TestRunnerReadsLight: the idle daemon sleeps until the next watch is
// due without listing every watch, and the last good result behind a run
// of failures is found without reading the failures whole.
func TestRunnerReadsLight(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &Runner{Store: lightStore{s, t}, Poll: time.Minute, Now: func() time.Time { return now }}
	if err := s.AddWatch(ctx, store.Watch{Domain: "shop.example", Every: time.Hour, NextRun: now.Add(5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if d := r.sleep(ctx, false); d != 5*time.Second {
		t.Errorf("idle sleep with a watch due in 5s: %v", d)
	}
	good := store.Result{Domain: "shop.example", At: now, Status: store.StatusOK, Report: []byte(`{}`), Facts: []byte(`{"version":1}`)}
	goodID, err := s.Record(ctx, "", good, nil, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var last *store.Result
	for i := range 40 { // more than a window of failures
		bad := store.Result{Domain: "shop.example", At: now.Add(time.Duration(i+1) * time.Minute), Status: store.StatusError, Report: []byte(`{}`), Temporary: true}
		if bad.ID, err = s.Record(ctx, "", bad, nil, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		last = &bad
	}
	got, err := r.lastGood(ctx, last)
	if err != nil || got == nil || got.ID != goodID || string(got.Facts) != string(good.Facts) {
		t.Errorf("last good result: %+v, %v; want result %d whole", got, err, goodID)
	}
}

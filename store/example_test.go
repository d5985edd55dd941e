package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mxtrace/mxtrace/store"
)

// One round of a watch worker: claim what is due, check it, and record the
// result with its changes and alerts in one transaction.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "mxtrace-example-")
	defer os.RemoveAll(dir)
	// A path is SQLite; "postgres://..." would be PostgreSQL.
	s, err := store.Open(ctx, filepath.Join(dir, "mxtrace.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_ = s.AddWatch(ctx, store.Watch{Domain: "example.org", Every: time.Hour, NextRun: now, Alerts: []string{"mailto:pm@example.org"}})

	due, _ := s.Claim(ctx, "worker-1", now, 10, 5*time.Minute, false)
	for _, w := range due {
		r := store.Result{Domain: w.Domain, At: now, Status: store.StatusProblems,
			Report: []byte(`{"domain":"example.org"}`), Facts: []byte(`{"version":1}`)}
		changes := []store.Change{{Kind: "exchange-removed", Subject: "mx2.example.org", Severity: "warning", Message: "exchange mx2.example.org removed"}}
		alerts := []store.Alert{{Target: w.Alerts[0], Kind: store.AlertChange, Body: []byte(`{"kind":"exchange-removed"}`)}}
		if _, err := s.Record(ctx, "worker-1", r, changes, alerts, now.Add(w.Every)); err != nil {
			fmt.Println(err)
		}
	}

	ws, _ := s.Watches(ctx)
	fmt.Println(ws[0].Domain, ws[0].LastStatus, "next", ws[0].NextRun.Format(time.Kitchen))
	cs, _ := s.Changes(ctx, "example.org", time.Time{}, 10)
	fmt.Println(cs[0].Message)
	as, _ := s.DueAlerts(ctx, now, 10, time.Minute)
	fmt.Println(as[0].Target, string(as[0].Body))
	// Output:
	// example.org problems next 1:00PM
	// exchange mx2.example.org removed
	// mailto:pm@example.org {"kind":"exchange-removed"}
}

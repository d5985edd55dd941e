package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// killChildEnv names the database a child of TestKill9 works on.
const killChildEnv = "MXTRACE_STORE_KILL_CHILD_DB"

// TestKill9 kills a process that claims, records and delivers on a SQLite
// store with SIGKILL, again and again, at whatever point it has reached.
// Afterwards the database passes PRAGMA integrity_check, every result the
// child reported committed is there, every result has all of its changes
// and alerts (none has part of them), and every alert is sent or still
// due: none is lost.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes in a loop")
	}
	const rounds, watches = 8, 10
	path := filepath.Join(t.TempDir(), "mxtrace.db")
	setup, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range watches {
		addWatch(t, setup, fmt.Sprintf("d%d.example", i), t0)
	}
	if err := setup.Close(); err != nil {
		t.Fatal(err)
	}

	committed := map[int64]bool{} // result IDs the children reported
	sent := map[int64]bool{}      // alert IDs the children reported sent
	for round := range rounds {
		lines := runAndKill(t, path, time.Duration(50+rand.IntN(300))*time.Millisecond)
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			id, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "committed":
				committed[id] = true
				n++
			case "sent":
				sent[id] = true
			}
		}
		t.Logf("round %d: %d results committed", round, n)
	}
	if len(committed) == 0 {
		t.Fatal("the children committed nothing")
	}

	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("the database does not open after the kills: %v", err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
	stored := map[int64]bool{}
	rows, err := db.Query(`
		SELECT r.id,
			(SELECT count(*) FROM changes c WHERE c.result_id = r.id),
			(SELECT count(*) FROM alerts a WHERE a.result_id = r.id)
		FROM results r`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, changes, alerts int64
		if err := rows.Scan(&id, &changes, &alerts); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
		if changes != 2 || alerts != 1 {
			t.Errorf("result %d has %d changes and %d alerts; want 2 and 1", id, changes, alerts)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range committed {
		if !stored[id] {
			t.Errorf("result %d was reported committed and is not stored", id)
		}
	}
	for id := range sent {
		var at sql.NullInt64
		if err := db.QueryRow(`SELECT sent FROM alerts WHERE id = $1`, id).Scan(&at); err != nil || !at.Valid {
			t.Errorf("alert %d was reported sent and is not marked sent: %v", id, err)
		}
	}
	var lost int
	if err := db.QueryRow(`SELECT count(*) FROM alerts WHERE sent IS NULL AND next_attempt IS NULL`).Scan(&lost); err != nil || lost != 0 {
		t.Errorf("%d alerts neither sent nor due (%v)", lost, err)
	}
	t.Logf("%d results stored, %d reported committed, %d alerts reported sent", len(stored), len(committed), len(sent))
}

// runAndKill starts a child on the database at path, kills it with SIGKILL
// after it has worked for d, and returns the lines it printed.
func runAndKill(t *testing.T, path string, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		lines []string
		wg    sync.WaitGroup
		ready = make(chan struct{})
	)
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for sc.Scan() {
			if sc.Text() == "ready" {
				once()
			}
			lines = append(lines, sc.Text())
		}
	})
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Error("the child did not get ready")
	}
	time.Sleep(d)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := cmd.Wait(); err == nil {
		t.Fatal("the child exited by itself before it was killed")
	}
	return lines
}

// TestKill9Child is the child process of TestKill9: a worker that claims
// each due watch, records a result with two changes and an alert, and a
// deliverer beside it, forever. It prints "committed ID" after each
// committed result and "sent ID" after each alert marked sent.
func TestKill9Child(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("the child process of TestKill9")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	worker := fmt.Sprintf("pid%d", os.Getpid())
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ready")
	go func() {
		for {
			due, err := s.DueAlerts(ctx, time.Now(), 5, 200*time.Millisecond)
			if err != nil {
				panic(err)
			}
			if len(due) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			for _, a := range due {
				if err := s.AlertSent(ctx, a.ID, time.Now()); err != nil {
					panic(err)
				}
				say("sent %d", a.ID)
			}
		}
	}()
	for {
		// A short lease: a killed child's watches are free again soon.
		ws, err := s.Claim(ctx, worker, time.Now(), 2, 200*time.Millisecond, false)
		if err != nil {
			panic(err)
		}
		if len(ws) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		for _, w := range ws {
			now := time.Now()
			changes := []store.Change{
				{Kind: "mx-added", Subject: "mx2." + w.Domain, Severity: "info", Message: "exchange added"},
				{Kind: "ttl-changed", Subject: w.Domain, Severity: "info", Message: "ttl", Old: "300", New: "3600"},
			}
			alerts := []store.Alert{{Target: "log", Kind: store.AlertChange, Body: []byte(`{"kind":"mx-added"}`)}}
			id, err := s.Record(ctx, worker, result(w.Domain, now), changes, alerts, now)
			if err != nil {
				panic(err)
			}
			say("committed %d", id)
		}
	}
}

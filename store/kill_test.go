package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
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

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// The environment of a child of TestKill9: the DSN of its database, and
// "EVERY,LEASE" in nanoseconds.
const (
	killChildEnv = "MXTRACE_STORE_KILL_CHILD_DB"
	killTimesEnv = "MXTRACE_STORE_KILL_CHILD_TIMES"
)

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

// child is a running TestKill9Child process.
type child struct {
	cmd   *exec.Cmd
	wg    sync.WaitGroup
	lines []string // valid after kill
}

// startChild starts a worker process on the database dsn that leases its
// watches for lease and schedules each next run every after its result
// (0: due again at once), and waits until it has opened the database. It
// is killed at the end of the test if it still runs.
func startChild(t *testing.T, dsn string, every, lease time.Duration) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")}
	c.cmd.Env = append(os.Environ(), killChildEnv+"="+dsn, fmt.Sprintf("%s=%d,%d", killTimesEnv, every, lease))
	c.cmd.Stderr = os.Stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.kill(t) })
	ready := make(chan struct{})
	c.wg.Go(func() {
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for sc.Scan() {
			if sc.Text() == "ready" {
				once()
			}
			c.lines = append(c.lines, sc.Text())
		}
	})
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not open the database in 30s")
	}
	return c
}

// kill ends the child with SIGKILL, by its PID, and returns the lines it
// printed.
func (c *child) kill(t *testing.T) []string {
	t.Helper()
	if c.cmd.ProcessState != nil {
		return c.lines
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wg.Wait()
	if err := c.cmd.Wait(); err == nil {
		t.Error("the child exited by itself before it was killed")
	}
	return c.lines
}

// runAndKill runs a child on the database at path for d, then kills it,
// and returns the lines it printed.
func runAndKill(t *testing.T, path string, d time.Duration) []string {
	t.Helper()
	c := startChild(t, path, 0, 200*time.Millisecond)
	time.Sleep(d)
	return c.kill(t)
}

// TestKillWorkerPostgres: three workers share one PostgreSQL; one is
// killed with SIGKILL while it holds leases. No domain is checked twice
// within its period, and none is skipped: the dead worker's watches are
// taken by the others once its leases end.
func TestKillWorkerPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	const (
		watches = 12
		every   = 300 * time.Millisecond
		lease   = time.Second
	)
	pg := peers.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	setup := open(t, dsn)
	for i := range watches {
		addWatch(t, setup, fmt.Sprintf("d%02d.example", i), time.Now())
	}
	var workers []*child
	for range 3 {
		workers = append(workers, startChild(t, dsn, every, lease))
	}
	time.Sleep(time.Second)
	killed := time.Now()
	workers[0].kill(t)

	// Every domain is checked again after the dead worker's leases ended.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for i := range watches {
			if r, err := setup.Last(t.Context(), fmt.Sprintf("d%02d.example", i)); err != nil {
				t.Fatal(err)
			} else if r == nil || !r.At.After(killed.Add(lease)) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d domains not checked in the 30s after the worker was killed", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	committed := map[int64]bool{}
	for _, w := range workers {
		for _, l := range w.kill(t) {
			if id, ok := strings.CutPrefix(l, "committed "); ok {
				n, _ := strconv.ParseInt(id, 10, 64)
				committed[n] = true
			}
		}
	}
	stored := 0
	for i := range watches {
		d := fmt.Sprintf("d%02d.example", i)
		rs, err := setup.Results(t.Context(), d, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range rs {
			delete(committed, r.ID)
			// Newest first: each result at least a period after the one
			// before it.
			if j+1 < len(rs) && r.At.Sub(rs[j+1].At) < every {
				t.Errorf("%s checked at %v and again %v later, within its period %v", d, rs[j+1].At, r.At.Sub(rs[j+1].At), every)
			}
		}
		stored += len(rs)
	}
	for id := range committed {
		t.Errorf("result %d was reported committed and is not stored", id)
	}
	t.Logf("%d results stored", stored)
}

// TestKill9Child is the child process of TestKill9 and
// TestKillWorkerPostgres: a worker that claims
// each due watch, records a result with two changes and an alert, and a
// deliverer beside it, forever. It prints "committed ID" after each
// committed result and "sent ID" after each alert marked sent.
func TestKill9Child(t *testing.T) {
	dsn := os.Getenv(killChildEnv)
	if dsn == "" {
		t.Skip("the child process of TestKill9")
	}
	var every, lease time.Duration
	if _, err := fmt.Sscanf(os.Getenv(killTimesEnv), "%d,%d", &every, &lease); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
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
		ws, err := s.Claim(ctx, worker, time.Now(), 2, lease, false)
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
			id, err := s.Record(ctx, worker, result(w.Domain, now), changes, alerts, now.Add(every))
			if errors.Is(err, store.ErrLeaseLost) {
				continue // late: another worker has the watch now
			}
			if err != nil {
				panic(err)
			}
			say("committed %d", id)
		}
	}
}

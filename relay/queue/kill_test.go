package queue_test

import (
	"bufio"
	"bytes"
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

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/store/postgres"
	"github.com/mxtrace/mxtrace/store/sqlite"
)

// killChildEnv holds the DSN of a TestKill9Child process's queue.
const killChildEnv = "MXTRACE_QUEUE_KILL_CHILD_DSN"

// killLease is the child's delivery lease: longer than any attempt takes
// even on a loaded machine, so a delivery finished twice is a fault of the
// queue, not an overrun lease.
const killLease = 5 * time.Second

// killData is the data of the message a child names tag ("PID-SEQ"):
// every fifth one 64 KiB, so some commits span many pages.
func killData(tag string) []byte {
	n := 1 << 10
	if strings.HasSuffix(tag, "0") || strings.HasSuffix(tag, "5") {
		n = 64 << 10
	}
	head := "Message-ID: <" + tag + "@kill.example>\r\n\r\n"
	return append([]byte(head), bytes.Repeat([]byte(tag+"\r\n"), n/(len(tag)+2))...)
}

// TestKill9 kills two processes that each enqueue from eight goroutines
// (group commits) and deliver at the same time, on one queue, with
// SIGKILL at random moments, round after round. No delivery is reported
// finished by both. Afterwards every message the child acknowledged is
// in the queue with its data intact, every delivery it reported finished
// is recorded, the rows agree with each other (no message without a
// pending recipient, no delivery pending without one and none idle with
// one), and every pending delivery the dead children leased is claimed
// again once the lease has passed.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes in a loop")
	}
	t.Run("sqlite", func(t *testing.T) { testKill9(t, filepath.Join(t.TempDir(), "relay.db")) })
	t.Run("postgres", func(t *testing.T) { testKill9(t, peers.StartPostgres(t).NewDatabase(t)) })
}

func testKill9(t *testing.T, dsn string) {
	const rounds = 6
	setup := open(t, dsn) // migrates before the first child
	acked := map[queue.ID]string{}
	finished := map[queue.ID]bool{} // message IDs whose deliver.example delivery finished
	finishedBy := map[int64]int{}   // delivery ID -> children that reported it finished
	for round := range rounds {
		// Two processes on one queue, killed at different moments.
		a, b := startChild(t, dsn), startChild(t, dsn)
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		lines := a.kill(t)
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		lines = append(lines, b.kill(t)...)
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "ack" && f[0] != "finished" {
				continue // the test framework's lines, or one cut by the kill
			}
			id, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", l)
			}
			switch f[0] {
			case "ack":
				if prev, ok := acked[queue.ID(id)]; ok {
					// An acknowledged message was lost and its ID reused.
					t.Errorf("ID %d acknowledged for %s and again for %s", id, prev, f[2])
				}
				acked[queue.ID(id)] = f[2]
				n++
			case "finished":
				finished[queue.ID(id)] = true
				d, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", l)
				}
				if finishedBy[d]++; finishedBy[d] > 1 {
					t.Errorf("delivery %d (message %d) was delivered twice", d, id)
				}
			}
		}
		t.Logf("round %d: %d messages acknowledged", round, n)
	}
	if len(acked) == 0 {
		t.Fatal("the children acknowledged nothing")
	}
	if err := setup.Close(); err != nil {
		t.Fatal(err)
	}

	q := open(t, dsn)
	for id, tag := range acked {
		e, err := q.Show(t.Context(), id)
		if err != nil {
			t.Errorf("message %d (%s) was acknowledged: %v", id, tag, err)
			continue
		}
		if !bytes.Equal(e.Data, killData(tag)) || e.Sender != "s-"+tag+"@kill.example" {
			t.Errorf("message %d is not what was enqueued as %s: sender %q, %d bytes", id, tag, e.Sender, len(e.Data))
		}
		for _, r := range e.Recipients {
			switch {
			case r.Domain == "keep.example" && r.State != queue.StateQueued:
				t.Errorf("message %d: %s is %s; nothing delivers to keep.example", id, r.Address, r.State)
			case r.Domain == "deliver.example" && finished[id] && r.State != queue.StateDelivered:
				t.Errorf("message %d: %s is %s; the child reported it delivered", id, r.Address, r.State)
			}
		}
	}

	db := rawDB(t, dsn)
	if !strings.Contains(dsn, "://") {
		var check string
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check: %q, %v", check, err)
		}
	}
	for what, query := range map[string]string{
		"messages without a pending recipient": `SELECT count(*) FROM relay_messages m WHERE NOT EXISTS
			(SELECT 1 FROM relay_recipients r WHERE r.message_id = m.id AND r.state IN ('queued', 'deferred'))`,
		"deliveries due with nothing pending": `SELECT count(*) FROM relay_deliveries d WHERE d.next_attempt IS NOT NULL AND NOT EXISTS
			(SELECT 1 FROM relay_recipients r WHERE r.delivery_id = d.id AND r.state IN ('queued', 'deferred'))`,
		"deliveries idle with a pending recipient": `SELECT count(*) FROM relay_deliveries d WHERE d.next_attempt IS NULL AND EXISTS
			(SELECT 1 FROM relay_recipients r WHERE r.delivery_id = d.id AND r.state IN ('queued', 'deferred'))`,
	} {
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d %s (%v)", n, what, err)
		}
	}
	var pending int
	if err := db.QueryRow(`SELECT count(*) FROM relay_deliveries WHERE domain = 'deliver.example' AND next_attempt IS NOT NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(killLease + time.Second)
	claimed := 0
	for range pending/queue.MaxBatch + 2 {
		ds, err := q.Claim(t.Context(), "after", later, time.Minute, 0, "deliver.example")
		if err != nil {
			t.Fatal(err)
		}
		claimed += len(ds)
	}
	if claimed != pending {
		t.Errorf("claimed %d deliveries after the leases ended; %d are pending", claimed, pending)
	}
	t.Logf("%d messages acknowledged, %d delivered to deliver.example, %d deliveries pending there", len(acked), len(finished), pending)
}

// rawDB opens the queue's database without the queue, closed at the end of
// the test.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if strings.Contains(dsn, "://") {
		db, err = postgres.Open(t.Context(), dsn)
	} else {
		db, err = sqlite.Open(t.Context(), dsn)
	}
	if err != nil {
		t.Fatalf("the database does not open after the kills: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// child is a running TestKill9Child process.
type child struct {
	cmd   *exec.Cmd
	wg    sync.WaitGroup
	lines []string // valid after kill
}

// startChild starts a TestKill9Child process on the queue dsn and waits
// until it has opened it. It is killed at the end of the test if it still
// runs.
func startChild(t *testing.T, dsn string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")}
	c.cmd.Env = append(os.Environ(), killChildEnv+"="+dsn)
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
		t.Fatal("the child did not open the queue in 30s")
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

// TestKill9Child is the child process of TestKill9: eight goroutines
// enqueue messages to keep.example and deliver.example, printing "ack ID
// TAG" once Enqueue returned, and a deliverer claims the deliver.example
// deliveries and finishes them as delivered, printing "finished MSGID
// DELIVERYID" once Finish returned; forever, until it is killed.
func TestKill9Child(t *testing.T) {
	dsn := os.Getenv(killChildEnv)
	if dsn == "" {
		t.Skip("the child process of TestKill9")
	}
	ctx := context.Background()
	q, err := queue.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ready")
	pid := os.Getpid()
	for g := range 8 {
		go func() {
			for seq := g; ; seq += 8 {
				tag := fmt.Sprintf("%d-%d", pid, seq)
				id, err := q.Enqueue(ctx, &queue.Message{
					Sender:     "s-" + tag + "@kill.example",
					Recipients: []string{"a@keep.example", "b@deliver.example"},
					Data:       killData(tag),
				})
				if err != nil {
					panic(err)
				}
				say("ack %d %s", id, tag)
			}
		}()
	}
	owner := fmt.Sprintf("pid%d", pid)
	for {
		ds, err := q.Claim(ctx, owner, time.Now(), killLease, 4, "deliver.example")
		if err != nil {
			panic(err)
		}
		if len(ds) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		for _, d := range ds {
			if err := q.Finish(ctx, d, queue.Outcome{Delivered: d.Recipients}); err != nil {
				panic(err)
			}
			say("finished %d %d", d.Message, d.ID)
		}
	}
}

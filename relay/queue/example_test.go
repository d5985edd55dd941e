package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mxtrace/mxtrace/relay/queue"
)

// A message's life in the queue: accepted (committed before the 250
// reply), claimed by a delivery process, tried, and finished; a deferred
// recipient waits for its next attempt, and the message leaves the queue
// with its last pending recipient.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "mxtrace-queue-example-")
	defer os.RemoveAll(dir)
	// A path is SQLite; "postgres://..." would be PostgreSQL.
	q, err := queue.Open(ctx, filepath.Join(dir, "relay.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id, err := q.Enqueue(ctx, &queue.Message{
		Sender:     "alice@sender.example",
		Recipients: []string{"bob@example.org", "carol@example.org"},
		Data:       []byte("Subject: hello\r\n\r\nhi\r\n"),
		Received:   now,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("250 2.0.0 queued as", id)

	ds, _ := q.Claim(ctx, "relay-1", now, 10*time.Minute, 10, "")
	for _, d := range ds {
		fmt.Println("deliver to", d.Domain, d.Recipients)
		// The primary accepted bob and asked to try carol again later.
		_ = q.Finish(ctx, d, queue.Outcome{
			Delivered: []string{"bob@example.org"},
			Deferred:  map[string]string{"carol@example.org": "452 4.2.2 mailbox full"},
			Next:      now.Add(5 * time.Minute),
		})
	}
	e, _ := q.Show(ctx, id)
	for _, r := range e.Recipients {
		fmt.Printf("%s %s %q\n", r.Address, r.State, r.LastError)
	}

	ds, _ = q.Claim(ctx, "relay-1", now.Add(5*time.Minute), 10*time.Minute, 10, "")
	_ = q.Finish(ctx, ds[0], queue.Outcome{Delivered: ds[0].Recipients})
	st, _ := q.Stats(ctx)
	fmt.Println("messages left:", st.Messages)
	// Output:
	// 250 2.0.0 queued as 1
	// deliver to example.org [bob@example.org carol@example.org]
	// bob@example.org delivered ""
	// carol@example.org deferred "452 4.2.2 mailbox full"
	// messages left: 0
}

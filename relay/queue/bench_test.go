package queue_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/relay/queue"
)

// BenchmarkEnqueue measures accepting a message into a SQLite queue on
// this machine's disk (the test's temporary directory), committed and
// fsynced before Enqueue returns: 1 KB and 100 KB messages, one caller
// (every message its own fsync) and 32 concurrent callers (group commit,
// as 32 SMTP sessions would be). ns/op is the time per message; msgs/s is
// the accept rate.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("size=%dKB/callers=%d", size>>10, callers), func(b *testing.B) {
				q, err := queue.Open(b.Context(), filepath.Join(b.TempDir(), "relay.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				m := &queue.Message{
					Sender:     "alice@sender.example",
					Recipients: []string{"bob@example.org", "carol@example.org"},
					Data:       bytes.Repeat([]byte("0123456789abcdef"), size/16),
					Received:   time.Now(),
				}
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				if callers == 1 {
					for b.Loop() {
						if _, err := q.Enqueue(b.Context(), m); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					var next atomic.Int64
					var wg sync.WaitGroup
					for range callers {
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								if _, err := q.Enqueue(b.Context(), m); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkPass measures the deliverer's two questions of every pass
// (every accepted message wakes it): Expired and Pending, with 1984
// messages of 100 KB queued (32 callers of 62) and none expired, as
// while a primary is down.
// Each should cost about the same whatever the queue holds.
func BenchmarkPass(b *testing.B) {
	q, err := queue.Open(b.Context(), filepath.Join(b.TempDir(), "relay.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	now := time.Now()
	m := &queue.Message{
		Sender:     "alice@sender.example",
		Recipients: []string{"bob@example.org"},
		Data:       bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16),
		Received:   now,
	}
	var wg sync.WaitGroup
	for range 32 { // group commit: 32 callers fill it faster than one
		wg.Go(func() {
			for range 2000 / 32 {
				if _, err := q.Enqueue(b.Context(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for b.Loop() {
		expired, err := q.Expired(b.Context(), now, 0)
		if err != nil || len(expired) != 0 {
			b.Fatalf("Expired: %d, %v; want none", len(expired), err)
		}
		domains, err := q.Pending(b.Context())
		if err != nil || len(domains) != 1 {
			b.Fatalf("Pending: %v, %v; want example.org", domains, err)
		}
	}
}

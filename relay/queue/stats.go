package queue

import "time"

// Stats is the queue at a glance, for metrics and the queue page.
type Stats struct {
	// Messages counts the queued messages, held ones included;
	// Recipients their recipients still pending; Held the messages an
	// operator put on hold.
	Messages, Recipients, Held int
	// Oldest is when the oldest queued message was accepted; zero when
	// the queue is empty.
	Oldest time.Time
	// Bytes is the size of the queued messages' data.
	Bytes int64
}

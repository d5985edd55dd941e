// Package queue is the relay's durable mail queue: SQLite in WAL mode with
// synchronous=FULL by default, or PostgreSQL for several relay nodes
// sharing one queue. A message is committed (fsynced) before the relay
// answers 250 to its data (RFC 5321 §6.1: once a server accepts a message
// it is responsible for it), and deliveries are leased, so a kill -9 at any
// moment loses no accepted message and repeats a delivery at most once.
package queue

import (
	"net/netip"
	"time"
)

// ID names a queued message.
type ID int64

// Message is one accepted message with its envelope.
type Message struct {
	ID ID
	// Sender is the envelope sender (MAIL FROM) without angle brackets;
	// "" is the null sender (RFC 5321 §4.5.5), to which no notification
	// is ever sent.
	Sender string
	// Recipients are the accepted RCPT TO addresses, domains in
	// canonical form.
	Recipients []string
	// Data is the whole message as it will be sent on, the relay's own
	// Received and Received-SPF fields already at its top.
	Data []byte
	// Client and Helo name the SMTP client the message came from.
	Client netip.Addr
	Helo   string
	// Received is when the message was accepted; Expires is when, still
	// undelivered, it is returned to its sender (RFC 5321 §4.5.4.1).
	Received time.Time
	Expires  time.Time
}

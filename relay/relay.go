// Package relay is mxtrace's backup MX (mxtrace relay): an SMTP server that
// accepts mail for its configured domains only while their primary
// exchanges are down, keeps it in a durable queue, and forwards it to the
// primary tier as soon as that tier answers again.
//
// A backup MX is a store-and-forward exchange at a worse preference than
// the primary (RFC 5321 §5.1). It has three classic weaknesses, and this
// package is built around removing each:
//
//   - It cannot tell valid recipients, so it accepts mail for nobody and
//     bounces it later (backscatter). The relay verifies every recipient at
//     RCPT time (a RecipientVerifier: a static list, or a callout to the
//     primary tier with caching) and refuses what the primary would refuse.
//   - It filters less, so spammers try it first. The relay applies the
//     primary's policy: SPF (RFC 7208) recorded in Received-SPF, DMARC
//     (RFC 7489) p=reject failures refused, the size limit (RFC 1870),
//     per-client connection and rate limits.
//   - Senders learn the primary is back only when their own retry timer
//     fires. The relay probes the primary tier out of band while it holds
//     mail for it, and flushes within seconds of its return.
//
// Data flows one way: Server (accept, verify, judge) → queue (durable,
// fsynced before the 250 reply) → Deliverer (plan the route without the
// relay's own tier, send, retry with backoff, notify the sender).
package relay

import (
	"context"
	"fmt"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// Address is a mailbox as the relay takes it from MAIL FROM or RCPT TO
// after the strict parse (ParseAddress): a dot-string or quoted local part
// and a domain name, never a source route, an address literal or a second
// "@".
type Address struct {
	// Local is the local part exactly as the client sent it: RFC 5321
	// §2.4 leaves its case to the destination.
	Local string
	// Domain is the domain in canonical form (lower case, A-labels).
	Domain dnsname.Name
}

// String is the address in the form sent on: Local@Domain.
func (a Address) String() string { return a.Local + "@" + a.Domain.String() }

// Verdict is the relay's decision on a recipient or a message: accept, or
// refuse with an SMTP reply (RFC 5321 §4.2, enhanced status RFC 3463).
type Verdict struct {
	// Code is 0 (or 250) to accept; a 4xx code refuses for now, a 5xx
	// code for good.
	Code int
	// Enhanced is the RFC 3463 status code, e.g. "5.1.1".
	Enhanced string
	// Message is the reply text.
	Message string
	// Reason is a short, stable label for metrics and logs
	// ("unknown-recipient", "not-our-domain", "callout-tempfail", ...).
	Reason string
}

// Accepted reports whether v lets the recipient or message through.
func (v Verdict) Accepted() bool { return v.Code == 0 || v.Code/100 == 2 }

// Error formats a refusal as its SMTP reply.
func (v Verdict) Error() string { return fmt.Sprintf("%d %s %s", v.Code, v.Enhanced, v.Message) }

// RecipientVerifier decides at RCPT TO whether the primary would accept a
// recipient of a configured domain, so the relay never accepts what it
// would have to bounce later.
type RecipientVerifier interface {
	VerifyRecipient(ctx context.Context, rcpt Address) Verdict
}

// Enqueuer stores an accepted message. When Enqueue returns nil, the
// message is on stable storage (fsynced) and the 250 reply may be sent.
type Enqueuer interface {
	Enqueue(ctx context.Context, m *queue.Message) (queue.ID, error)
}

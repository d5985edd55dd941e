package relay

import (
	"time"

	"github.com/mxtrace/mxtrace/relay/queue"
)

// EntryJSON is one queued message as mxtrace relay queue list --json
// prints it and GET /api/v1/queue serves it: the envelope, and each
// recipient's state. The message's data is never part of it.
type EntryJSON struct {
	ID         int64           `json:"id"`
	Sender     string          `json:"sender"` // "" is the null sender
	Recipients []RecipientJSON `json:"recipients"`
	Held       bool            `json:"held"`
	Client     string          `json:"client,omitempty"`
	Helo       string          `json:"helo,omitempty"`
	Received   time.Time       `json:"received"`
	Expires    time.Time       `json:"expires"`
}

// RecipientJSON is one recipient of a queued message.
type RecipientJSON struct {
	Address string `json:"address"`
	Domain  string `json:"domain"`
	// State is queued (no attempt yet), deferred (an attempt failed for
	// now), delivered or failed (refused for good).
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Next is the next attempt, for a recipient still pending.
	Next      time.Time `json:"next_attempt,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// StatsJSON is the queue at a glance, as the queue page and GET
// /api/v1/queue give it.
type StatsJSON struct {
	Messages   int       `json:"messages"`
	Recipients int       `json:"recipients"`
	Held       int       `json:"held"`
	Bytes      int64     `json:"bytes"`
	Oldest     time.Time `json:"oldest,omitzero"`
}

// NewEntryJSON is e in its JSON form, times in UTC.
func NewEntryJSON(e queue.Entry) EntryJSON {
	out := EntryJSON{ID: int64(e.ID), Sender: e.Sender, Held: e.Held, Helo: e.Helo,
		Received: e.Received.UTC(), Expires: e.Expires.UTC(), Recipients: make([]RecipientJSON, 0, len(e.Recipients))}
	if e.Client.IsValid() {
		out.Client = e.Client.String()
	}
	for _, r := range e.Recipients {
		rj := RecipientJSON{Address: r.Address, Domain: r.Domain, State: string(r.State), Attempts: r.Attempts, LastError: r.LastError}
		if Pending(r.State) {
			rj.Next = r.Next.UTC()
		}
		out.Recipients = append(out.Recipients, rj)
	}
	return out
}

// NewStatsJSON is st in its JSON form.
func NewStatsJSON(st queue.Stats) StatsJSON {
	return StatsJSON{Messages: st.Messages, Recipients: st.Recipients, Held: st.Held, Bytes: st.Bytes, Oldest: st.Oldest.UTC()}
}

// Pending reports whether a recipient in state is still to deliver
// (queued or deferred), so has a next attempt.
func Pending(state queue.State) bool {
	return state == queue.StateQueued || state == queue.StateDeferred
}

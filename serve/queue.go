package serve

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/report"
)

// The relay's queue in serve, when mxtrace relay runs with --http: GET
// /queue (the page) and GET /api/v1/queue (the object the page is made
// from). Both only read; the queue is changed with mxtrace relay queue.
// They show envelope addresses, so a relay's --http belongs on loopback
// or behind a proxy that authenticates (docs/relay.md#operating-the-relay).
// Without a Queue both routes answer 404.

// Queue is the relay's queue as the queue routes read it; *queue.Queue
// is one.
type Queue interface {
	List(ctx context.Context, f queue.Filter) ([]queue.Entry, error)
	Show(ctx context.Context, id queue.ID) (*queue.Entry, error)
	Stats(ctx context.Context) (queue.Stats, error)
}

// Bounds of the queue routes.
const (
	// defaultQueueLimit and maxQueueLimit bound the messages of one
	// GET /api/v1/queue answer (?limit=); the page shows the first
	// defaultQueueLimit.
	defaultQueueLimit = 100
	maxQueueLimit     = 1000
	// pageRecipients bounds the recipients listed per message on the
	// page.
	pageRecipients = 10
)

// queueJSON is the body of GET /api/v1/queue: the queue's figures, its
// messages oldest first (each the object mxtrace relay queue list --json
// prints), and More when ?limit= left some out.
type queueJSON struct {
	Stats    relay.StatsJSON   `json:"stats"`
	Messages []relay.EntryJSON `json:"messages"`
	More     bool              `json:"more,omitempty"`
}

// readQueue reads the queue's figures and at most limit of its messages
// (for one destination domain when domain is not ""), or answers the
// problem and returns false.
func (s *Server) readQueue(w http.ResponseWriter, r *http.Request, domain string, limit int) (queue.Stats, []queue.Entry, bool, bool) {
	if s.cfg.Queue == nil {
		writeProblem(w, r, http.StatusNotFound, "this server has no mail queue: the queue is served by mxtrace relay --http", 0)
		return queue.Stats{}, nil, false, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	st, err := s.cfg.Queue.Stats(ctx)
	if err != nil {
		s.queueFailed(w, r, err)
		return queue.Stats{}, nil, false, false
	}
	es, err := s.cfg.Queue.List(ctx, queue.Filter{Domain: domain, Limit: limit + 1})
	if err != nil {
		s.queueFailed(w, r, err)
		return queue.Stats{}, nil, false, false
	}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	return st, es, more, true
}

// queueFailed answers a queue that could not be read: 503, logged.
func (s *Server) queueFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("serve: reading the queue", "error", err)
	writeProblem(w, r, http.StatusServiceUnavailable, "the mail queue could not be read; try again later", 5*time.Second)
}

// apiQueue answers GET /api/v1/queue[?domain=D][&limit=N].
func (s *Server) apiQueue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultQueueLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxQueueLimit {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", v, maxQueueLimit), 0)
			return
		}
		limit = n
	}
	var domain string
	if v := q.Get("domain"); v != "" {
		name, err := dnsname.Parse(v)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, report.Plain(err.Error()), 0)
			return
		}
		domain = name.String()
	}
	st, es, more, ok := s.readQueue(w, r, domain, limit)
	if !ok {
		return
	}
	out := queueJSON{Stats: relay.NewStatsJSON(st), Messages: make([]relay.EntryJSON, 0, len(es)), More: more}
	for _, e := range es {
		out.Messages = append(out.Messages, relay.NewEntryJSON(e))
	}
	writeJSON(w, r, out)
}

// queuePage is /queue.
type queuePage struct {
	pageData
	Summary, Oldest string
	Held            int
	List            []queueRow
	More            bool
}

// queueRow is one message of the page.
type queueRow struct {
	ID, Sender, Received, ReceivedISO, Age, Expires string
	Held                                            bool
	Recipients                                      []queueRecipient
	MoreRecipients                                  int
}

// queueRecipient is one recipient of a message on the page.
type queueRecipient struct {
	Address, State, Class, Next, LastError string
	Attempts                               int
}

// pageQueue shows the queue: its figures, then each message, oldest
// first, with its recipients' states and next attempts.
func (s *Server) pageQueue(w http.ResponseWriter, r *http.Request) {
	st, es, more, ok := s.readQueue(w, r, "", defaultQueueLimit)
	if !ok {
		return
	}
	now := time.Now()
	p := queuePage{
		pageData: s.nav(pageData{Title: "Mail queue · mxtrace", SkipTo: "the queue", HeaderSearch: true}),
		Summary:  queueSummary(st), Held: st.Held, More: more,
	}
	if !st.Oldest.IsZero() {
		p.Oldest = timeText(st.Oldest) + " (" + ageText(now.Sub(st.Oldest)) + " ago)"
	}
	for _, e := range es {
		row := queueRow{ID: strconv.FormatInt(int64(e.ID), 10), Sender: e.Sender, Held: e.Held,
			Received: timeText(e.Received), ReceivedISO: e.Received.UTC().Format(time.RFC3339),
			Age: ageText(now.Sub(e.Received)), Expires: timeText(e.Expires)}
		if row.Sender == "" {
			row.Sender = "<> (the null sender)"
		}
		for i, rc := range e.Recipients {
			if i == pageRecipients {
				row.MoreRecipients = len(e.Recipients) - i
				break
			}
			qr := queueRecipient{Address: rc.Address, State: string(rc.State), Class: recipientClass(rc.State),
				Attempts: rc.Attempts, LastError: rc.LastError}
			switch {
			case e.Held && relay.Pending(rc.State):
				qr.Next = "on hold"
			case !relay.Pending(rc.State):
			case rc.Next.After(now):
				qr.Next = timeText(rc.Next) + " (in " + ageText(rc.Next.Sub(now)) + ")"
			default:
				qr.Next = "now"
			}
			row.Recipients = append(row.Recipients, qr)
		}
		p.List = append(p.List, row)
	}
	s.render(w, http.StatusOK, p, "queue")
}

// queueSummary is the queue's figures in a sentence.
func queueSummary(st queue.Stats) string {
	if st.Messages == 0 {
		return "The queue is empty: every message accepted has been delivered or returned."
	}
	held := ""
	if st.Held > 0 {
		held = fmt.Sprintf(" (%d on hold)", st.Held)
	}
	return fmt.Sprintf("%s%s, %s to deliver, %s.", prose.Count(st.Messages, "message"), held,
		prose.Count(st.Recipients, "recipient"), sizeText(st.Bytes))
}

// recipientClass is a recipient state's colour on the page.
func recipientClass(state queue.State) string {
	switch state {
	case queue.StateDelivered:
		return "pass"
	case queue.StateDeferred:
		return "warning"
	case queue.StateFailed:
		return "error"
	}
	return "info"
}

// ageText is a duration as people read an age: its two largest units.
func ageText(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	mins, secs := int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm %ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

// sizeText is a size in octets as people read it.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return prose.Count(int(n), "byte")
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + suffix
}

// nav is p with the header's links to the pages this server has.
func (s *Server) nav(p pageData) pageData {
	p.WatchLink = s.cfg.Store != nil
	p.QueueLink = s.cfg.Queue != nil
	return p
}

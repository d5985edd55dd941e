package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/store"
)

// Deliverer defaults.
const (
	DefaultDeliverConcurrency = 4
	DefaultDeliverBatch       = 64
	DefaultDeliverPoll        = 10 * time.Second
	DefaultDeliverGrace       = 10 * time.Second
	// storeTimeout bounds marking one alert in the store, also after a
	// stop: the mark is what keeps a delivered alert from going out again.
	storeTimeout = 10 * time.Second
)

// AlertQueue is the part of store.Store a Deliverer uses.
type AlertQueue interface {
	DueAlerts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.Alert, error)
	AlertSent(ctx context.Context, id int64, at time.Time) error
	AlertFailed(ctx context.Context, id int64, next time.Time, errText string) error
}

// Backoff is the retry schedule of a failed delivery: the n-th retry
// (n from 0) waits B(n) = min(Max, Base·2^n), ± Jitter·B(n) at random, so
// the alerts that failed together (a receiver down) do not come back
// together. After MaxAttempts failed deliveries the alert is given up.
type Backoff struct {
	Base, Max   time.Duration
	Jitter      float64 // 0 to 1
	MaxAttempts int
}

// DefaultBackoff retries after about 30 s, 1 min, 2 min... up to 6 h
// apart, for 20 attempts: about two and a half days (62 h without the
// jitter) before an alert is given up.
var DefaultBackoff = Backoff{Base: 30 * time.Second, Max: 6 * time.Hour, Jitter: 0.2, MaxAttempts: 20}

// Delay is B(n) with the jitter drawn from rnd (a uniform number in
// [0, 1); nil: math/rand/v2).
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	d := b.Max
	if n < 62 && b.Base < b.Max>>min(n, 62) {
		d = b.Base << n
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	j := min(max(b.Jitter, 0), 1)
	return d + time.Duration((rnd()*2-1)*j*float64(d))
}

// Deliverer sends the queued alerts (the store's outbox): it takes the due
// ones on a lease (store.Store.DueAlerts), sends each to its target, and
// marks it sent only after the target took it (a webhook's 2xx, the
// submission server's 250 to the final dot), or failed with its next
// attempt. Delivery is at least once: a crash between the send and the
// mark sends the alert again after its lease, with the same ID (the body's
// "id", the X-Mxtrace-Alert-Id header, the e-mail's Message-ID), which the
// receiver uses to drop the duplicate.
type Deliverer struct {
	Store   AlertQueue
	Webhook *Webhook // nil: webhook alerts fail (no secret)
	Mailer  *Mailer  // nil: e-mail alerts fail (no server)
	// Log receives the "log" target's lines, at warning level, and the
	// Deliverer's own (failures at warning, deliveries at debug). nil:
	// silent, and a "log" alert is dropped as sent.
	Log *slog.Logger

	Concurrency int           // alerts sent at once (0: DefaultDeliverConcurrency)
	Batch       int           // alerts taken at once (0: DefaultDeliverBatch)
	Poll        time.Duration // sleep when nothing is due (0: DefaultDeliverPoll)
	// Lease is how long taken alerts stay this deliverer's (0: twice the
	// longest send time-out plus a minute); longer than a send, or a
	// slow send is taken again by another deliverer.
	Lease time.Duration
	// Grace lets the sends in flight finish and be marked after a stop
	// (0: DefaultDeliverGrace).
	Grace   time.Duration
	Backoff Backoff          // zero: DefaultBackoff
	Now     func() time.Time // nil: time.Now
}

// Run delivers until ctx ends, then lets the sends in flight finish within
// Grace and returns nil. A store that fails is logged and tried again at
// the next poll.
func (d *Deliverer) Run(ctx context.Context) error {
	for {
		n, err := d.Drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.logger().Warn("watch: alerts: the store failed", "err", err)
		}
		if err == nil && n >= d.batch() {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.poll()):
		}
	}
}

// Drain takes the alerts due now, once, sends them Concurrency at a time,
// and returns how many it took (for `watch run --once`). When ctx ends it
// gives the alerts it has taken Grace to be sent and marked; any still
// waiting then are due again when their lease ends.
func (d *Deliverer) Drain(ctx context.Context) (int, error) {
	alerts, err := d.Store.DueAlerts(ctx, d.now(), d.batch(), d.lease())
	if err != nil {
		return 0, fmt.Errorf("watch: due alerts: %w", err)
	}
	// The sends outlive ctx by Grace: an alert half sent at a stop is
	// worse than one sent and marked a moment later.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d.grace(), cancel)
		context.AfterFunc(sctx, func() { t.Stop() })
	})
	defer stop()
	sem := make(chan struct{}, d.concurrency())
	var wg sync.WaitGroup
	for _, a := range alerts {
		// Alerts already taken are still sent after a stop, within Grace:
		// left alone they would wait for their lease to end.
		select {
		case sem <- struct{}{}:
		case <-sctx.Done():
			// Not sent: due again when its lease ends.
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d.deliver(sctx, a)
		})
	}
	wg.Wait()
	return len(alerts), nil
}

// deliver sends one alert and marks it.
func (d *Deliverer) deliver(ctx context.Context, a store.Alert) {
	log := d.logger().With("alert", a.ID, "domain", a.Domain, "kind", a.Kind, "target", a.Target)
	err := d.send(ctx, a)
	now := d.now()
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err == nil {
		if err := d.Store.AlertSent(mctx, a.ID, now); err != nil {
			// Sent but not marked: it goes out again after its lease, and
			// the receiver drops it by its ID.
			log.Error("watch: alert sent, but not marked sent; it will be sent again", "err", err)
			return
		}
		log.Debug("watch: alert sent", "attempts", a.Attempts+1)
		return
	}
	next := d.next(a, err, now)
	text := printable.Cut(err.Error(), 1000)
	if next.IsZero() {
		log.Warn("watch: alert given up", "attempts", a.Attempts+1, "err", err)
	} else {
		log.Warn("watch: alert not delivered; will retry", "attempts", a.Attempts+1, "next", next, "err", err)
	}
	if err := d.Store.AlertFailed(mctx, a.ID, next, text); err != nil {
		log.Error("watch: could not record the failed alert", "err", err)
	}
}

// next is when to try a failed alert again; zero gives it up: a permanent
// failure, or the last attempt.
func (d *Deliverer) next(a store.Alert, err error, now time.Time) time.Time {
	b := d.Backoff
	if b == (Backoff{}) {
		b = DefaultBackoff
	}
	e, ok := errors.AsType[*Error](err)
	if ok && e.Permanent || b.MaxAttempts > 0 && a.Attempts+1 >= b.MaxAttempts {
		return time.Time{}
	}
	delay := b.Delay(a.Attempts, nil)
	if ok && e.RetryAfter > delay {
		// The receiver said when (RFC 9110 §10.2.3), within reason.
		delay = min(e.RetryAfter, max(b.Max, delay))
	}
	return now.Add(delay)
}

// send delivers one alert to its target; nil only when the target took it.
func (d *Deliverer) send(ctx context.Context, a store.Alert) error {
	t, err := ParseTarget(a.Target)
	if err != nil {
		return permanent(err)
	}
	body, n, err := withID(a.Body, a.ID)
	if err != nil {
		return permanent(err)
	}
	switch t.Kind {
	case TargetWebhook:
		w := d.Webhook
		if w == nil {
			w = &Webhook{}
		}
		return w.Send(ctx, t, a.ID, body, d.now())
	case TargetMail:
		if d.Mailer == nil {
			return permanent(errors.New("watch: e-mail alerts need a submission server (none configured)"))
		}
		return d.Mailer.Send(ctx, t, n, d.now())
	}
	var changes []string
	for _, c := range n.Changes {
		changes = append(changes, printable.String(c.Message))
	}
	attrs := []any{"alert", a.ID, "domain", n.Domain, "kind", n.Kind, "status", n.Status, "at", n.At,
		"changes", strings.Join(changes, " | ")}
	if !n.Since.IsZero() {
		attrs = append(attrs, "since", n.Since)
	}
	if n.Link != "" {
		attrs = append(attrs, "link", printable.String(n.Link))
	}
	d.logger().Warn("watch alert: "+printable.String(n.Summary()), attrs...)
	return nil
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) concurrency() int { return positiveOr(d.Concurrency, DefaultDeliverConcurrency) }

func (d *Deliverer) batch() int { return positiveOr(d.Batch, DefaultDeliverBatch) }

func (d *Deliverer) poll() time.Duration { return positiveOr(d.Poll, DefaultDeliverPoll) }

func (d *Deliverer) grace() time.Duration { return positiveOr(d.Grace, DefaultDeliverGrace) }

func (d *Deliverer) lease() time.Duration {
	if d.Lease > 0 {
		return d.Lease
	}
	longest := DefaultWebhookTimeout
	if d.Webhook != nil {
		longest = max(longest, d.Webhook.timeout())
	}
	if d.Mailer != nil {
		longest = max(longest, d.Mailer.timeout())
	}
	return 2*longest + time.Minute
}

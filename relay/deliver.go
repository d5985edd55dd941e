package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/dsn"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// DeliveryQueue is what the Deliverer needs of the queue; *queue.Queue is
// one (see its methods for the contract of each).
type DeliveryQueue interface {
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, max int, domain string) ([]queue.Delivery, error)
	Data(ctx context.Context, id queue.ID) ([]byte, error)
	Finish(ctx context.Context, d queue.Delivery, o queue.Outcome) error
	Expired(ctx context.Context, now time.Time, max int) ([]queue.Delivery, error)
	Pending(ctx context.Context) ([]string, error)
	FlushDomain(ctx context.Context, domain string) (int, error)
	LeaseOwners(ctx context.Context, now time.Time) ([]string, error)
	ReleaseLeases(ctx context.Context, owner string) (int, error)
}

// Deliverer defaults.
const (
	DefaultPerDestination = 10
	DefaultMaxSessions    = 100
	DefaultProbeEvery     = 2 * time.Second
	DefaultPoll           = 5 * time.Second
	DefaultLease          = 15 * time.Minute
	// expireBatch bounds the expired deliveries returned in one pass.
	expireBatch = 100
	// finishTimeout bounds the recording of an outcome, which runs even
	// while the Deliverer shuts down: what was delivered must be known.
	finishTimeout = 30 * time.Second
	// forgetAfter is how long a destination's state is kept after it
	// last held mail.
	forgetAfter = time.Hour
)

// Deliverer takes mail out of the queue and forwards it to each
// destination's primary tier (RFC 5321 §5.1), retries what is deferred
// with backoff per destination, returns what fails or expires to its
// sender in a delivery status notification (RFC 3464), and probes the
// primary tier of every destination holding mail out of band (Run starts
// the prober, see watch.go) so the queue flushes within seconds of the
// primary's return. Queue, Sender (with Sender.Planner.Self set) and
// Hostname are required; zero fields take the defaults.
type Deliverer struct {
	Queue DeliveryQueue
	// Sender sends each delivery (send.Sender.Deliver). Its Planner's Self
	// must be the relay's own exchange name: RFC 5321 §5.1, the relay
	// never delivers to itself or to an exchange of equal or worse
	// preference. Set its MTASTS and DANE to honour the destination's.
	// Its Retry should be nil: retries are the queue's.
	Sender *send.Sender
	// Retry is the per-destination schedule: B(n) = min(Max, Base·Factor^n)
	// plus jitter up to a tenth, n counting the destination's consecutive
	// deferrals (its For is not used: the message lifetime bounds it).
	Retry send.Retry
	// Lifetime is how long a notification the relay sends stays queued
	// (the queue sets each accepted message's own Expires); 0:
	// DefaultLifetime.
	Lifetime time.Duration
	// DelayNotice, when set, sends one "delayed" notification to the
	// sender of a message still undelivered that long after its arrival.
	DelayNotice time.Duration
	// PerDestination bounds the sessions open at once to one destination
	// domain; 0: DefaultPerDestination. MaxSessions bounds them all; 0:
	// DefaultMaxSessions.
	PerDestination int
	MaxSessions    int
	// ProbeEvery is the out-of-band probe interval of a destination's
	// primary tier while mail is queued for it; 0: DefaultProbeEvery.
	ProbeEvery time.Duration
	// Poll is how often the queue is looked at without a Wake; 0:
	// DefaultPoll.
	Poll time.Duration
	// Hostname is the relay's name: From MAILER-DAEMON@Hostname and
	// Reporting-MTA of its notifications, and the probe's EHLO name when
	// Sender.HelloName is empty.
	Hostname string
	// Domains are the relay's configured domains. When set, only their
	// primary tiers are probed out of band and recorded in primary_up:
	// notifications to other domains wait for their retry times, and
	// third parties' exchanges are not probed every few seconds.
	Domains []dnsname.Name
	// Owner names this process in the queue's leases; "": host name and
	// process ID, and then Run starts by releasing the leases of this
	// host's dead relay processes (killed mid-delivery, their claims would
	// otherwise wait out the lease): relay nodes sharing one queue must
	// have distinct host names. Lease is how long a claimed delivery stays this
	// process's; 0: DefaultLease. An attempt is cut at three quarters of
	// it, so the lease outlasts it whatever the server does (the time-outs
	// of RFC 5321 §4.5.3.2 add up to more, over several addresses).
	Owner string
	Lease time.Duration
	// Metrics counts deliveries, deferrals, bounces and the primary's
	// state; nil counts nothing.
	Metrics *Metrics
	Logger  *slog.Logger // nil: slog.Default()
	// Now is the clock; nil: time.Now. Rand draws the retry jitter; nil:
	// the process's source.
	Now  func() time.Time
	Rand *rand.Rand

	once    sync.Once
	wake    chan struct{}
	freed   chan struct{}
	dests   *destinations
	workers sync.WaitGroup
}

// ErrNoSelf: the Deliverer's planner does not know the relay's own name,
// so nothing stops it from delivering to itself.
var ErrNoSelf = errors.New("relay: the deliverer's Sender.Planner.Self is not set: the relay could deliver mail to itself (RFC 5321 §5.1)")

func (d *Deliverer) init() {
	d.once.Do(func() {
		d.wake = make(chan struct{}, 1)
		d.freed = make(chan struct{}, 1)
		d.dests = newDestinations(d.Retry, d.Rand)
	})
}

// Wake makes Run look at the queue now: a message was accepted.
func (d *Deliverer) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then waits for the sessions under way
// and returns nil. An error means it could not start.
func (d *Deliverer) Run(ctx context.Context) error {
	switch {
	case d.Queue == nil || d.Sender == nil || d.Sender.Planner == nil:
		return errors.New("relay: a deliverer needs a Queue and a Sender with a Planner")
	case d.Sender.Planner.Self == "":
		return ErrNoSelf
	case d.Hostname == "":
		return errors.New("relay: a deliverer needs the relay's Hostname (MAILER-DAEMON@Hostname)")
	}
	d.init()
	if d.Owner == "" {
		d.releaseDead(ctx)
	}
	var prober sync.WaitGroup
	prober.Go(func() { d.watch(ctx) })
	defer prober.Wait()
	defer d.workers.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-d.freed:
		case <-t.C:
		}
		d.pass(ctx)
		t.Reset(cmp.Or(d.Poll, DefaultPoll))
	}
}

// pass returns expired mail, then claims what is due for every
// destination with a free session slot and starts delivering it.
func (d *Deliverer) pass(ctx context.Context) {
	d.init()
	now := d.now()
	d.expire(ctx, now)
	domains, err := d.Queue.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger().Error("relay: queue: pending domains", "err", err)
		}
		return
	}
	per := cmp.Or(d.PerDestination, DefaultPerDestination)
	for _, domain := range domains {
		n := d.dests.acquire(domain, now, per, cmp.Or(d.MaxSessions, DefaultMaxSessions))
		if n == 0 {
			continue
		}
		claimed, err := d.Queue.Claim(ctx, d.owner(), now, cmp.Or(d.Lease, DefaultLease), n, domain)
		if err != nil && ctx.Err() == nil {
			d.logger().Error("relay: queue: claim", "domain", domain, "err", err)
		}
		d.dests.release(domain, n-len(claimed))
		for _, dl := range claimed {
			d.workers.Go(func() {
				defer func() {
					d.dests.release(domain, 1)
					select {
					case d.freed <- struct{}{}:
					default:
					}
				}()
				d.deliver(ctx, dl)
			})
		}
	}
	d.dests.forget(now.Add(-forgetAfter))
}

// expire returns every delivery past its message's Expires to its sender
// (RFC 5321 §4.5.4.1: give up after a bounded time, and notify).
func (d *Deliverer) expire(ctx context.Context, now time.Time) {
	expired, err := d.Queue.Expired(ctx, now, expireBatch)
	if err != nil {
		if ctx.Err() == nil {
			d.logger().Error("relay: queue: expired deliveries", "err", err)
		}
		return
	}
	for _, dl := range expired {
		d.expireOne(ctx, dl, now)
	}
}

// expireOne fails every recipient of dl with 4.4.7 (RFC 3463: delivery
// time expired) and notifies the sender.
func (d *Deliverer) expireOne(ctx context.Context, dl queue.Delivery, now time.Time) {
	o := queue.Outcome{Failed: map[string]string{}}
	var rcpts []dsn.Recipient
	for _, r := range dl.Recipients {
		why := "expired: undelivered after " + now.Sub(dl.Received).Round(time.Minute).String()
		if dl.LastError != "" {
			why += "; last: " + trimMark(dl.LastError)
		}
		o.Failed[r] = why
		rc := dsn.Recipient{FinalRecipient: r, Action: dsn.ActionFailed, Status: "4.4.7",
			Reason: "The message could not be delivered before it expired (" + now.Sub(dl.Received).Round(time.Minute).String() + " in the queue)."}
		if isReply(trimMark(dl.LastError)) {
			rc.Diagnostic = trimMark(dl.LastError)
		} else if dl.LastError != "" {
			rc.Reason += " Last error: " + trimMark(dl.LastError)
		}
		rcpts = append(rcpts, rc)
		d.Metrics.Expired()
	}
	data, err := d.Queue.Data(ctx, dl.Message)
	if err != nil {
		d.logger().Warn("relay: the notification returns no header: message data", "message", dl.Message, "err", err)
	}
	o.Notify = d.notice(dl, rcpts, now, data)
	d.logger().Info("relay: expired", "message", dl.Message, "domain", dl.Domain, "recipients", len(dl.Recipients), "sender", dl.Sender, "notified", o.Notify != nil)
	d.finish(ctx, dl, o)
}

// deliver makes one attempt at one delivery and records its outcome.
func (d *Deliverer) deliver(ctx context.Context, dl queue.Delivery) {
	now := d.now()
	if !now.Before(dl.Expires) {
		d.expireOne(ctx, dl, now)
		return
	}
	data, err := d.Queue.Data(ctx, dl.Message)
	if err != nil {
		// The message was deleted meanwhile, or the queue failed: the
		// lease ends and another pass tries again.
		d.logger().Warn("relay: queue: message data", "message", dl.Message, "err", err)
		return
	}
	// The attempt ends well inside the lease: past it, another owner may
	// claim the delivery and send it a second time.
	lease := cmp.Or(d.Lease, DefaultLease)
	actx, cancel := context.WithTimeout(ctx, lease-lease/4)
	res, err := d.Sender.Deliver(actx, send.Envelope{From: dl.Sender, To: dl.Recipients, Data: data})
	cancel()
	now = d.now()
	o := queue.Outcome{Failed: map[string]string{}, Deferred: map[string]string{}}
	var failed, delayed []dsn.Recipient
	answered := false
	for _, r := range res.Recipients {
		switch r.Status {
		case send.RecipientAccepted:
			o.Delivered = append(o.Delivered, r.Recipient)
			answered = true
			d.Metrics.Delivered()
		case send.RecipientRejected:
			o.Failed[r.Recipient] = diagnostic(r)
			failed = append(failed, dsn.Recipient{FinalRecipient: r.Recipient, Action: dsn.ActionFailed, Status: status(r, '5', res.Route),
				RemoteMTA: r.Host, Diagnostic: replyText(r), Reason: reasonText(r), LastAttempt: now})
			answered = answered || r.Code != 0
			d.Metrics.Failed()
		default:
			o.Deferred[r.Recipient] = diagnostic(r)
			delayed = append(delayed, dsn.Recipient{FinalRecipient: r.Recipient, Action: dsn.ActionDelayed, Status: status(r, '4', res.Route),
				RemoteMTA: r.Host, Diagnostic: replyText(r), Reason: reasonText(r), LastAttempt: now, WillRetryUntil: dl.Expires})
			d.Metrics.Deferred()
		}
	}
	if answered {
		d.dests.succeeded(dl.Domain)
	}
	log := d.logger().With("message", dl.Message, "domain", dl.Domain, "attempt", dl.Attempts+1)
	switch {
	case len(o.Deferred) > 0 && ctx.Err() != nil:
		// Shutting down: the attempt was cut short, not refused; the
		// next process tries again at once.
		log.Info("relay: attempt interrupted", "recipients", len(o.Deferred))
	case len(o.Deferred) > 0:
		o.Next = d.dests.deferred(dl.Domain, now, res.Error, connectionFailure(res))
		if errors.Is(err, route.ErrMailLoop) {
			// RFC 5321 §5.1: the relay is the most preferred exchange
			// left; sending anywhere would loop. A configuration error
			// for the destination: deferred, never sent to itself.
			log.Error("relay: routing error: no exchange better than the relay itself", "self", d.Sender.Planner.Self, "err", err)
		} else {
			log.Info("relay: deferred", "recipients", len(o.Deferred), "next", o.Next, "err", err)
		}
	}
	var notify []dsn.Recipient
	if len(failed) > 0 {
		notify = failed
		log.Info("relay: failed", "recipients", len(failed), "err", err)
	}
	marked := strings.HasPrefix(dl.LastError, delayMark)
	if len(delayed) > 0 && d.DelayNotice > 0 && !marked && now.Sub(dl.Received) >= d.DelayNotice && dl.Sender != "" {
		// One delay notice per delivery: its mark stays in the reason the
		// queue keeps (LastError), which survives restarts.
		notify = append(notify, delayed...)
		marked = true
	}
	if marked {
		for r, why := range o.Deferred {
			o.Deferred[r] = delayMark + why
		}
	}
	if len(notify) > 0 {
		o.Notify = d.notice(dl, notify, now, data)
	}
	if len(o.Delivered) > 0 {
		log.Info("relay: delivered", "recipients", len(o.Delivered), "host", res.Host, "queue_id", res.QueueID)
	}
	d.finish(ctx, dl, o)
}

// delayMark starts the queue's LastError of a delivery whose sender has
// had its delay notice.
const delayMark = "[delay notice sent] "

func trimMark(s string) string { return strings.TrimPrefix(s, delayMark) }

// finish records an outcome, even after ctx ends (shutdown): a message
// delivered and not recorded would be sent again.
func (d *Deliverer) finish(ctx context.Context, dl queue.Delivery, o queue.Outcome) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := d.Queue.Finish(fctx, dl, o); err != nil {
		d.logger().Error("relay: queue: finish", "message", dl.Message, "domain", dl.Domain, "err", err)
		return
	}
	if o.Notify != nil {
		d.Metrics.Bounced()
		d.Wake()
	}
}

// notice builds the notification for rcpts of dl (data: the original, of
// which the header goes back), to be queued with the outcome: from the null sender to the envelope sender. It returns nil for
// mail from the null sender, which is never answered (RFC 5321 §4.5.5:
// a notification about a notification would loop).
func (d *Deliverer) notice(dl queue.Delivery, rcpts []dsn.Recipient, now time.Time, data []byte) *queue.Message {
	log := d.logger().With("message", dl.Message, "sender", dl.Sender)
	if dl.Sender == "" {
		log.Info("relay: no notification: the null sender gets none (RFC 5321 §4.5.5)")
		return nil
	}
	// The domain follows the last "@": a quoted local part may hold one.
	i := strings.LastIndexByte(dl.Sender, '@')
	local, domain := dl.Sender[:max(i, 0)], dl.Sender[i+1:]
	name, err := dnsname.Parse(domain)
	if i <= 0 || err != nil {
		log.Warn("relay: no notification: the sender has no domain to send it to", "err", err)
		return nil
	}
	b, err := dsn.Build(dsn.Report{ReportingMTA: d.Hostname, Sender: dl.Sender, Arrival: dl.Received, Date: now,
		Recipients: rcpts, Original: data})
	if err != nil {
		log.Warn("relay: no notification", "err", err)
		return nil
	}
	return &queue.Message{Sender: "", Recipients: []string{local + "@" + name.String()}, Data: b,
		Received: now, Expires: now.Add(cmp.Or(d.Lifetime, DefaultLifetime))}
}

// connectionFailure reports an attempt in which no exchange got as far as
// a mail transaction: the primary tier is down, as the prober sees it.
func connectionFailure(res *send.Result) bool {
	if len(res.Attempts) == 0 {
		return false
	}
	for _, a := range res.Attempts {
		switch a.Stage {
		case send.StageConnect, send.StageBanner, send.StageEHLO:
		default:
			return false
		}
	}
	return true
}

// status is a recipient's RFC 3463 status for its notification: the
// server's enhanced code when it agrees with the class, else one derived
// from what happened on plan (the route of the attempt; nil when none was
// computed).
func status(r send.RecipientResult, class byte, plan *route.Plan) string {
	if r.Enhanced != "" && r.Enhanced[0] == class {
		return r.Enhanced
	}
	switch {
	case class == '5' && r.Code == 0 && plan != nil && plan.Result == route.ResultNullMX:
		return "5.1.10" // RFC 7505 §4.2 (RFC 7504): the domain accepts no mail
	case class == '5' && r.Code == 0:
		return "5.4.4" // RFC 3463: unable to route
	case class == '4' && r.Code == 0:
		return "4.4.1" // RFC 3463: no answer from host
	}
	return string(class) + ".0.0"
}

// replyText is the SMTP reply about a recipient, "550 5.1.1 text", when
// there was one (Diagnostic-Code, RFC 3464 §2.3.6).
func replyText(r send.RecipientResult) string {
	if r.Code == 0 {
		return ""
	}
	return strings.TrimSpace(strconv.Itoa(r.Code) + " " + strings.TrimSpace(r.Enhanced+" "+r.Reply))
}

// reasonText is the reason in words when there was no reply.
func reasonText(r send.RecipientResult) string {
	if r.Code != 0 {
		return ""
	}
	return r.Error
}

// diagnostic is what the queue keeps about a recipient: the reply, or the
// error with the exchange it came from.
func diagnostic(r send.RecipientResult) string {
	if t := replyText(r); t != "" {
		return t
	}
	if r.Host != "" && r.Address != "" {
		return r.Host + " [" + r.Address + "]: " + r.Error
	}
	return r.Error
}

// isReply reports a text that starts as an SMTP reply, "NNN ".
func isReply(s string) bool {
	return len(s) >= 4 && s[3] == ' ' && s[0] >= '2' && s[0] <= '5' && isDigit(s[1]) && isDigit(s[2])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (d *Deliverer) owner() string {
	if d.Owner != "" {
		return d.Owner
	}
	return fmt.Sprintf("%s:%d", hostOwner(), os.Getpid())
}

// hostOwner is the host part of the default owner, host:pid.
func hostOwner() string {
	h, _ := os.Hostname()
	return cmp.Or(h, "relay")
}

// releaseDead ends the leases held by relay processes of this host that
// are gone: the default owner is host:pid, and a pid of this host that no
// process has is a relay that was killed (kill -9, a crash, a power cut)
// while it held deliveries. Without this they would wait out their lease
// (15 minutes by default) after a restart, not seconds. A failure here is
// logged and the leases expire as they would have.
func (d *Deliverer) releaseDead(ctx context.Context) {
	owners, err := d.Queue.LeaseOwners(ctx, d.now())
	if err != nil {
		d.logger().Warn("relay: queue: lease owners", "err", err)
		return
	}
	host, self := hostOwner(), os.Getpid()
	for _, o := range owners {
		h, p, ok := strings.Cut(o, ":")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || h != host || pid == self || pid <= 0 || processAlive(pid) {
			continue
		}
		n, err := d.Queue.ReleaseLeases(ctx, o)
		if err != nil {
			d.logger().Warn("relay: queue: release the leases of a dead process", "owner", o, "err", err)
			continue
		}
		d.logger().Info("relay: released the deliveries of a relay process that is gone", "owner", o, "deliveries", n)
	}
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// The queue the relay runs on is a DeliveryQueue.
var _ DeliveryQueue = (*queue.Queue)(nil)

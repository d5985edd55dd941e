package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
)

// Defaults of a Runner's zero fields.
const (
	DefaultConcurrency = 8
	DefaultTimeout     = 20 * time.Second
	DefaultPoll        = 30 * time.Second
	DefaultGrace       = 10 * time.Second
)

// Runner checks the watches that are due and records what it found: the
// result whole, the typed changes since the last result, and the alerts the
// policy asks for, in one transaction (store.Store.Record), so a crash at
// any point leaves either the whole result or nothing.
//
// Several Runners, in one process or on several machines sharing one
// database, split the work with leases (store.Store.Claim): a watch is
// checked by the worker holding its lease, and a worker that dies leaves
// its watches to the others once their leases pass.
type Runner struct {
	Store store.Store
	// Auditor is the audit of every watch, the same as check's.
	Auditor *check.Auditor
	// Planner, when set, replaces the Auditor: each watch is only routed
	// (as scan --mode route), its result is the plan and its facts
	// SnapshotOfPlan's, so Diff compares the routing facts alone. A
	// route costs a few queries where a check costs many and connects to
	// every exchange: the mode for watching a great many domains.
	Planner *route.Planner
	// Policy turns a new result into the alerts to queue with it; nil
	// queues none.
	Policy Policy
	// Deliverer, when set, is run by Run beside the checks: it sends the
	// queued alerts.
	Deliverer interface {
		Run(ctx context.Context) error
	}
	Logger *slog.Logger // nil: silent

	// Concurrency is the number of checks at once (0: DefaultConcurrency).
	Concurrency int
	// Timeout bounds one check (0: DefaultTimeout).
	Timeout time.Duration
	// Lease is how long a claimed watch stays this worker's (0: twice
	// Timeout plus a minute, so a check and its recording fit in it). It
	// must be longer than a check: a lease that runs out hands the watch
	// to another worker, and this worker's result is then refused
	// (store.ErrLeaseLost).
	Lease time.Duration
	// Worker names this worker in the leases ("": WorkerID()).
	Worker string
	// Jitter spreads the next runs: a watch checked at t is due next at
	// t + Every ± Jitter×Every (0: on the dot; at most 0.5), so watches
	// added together do not stay in step, and nor do their queries.
	Jitter float64
	// Poll is the longest the daemon sleeps before it looks at the
	// schedule again (0: DefaultPoll): a watch added by another process is
	// seen within it.
	Poll time.Duration
	// Grace is how long, once the context is done, the checks in flight
	// may run to their end and be recorded (0: DefaultGrace); a check still
	// running after it is abandoned, never recorded in part, and its lease
	// left to run out.
	Grace time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	workerOnce sync.Once
	workerID   string
}

// Policy decides the alerts of one new result: w is the watch (its alert
// targets), prev the domain's result before cur (nil for the first), and
// changes what Diff found between the last result that was not a
// temporary failure and cur. The alerts are queued with cur in the same
// transaction.
type Policy func(ctx context.Context, w store.Watch, prev *store.Result, cur *store.Result, changes []Change) ([]store.Alert, error)

// Checked is what RunOnce did with one watch.
type Checked struct {
	Domain   string
	ResultID int64 // 0 when nothing was recorded
	Status   string
	// Temporary: the domain could not be checked (stored as such, and not
	// diffed).
	Temporary bool
	Changes   []Change
	Alerts    int
	// Err is why nothing was recorded: the store failed, the lease was
	// lost (store.ErrLeaseLost), or the check was abandoned at a stop.
	Err error
}

// ErrAbandoned is a Checked's Err when the check was still running when
// the grace after a stop ran out: nothing was recorded.
var ErrAbandoned = errors.New("watch: check abandoned at stop")

// WorkerID names this process in the leases: host name and process ID,
// and a random suffix so two runs of one PID (a container restarted) are
// told apart.
func WorkerID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatUint(rand.Uint64()&0xffffff, 16)
}

// RunOnce checks what is due (every watch with all), Concurrency at a
// time, and returns what it did with each, in the order they finished. It
// returns an error only when the store could not hand out work; a watch
// whose result could not be recorded is in the list with its Err.
//
// When ctx ends, RunOnce claims nothing more, and waits Grace for the
// checks in flight before it abandons them.
func (r *Runner) RunOnce(ctx context.Context, all bool) ([]Checked, error) {
	// hard ends Grace after ctx: the checks in flight and their recording
	// run on it, so a stop lets them finish.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(r.grace())
		defer t.Stop()
		select {
		case <-t.C:
			cancelHard()
		case <-hard.Done():
		}
	})
	defer stopGrace()

	var (
		mu  sync.Mutex
		out []Checked
		wg  sync.WaitGroup
	)
	conc := r.concurrency()
	slots := make(chan struct{}, conc)
	start := func(w store.Watch) {
		wg.Go(func() {
			defer func() { <-slots }()
			c := r.check(hard, w)
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		})
	}
	done := func(err error) ([]Checked, error) {
		wg.Wait()
		return out, err
	}

	if all {
		// Every watch at once: Claim with all hands out the same watches
		// again after they are recorded, so there is one claim, with a
		// lease long enough for all of them to be checked conc at a time.
		ws, err := r.Store.Watches(ctx)
		var claimed []store.Watch
		if err == nil {
			rounds := (len(ws) + conc - 1) / conc
			claimed, err = r.Store.Claim(ctx, r.worker(), r.now(), 0, r.lease()*time.Duration(rounds+1), true)
		}
		if ctx.Err() != nil {
			return done(nil)
		}
		if err != nil {
			return done(err)
		}
		for _, w := range claimed {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				// The rest are not checked: their leases run out.
				return done(nil)
			}
			start(w)
		}
		return done(nil)
	}

	for {
		// Claim as many as there are free slots, at least one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return done(nil)
		}
		free := 1
	more:
		for free < conc {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		claimed, err := r.Store.Claim(ctx, r.worker(), r.now(), free, r.lease(), false)
		for range free - len(claimed) {
			<-slots
		}
		if ctx.Err() != nil {
			// Stopped: what the claim may have leased runs out.
			return done(nil)
		}
		if err != nil || len(claimed) == 0 {
			return done(err)
		}
		for _, w := range claimed {
			start(w)
		}
	}
}

// check audits one watch and records the result, its changes and its
// alerts in one transaction.
func (r *Runner) check(ctx context.Context, w store.Watch) Checked {
	c := Checked{Domain: w.Domain}
	log := r.logger().With("domain", w.Domain)
	// fail ends the check with nothing recorded: abandoned when the stop's
	// grace ran out (whatever the store said then), else err.
	fail := func(err error, msg string) Checked {
		switch {
		case ctx.Err() != nil:
			c.Err = ErrAbandoned
			log.Warn("watch: check abandoned at stop; its lease will run out")
		case errors.Is(err, store.ErrLeaseLost):
			c.Err = err
			log.Warn("watch: lease lost: another worker checked it; result dropped", "err", err)
		default:
			c.Err = err
			log.Error(msg, "err", err)
		}
		return c
	}
	name, err := dnsname.Parse(w.Domain)
	if err != nil {
		return fail(fmt.Errorf("watch %s: %w", w.Domain, err), "watch: not a domain name; remove the watch")
	}
	at := r.now().UTC()
	log.Debug("watch: checking")
	cctx, cancel := context.WithTimeout(ctx, r.timeout())
	snap, value, worst := r.audit(cctx, name)
	cancel()
	if ctx.Err() != nil {
		// Stopped in the middle: the report is not what the domain
		// serves but what was asked before the stop.
		return fail(ctx.Err(), "")
	}
	prev, err := r.Store.Last(ctx, w.Domain)
	if err != nil {
		return fail(err, "watch: could not read the last result")
	}
	res, changes, err := r.result(ctx, w, name, at, snap, value, worst, prev)
	if err != nil {
		return fail(err, "watch: could not compare with the last result")
	}
	var alerts []store.Alert
	if r.Policy != nil {
		if alerts, err = r.Policy(ctx, w, prev, res, changes); err != nil {
			return fail(err, "watch: could not decide the alerts")
		}
	}
	stored := make([]store.Change, len(changes))
	for i, ch := range changes {
		stored[i] = StoreChange(ch)
	}
	// One transaction; when the grace runs out in it, it rolls back.
	id, err := r.Store.Record(ctx, r.worker(), *res, stored, alerts, r.nextRun(w, at))
	if err != nil {
		return fail(err, "watch: could not record")
	}
	c.ResultID, c.Status, c.Temporary, c.Changes, c.Alerts = id, res.Status, res.Temporary, changes, len(alerts)
	log.Info("watch: checked", "result", id, "status", res.Status, "changes", len(changes), "alerts", len(alerts))
	return c
}

// audit examines one domain: its route alone when the Runner has a
// Planner, else the whole audit. It returns the facts, the value stored
// as the result's report (what --json prints) and the worst finding.
func (r *Runner) audit(ctx context.Context, name dnsname.Name) (*Snapshot, any, finding.Severity) {
	if r.Planner != nil {
		// Plan always returns a plan; its error is the plan's result
		// (error), which SnapshotOfPlan marks temporary.
		p, _ := r.Planner.Plan(ctx, name)
		return SnapshotOfPlan(p), p, finding.Worst(p.Findings)
	}
	rep := r.Auditor.Audit(ctx, name)
	return SnapshotOf(rep), rep, finding.Worst(rep.Findings)
}

// result builds the stored result of one audit (snap its facts, value
// its report, worst its worst finding) and its changes since the last
// result the domain could be checked at. A temporary failure is not
// a new state of the domain: it is stored, but diffed against nothing, so
// a DNS time-out never shows as every record removed; the next good result
// is diffed against the last good one.
func (r *Runner) result(ctx context.Context, w store.Watch, name dnsname.Name, at time.Time, snap *Snapshot, value any, worst finding.Severity, prev *store.Result) (*store.Result, []Change, error) {
	// Certificate expiry is judged against the time the check started.
	snap.At = at
	facts, err := json.Marshal(snap)
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: facts: %w", name, err)
	}
	body, err := report.AppendJSON(nil, value)
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: report: %w", name, err)
	}
	res := &store.Result{Domain: w.Domain, At: at, Report: body, Facts: facts, Temporary: snap.Temporary()}
	res.Status = status(worst, res.Temporary)
	if res.Temporary {
		return res, nil, nil
	}
	base, err := r.lastGood(ctx, prev)
	if err != nil || base == nil {
		return res, nil, err
	}
	old, err := ParseSnapshot(base.Facts)
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: the facts of result %d: %w", name, base.ID, err)
	}
	return res, Diff(old, snap), nil
}

// DiffFacts is Diff of two stored results' facts (store.Result.Facts).
func DiffFacts(old, new []byte) ([]Change, error) {
	o, err := ParseSnapshot(old)
	if err != nil {
		return nil, err
	}
	n, err := ParseSnapshot(new)
	if err != nil {
		return nil, err
	}
	return Diff(o, n), nil
}

// lastGoodWindow is how many results lastGood reads back at a time.
const lastGoodWindow = 32

// lastGood is the newest result, last or before it, that was not a
// temporary failure, or nil when there is none.
func (r *Runner) lastGood(ctx context.Context, last *store.Result) (*store.Result, error) {
	if last == nil || !last.Temporary {
		return last, nil
	}
	// A run of failures: look back, a window at a time and light, to the
	// last good result, and read that one whole.
	for seen := 0; ; {
		rs, err := r.Store.Summaries(ctx, last.Domain, time.Time{}, seen+lastGoodWindow)
		if err != nil {
			return nil, err
		}
		for i := seen; i < len(rs); i++ {
			if !rs[i].Temporary {
				return r.Store.Result(ctx, rs[i].ID)
			}
		}
		if len(rs) < seen+lastGoodWindow {
			return nil, nil
		}
		seen = len(rs)
	}
}

// status is the stored status of an audit: store.StatusError when it
// could not be done in full (temporary: an area or an exchange's
// addresses could not be looked up, check's exit status 3),
// store.StatusProblems with a finding at warning or above, else
// store.StatusOK.
func status(worst finding.Severity, temporary bool) string {
	switch {
	case temporary:
		return store.StatusError
	case worst >= finding.Warning:
		return store.StatusProblems
	}
	return store.StatusOK
}

// StoreChange is a change as the store keeps it.
func StoreChange(c Change) store.Change {
	return store.Change{Kind: string(c.Kind), Subject: c.Subject, Severity: c.Severity.String(), Message: c.Message, Old: c.Old, New: c.New}
}

// nextRun is when w is due after a check at at: Every later, give or take
// the jitter.
func (r *Runner) nextRun(w store.Watch, at time.Time) time.Time {
	j := min(max(r.Jitter, 0), 0.5)
	spread := time.Duration((rand.Float64()*2 - 1) * j * float64(w.Every))
	return at.Add(w.Every + spread)
}

// Run is the daemon: it checks what is due, sleeps until the next watch
// is due (at most Poll), and again, until ctx ends; the Deliverer runs
// beside it. On a stop it lets the checks in flight finish within Grace,
// and returns nil. A store that fails is logged and tried again at the
// next poll: the daemon outlives a database restart.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if r.Deliverer != nil {
		wg.Go(func() {
			if err := r.Deliverer.Run(ctx); err != nil && ctx.Err() == nil {
				r.logger().Error("watch: alert delivery stopped", "err", err)
			}
		})
	}
	defer wg.Wait()
	for ctx.Err() == nil {
		checked, err := r.RunOnce(ctx, false)
		if err != nil && ctx.Err() == nil {
			r.logger().Error("watch: could not claim due watches", "err", err)
		}
		t := time.NewTimer(r.sleep(ctx, len(checked) > 0))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// minSleep keeps the daemon from spinning on a watch that is due but
// leased to another worker (unless Poll is shorter).
const minSleep = time.Second

// sleep is how long the daemon waits before it claims again: until the
// next watch is due, between minSleep and Poll. After a pass that checked
// something, more is likely due within the second: the shortest sleep,
// without asking the store.
func (r *Runner) sleep(ctx context.Context, busy bool) time.Duration {
	poll := r.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	if busy {
		return min(minSleep, poll)
	}
	next, err := r.Store.NextDue(ctx)
	if err != nil {
		return poll
	}
	d := poll
	if !next.IsZero() {
		d = min(d, next.Sub(r.now()))
	}
	return max(d, min(minSleep, poll))
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// positiveOr is v, or def when v is not positive: a setting left at zero
// takes its default.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) concurrency() int { return positiveOr(r.Concurrency, DefaultConcurrency) }

func (r *Runner) timeout() time.Duration { return positiveOr(r.Timeout, DefaultTimeout) }

func (r *Runner) lease() time.Duration {
	if r.Lease > 0 {
		return r.Lease
	}
	return 2*r.timeout() + time.Minute
}

func (r *Runner) grace() time.Duration { return positiveOr(r.Grace, DefaultGrace) }

// WorkerName is the name of this worker in the leases.
func (r *Runner) WorkerName() string { return r.worker() }

// worker is set once: Worker, or a WorkerID made on first use.
func (r *Runner) worker() string {
	r.workerOnce.Do(func() {
		r.workerID = r.Worker
		if r.workerID == "" {
			r.workerID = WorkerID()
		}
	})
	return r.workerID
}

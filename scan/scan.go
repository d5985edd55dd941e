// Package scan routes or audits long lists of mail domains (millions: the
// Tranco list, a registry's zone file, a customer base) and writes one line
// per input entry: per domain, exactly the object "route --json" (RFC 5321
// §5.1 delivery plan) or "check --json" prints; per entry that is not a
// domain, an ErrorRecord. Nothing is dropped and nothing is written twice.
//
// It is a pipeline with one writer:
//
//	Source (streamed) → bounded worker pool → reorder window → one writer
//
// The input is read as it is needed, never held whole. Config.Concurrency
// workers each run the Job for one domain at a time, with bounded retries
// (exponential backoff, full jitter) when a lookup failed temporarily;
// with a Prefetch and Cached (a route scan), most domains skip them and
// are finished where their last answer arrives. The
// writer puts the lines back in input order through a window of
// Config.Window entries: when the window is full, no new entry is started
// until the oldest one is written, so the memory held is bounded by the
// window, not the input. With Config.Unordered lines are written as they
// finish.
//
// An interrupted run (its context cancelled) stops reading, lets the
// entries in progress end, writes every finished entry up to the first
// unfinished one, and flushes: the output is a valid file that Resume
// continues. Shard splits an input between machines without coordination.
package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
)

// Defaults for Config.
const (
	DefaultConcurrency = 256
	// MaxConcurrency and MaxWindow bound Config.Concurrency and
	// Config.Window (larger values are cut to them): the window's buffers
	// are allocated up front, and --concurrency 100000000 asked for 28 GB
	// at once. 65,536 workers are far more than any resolver serves.
	MaxConcurrency = 1 << 16
	MaxWindow      = 4 * MaxConcurrency
	DefaultBackoff = 250 * time.Millisecond
	// MaxBackoff caps the delay before one retry.
	MaxBackoff = 10 * time.Second
	// flushInterval bounds how long a finished line may sit in the
	// write buffer, so the file (and tail -f) keeps up, and a killed run
	// loses at most this much work.
	flushInterval = time.Second
)

// errStopped is feed's: the run ended before the input did.
var errStopped = errors.New("scan: stopped reading")

// ErrInterrupted is returned when the run's context ended before the end
// of the input; the output holds everything finished until then.
var ErrInterrupted = errors.New("scan: interrupted")

// Config configures a run. Job is required.
type Config struct {
	// Job computes the outcome for one domain (Route or Check).
	Job Job
	// Prefetch, when set, starts the DNS lookups the Job will make for a
	// domain without waiting for them, and calls done when they are
	// answered (route.Planner.Prefetch); the Job runs then. Up to
	// Concurrency domains are being prefetched or worked on at once, and
	// no goroutine waits on a lookup meanwhile.
	Prefetch func(domain dnsname.Name, done func())
	// Cached, when set with Prefetch, computes a domain's outcome from
	// the answers in memory as soon as its prefetch ends, on the goroutine
	// that ended it, instead of handing the domain to a worker; the Job
	// runs only when Cached finds an answer missing. In a route scan the
	// handoff moved every domain, its answers just parsed on one core, to
	// a worker that often ran on the other (docs/performance.md, "The
	// route plan where its answers end").
	Cached CachedJob
	// Mode names the job in the summary ("route", "check").
	Mode string
	// Format is FormatJSON (the default) or FormatCSV.
	Format Format
	// Concurrency is the number of workers (default DefaultConcurrency,
	// at most MaxConcurrency).
	Concurrency int
	// Window is the number of entries that may be started but not yet
	// written (default 4 × Concurrency, at least Concurrency, at most
	// MaxWindow). In input
	// order, the entries waiting for an earlier, slower one are held
	// there; when it is full no new entry starts.
	Window int
	// Unordered writes lines as they finish instead of in input order.
	Unordered bool
	// Timeout bounds each attempt at one domain (0: no bound). Attempts
	// that start within a hundredth of it (at most 10 ms) share one
	// deadline, so an attempt may run that much longer.
	Timeout time.Duration
	// Retries is how many more attempts a domain gets after a temporary
	// failure (see Temporary).
	Retries int
	// Backoff is the base delay before a retry (default DefaultBackoff):
	// retry n waits a random time up to Backoff × 2ⁿ⁻¹, at most
	// MaxBackoff ("full jitter", so retries of many domains spread out).
	Backoff time.Duration
	// Shard selects a share of the input (the zero Shard: all of it).
	Shard Shard
	// Done lists what an earlier run already wrote to the output (from
	// Resume); nil for a fresh output.
	Done *Done
	// Progress, when set, receives a status line redrawn in place (a
	// terminal); Total, when set, counts the entries for it.
	Progress io.Writer
	Total    func(context.Context) (int64, error)
	// Written, when set, is called by the one writer after each line it
	// wrote: the entry, the value the line encodes (a *route.Plan, a
	// *check.Report or an *ErrorRecord) and the line itself (JSON, or CSV
	// with FormatCSV). scan --db stores the lines with it. It holds the
	// writer up while it runs, so a slow Written slows the scan rather
	// than letting lines pile up; an error from it stops the run like an
	// output error. line is reused after it returns: keep a copy.
	Written func(it Item, value any, line []byte) error

	Logger *slog.Logger // nil: silent
}

// task is one entry handed to a worker.
type task struct {
	seq  int64
	item Item
	// active is set when the task holds a place among the Concurrency
	// domains in progress (taken by feed for a prefetch).
	active bool
}

// runner is one run's state.
type runner struct {
	cfg Config
	sum *Summary
	// work ends when the run is interrupted or the output fails.
	work   context.Context
	cancel context.CancelCauseFunc

	inflight, maxInflight atomic.Int64
	resumed               atomic.Int64
	unfinished            int64 // entries cut short by an interruption (the writer's)
	prog                  *progress
	deadlines             *deadlines // nil without a Timeout
	lines                 lineBuffers
	// encoders are the encoders of the outcomes Cached computes, outside
	// the workers (which each keep their own).
	encoders sync.Pool
	// finishing guards results against the close that ends the writer:
	// a prefetch may end (and Cached send its outcome) after the workers
	// stopped, when the run was interrupted. Senders (hand) hold it
	// shared and look at resultsClosed first.
	finishing     sync.RWMutex
	resultsClosed bool
}

// Run reads src, scans every entry of the shard that Done does not list,
// and writes the lines to out. It returns the summary of the run, also
// when it fails; the error is ErrInterrupted (wrapping the context's
// cause) when ctx ended first, an ErrResume when the output does not
// match the input, or the input's or output's error.
func Run(ctx context.Context, src Source, out io.Writer, cfg Config) (*Summary, error) {
	if cfg.Job == nil {
		return nil, errors.New("scan: no Job")
	}
	cfg.Format = cmp.Or(cfg.Format, FormatJSON)
	cfg.Concurrency = min(cmp.Or(max(cfg.Concurrency, 0), DefaultConcurrency), MaxConcurrency)
	cfg.Window = min(max(cmp.Or(cfg.Window, 4*cfg.Concurrency), cfg.Concurrency), MaxWindow)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)

	r := &runner{cfg: cfg, sum: newSummary(cfg.Mode), lines: make(lineBuffers, cfg.Window)}
	r.work, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)
	if cfg.Timeout > 0 {
		r.deadlines = newDeadlines(r.work, cfg.Timeout)
		defer r.deadlines.stop()
	}
	if cfg.Progress != nil {
		r.prog = startProgress(r.work, cfg.Progress, cfg.Total)
	}

	w := newWriter(out)
	if cfg.Format == FormatCSV && (cfg.Done == nil || !cfg.Done.header) {
		if err := w.write(newEncoder(FormatCSV).header()); err != nil {
			return r.end(fmt.Errorf("scan: writing the output: %w", err))
		}
	}

	window := make(chan struct{}, cfg.Window)
	// Every task in jobs holds a place in the window, so a send to it
	// never blocks, not even from a prefetch's callback.
	jobs := make(chan task, cfg.Window)
	active := make(chan struct{}, cfg.Concurrency)
	// Every outcome holds a place in the window until the writer has
	// taken it, so a send to results never blocks either: Cached's
	// outcomes are sent from a socket's reader.
	results := make(chan *outcome, cfg.Window)
	r.encoders.New = func() any { return newEncoder(cfg.Format) }
	prefetched := func(t task) {
		if !r.finishCached(t, active, results) {
			jobs <- t
		}
	}
	feedErr := make(chan error, 1)
	go func() {
		// Not waited for: a read that blocks (stdin) must not keep an
		// interrupted run from ending. It stops at its next entry.
		var prefetching sync.WaitGroup
		defer func() {
			prefetching.Wait()
			close(jobs)
		}()
		feedErr <- r.feed(src, window, active, jobs, prefetched, &prefetching)
	}()
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Go(func() {
			enc := newEncoder(cfg.Format)
			for {
				t, ok := receive(jobs, r.work.Done())
				if !ok {
					return
				}
				r.hand(t, r.do(t), enc, active, results)
			}
		})
	}
	go func() {
		workers.Wait()
		r.finishing.Lock()
		r.resultsClosed = true
		close(results)
		r.finishing.Unlock()
	}()

	err := r.write(w, results, window)
	if ferr := w.flush(); err == nil && ferr != nil {
		err = fmt.Errorf("scan: writing the output: %w", ferr)
	}
	fed := false
	select {
	case ferr := <-feedErr:
		fed = ferr != errStopped
		if err == nil && fed {
			err = ferr
		}
	default:
		// The feeder is still blocked in a read: the run was
		// interrupted.
	}
	if err == nil && (!fed || r.unfinished > 0) {
		err = fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(r.work))
	}
	return r.end(err)
}

// end finishes the summary and the progress line.
func (r *runner) end(err error) (*Summary, error) {
	r.sum.Interrupted = errors.Is(err, ErrInterrupted)
	r.sum.Resumed = r.resumed.Load()
	r.sum.MaxInFlight = r.maxInflight.Load()
	r.sum.finish()
	if r.prog != nil {
		r.prog.end()
	}
	return r.sum, err
}

// feed reads the input, skips what is not in the shard or already done,
// and hands every other entry to the workers, each after taking a place in
// the window; with Prefetch, a domain also takes a place among the active
// ones and, when its lookups are answered, is finished by Cached there or
// goes to the workers (prefetched).
func (r *runner) feed(src Source, window, active chan struct{}, jobs chan<- task, prefetched func(task), prefetching *sync.WaitGroup) error {
	var seq int64
	for it, err := range src {
		if err != nil {
			// The entries already started are finished and written.
			return err
		}
		if r.work.Err() != nil {
			return errStopped
		}
		if !r.cfg.Shard.Has(it) {
			continue
		}
		if d := r.cfg.Done; d != nil {
			// In input order a mismatch can only come before the first
			// entry is started: nothing new has been written.
			skip, err := d.skip(it, seq)
			if err != nil {
				return err
			}
			if skip {
				r.resumed.Add(1)
				if r.prog != nil {
					r.prog.done.Add(1)
				}
				continue
			}
		}
		if !take(window, r.work.Done()) {
			return errStopped
		}
		t := task{seq: seq, item: it}
		seq++
		if r.cfg.Prefetch != nil && it.Err == nil {
			if !take(active, r.work.Done()) {
				return errStopped
			}
			t.active = true
			prefetching.Add(1)
			r.cfg.Prefetch(it.Name, func() {
				prefetched(t)
				prefetching.Done()
			})
			continue
		}
		jobs <- t
	}
	if d := r.cfg.Done; d != nil {
		if err := d.rest(); err != nil {
			return err
		}
	}
	return nil
}

// receive receives from c, or reports false when c is closed or done is.
// It tries c alone first and selects over both only when c is empty: a
// select locks every channel it names, and done, one for the whole run,
// was locked by every worker for every entry. In a route scan's profile
// the channels' locks under select (runtime.sellock) were 1.8 % of the
// CPU and selectgo 6.6 % (docs/performance.md, "A faster machine, the
// runner's channels"). done is looked at first, without its lock (a
// receive that does not wait takes none from a channel still open), so
// nothing more is taken once the run is stopped.
func receive[T any](c <-chan T, done <-chan struct{}) (T, bool) {
	select {
	case <-done:
		var zero T
		return zero, false
	default:
	}
	v, ok, stopped := first(c, done)
	return v, ok && !stopped
}

// first receives from c, or from other when c is empty and other is
// ready first (other reports true); c alone is tried first, so a c that
// has something waiting costs no lock on other (receive says why).
func first[T, U any](c <-chan T, other <-chan U) (v T, ok, fromOther bool) {
	select {
	case v, ok = <-c:
		return v, ok, false
	default:
	}
	select {
	case v, ok = <-c:
		return v, ok, false
	case <-other:
		return v, false, true
	}
}

// take takes a place in the semaphore sem, or reports false when done is
// closed first; as receive does, without a select while a place is free.
func take(sem chan<- struct{}, done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

// do works on one entry, trying again after temporary failures.
func (r *runner) do(t task) *outcome {
	o := &outcome{seq: t.seq, item: t.item}
	defer o.settle()
	if t.item.Err != nil {
		// settle writes its ErrorRecord.
		o.err = t.item.Err
		return o
	}
	storeMax(&r.maxInflight, r.inflight.Add(1))
	defer r.inflight.Add(-1)
	for {
		ctx := r.work
		if r.deadlines != nil {
			ctx = r.deadlines.get()
		}
		o.value, o.err = r.cfg.Job(ctx, t.item.Name)
		o.attempts++
		if o.err != nil && r.work.Err() != nil {
			// Cut short by the interruption: not finished.
			o.notDone = true
			return o
		}
		if o.err == nil || !Temporary(o.err) || o.attempts > r.cfg.Retries {
			return o
		}
		// Full jitter: a random wait up to the exponential bound.
		bound := min(r.cfg.Backoff<<min(o.attempts-1, 30), MaxBackoff)
		wait := rand.N(bound) + 1
		if r.cfg.Logger != nil {
			r.cfg.Logger.Debug("scan retry", "domain", t.item.Name, "attempt", o.attempts+1, "after", wait, "error", o.err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-r.work.Done():
			timer.Stop()
			o.notDone = true
			return o
		}
	}
}

// finishCached runs Cached for a domain whose prefetch just ended, on the
// goroutine that ended it, encodes its line and hands it to the writer. It
// reports false, having done nothing, when there is no Cached, when the
// run is stopping, or when an answer was not in memory or the outcome is a
// temporary failure: the domain then goes to a worker, which retries.
func (r *runner) finishCached(t task, active <-chan struct{}, results chan<- *outcome) bool {
	if r.cfg.Cached == nil || r.work.Err() != nil {
		return false
	}
	storeMax(&r.maxInflight, r.inflight.Add(1))
	value, err, ok := r.cfg.Cached(t.item.Name)
	r.inflight.Add(-1)
	if !ok || err != nil && Temporary(err) {
		return false
	}
	o := &outcome{seq: t.seq, item: t.item, value: value, err: err, attempts: 1}
	o.settle()
	enc := r.encoders.Get().(*encoder)
	r.hand(t, o, enc, active, results)
	r.encoders.Put(enc)
	return true
}

// hand encodes o's line with enc (unless o was cut short), gives back t's
// place among the active domains and passes o to the writer; the send
// never blocks (see results). A prefetch can end after an interrupted
// run's workers stopped and results was closed: its entry is then left
// unwritten, as one still waiting for a worker.
func (r *runner) hand(t task, o *outcome, enc *encoder, active <-chan struct{}, results chan<- *outcome) {
	if !o.notDone {
		enc.encode(o, r.lines.get())
	}
	if t.active {
		<-active
	}
	r.finishing.RLock()
	defer r.finishing.RUnlock()
	if !r.resultsClosed {
		results <- o
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// write is the one writer: it takes the finished entries, puts them back
// in input order (or not, with Unordered), writes them, and frees their
// places in the window. It returns when every worker has stopped.
func (r *runner) write(w *writer, results <-chan *outcome, window <-chan struct{}) error {
	ring := make([]*outcome, r.cfg.Window)
	var next, held int64
	var werr error
	stopped := false // in input order: an unfinished entry was reached
	emit := func(o *outcome) {
		<-window
		if stopped || werr != nil {
			return
		}
		if o.notDone {
			r.unfinished++
			// In input order nothing after it may be written, or the
			// file would no longer be a prefix of the input.
			stopped = !r.cfg.Unordered
			return
		}
		if err := w.write(o.line); err != nil {
			werr = fmt.Errorf("scan: writing the output: %w", err)
			r.cancel(werr)
			return
		}
		if r.cfg.Written != nil {
			if err := r.cfg.Written(o.item, o.value, o.line); err != nil {
				werr = fmt.Errorf("scan: %w", err)
				r.cancel(werr)
				return
			}
		}
		r.lines.put(o.line)
		o.line = nil
		r.sum.add(o)
		if r.prog != nil {
			r.prog.done.Add(1)
			if o.err != nil {
				r.prog.errors.Add(1)
			}
		}
	}
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		// The ticker only when no result is waiting.
		o, ok, flush := first(results, tick.C)
		switch {
		case flush:
			if werr == nil {
				if err := w.flush(); err != nil {
					werr = fmt.Errorf("scan: writing the output: %w", err)
					r.cancel(werr)
				}
			}
		case !ok:
			return werr
		default:
			if r.cfg.Unordered {
				emit(o)
				continue
			}
			ring[o.seq%int64(len(ring))] = o
			held++
			r.sum.MaxReordered = max(r.sum.MaxReordered, held)
			for {
				i := next % int64(len(ring))
				o := ring[i]
				if o == nil {
					break
				}
				ring[i] = nil
				held--
				next++
				emit(o)
			}
		}
	}
}

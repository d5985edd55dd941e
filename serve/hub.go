package serve

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
)

// checkReuse is how long a finished check is served again to whoever asks
// for the same domain with the same options: the page, its JSON link and
// its events stream are three requests for one check, and a domain shared
// in a chat is opened by many people at once. It is short, since a person
// who just fixed a record checks again; the DNS answers themselves are
// kept for their TTL by the shared cache. A check that could not be done
// (a lookup failed, the deadline passed) is never reused.
const checkReuse = 30 * time.Second

// maxKeptRuns bounds the finished checks kept for reuse; past it a
// finished check is dropped at once (the next request runs it again).
const maxKeptRuns = 10_000

// ErrDeadline is a check that did not finish within the request deadline
// (Config.Timeout).
var ErrDeadline = errors.New("serve: the check did not finish in time")

// checkOptions are a check's switches, from the request.
type checkOptions struct {
	// NoSMTP skips the SMTP areas (smtp=0).
	NoSMTP bool
	// Selectors are DKIM selectors probed besides dkim's own list.
	Selectors []string
}

// key identifies the checks that give the same report.
func (o checkOptions) key(domain dnsname.Name) string {
	return domain.String() + " " + strconv.FormatBool(o.NoSMTP) + " " + strings.Join(o.Selectors, ",")
}

// Event is one step of a check as the events stream sends it: Name is
// the SSE event name and Data the JSON object it carries.
type Event struct {
	// Name is "route" (Data: the *route.Plan, as soon as it is known),
	// "area" (a check.AreaResult, as its area is judged), "skip" (a
	// check.Skip: an area not looked at, and why), then "result" (the
	// whole *check.Report, the object GET /api/v1/check returns) or
	// "error" (a *Problem: the check did not finish).
	Name string
	Data any
}

// hub runs checks: two requests for the same check at once share one
// audit, and a finished one is reused for checkReuse.
type hub struct {
	mu    sync.Mutex
	runs  map[string]*run
	swept time.Time
}

// run is one check, running or finished, that any number of requests
// follow.
type run struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{} // closed when the check ends

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed (and replaced) when events grows
	// followers counts the requests still waiting for a running check;
	// when the last one goes away the check is cancelled.
	followers int
	report    *check.Report
	err       error
	ended     time.Time
}

// checkRun returns the check of domain with opts: the one running or
// recently finished, or a new one. The check keeps running while at least
// one caller's ctx is alive and is cancelled when the last one ends
// before it does. Follow it with Wait and Events.
func (s *Server) checkRun(ctx context.Context, domain dnsname.Name, opts checkOptions) *run {
	h := &s.hub
	if s.cfg.Auditor.Probe == nil {
		// smtp=0 changes nothing on a server that never probes: one
		// check for both.
		opts.NoSMTP = false
	}
	key := opts.key(domain)
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runs == nil {
		h.runs = map[string]*run{}
	}
	if now.Sub(h.swept) > checkReuse || len(h.runs) >= maxKeptRuns {
		h.sweep(now)
	}
	r := h.runs[key]
	if r != nil && r.stale(now) {
		delete(h.runs, key)
		r = nil
	}
	if r == nil {
		r = s.startCheck(key, domain, opts)
		h.runs[key] = r
	}
	r.mu.Lock()
	following := r.ended.IsZero()
	if following {
		r.followers++
	}
	r.mu.Unlock()
	if following {
		context.AfterFunc(ctx, func() { h.leave(r) })
	}
	return r
}

// startCheck starts the audit of domain in the background, within the
// request deadline.
func (s *Server) startCheck(key string, domain dnsname.Name, opts checkOptions) *run {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	r := &run{key: key, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	a := s.auditor(opts)
	go func() {
		defer cancel()
		rep := auditEach(ctx, a, domain, r.add)
		s.metrics.observeCheck(rep)
		var err error
		if expired(ctx) && failed(rep) {
			err = ErrDeadline
			if e := ctx.Err(); e != nil && !errors.Is(e, context.DeadlineExceeded) {
				err = e
			}
		}
		if err != nil || failed(rep) {
			// Forgotten before it ends: no request that comes after
			// its followers are told gets it.
			s.hub.drop(r)
		}
		r.finish(rep, err)
	}()
	return r
}

// auditor is the server's Auditor with a request's options.
func (s *Server) auditor(opts checkOptions) *check.Auditor {
	a := s.cfg.Auditor
	if opts.NoSMTP {
		a = a.WithoutSMTP("smtp=0")
	}
	if len(opts.Selectors) > 0 {
		a = a.WithDKIMSelectors(opts.Selectors...)
	}
	return a
}

// auditEach audits domain, telling emit each area as it is decided, and
// the plan as soon as it is known (with the routing area).
func auditEach(ctx context.Context, a *check.Auditor, domain dnsname.Name, emit func(Event)) *check.Report {
	return a.AuditEach(ctx, domain, func(p check.Progress) {
		if p.Plan != nil {
			emit(Event{"route", p.Plan})
		}
		switch {
		case p.Result != nil:
			emit(Event{"area", *p.Result})
		case p.Skip != nil:
			emit(Event{"skip", *p.Skip})
		}
	})
}

// failed reports whether an area of rep could not be judged.
func failed(rep *check.Report) bool { return len(rep.Errors()) > 0 }

// add records an event and wakes the streams following the run.
func (r *run) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// finish ends the run with its report, or the error that cut it short.
func (r *run) finish(rep *check.Report, err error) {
	r.mu.Lock()
	r.report, r.err, r.ended = rep, err, time.Now()
	if err != nil {
		r.events = append(r.events, Event{"error", deadlineProblem(err)})
	} else {
		r.events = append(r.events, Event{"result", rep})
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	close(r.done)
}

// stale reports whether a finished run is too old to be reused; r.mu is
// not held.
func (r *run) stale(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.ended.IsZero() && now.Sub(r.ended) >= checkReuse
}

// Wait returns the check's report when it ends, ErrDeadline when it did
// not finish in time, or ctx's error.
func (r *run) Wait(ctx context.Context) (*check.Report, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report, r.err
}

// next returns the events from index i on, a channel closed when there
// are more, and whether the run has ended (then the events returned are
// the last ones).
func (r *run) next(i int) ([]Event, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[i:len(r.events):len(r.events)], r.changed, !r.ended.IsZero()
}

// Events replays the check's events from the first, so a late joiner sees
// every area, then follows it live; the last event is "result" or
// "error". It ends there, or when ctx ends.
func (r *run) Events(ctx context.Context) iter.Seq[Event] {
	return func(yield func(Event) bool) {
		for i := 0; ; {
			evs, changed, ended := r.next(i)
			for _, e := range evs {
				if !yield(e) {
					return
				}
			}
			i += len(evs)
			if ended {
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}
}

// leave is called when a follower's request ends: the last one to go
// cancels a check still running, which is then forgotten (a new request
// starts it afresh).
func (h *hub) leave(r *run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.mu.Lock()
	r.followers--
	abandon := r.followers == 0 && r.ended.IsZero()
	r.mu.Unlock()
	if abandon {
		if h.runs[r.key] == r {
			delete(h.runs, r.key)
		}
		r.cancel()
	}
}

// drop forgets r, a check that is not to be reused.
func (h *hub) drop(r *run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runs[r.key] == r {
		delete(h.runs, r.key)
	}
}

// sweep forgets the finished checks too old to be reused and, past
// maxKeptRuns, every finished one; h.mu is held.
func (h *hub) sweep(now time.Time) {
	h.swept = now
	for k, r := range h.runs {
		if r.stale(now) {
			delete(h.runs, k)
		}
	}
	if len(h.runs) <= maxKeptRuns {
		return
	}
	for k, r := range h.runs {
		r.mu.Lock()
		ended := !r.ended.IsZero()
		r.mu.Unlock()
		if ended {
			delete(h.runs, k)
		}
	}
}

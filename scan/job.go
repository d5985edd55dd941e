package scan

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// Job computes the outcome for one domain. The value is written as it is
// (one JSON object per line), so it must be what the single-domain command
// prints: a *route.Plan or a *check.Report. The summary and the CSV columns
// are read from those two types; another type is written as JSON but
// counted only by the error it came with.
//
// A non-nil error says the outcome is not final: when Temporary(err) the
// domain is tried again (Config.Retries), and after the last try the value
// is written anyway, with the error counted in the summary.
type Job func(ctx context.Context, domain dnsname.Name) (any, error)

// ErrIncomplete wraps the temporary failure of one lookup that an outcome
// needed but went on without: an exchange whose addresses could not be
// resolved, an audit area that could not be checked. The outcome is
// written, but it is not what the domain's DNS says.
var ErrIncomplete = errors.New("incomplete: a lookup failed temporarily")

// Route is the Job of --mode route: p's plan, exactly what "route --json"
// prints. The plan's error, or a temporary failure of any lookup made for
// it (wrapped in ErrIncomplete), is returned beside it.
func Route(p *route.Planner) Job {
	return func(ctx context.Context, domain dnsname.Name) (any, error) {
		var first atomic.Pointer[error]
		pp := *p
		pp.Resolver = record(p.Resolver, &first)
		plan, err := pp.Plan(ctx, domain)
		if err == nil {
			err = incomplete(&first)
		}
		return plan, err
	}
}

// CachedJob computes the outcome for one domain from the answers already
// in memory, with no wait: ok is false when an answer it needed was not
// there, and the domain's Job then runs on a worker, as without it. It runs
// when the domain's prefetch ends, on the goroutine that ended it (a
// socket's reader), so it must never block.
type CachedJob func(domain dnsname.Name) (value any, err error, ok bool)

// RouteCached is Route from the answers in memory: the plan p makes
// through a resolver that answers only from the cache, and not ok when a
// lookup found nothing there. After a route prefetch every answer the plan
// needs is in memory, unless the cache dropped it since.
func RouteCached(p *route.Planner) CachedJob {
	return func(domain dnsname.Name) (any, error, bool) {
		var missed atomic.Bool // set from the goroutines Plan starts for a miss
		pp := *p
		pp.Resolver = cachedOnly{next: p.Resolver, missed: &missed}
		plan, err := pp.Plan(context.Background(), domain)
		if missed.Load() {
			return nil, nil, false
		}
		return plan, err, true
	}
}

// errNotInMemory is cachedOnly's failure of a lookup it did not find in
// the cache; the outcome it was asked for is dropped.
var errNotInMemory = errors.New("scan: not in memory")

// cachedOnly answers lookups from the cache behind it, never from the
// network, and notes a miss. It is not a resolve.Async, so a planner over
// it starts nothing.
type cachedOnly struct {
	next   resolve.Resolver
	missed *atomic.Bool
}

func (c cachedOnly) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	if a, ok := c.Cached(q); ok {
		return a, nil
	}
	return nil, errNotInMemory
}

func (c cachedOnly) Cached(q resolve.Question) (*resolve.Answer, bool) {
	a, ok := resolve.CachedAnswer(c.next, q)
	if !ok {
		c.missed.Store(true)
	}
	return a, ok
}

// Check is the Job of --mode check: a's report, exactly what "check --json"
// prints. The plan's error, or a temporary failure of any lookup made
// through a's resolvers (wrapped in ErrIncomplete), is returned beside it.
// Areas with resolvers of their own (the nameserver audit asks the
// authoritative servers directly; the blacklists) report their failures
// as findings, as check does.
func Check(a *check.Auditor) Job {
	return func(ctx context.Context, domain dnsname.Name) (any, error) {
		var first atomic.Pointer[error]
		aa := *a
		aa.Resolver = record(a.Resolver, &first)
		if a.Planner != nil {
			pp := *a.Planner
			pp.Resolver = record(a.Planner.Resolver, &first)
			aa.Planner = &pp
		}
		r := aa.Audit(ctx, domain)
		var err error
		if r.Details != nil {
			err = r.Details.PlanErr
		}
		if err == nil {
			err = incomplete(&first)
		}
		return r, err
	}
}

// recorder passes lookups through and keeps the first temporary failure.
type recorder struct {
	next  resolve.Resolver
	first *atomic.Pointer[error]
}

// record wraps next in a recorder, one that is itself a resolve.Async
// when next is: the audit's batches (resolve.Ask, the DKIM selectors, PTR,
// TLSA, the nameserver audit) start their questions asynchronously only
// through an Async, and a plain recorder hid it, so in a check scan every
// batch fell back to a goroutine per question (sync.WaitGroup.Go was 2.5 %
// of the audit's CPU in its profile).
func record(next resolve.Resolver, first *atomic.Pointer[error]) resolve.Resolver {
	r := recorder{next: next, first: first}
	if a, ok := resolve.AsyncOf(next); ok {
		return asyncRecorder{r, a}
	}
	return r
}

func (r recorder) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	a, err := r.next.Lookup(ctx, q)
	r.keep(err)
	return a, err
}

// keep records err when it is the first temporary failure.
func (r recorder) keep(err error) {
	if err != nil && Temporary(err) {
		first := err // only a failure escapes to the heap
		r.first.CompareAndSwap(nil, &first)
	}
}

// asyncRecorder is a recorder over an Async resolver; its asynchronous
// lookups are recorded as its blocking ones are.
type asyncRecorder struct {
	recorder
	async resolve.Async
}

// LookupAsync starts q on the resolver behind and records its failure
// before done sees it.
func (r asyncRecorder) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	r.async.LookupAsync(q, func(a *resolve.Answer, err error) {
		r.keep(err)
		done(a, err)
	})
}

// Cached passes the question on, so the planner can take cached answers
// through the recorder. A cached answer is never a failure: there is
// nothing to record.
func (r recorder) Cached(q resolve.Question) (*resolve.Answer, bool) {
	return resolve.CachedAnswer(r.next, q)
}

func incomplete(first *atomic.Pointer[error]) error {
	if p := first.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrIncomplete, *p)
	}
	return nil
}

// Temporary reports whether err is worth trying again: a time-out (of a
// query or of the domain's attempt) or SERVFAIL (RFC 2308 §7.1: a server
// failure may be cached for at most five minutes; it is not an answer).
// REFUSED, malformed replies, CNAME loops and bad input are not retried:
// they come back the same.
func Temporary(err error) bool {
	return errors.Is(err, resolve.ErrTimeout) || errors.Is(err, resolve.ErrServerFailure) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ErrorKind classifies why a line is an error, for the summary.
type ErrorKind string

// Error kinds.
const (
	KindInvalidInput ErrorKind = "invalid-input" // the entry is not a domain
	KindTimeout      ErrorKind = "timeout"       // no answer in time
	KindServFail     ErrorKind = "servfail"      // SERVFAIL
	KindRefused      ErrorKind = "refused"       // REFUSED
	KindBadResponse  ErrorKind = "bad-response"  // a malformed or mismatched reply
	KindCNAME        ErrorKind = "cname"         // a CNAME loop or an overlong chain
	KindMailLoop     ErrorKind = "mail-loop"     // --self is the most preferred exchange
	KindNotInZone    ErrorKind = "not-in-zone"   // offline, the name is in no --zone file
	KindCancelled    ErrorKind = "cancelled"     // the scan was interrupted
	KindOther        ErrorKind = "other"
)

// KindOf classifies err.
func KindOf(err error) ErrorKind {
	switch {
	case errors.Is(err, dnsname.ErrInvalid), errors.Is(err, ErrInput):
		return KindInvalidInput
	case errors.Is(err, resolve.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, resolve.ErrServerFailure):
		return KindServFail
	case errors.Is(err, resolve.ErrRefused):
		return KindRefused
	case errors.Is(err, resolve.ErrBadResponse):
		return KindBadResponse
	case errors.Is(err, resolve.ErrCNAMELoop), errors.Is(err, resolve.ErrCNAMEChain):
		return KindCNAME
	case errors.Is(err, route.ErrMailLoop):
		return KindMailLoop
	case errors.Is(err, resolve.ErrNotInZone):
		return KindNotInZone
	case errors.Is(err, context.Canceled):
		return KindCancelled
	}
	return KindOther
}

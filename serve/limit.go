package serve

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxClients bounds the token buckets kept at once. A bucket is about
// 200 bytes, so the bound is about 13 MB however many addresses a flood
// comes from.
const maxClients = 1 << 16

// limiter is the per-client token bucket (Config.Rate, Config.Burst),
// keyed by clientKey, in bounded memory.
//
// A bucket idle long enough to have filled up again is the same as a new
// one, so forgetting it changes nothing: such buckets are dropped as new
// clients arrive, and at maxClients the least recently seen bucket goes
// too, whatever its state. A flood from more distinct addresses than that
// costs each address a fresh bucket, which a flood from one address would
// not get; the concurrency bound (Config.MaxChecks) still holds.
type limiter struct {
	rate   rate.Limit
	burst  int
	refill time.Duration // an empty bucket is full again after this
	max    int

	mu    sync.Mutex
	byKey map[netip.Prefix]*list.Element
	lru   list.List // of *bucket, most recently seen first
}

type bucket struct {
	key  netip.Prefix
	lim  *rate.Limiter
	seen time.Time
}

// newLimiter gives per-second tokens up to burst per client, keeping at
// most max buckets.
func newLimiter(perSecond float64, burst, max int) *limiter {
	burst = max1(burst)
	return &limiter{
		rate:   rate.Limit(perSecond),
		burst:  burst,
		refill: time.Duration(float64(burst) / perSecond * float64(time.Second)),
		max:    max1(max),
		byKey:  make(map[netip.Prefix]*list.Element),
	}
}

func max1(n int) int { return max(n, 1) }

// take spends one of key's tokens at now. When there is none it spends
// nothing and returns how long until there is one.
func (l *limiter) take(key netip.Prefix, now time.Time) (wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byKey[key]
	if ok {
		l.lru.MoveToFront(el)
	} else {
		l.evict(now)
		el = l.lru.PushFront(&bucket{key: key, lim: rate.NewLimiter(l.rate, l.burst)})
		l.byKey[key] = el
	}
	b := el.Value.(*bucket)
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// evict makes room for one more bucket: it drops the buckets that have
// filled up again since last seen, and the least recently seen one while
// the bound is reached.
func (l *limiter) evict(now time.Time) {
	for l.lru.Len() > 0 {
		back := l.lru.Back()
		b := back.Value.(*bucket)
		if l.lru.Len() < l.max && now.Sub(b.seen) < l.refill {
			return
		}
		l.lru.Remove(back)
		delete(l.byKey, b.key)
	}
}

// len is the number of buckets kept.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// busyRetry is the Retry-After of a 503 when every MaxChecks slot is
// taken: the wait for one to free up is unknown, and a second is short
// enough not to strand a client and long enough not to invite a spin.
const busyRetry = time.Second

// acquire takes one of the Config.MaxChecks slots for an expensive job
// (a check, probe, scan, events stream or report page). It never queues:
// when all are taken it answers 503 with Retry-After (RFC 9110 §15.6.4)
// and returns ok false. Otherwise the caller runs its job and then calls
// release once.
//
// The mux applies it to the expensive routes (policyOf), for the whole
// request, so handlers do not call it themselves.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.slots == nil {
		s.metrics.inFlight.Inc()
		return s.metrics.inFlight.Dec, true
	}
	select {
	case s.slots <- struct{}{}:
		s.metrics.inFlight.Inc()
		return func() {
			s.metrics.inFlight.Dec()
			<-s.slots
		}, true
	default:
		s.metrics.saturated.Inc()
		writeProblem(w, r, http.StatusServiceUnavailable,
			fmt.Sprintf("all %d slots for checks are taken; try again shortly", cap(s.slots)), busyRetry)
		return nil, false
	}
}

// limitProblem answers the problem of a limit the server put on the
// request, if err (the error of the handler's work) is one, and reports
// whether it did: 413 (RFC 9110 §15.5.14) when the body went over its cap,
// 504 (RFC 9110 §15.6.5) when the request's deadline passed. When the
// client went away (or the server is closing) there is no one to answer,
// and it reports true having written nothing. Handlers call it first with
// any error of their work, before anything else is written:
//
//	res, err := work(r.Context(), ...)
//	if err != nil {
//		if limitProblem(w, r, err) {
//			return
//		}
//		// the handler's own errors (400, ...)
//	}
func limitProblem(w http.ResponseWriter, r *http.Request, err error) bool {
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeProblem(w, r, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is over its limit of %d bytes", tooBig.Limit), 0)
		return true
	}
	switch ctxErr := r.Context().Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		writeProblem(w, r, http.StatusGatewayTimeout, "the work did not finish within the time allowed per request", 0)
		return true
	case ctxErr != nil:
		return true
	}
	return false
}

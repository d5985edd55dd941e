package relay

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/send"
)

// destinations is the Deliverer's memory of each destination domain: how
// many attempts in a row it deferred, when it may be tried again, how many
// sessions are open to it, and what the out-of-band prober last saw of
// its primary tier. It lives in memory only: after a restart every
// destination starts afresh, and the queue's own next-attempt times still
// hold.
type destinations struct {
	mu    sync.Mutex
	retry send.Retry
	rng   *rand.Rand // nil: the process's source
	m     map[string]*destination
	// active counts the sessions open to every destination.
	active int
}

type destination struct {
	failures int       // consecutive deferred attempts
	retryAt  time.Time // no new session before this
	active   int       // sessions open now
	// primary is the prober's (or a failed connection's) last word on the
	// primary tier: primaryUnknown until one is known.
	primary  primaryState
	lastErr  string
	lastSeen time.Time // last time the destination held mail or was used
}

type primaryState int

const (
	primaryUnknown primaryState = iota
	primaryUp
	primaryDown
)

func newDestinations(r send.Retry, rng *rand.Rand) *destinations {
	return &destinations{retry: r, rng: rng, m: map[string]*destination{}}
}

// get returns the destination's state, creating it. Callers hold mu.
func (ds *destinations) get(domain string) *destination {
	d := ds.m[domain]
	if d == nil {
		d = &destination{}
		ds.m[domain] = d
	}
	return d
}

// acquire takes the session slots free for domain, at most per for the
// domain and total for all, unless the destination is backing off (RFC
// 5321 §4.5.4.1: "the sender MUST delay retrying a particular destination
// after one attempt has failed"). It returns how many it took.
func (ds *destinations) acquire(domain string, now time.Time, per, total int) int {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.get(domain)
	d.lastSeen = now
	if now.Before(d.retryAt) {
		return 0
	}
	n := min(per-d.active, total-ds.active)
	if n <= 0 {
		return 0
	}
	d.active += n
	ds.active += n
	return n
}

// release gives back n slots of domain.
func (ds *destinations) release(domain string, n int) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.get(domain).active -= n
	ds.active -= n
}

// succeeded records an attempt the destination answered (accepted or
// refused for good): its backoff starts again from Tbase.
func (ds *destinations) succeeded(domain string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.get(domain)
	d.failures, d.retryAt, d.lastErr = 0, time.Time{}, ""
}

// deferred records a deferred attempt and returns when to try the
// destination again: B(n) = min(Tmax, Tbase·k^n) plus jitter (send.Retry,
// send.Jitter), n counting the destination's consecutive deferrals, so
// every message to a dead destination waits together (RFC 5321
// §4.5.4.1) instead of each starting its own schedule at Tbase. An attempt
// that ends while the destination already waits does not push the wait
// further out.
func (ds *destinations) deferred(domain string, now time.Time, reason string, connection bool) time.Time {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.get(domain)
	d.lastErr = reason
	if connection {
		// No exchange answered: the primary tier is down as far as
		// the prober is concerned, so its return is a transition.
		d.primary = primaryDown
	}
	if now.Before(d.retryAt) {
		return d.retryAt
	}
	wait := ds.retry.Backoff(d.failures)
	wait += send.Jitter(wait, ds.rng)
	d.failures++
	d.retryAt = now.Add(wait)
	return d.retryAt
}

// probed records a probe of domain's primary tier and reports whether it
// is a return: up now, down at the last word. A return also ends the
// destination's backoff.
func (ds *destinations) probed(domain string, up bool) (returned bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.get(domain)
	prev := d.primary
	if !up {
		d.primary = primaryDown
		return false
	}
	d.primary = primaryUp
	if prev == primaryDown {
		d.failures, d.retryAt = 0, time.Time{}
		return true
	}
	return false
}

// forget drops the state of destinations idle (no mail, no session) since
// before cutoff, so the map does not grow with every domain ever seen.
func (ds *destinations) forget(cutoff time.Time) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for k, d := range ds.m {
		if d.active == 0 && d.lastSeen.Before(cutoff) && !cutoff.Before(d.retryAt) {
			delete(ds.m, k)
		}
	}
}

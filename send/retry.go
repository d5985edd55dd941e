package send

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Retry defaults (RFC 5321 §4.5.4.1 asks for at least 30 minutes between
// retries of a queue; a test that waits out greylisting wants minutes, so
// these are shorter, and every one can be set).
const (
	DefaultRetryBase   = 30 * time.Second
	DefaultRetryFactor = 2.0
	DefaultRetryMax    = 5 * time.Minute
	DefaultRetryFor    = 10 * time.Minute
)

// maxRounds bounds the rounds whatever the durations say.
const maxRounds = 100

// Retry is the schedule of new rounds after a round in which every exchange
// deferred the message (4xx replies, failed connections, unmet TLS
// requirements), as a queueing MTA retries (RFC 5321 §4.5.4.1). Before
// round n+2 (n = 0 for the first wait) the sender waits
//
//	B(n) = min(Max, Base · Factor^n) + jitter, jitter uniform in [0, B(n)/10]
//
// and it never starts a wait that would end more than For after the first
// round began. Zero fields take the defaults.
type Retry struct {
	Base   time.Duration // Tbase; 0: DefaultRetryBase
	Factor float64       // k; 0: DefaultRetryFactor (values below 1 count as 1)
	Max    time.Duration // Tmax; 0: DefaultRetryMax
	For    time.Duration // the total time bound; 0: DefaultRetryFor
}

func (r Retry) base() time.Duration {
	if r.Base <= 0 {
		return DefaultRetryBase
	}
	return r.Base
}

func (r Retry) factor() float64 {
	switch {
	case r.Factor == 0 || math.IsNaN(r.Factor):
		return DefaultRetryFactor
	case r.Factor < 1:
		return 1
	}
	return r.Factor
}

func (r Retry) max() time.Duration {
	if r.Max <= 0 {
		return DefaultRetryMax
	}
	return r.Max
}

// Budget is the total time bound, For or its default.
func (r Retry) Budget() time.Duration {
	if r.For <= 0 {
		return DefaultRetryFor
	}
	return r.For
}

// Backoff is B(n) without jitter: min(Max, Base · Factor^n).
func (r Retry) Backoff(n int) time.Duration {
	b := float64(r.base()) * math.Pow(r.factor(), float64(max(n, 0)))
	if m := float64(r.max()); b > m || math.IsInf(b, 0) || math.IsNaN(b) {
		return r.max()
	}
	return time.Duration(b)
}

// Jitter draws the jitter added to a wait of d: uniform in [0, d/10].
// rng nil uses the process's random source.
func Jitter(d time.Duration, rng *rand.Rand) time.Duration {
	span := int64(d / 10)
	if span <= 0 {
		return 0
	}
	if rng == nil {
		return time.Duration(rand.Int64N(span + 1))
	}
	return time.Duration(rng.Int64N(span + 1))
}

// Schedule lists the waits (without jitter) that fit in the budget, in
// order: what the sender will do if every round is deferred. Jitter can
// push the last one out of the budget.
func (r Retry) Schedule() []time.Duration { return r.remaining(0, 0) }

// remaining lists the waits from the n-th on (without jitter) that fit in
// the budget after elapsed.
func (r Retry) remaining(n int, elapsed time.Duration) []time.Duration {
	var out []time.Duration
	total := elapsed
	for i := n; i < maxRounds; i++ {
		d := r.Backoff(i)
		if total+d > r.Budget() {
			break
		}
		total += d
		out = append(out, d)
	}
	return out
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

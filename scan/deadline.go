package scan

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxGrain bounds how much later than its Timeout an attempt may be cut.
const maxGrain = 10 * time.Millisecond

// deadlines hands out the contexts that bound each attempt at a domain.
// The attempts that start within one grain (a hundredth of the timeout, at
// most maxGrain) share one context, whose deadline is the grain's end plus
// the timeout: each attempt gets at least its Timeout and at most a grain
// more.
//
// Why not a context.WithTimeout per attempt: that is a timer and a
// context allocated, armed and stopped for every domain, which showed in
// a scan's profile straight at an authoritative server, where nearly
// every domain is answered from memory and never waits
// (docs/performance.md). Shared, it is one per grain, a hundred a second
// at most.
type deadlines struct {
	parent  context.Context
	timeout time.Duration
	grain   time.Duration

	cur atomic.Pointer[shared]
	mu  sync.Mutex // held while a new grain is made
}

// shared is one grain's context: the attempts starting before until get it.
type shared struct {
	ctx    context.Context
	cancel context.CancelFunc
	until  time.Time
}

func newDeadlines(parent context.Context, timeout time.Duration) *deadlines {
	return &deadlines{parent: parent, timeout: timeout, grain: min(timeout/100, maxGrain)}
}

// get returns the context of an attempt starting now.
func (d *deadlines) get() context.Context {
	now := time.Now()
	if g := d.cur.Load(); g != nil && now.Before(g.until) {
		return g.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.cur.Load(); g != nil && now.Before(g.until) {
		return g.ctx
	}
	g := &shared{until: now.Add(d.grain)}
	g.ctx, g.cancel = context.WithDeadline(d.parent, g.until.Add(d.timeout))
	// The grain before is not cancelled: attempts may still hold it. It
	// ends at its deadline, or with the parent (stop), which frees it.
	d.cur.Store(g)
	return g.ctx
}

// stop ends the current grain; the run's end (its parent's) ends the rest.
func (d *deadlines) stop() {
	if g := d.cur.Load(); g != nil {
		g.cancel()
	}
}

package resolve

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Batches: many questions known up front (a domain's DKIM selectors, the
// PTR names of its exchanges' addresses, their TLSA names) asked at once
// and waited for once. Over an Async resolver (a scan's Mux behind its
// Cache) every question starts with LookupAsync, the cache's answers are
// taken from memory without a callback, and the caller waits on one
// channel: no goroutine and no channel per question. Over any other
// resolver (a stub, zone files) the questions are asked by a bounded set
// of goroutines, as the callers did themselves before.
//
// In a scan's audit this replaced a goroutine, a channel and a parked
// waiter per question (docs/performance.md, "The audit").

// Reply is one question's outcome in a batch: what Lookup returned for it.
type Reply struct {
	Answer *Answer
	Err    error
}

// Followed is one question's outcome in a batch of Follows: what Follow
// returned for it (Result is nil when Err is set).
type Followed struct {
	Result *Result
	Err    error
}

// Batch is questions in flight, started by Ask or AskFollow and waited
// for by Wait or WaitFollow (the one that matches). A Batch is used by
// one goroutine: the one that waits.
type Batch struct {
	ctx    context.Context
	r      Resolver
	qs     []Question
	follow bool

	replies  []Reply    // the Async path's answers, and the blocking path's Lookups
	followed []Followed // the blocking path's Follows

	// The Async path: callbacks write replies under mu until the waiter
	// gives up (abandoned); the last one closes done.
	async     Async
	mu        sync.Mutex
	left      int // questions unanswered
	next      int // the first question not yet considered for asking
	done      chan struct{}
	abandoned bool

	// The blocking path: the goroutines asking.
	wg sync.WaitGroup

	waited bool       // FollowedInto waited
	first  prefetched // the Async path's walks, in the Batch: no allocation each
}

// Ask starts a lookup of every question of qs and returns at once; Wait
// returns the answers. At most parallel questions are in flight at once
// (all of qs when parallel is 0 or less): over an Async r (AsyncOf) each
// answer starts the next question and nothing waits but the caller of
// Wait; over any other r, parallel goroutines ask. The lookups get ctx;
// a question unanswered when ctx is done gets a time-out error from Wait,
// as a blocking lookup over an Async resolver does.
func Ask(ctx context.Context, r Resolver, qs []Question, parallel int) *Batch {
	b := &Batch{ctx: ctx, r: r, qs: qs}
	b.start(parallel)
	return b
}

// AskFollow is Ask for Follow: WaitFollow returns, for each question, the
// alias chain followed to its end (RFC 1034 §3.6.2). Over an Async r the
// first question of every chain is asked at once; the rare chain a server
// stops in the middle of is followed from WaitFollow, a lookup at a time.
func AskFollow(ctx context.Context, r Resolver, qs []Question, parallel int) *Batch {
	b := &Batch{ctx: ctx, r: r, qs: qs, follow: true}
	b.start(parallel)
	return b
}

// LookupAll asks every question of qs at once and returns the answers in
// the order of qs (Ask, then Wait).
func LookupAll(ctx context.Context, r Resolver, qs []Question, parallel int) []Reply {
	return Ask(ctx, r, qs, parallel).Wait()
}

// FollowAll follows every question of qs at once and returns the results
// in the order of qs (AskFollow, then WaitFollow).
func FollowAll(ctx context.Context, r Resolver, qs []Question, parallel int) []Followed {
	return AskFollow(ctx, r, qs, parallel).WaitFollow()
}

func (b *Batch) start(parallel int) {
	if len(b.qs) == 0 {
		return
	}
	b.replies = make([]Reply, len(b.qs))
	if a, ok := AsyncOf(b.r); ok {
		b.startAsync(a, parallel)
		return
	}
	if b.follow {
		b.followed = make([]Followed, len(b.qs))
	}
	workers := len(b.qs)
	if parallel > 0 {
		workers = min(workers, parallel)
	}
	var next atomic.Int64
	for range workers {
		b.wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(b.qs); i = int(next.Add(1) - 1) {
				b.ask(i)
			}
		})
	}
}

// ask asks question i on the blocking path. A question not yet asked when
// ctx is done is not asked.
func (b *Batch) ask(i int) {
	q := b.qs[i]
	if b.ctx.Err() != nil {
		b.replies[i].Err = b.gaveUp(q)
		if b.follow {
			b.followed[i].Err = b.replies[i].Err
		}
		return
	}
	if b.follow {
		res, err := Follow(b.ctx, b.r, q)
		if err != nil {
			res = nil
		}
		b.followed[i] = Followed{res, err}
		return
	}
	b.replies[i].Answer, b.replies[i].Err = b.r.Lookup(b.ctx, q)
}

// startAsync takes what the cache holds in memory, then starts the rest
// with LookupAsync, at most parallel at a time: each answer starts the
// next. It allocates the channel only when something must be waited for.
func (b *Batch) startAsync(a Async, parallel int) {
	b.async = a
	for i, q := range b.qs {
		if ans, ok := CachedAnswer(a, q); ok {
			b.replies[i].Answer = ans
		} else {
			b.left++
		}
	}
	if b.left == 0 {
		return
	}
	b.done = make(chan struct{})
	if parallel <= 0 {
		parallel = b.left
	}
	for range min(parallel, b.left) {
		b.mu.Lock()
		i := b.nextUnasked()
		b.mu.Unlock()
		b.issue(i)
	}
}

// nextUnasked is the next question the cache did not answer and that is
// not asked yet, or -1. b.mu is held: a callback writes only the slot of
// a question asked, never one this reads.
func (b *Batch) nextUnasked() int {
	for ; b.next < len(b.qs); b.next++ {
		if b.replies[b.next].Answer == nil {
			b.next++
			return b.next - 1
		}
	}
	return -1
}

// issue starts question i (nothing when i is -1).
func (b *Batch) issue(i int) {
	if i >= 0 {
		b.async.LookupAsync(b.qs[i], func(ans *Answer, err error) { b.answer(i, ans, err) })
	}
}

// answer is the callback of question i. It never blocks: after the waiter
// gave up it drops the reply. It starts the next question, outside the
// lock (the cache may call back before LookupAsync returns).
func (b *Batch) answer(i int, a *Answer, err error) {
	b.mu.Lock()
	if b.abandoned {
		b.mu.Unlock()
		return
	}
	b.replies[i] = Reply{a, err}
	b.left--
	if b.left == 0 {
		close(b.done)
	}
	next := b.nextUnasked()
	b.mu.Unlock()
	b.issue(next)
}

// Wait waits for the answers of a batch started by Ask, in the order of
// its questions.
func (b *Batch) Wait() []Reply {
	b.wait()
	return b.replies
}

// WaitFollow waits for the results of a batch started by AskFollow, in
// the order of its questions.
func (b *Batch) WaitFollow() []Followed {
	b.wait()
	if b.followed != nil || len(b.qs) == 0 {
		return b.followed
	}
	// The Async path: each chain is walked from its first answer.
	out := make([]Followed, len(b.qs))
	// The Results in one allocation, not one each.
	results := make([]Result, len(b.qs))
	for i := range b.qs {
		out[i] = b.walk(i, &results[i])
	}
	return out
}

// FollowedInto waits for the results of a batch started by AskFollow,
// as WaitFollow does, and returns the outcome of its question i, whose
// Result, on the Async path, is written into res (overwritten: valid until
// res is used again). For a caller that reads each outcome once and keeps
// none, as DKIM's selectors are read, it spares WaitFollow's Result per
// question: 27 a domain in a scan's DKIM batch, about 3.6 kB
// (BenchmarkFollowedInto). An index, not an iterator: a loop body over an
// iterator moves the variables it changes to the heap.
func (b *Batch) FollowedInto(i int, res *Result) Followed {
	if !b.waited {
		b.wait()
		b.waited = true
	}
	if b.followed != nil {
		return b.followed[i]
	}
	return b.walk(i, res)
}

// walk follows the chain of question i from its first answer (the Async
// path) into res, which it overwrites.
func (b *Batch) walk(i int, res *Result) Followed {
	rep := b.replies[i]
	first := &b.first
	first.next = b.r
	if rep.Err != nil {
		return Followed{Err: rep.Err}
	}
	first.q, first.a = b.qs[i], rep.Answer
	*res = Result{Question: b.qs[i], Name: b.qs[i].Name, AD: true}
	if err := res.follow(b.ctx, first, false); err != nil {
		return Followed{Err: err}
	}
	return Followed{Result: res}
}

// wait returns when every question is answered, or, on the Async path,
// when ctx is done: the unanswered ones then get a time-out error, and
// their callbacks, when they come, change nothing.
func (b *Batch) wait() {
	b.wg.Wait()
	if b.done == nil {
		return
	}
	select {
	case <-b.done:
		return
	case <-b.ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left == 0 {
		return
	}
	b.abandoned = true
	for i := range b.replies {
		if r := &b.replies[i]; r.Answer == nil && r.Err == nil {
			r.Err = b.gaveUp(b.qs[i])
		}
	}
}

// gaveUp is the error of a question the caller stopped waiting for.
func (b *Batch) gaveUp(q Question) error {
	return &Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", ErrTimeout, b.ctx.Err())}
}

// prefetched answers one question with the answer it holds, and asks next
// for any other: a Follow walk whose first answer came in a batch.
type prefetched struct {
	next Resolver
	q    Question
	a    *Answer
}

func (p *prefetched) Lookup(ctx context.Context, q Question) (*Answer, error) {
	if q == p.q && p.a != nil {
		return p.a, nil
	}
	return p.next.Lookup(ctx, q)
}

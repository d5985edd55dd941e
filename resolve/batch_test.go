package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// held is an Async resolver over zones whose callbacks wait until the
// test releases them, so a test decides when answers arrive. Questions
// named in fail get that error.
type held struct {
	resolve.Resolver
	fail map[string]error

	mu      sync.Mutex
	pending []func()
	asked   []resolve.Question
}

func (h *held) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if err := h.fail[q.Name]; err != nil {
		return nil, err
	}
	return h.Resolver.Lookup(ctx, q)
}

func (h *held) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, q)
	h.pending = append(h.pending, func() { done(h.Lookup(context.Background(), q)) })
}

// release runs the callbacks held so far, on another goroutine (as a
// socket's reader would), and returns a channel closed when they ran.
func (h *held) release() <-chan struct{} {
	h.mu.Lock()
	calls := h.pending
	h.pending = nil
	h.mu.Unlock()
	ran := make(chan struct{})
	go func() {
		for _, c := range calls {
			c()
		}
		close(ran)
	}()
	return ran
}

func (h *held) questions() []resolve.Question {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]resolve.Question(nil), h.asked...)
}

var errBroken = &resolve.Error{Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}

// batchQuestions: a cached one, a plain one, an alias chain, NXDOMAIN and
// one the resolver fails.
var batchQuestions = []resolve.Question{
	resolve.Q("d.test.", dns.TypeMX),
	resolve.Q("mx.d.test.", dns.TypeA),
	resolve.Q("chain.test.", dns.TypeMX),
	resolve.Q("nope.test.", dns.TypeA),
	resolve.Q("broken.test.", dns.TypeA),
}

// TestLookupAllAsync: over a Cache in front of an Async resolver, a cached
// question is answered from memory (no LookupAsync for it), the others
// start before the batch is waited for, at most parallel at a time, and
// each reply is its own question's: an answer, NXDOMAIN, or its error.
func TestLookupAllAsync(t *testing.T) {
	h := &held{Resolver: loadTestZones(t), fail: map[string]error{"broken.test.": errBroken}}
	c := resolve.NewCache(h, 0)
	if _, err := c.Lookup(t.Context(), batchQuestions[0]); err != nil {
		t.Fatal(err)
	}
	asked := len(h.questions())

	// Two in flight at a time: each answer starts the next question.
	b := resolve.Ask(t.Context(), c, batchQuestions, 2)
	for {
		h.mu.Lock()
		inFlight := len(h.pending)
		h.mu.Unlock()
		if inFlight > 2 {
			t.Fatalf("%d questions in flight, want at most 2", inFlight)
		}
		if inFlight == 0 {
			break
		}
		<-h.release()
	}
	if got := h.questions()[asked:]; !reflect.DeepEqual(got, batchQuestions[1:]) {
		t.Fatalf("asked %v, want every uncached question once, in order: %v", got, batchQuestions[1:])
	}
	replies := b.Wait()
	checkReplies(t, replies)
	if s := c.Stats(); s.Hits != 1 {
		t.Errorf("cache stats %+v: want the one cached question answered from memory", s)
	}
}

// TestLookupAllBlocking: over a plain Resolver the questions are asked by
// at most parallel goroutines, with the same replies.
func TestLookupAllBlocking(t *testing.T) {
	r := &concurrent{Resolver: &held{Resolver: loadTestZones(t), fail: map[string]error{"broken.test.": errBroken}}}
	checkReplies(t, resolve.LookupAll(t.Context(), r, batchQuestions, 2))
	if r.most.Load() > 2 || r.most.Load() < 1 {
		t.Errorf("%d lookups at once, want at most 2", r.most.Load())
	}
	if r.asked.Load() != int32(len(batchQuestions)) {
		t.Errorf("%d lookups for %d questions", r.asked.Load(), len(batchQuestions))
	}
}

// checkReplies checks the replies to batchQuestions.
func checkReplies(t *testing.T, replies []resolve.Reply) {
	t.Helper()
	if len(replies) != len(batchQuestions) {
		t.Fatalf("%d replies for %d questions", len(replies), len(batchQuestions))
	}
	for i, r := range replies[:4] {
		if r.Err != nil || r.Answer == nil || r.Answer.Question != batchQuestions[i] {
			t.Errorf("reply %d: %+v, want the answer to %v", i, r, batchQuestions[i])
		}
	}
	if !replies[3].Answer.NXDomain() {
		t.Errorf("nope.test: %+v, want NXDOMAIN", replies[3].Answer)
	}
	if r := replies[4]; r.Answer != nil || !errors.Is(r.Err, resolve.ErrServerFailure) {
		t.Errorf("broken.test: %+v, want its SERVFAIL", r)
	}
}

// concurrent is a plain Resolver that counts its lookups and how many ran
// at once.
type concurrent struct {
	resolve.Resolver
	now, most, asked atomic.Int32
}

func (c *concurrent) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.asked.Add(1)
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	return c.Resolver.Lookup(ctx, q)
}

// TestBatchCancel: when ctx is done before the answers come, Wait returns
// at once with a time-out error for each unanswered question (the cached
// one keeps its answer), and the callbacks that come afterwards neither
// block nor change the replies (run with -race).
func TestBatchCancel(t *testing.T) {
	h := &held{Resolver: loadTestZones(t)}
	c := resolve.NewCache(h, 0)
	c.LookupAsync(batchQuestions[0], func(*resolve.Answer, error) {})
	<-h.release()

	ctx, cancel := context.WithCancel(t.Context())
	b := resolve.Ask(ctx, c, batchQuestions[:3], 0)
	cancel()
	replies := b.Wait()
	if replies[0].Err != nil || replies[0].Answer == nil {
		t.Errorf("cached question: %+v, want its answer", replies[0])
	}
	for _, r := range replies[1:] {
		if r.Answer != nil || !errors.Is(r.Err, resolve.ErrTimeout) || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("unanswered question: %+v, want a time-out wrapping context.Canceled", r)
		}
	}
	before := fmt.Sprint(replies)
	<-h.release()
	if after := fmt.Sprint(replies); after != before {
		t.Errorf("a callback after cancel changed the replies: %s, was %s", after, before)
	}

	// The same for follows.
	ctx, cancel = context.WithCancel(t.Context())
	fb := resolve.AskFollow(ctx, c, []resolve.Question{resolve.Q("into-other.test.", dns.TypeA)}, 0)
	cancel()
	if f := fb.WaitFollow(); f[0].Result != nil || !errors.Is(f[0].Err, resolve.ErrTimeout) {
		t.Errorf("cancelled follow: %+v, want a time-out", f[0])
	}
	<-h.release()
}

// oneStep is a resolver that stops every alias chain after its first
// alias, as an authoritative server does for a target outside its zones,
// so that Follow must ask again.
type oneStep struct{ resolve.Resolver }

func (o oneStep) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	a, err := o.Resolver.Lookup(ctx, q)
	if err != nil || len(a.Answer) == 0 {
		return a, err
	}
	if c, ok := a.Answer[0].(*dns.CNAME); ok && q.Type != dns.TypeCNAME {
		return &resolve.Answer{Question: q, Answer: []dns.RR{c}, Server: a.Server}, nil
	}
	return a, nil
}

// TestFollowAll: every question's Followed is what Follow returns for it,
// on both paths, with a chain that takes several lookups and one that
// fails.
func TestFollowAll(t *testing.T) {
	base := &held{Resolver: oneStep{loadTestZones(t)}, fail: map[string]error{"broken.test.": errBroken}}
	qs := append(batchQuestions, resolve.Q("into-other.test.", dns.TypeA))
	var want []resolve.Followed
	for _, q := range qs {
		res, err := resolve.Follow(t.Context(), base, q)
		if err != nil {
			res = nil
		}
		want = append(want, resolve.Followed{Result: res, Err: err})
	}
	if len(want[2].Result.Chain) != 2 {
		t.Fatalf("chain.test: %+v, want a chain of two aliases", want[2].Result)
	}

	// A plain Resolver: the struct hides LookupAsync.
	got := resolve.FollowAll(t.Context(), struct{ resolve.Resolver }{base}, qs, 3)
	sameFollowed(t, "blocking", got, want)

	// The Async path: the first questions leave at once, the rest of
	// the chain is asked from WaitFollow (through the held resolver's
	// blocking Lookup).
	b := resolve.AskFollow(t.Context(), resolve.NewCache(base, 0), qs, 0)
	if n := len(base.questions()); n != len(qs) {
		t.Fatalf("%d questions asked at once, want %d", n, len(qs))
	}
	<-base.release()
	sameFollowed(t, "async", b.WaitFollow(), want)
}

func sameFollowed(t *testing.T, path string, got, want []resolve.Followed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results for %d questions", path, len(got), len(want))
	}
	for i := range want {
		if g, w := summary(got[i]), summary(want[i]); g != w {
			t.Errorf("%s %d: %s; want %s", path, i, g, w)
		}
	}
}

// summary is a Followed without the TTL, which a cache counts down.
func summary(f resolve.Followed) string {
	if f.Result == nil {
		return fmt.Sprintf("error %v", f.Err)
	}
	r := f.Result
	return fmt.Sprintf("%v %s %v %v nx=%v ad=%v %s err=%v", r.Question, r.Name, r.Chain, r.Records, r.NXDomain, r.AD, r.Server, f.Err)
}

// TestBatchEmpty: a batch of no questions waits for nothing.
func TestBatchEmpty(t *testing.T) {
	if r := resolve.LookupAll(t.Context(), loadTestZones(t), nil, 0); len(r) != 0 {
		t.Errorf("%v for no questions", r)
	}
	if r := resolve.FollowAll(t.Context(), loadTestZones(t), nil, 0); len(r) != 0 {
		t.Errorf("%v for no questions", r)
	}
}

// inlineAsync is an Async resolver over zones that answers before
// LookupAsync returns.
type inlineAsync struct{ resolve.Resolver }

func (a inlineAsync) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	done(a.Lookup(context.Background(), q))
}

// BenchmarkBatch asks 27 questions (a DKIM probe's) of an Async resolver
// that answers at once: as one batch, and as the gatherers did before, a
// goroutine each waiting on a channel of its own.
func BenchmarkBatch(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(testZones), "test")
	if err != nil {
		b.Fatal(err)
	}
	r := inlineAsync{z}
	qs := make([]resolve.Question, 27)
	for i := range qs {
		qs[i] = resolve.Q(fmt.Sprintf("s%d._domainkey.d.test.", i), dns.TypeTXT)
	}
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resolve.LookupAll(b.Context(), r, qs, 0)
		}
	})
	b.Run("goroutines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			replies := make([]resolve.Reply, len(qs))
			var wg sync.WaitGroup
			for i, q := range qs {
				wg.Go(func() {
					ch := make(chan resolve.Reply, 1)
					r.LookupAsync(q, func(a *resolve.Answer, err error) { ch <- resolve.Reply{Answer: a, Err: err} })
					replies[i] = <-ch
				})
			}
			wg.Wait()
		}
	})
}

package main

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// heldAsync is an Async resolver that keeps each callback until the test
// calls it, with an answer naming the question asked.
type heldAsync struct{ held chan func() }

func (h heldAsync) Lookup(context.Context, resolve.Question) (*resolve.Answer, error) {
	panic("waitAsync must ask asynchronously")
}

func (h heldAsync) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	h.held <- func() { done(&resolve.Answer{Question: q}, nil) }
}

// answer calls the oldest callback held, once there is one.
func (h heldAsync) answer() { (<-h.held)() }

// TestWaitAsyncReuse: waitAsync reuses the waiter of a lookup answered,
// never that of one whose caller gave up: the late callback of a
// cancelled lookup neither blocks nor reaches the next lookup.
func TestWaitAsyncReuse(t *testing.T) {
	h := heldAsync{held: make(chan func(), 8)}
	w := newWaitAsync(h)
	ask := func(ctx context.Context, name string) (*resolve.Answer, error) {
		got := make(chan struct{})
		var a *resolve.Answer
		var err error
		go func() {
			a, err = w.Lookup(ctx, resolve.Q(name, dns.TypeA))
			close(got)
		}()
		if ctx.Err() == nil {
			h.answer()
		}
		<-got
		return a, err
	}
	for _, name := range []string{"a.test.", "b.test."} {
		if a, err := ask(t.Context(), name); err != nil || a.Question.Name != name {
			t.Fatalf("%s: %v, %v", name, a, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ask(ctx, "gone.test."); !errors.Is(err, resolve.ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lookup: %v, want a time-out wrapping context.Canceled", err)
	}
	h.answer() // the cancelled lookup's callback, late: must not block
	for _, name := range []string{"c.test.", "d.test."} {
		if a, err := ask(t.Context(), name); err != nil || a.Question.Name != name {
			t.Fatalf("%s after a cancelled lookup: %v, %v (the late answer must not reach it)", name, a, err)
		}
	}
}

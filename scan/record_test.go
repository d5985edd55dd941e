package scan

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/mxtrace/mxtrace/resolve"
)

// timingOut fails every lookup with a time-out and counts how each was
// asked.
type timingOut struct{ blocking, async atomic.Int32 }

func (r *timingOut) fail(q resolve.Question) error {
	return &resolve.Error{Question: q, Rcode: -1, Err: resolve.ErrTimeout}
}

func (r *timingOut) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	r.blocking.Add(1)
	return nil, r.fail(q)
}

// plainTimingOut is timingOut without LookupAsync.
type plainTimingOut struct{ r *timingOut }

func (p plainTimingOut) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	return p.r.Lookup(ctx, q)
}

func (r *timingOut) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	r.async.Add(1)
	done(nil, r.fail(q))
}

// TestRecordKeepsAsync: the recorder a check job puts in front of the
// audit's resolver is an Async when the resolver is, so a batch of
// questions starts them asynchronously (not a goroutine each), and their
// failures are recorded as the blocking lookups' are.
func TestRecordKeepsAsync(t *testing.T) {
	qs := []resolve.Question{resolve.Q("a.example.test.", dns.TypeTXT), resolve.Q("b.example.test.", dns.TypeTXT)}
	for _, tc := range []struct {
		name  string
		async bool
		wrap  func(*timingOut) resolve.Resolver
	}{
		{"async", true, func(r *timingOut) resolve.Resolver { return r }},
		{"plain", false, func(r *timingOut) resolve.Resolver { return plainTimingOut{r} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first atomic.Pointer[error]
			next := &timingOut{}
			rec := record(tc.wrap(next), &first)
			if _, ok := resolve.AsyncOf(rec); ok != tc.async {
				t.Fatalf("AsyncOf(recorder) = %v, want %v", ok, tc.async)
			}
			replies := resolve.LookupAll(t.Context(), rec, qs, 0)
			for i, r := range replies {
				if !errors.Is(r.Err, resolve.ErrTimeout) {
					t.Errorf("reply %d: %v, want the time-out", i, r.Err)
				}
			}
			wantAsync, wantBlocking := int32(len(qs)), int32(0)
			if !tc.async {
				wantAsync, wantBlocking = 0, int32(len(qs))
			}
			if a, b := next.async.Load(), next.blocking.Load(); a != wantAsync || b != wantBlocking {
				t.Errorf("%d asynchronous and %d blocking lookups, want %d and %d", a, b, wantAsync, wantBlocking)
			}
			if err := incomplete(&first); !errors.Is(err, ErrIncomplete) || !errors.Is(err, resolve.ErrTimeout) {
				t.Errorf("recorded %v, want ErrIncomplete wrapping the time-out", err)
			}
		})
	}
}

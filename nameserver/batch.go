package nameserver

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"github.com/mxtrace/mxtrace/resolve"
)

// The audit's questions known up front go in batches: the recursive ones
// (the DNSSEC checks, every NS name's addresses) through resolve's
// batches, which over a scan's Mux need no goroutine per question, and
// the direct ones (MX and SOA to every server address) once per address
// and question, on a goroutine each but the last. A goroutine per
// question and per server, and a channel per direct question, cost more
// than the questions' parsing in a scan (docs/performance.md, "The
// audit").

// looked is lookup's outcome for one question.
type looked struct {
	a      *resolve.Answer
	cdOnly bool
	err    error
}

// lookupAll is lookup for several questions at once: each is asked of the
// recursive resolver in one batch, and those it answers SERVFAIL are asked
// again with CD (RFC 4035 §3.2.2) in a second batch, when a CD resolver is
// configured.
func (au *audit) lookupAll(ctx context.Context, qs []resolve.Question) []looked {
	out := make([]looked, len(qs))
	var again []resolve.Question
	var which []int
	for i, r := range resolve.LookupAll(ctx, au.resolver, qs, 0) {
		out[i] = looked{a: r.Answer, err: r.Err}
		if r.Err != nil && au.CDResolver != nil && errors.Is(r.Err, resolve.ErrServerFailure) {
			again = append(again, qs[i])
			which = append(which, i)
		}
	}
	for k, r := range resolve.LookupAll(ctx, au.CDResolver, again, 0) {
		if r.Err == nil {
			// Otherwise broken with and without validation: a real
			// server failure, the first error.
			out[which[k]] = looked{a: r.Answer, cdOnly: true}
		}
	}
	return out
}

// followAll is resolve.Follow through recursive for several questions at
// once: the first question of each chain in one batch (lookupAll), the
// rest of a chain, rarely needed, a lookup at a time.
func (au *audit) followAll(ctx context.Context, qs []resolve.Question) []resolve.Followed {
	out := make([]resolve.Followed, len(qs))
	first := &firstLooked{au: au}
	for i, l := range au.lookupAll(ctx, qs) {
		first.q, first.l = qs[i], l
		res, err := resolve.Follow(ctx, first, qs[i])
		if err != nil {
			res = nil
		}
		out[i] = resolve.Followed{Result: res, Err: err}
	}
	return out
}

// firstLooked is recursive with the answer to q looked up already.
type firstLooked struct {
	au *audit
	q  resolve.Question
	l  looked
}

func (f *firstLooked) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q != f.q {
		return recursive{f.au}.Lookup(ctx, q)
	}
	if f.l.cdOnly {
		f.au.note("%s fails DNSSEC validation (answered only with checking disabled).", q)
	}
	return f.l.a, f.l.err
}

// directCall is one direct question to one server address, and its reply.
type directCall struct {
	server netip.AddrPort
	q      resolve.Question
	a      *resolve.Answer
	err    error
}

// askAll asks every call through the Direct, at once: on a goroutine each
// but the last, which is asked on the caller's.
func (au *audit) askAll(ctx context.Context, calls []directCall) {
	direct := au.Direct
	if direct == nil {
		direct = StubDirect{}
	}
	var wg sync.WaitGroup
	for i := range calls {
		c := &calls[i]
		if i == len(calls)-1 {
			c.a, c.err = direct.Ask(ctx, c.server, c.q)
			break
		}
		wg.Go(func() { c.a, c.err = direct.Ask(ctx, c.server, c.q) })
	}
	wg.Wait()
}

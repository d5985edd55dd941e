package route

import (
	"cmp"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// Prefetch asks, without waiting, the questions Plan will ask for domain:
// its MX set, then the addresses of its exchanges, or of the domain itself
// when it has no MX records (implicit MX). done is called once all are
// answered, so that a Plan run then finds every answer in the cache and
// waits for nothing. A scan prefetches the domains ahead of its workers,
// so thousands of questions are in flight with no goroutine blocked on
// any of them.
//
// It is only a head start: Plan asks again whatever is not in the cache
// by then (a failed lookup, an alias chain, which Prefetch leaves to
// Plan, or an answer already evicted), and gives the same result either
// way. When the Planner's resolver cannot start lookups without waiting
// (resolve.AsyncOf), done is called at once.
func (p *Planner) Prefetch(domain dnsname.Name, done func()) {
	r, ok := resolve.AsyncOf(p.Resolver)
	if !ok {
		done()
		return
	}
	f := &prefetch{p: p, r: r, done: done}
	f.pending.Store(1) // until the MX lookup has started its followers
	f.ask(resolve.Q(domain.FQDN(), dns.TypeMX), f.exchanges)
	f.release()
}

// prefetch is one domain's Prefetch: the lookups still running.
type prefetch struct {
	p       *Planner
	r       resolve.Async
	pending atomic.Int32
	done    func()
}

// ask starts a lookup and, if it succeeds, passes the answer to then. An
// address already cached needs nothing: no callback is made for it (most
// of a scan's exchanges are a few providers' hosts).
func (f *prefetch) ask(q resolve.Question, then func(resolve.Question, *resolve.Answer)) {
	if then == nil && resolve.IsReady(f.r, q) {
		return
	}
	f.pending.Add(1)
	f.r.LookupAsync(q, func(a *resolve.Answer, err error) {
		if err == nil && then != nil {
			then(q, a)
		}
		f.release()
	})
}

func (f *prefetch) release() {
	if f.pending.Add(-1) == 0 {
		f.done()
	}
}

// exchanges follows the MX answer as Plan will: the addresses of each
// exchange (docs/routing.md#address-resolution, #bounded-work), or of the
// domain when it has none (docs/routing.md#implicit-mx).
func (f *prefetch) exchanges(q resolve.Question, a *resolve.Answer) {
	records, n := 0, 0
	for _, rr := range a.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			return // an alias: Plan follows the chain itself
		case *dns.MX:
			records++
			fqdn := resolve.CanonicalName(rr.Mx) // as Plan looks it up
			if name := trimDot(fqdn); name == "." || isIPLiteral(name) {
				continue
			}
			if n++; n > cmp.Or(f.p.MaxExchanges, DefaultMaxExchanges) {
				return
			}
			f.addresses(fqdn)
		}
	}
	if records == 0 && !a.NXDomain() {
		f.addresses(q.Name)
	}
}

// addresses asks the address questions of one host (absolute name).
func (f *prefetch) addresses(name string) {
	for _, q := range f.p.addressQuestions(name) {
		f.ask(q, nil)
	}
}

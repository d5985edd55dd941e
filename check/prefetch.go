package check

import (
	"sync/atomic"

	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// Prefetch asks, without waiting, the questions an Audit of domain asks
// first: the plan's (route.Planner.Prefetch: the MX set, then the
// exchanges' addresses) and each area's first question, which needs no
// earlier answer (the SPF, DMARC, MTA-STS and TLS-RPT records, DKIM's key
// tree, the NS set and SOA of the domain). done is called once all are
// answered. A scan prefetches the domains ahead of its workers
// (scan.Config.Prefetch), so the Audit that runs then finds those answers
// in the cache: its gatherers start without waiting, each question asked
// once, and no goroutine is parked on any of them meanwhile.
//
// It is only a head start, like the planner's: the Audit asks whatever
// is not in the cache by then, and gives the same report either way. Each
// question comes from the package that asks it (spf.RecordQuestion, ...),
// so the two cannot drift apart (TestPrefetchAsksOnlyWhatAuditAsks).
// What the areas ask after their first answer (SPF's includes, the DKIM
// selectors, the nameservers' addresses) depends on it and is left to
// the Audit. When a.Resolver cannot start lookups without waiting
// (resolve.AsyncOf), done is called at once.
func (a *Auditor) Prefetch(domain dnsname.Name, done func()) {
	r, ok := resolve.AsyncOf(a.Resolver)
	if !ok {
		done()
		return
	}
	f := &prefetch{done: done}
	f.pending.Store(1)     // until every question is started
	answered := f.answered // one method value for all, not one a question
	ask := func(q resolve.Question) {
		if resolve.IsReady(r, q) {
			return
		}
		f.pending.Add(1)
		r.LookupAsync(q, answered)
	}
	ask(spf.RecordQuestion(domain))
	ask(dmarc.RecordQuestion(domain))
	ask(dkim.KeyTreeQuestion(domain))
	ask(mtasts.RecordQuestion(domain))
	ask(tlsrpt.RecordQuestion(domain))
	if a.Nameservers != nil {
		for _, q := range nameserver.FirstQuestions(domain) {
			ask(q)
		}
	}
	if a.Planner != nil {
		f.pending.Add(1)
		a.Planner.Prefetch(domain, f.release)
	}
	f.release()
}

// prefetch is one domain's Prefetch: the lookups still running.
type prefetch struct {
	pending atomic.Int32
	done    func()
}

func (f *prefetch) answered(*resolve.Answer, error) { f.release() }

func (f *prefetch) release() {
	if f.pending.Add(-1) == 0 {
		f.done()
	}
}

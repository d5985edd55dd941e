package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// zoneAsync is an Async resolver over zone files whose callbacks come from
// one reader goroutine, as a Mux's come from its socket's reader.
type zoneAsync struct {
	z     *resolve.Zones
	queue chan zoneAsked
}

type zoneAsked struct {
	q    resolve.Question
	done func(*resolve.Answer, error)
}

func (a zoneAsync) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	return a.z.Lookup(ctx, q)
}

func (a zoneAsync) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	a.queue <- zoneAsked{q, done}
}

// zoneDirect is the nameserver audit's Direct over zone files.
type zoneDirect struct{ z *resolve.Zones }

func (d zoneDirect) Ask(ctx context.Context, _ netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	return d.z.Lookup(ctx, q)
}

// BenchmarkAuditAsync audits dnstest.AuditZone's domain as a scan does
// (--no-dnsbl, no SMTP, the MTA-STS policy not fetched), with a fresh
// cache each time, through waitAsync over an Async resolver answering from
// the zones on one reader goroutine: the CPU and the allocations of the
// gathering and judging, without the network (docs/performance.md, "The
// audit").
func BenchmarkAuditAsync(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "bench")
	if err != nil {
		b.Fatal(err)
	}
	async := zoneAsync{z: z, queue: make(chan zoneAsked, 1<<12)}
	go func() {
		for a := range async.queue {
			a.done(z.Lookup(context.Background(), a.q))
		}
	}()
	b.Cleanup(func() { close(async.queue) })
	domain := dnsname.MustParse("d.test")
	for b.Loop() {
		r := newWaitAsync(resolve.NewCache(async, 0))
		a := &check.Auditor{
			Resolver:    r,
			Planner:     &route.Planner{Resolver: r},
			Nameservers: &nameserver.Options{Direct: zoneDirect{z}, IPv4: true},
		}
		rep := a.Audit(b.Context(), domain)
		if errs := rep.Errors(); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

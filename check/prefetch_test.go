package check_test

import (
	"bytes"
	"context"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// countingAsync answers from zones, on a goroutine of its own for
// LookupAsync, and counts every question that reaches it.
type countingAsync struct {
	z     *resolve.Zones
	mu    sync.Mutex
	asked map[resolve.Question]int
}

func (c *countingAsync) count(q resolve.Question) {
	c.mu.Lock()
	c.asked[q]++
	c.mu.Unlock()
}

func (c *countingAsync) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.count(q)
	return c.z.Lookup(ctx, q)
}

func (c *countingAsync) LookupAsync(q resolve.Question, done func(*resolve.Answer, error)) {
	c.count(q)
	go func() { done(c.z.Lookup(context.Background(), q)) }()
}

func (c *countingAsync) snapshot() map[resolve.Question]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.asked)
}

// zoneDirect is the nameserver audit's Direct over the same zones.
type zoneDirect struct{ z *resolve.Zones }

func (d zoneDirect) Ask(ctx context.Context, _ netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	return d.z.Lookup(ctx, q)
}

// elapsed matches the report's times, the top one and its areas'.
var elapsed = regexp.MustCompile(`"elapsed_ms":[0-9]+`)

// auditWith audits d.test of dnstest.AuditZone through a fresh cache over
// a counting resolver, after Prefetch when prefetch is set, and returns
// the report's JSON (its elapsed_ms zeroed), the questions that reached the
// resolver by the time Prefetch called done, and all of them at the end.
func auditWith(t *testing.T, prefetch bool) (report []byte, before, all map[resolve.Question]int) {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "audit")
	if err != nil {
		t.Fatal(err)
	}
	up := &countingAsync{z: z, asked: map[resolve.Question]int{}}
	r := resolve.NewCache(up, 0)
	a := &check.Auditor{
		Resolver:    r,
		Planner:     &route.Planner{Resolver: r, Seed: 1, HasSeed: true},
		Nameservers: &nameserver.Options{Direct: zoneDirect{z}, IPv4: true},
	}
	domain := dnsname.MustParse("d.test")
	if prefetch {
		done := make(chan struct{})
		a.Prefetch(domain, func() { close(done) })
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Prefetch never called done")
		}
		before = up.snapshot()
	}
	rep := a.Audit(t.Context(), domain)
	if errs := rep.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	b, err := rep.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	return elapsed.ReplaceAll(b, []byte(`"elapsed_ms":0`)), before, up.snapshot()
}

// TestPrefetchAsksOnlyWhatAuditAsks: after Prefetch, an Audit gives the
// same report, and no question reaches the resolver that the Audit alone
// would not ask, nor twice: the prefetched questions are each area's own
// (spf.RecordQuestion, ...), so a package that changes what it asks
// first fails here rather than doubling a scan's queries.
func TestPrefetchAsksOnlyWhatAuditAsks(t *testing.T) {
	plain, _, alone := auditWith(t, false)
	got, prefetched, all := auditWith(t, true)
	if !bytes.Equal(got, plain) {
		t.Errorf("report after Prefetch differs:\n%s\nwithout:\n%s", got, plain)
	}
	for q, n := range all {
		if n != 1 {
			t.Errorf("%v asked %d times", q, n)
		}
	}
	for q := range all {
		if alone[q] == 0 {
			t.Errorf("with Prefetch %s/%s was asked, which the Audit alone never asks", q.Name, dns.TypeToString[q.Type])
		}
	}
	for q := range alone {
		if all[q] == 0 {
			t.Errorf("with Prefetch %s/%s was not asked", q.Name, dns.TypeToString[q.Type])
		}
	}
	// What Prefetch must have asked before done: the plan's and every
	// area's first question.
	want := []resolve.Question{
		resolve.Q("d.test.", dns.TypeMX),
		resolve.Q("mx1.d.test.", dns.TypeA), resolve.Q("mx1.d.test.", dns.TypeAAAA),
		resolve.Q("mx2.d.test.", dns.TypeA), resolve.Q("mx2.d.test.", dns.TypeAAAA),
		resolve.Q("d.test.", dns.TypeTXT),
		resolve.Q("_dmarc.d.test.", dns.TypeTXT),
		resolve.Q("_domainkey.d.test.", dns.TypeTXT),
		resolve.Q("_mta-sts.d.test.", dns.TypeTXT),
		resolve.Q("_smtp._tls.d.test.", dns.TypeTXT),
		resolve.Q("d.test.", dns.TypeNS),
		resolve.Q("d.test.", dns.TypeSOA),
	}
	for _, q := range want {
		if prefetched[q] != 1 {
			t.Errorf("Prefetch did not ask %v before done (asked: %v)", q, keys(prefetched))
		}
	}
	if len(prefetched) != len(want) {
		t.Errorf("Prefetch asked %d questions, want %d: %v", len(prefetched), len(want), keys(prefetched))
	}
}

// TestPrefetchWithoutAsync: over a resolver that cannot start lookups
// without waiting there is nothing to do ahead, and done comes at once.
func TestPrefetchWithoutAsync(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "audit")
	if err != nil {
		t.Fatal(err)
	}
	a := &check.Auditor{Resolver: z, Planner: &route.Planner{Resolver: z}}
	called := false
	a.Prefetch(dnsname.MustParse("d.test"), func() { called = true })
	if !called {
		t.Error("done not called before Prefetch returned")
	}
}

func keys(m map[resolve.Question]int) []string {
	var out []string
	for q := range m {
		out = append(out, q.Name+"/"+dns.TypeToString[q.Type])
	}
	slices.Sort(out)
	return out
}

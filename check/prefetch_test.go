package check_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// a counting resolver, after Prefetch when prefetch is set, with the
// Auditor's InlineAreas set to inline, and returns
// the report's JSON (its elapsed_ms zeroed), the questions that reached the
// resolver by the time Prefetch called done, and all of them at the end.
func auditWith(t *testing.T, prefetch, inline bool) (report []byte, before, all map[resolve.Question]int) {
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
		InlineAreas: inline,
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
	plain, _, alone := auditWith(t, false, false)
	got, prefetched, all := auditWith(t, true, false)
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

// TestInlineAreasSameAudit: a scan's Auditor (Prefetch, then the areas
// on the auditing goroutine) gives the report of the parallel gathering
// and asks exactly its questions, each once.
func TestInlineAreasSameAudit(t *testing.T) {
	plain, _, alone := auditWith(t, false, false)
	got, _, all := auditWith(t, true, true)
	if !bytes.Equal(got, plain) {
		t.Errorf("report with InlineAreas differs:\n%s\nwithout:\n%s", got, plain)
	}
	if !maps.Equal(all, alone) {
		t.Errorf("with InlineAreas asked %v\nwithout: %v", keys(all), keys(alone))
	}
}

// noting tells on asked every question that reaches it.
type noting struct {
	next  resolve.Resolver
	asked chan<- resolve.Question
}

func (n noting) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	select {
	case n.asked <- q:
	default:
		panic("noting: asked is full")
	}
	return n.next.Lookup(ctx, q)
}

// TestInlineAreas: with InlineAreas the SPF, DMARC, DKIM, MTA-STS and
// TLS-RPT areas run one after another, so while SPF's record is late
// DMARC's is not asked (in parallel it is), and the report is the
// parallel one once the record comes.
func TestInlineAreas(t *testing.T) {
	domain := dnsname.MustParse("good.example")
	spfQ, dmarcQ := resolve.Q("good.example", dns.TypeTXT), resolve.Q("_dmarc.good.example", dns.TypeTXT)
	want := auditor(resolve.NewCache(exampleZones(t), 0)).Audit(t.Context(), domain)
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			asked := make(chan resolve.Question, 1000)
			h := held{next: exampleZones(t), hold: func(q resolve.Question) bool { return q == spfQ }, open: make(chan struct{})}
			a := auditor(resolve.NewCache(noting{h, asked}, 0))
			a.InlineAreas = inline
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			reports := make(chan *check.Report, 1)
			go func() { reports <- a.Audit(ctx, domain) }()
			// waitFor reports whether q is asked within d (or was already).
			seen := map[resolve.Question]bool{}
			waitFor := func(q resolve.Question, d time.Duration) bool {
				timeout := time.After(d)
				for !seen[q] {
					select {
					case got := <-asked:
						seen[got] = true
					case <-timeout:
						return false
					}
				}
				return true
			}
			if !waitFor(spfQ, 5*time.Second) {
				t.Fatal("SPF's record never asked")
			}
			if inline {
				if waitFor(dmarcQ, 300*time.Millisecond) {
					t.Error("DMARC's record asked while SPF's was still late: the areas ran in parallel")
				}
			} else if !waitFor(dmarcQ, 5*time.Second) {
				t.Error("DMARC's record not asked while SPF's was late: the areas waited for each other")
			}
			close(h.open)
			rep := <-reports
			rep.ElapsedMS, want.ElapsedMS = 0, 0
			if errs := rep.Errors(); len(errs) > 0 {
				t.Error(errors.Join(errs...))
			}
			if fmt.Sprint(rep.Areas) != fmt.Sprint(want.Areas) {
				t.Errorf("areas\n%v\nwant\n%v", rep.Areas, want.Areas)
			}
		})
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

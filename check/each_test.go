package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// events runs AuditEach and returns the report and what emit was called
// with, checking that the calls never overlap.
func events(t *testing.T, a *check.Auditor, domain string) (*check.Report, []check.Progress) {
	t.Helper()
	var ps []check.Progress
	var in sync.Mutex
	r := a.AuditEach(t.Context(), dnsname.MustParse(domain), func(p check.Progress) {
		if !in.TryLock() {
			t.Errorf("%s: emit called concurrently", domain)
			return
		}
		defer in.Unlock()
		ps = append(ps, p)
	})
	return r, ps
}

// checkEvents: one event per entry of the report's Areas and Skipped,
// each the entry itself, and the plan on the routing area's.
func checkEvents(t *testing.T, domain string, r *check.Report, ps []check.Progress) {
	t.Helper()
	areas, skipped := map[finding.Area]check.AreaResult{}, map[finding.Area]check.Skip{}
	for _, p := range ps {
		_, a := areas[p.Area]
		_, s := skipped[p.Area]
		switch {
		case a || s:
			t.Errorf("%s: two events for %s", domain, p.Area)
		case (p.Result == nil) == (p.Skip == nil):
			t.Errorf("%s: event for %s: result %v, skip %v; want one of them", domain, p.Area, p.Result, p.Skip)
		case p.Result != nil:
			areas[p.Area] = *p.Result
		default:
			skipped[p.Area] = *p.Skip
		}
		if p.Result != nil && p.Result.Area != p.Area || p.Skip != nil && p.Skip.Area != p.Area {
			t.Errorf("%s: event for %s carries another area: %+v", domain, p.Area, p)
		}
		if (p.Plan != nil) != (p.Area == finding.AreaRouting) || p.Plan != nil && p.Plan != r.Plan {
			t.Errorf("%s: event for %s has plan %v", domain, p.Area, p.Plan)
		}
	}
	if len(areas) != len(r.Areas) || len(skipped) != len(r.Skipped) {
		t.Errorf("%s: %d area and %d skip events; the report has %d and %d", domain, len(areas), len(skipped), len(r.Areas), len(r.Skipped))
	}
	for _, a := range r.Areas {
		if !reflect.DeepEqual(areas[a.Area], a) {
			t.Errorf("%s: area %s: event %+v, report %+v", domain, a.Area, areas[a.Area], a)
		}
	}
	for _, s := range r.Skipped {
		if skipped[s.Area] != s {
			t.Errorf("%s: skipped %s: event %+v, report %+v", domain, s.Area, skipped[s.Area], s)
		}
	}
}

// TestAuditEach: over the example zones (with a blacklist, a failing
// lookup, a domain that does not exist), every area of the report gets
// exactly one event, and the report is Audit's.
func TestAuditEach(t *testing.T) {
	z := exampleZones(t)
	r := resolve.NewCache(servfail{next: z, fail: map[resolve.Question]bool{
		resolve.Q("_dmarc.tiers.example", dns.TypeTXT): true,
	}}, 0)
	a := auditor(r)
	a.DNSBL = &dnsbl.Options{Lists: []string{"bl.test"}}
	for _, d := range []string{"good.example", "tiers.example", "nullmx.example", "nosuch.example", "split.test"} {
		got, ps := events(t, a, d)
		checkEvents(t, d, got, ps)
		// The same, but for the lookups' timings.
		want := a.Audit(t.Context(), dnsname.MustParse(d))
		gj, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		wj, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(zeroElapsed(gj), zeroElapsed(wj)) || !reflect.DeepEqual(got.Areas, want.Areas) || !reflect.DeepEqual(got.Skipped, want.Skipped) {
			t.Errorf("%s: AuditEach's report differs from Audit's\n%s\n%s", d, gj, wj)
		}
		// The Auditor's own skips come first, before any fact is in.
		for i, s := range []finding.Area{finding.AreaNameservers, "MTA-STS policy fetch"} {
			if len(ps) <= i || ps[i].Skip == nil || ps[i].Area != s {
				t.Errorf("%s: event %d is not the Auditor's skip of %s: %+v", d, i, s, ps)
			}
		}
	}
}

// gate is an SMTP server that greets only once open is closed: it
// accepts on addr and then passes the connection to next.
func gate(t *testing.T, addr netip.AddrPort, next netip.AddrPort, open <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				select {
				case <-open:
				case <-stop:
					return
				}
				up, err := net.Dial("tcp", next.String())
				if err != nil {
					return
				}
				defer up.Close()
				go func() {
					io.Copy(up, c)
					up.Close()
				}()
				io.Copy(c, up)
			})
		}
	})
}

// TestAuditEachSMTPLast: the routing and SPF areas are judged, and their
// events emitted, while the SMTP probe still waits for the greeting: the
// server greets only after emit has seen both. An audit that judged
// every area at the end would leave the probe to time out.
func TestAuditEachSMTPLast(t *testing.T) {
	port := smtptest.Port(t)
	at := func(n byte) netip.AddrPort { return netip.AddrPortFrom(smtptest.Loopback(n), uint16(port)) }
	smtptest.Start(t, smtptest.Options{Addr: at(6).String(), Hostname: "mx.slow.test"})
	open := make(chan struct{})
	gate(t, at(5), at(6), open)
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN slow.test.
$TTL 300
@   SOA ns h 1 7200 900 1209600 300
@   MX  10 mx
@   TXT "v=spf1 mx -all"
mx  A   127.0.0.5
`), "slow")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{
		Resolver: r, Planner: &route.Planner{Resolver: r}, SkipReason: "offline",
		Probe: &probe.Prober{Port: port, HelloName: "checker.test",
			Timeouts: dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, Command: 5 * time.Second, TLSHandshake: 5 * time.Second}},
	}
	var order []finding.Area
	rep := a.AuditEach(t.Context(), dnsname.MustParse("slow.test"), func(p check.Progress) {
		order = append(order, p.Area)
		if slices.Contains(order, finding.AreaRouting) && slices.Contains(order, finding.AreaSPF) && !isClosed(open) {
			close(open)
		}
	})
	smtpAt := slices.Index(order, finding.AreaSMTP)
	if smtpAt < 0 || smtpAt < slices.Index(order, finding.AreaRouting) || smtpAt < slices.Index(order, finding.AreaSPF) {
		t.Errorf("event order %v: routing and SPF must come before SMTP", order)
	}
	if s, ok := area(rep, finding.AreaSMTP); !ok || s.Error != "" || !strings.HasPrefix(s.Summary, "1 of 1 address answers") {
		t.Errorf("SMTP area %+v: the server was not greeting when probed", s)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// held answers one question only when its gate opens (or the lookup's
// context ends): a gatherer that is late.
type held struct {
	next resolve.Resolver
	hold func(resolve.Question) bool
	open chan struct{}
}

func (h held) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if h.hold(q) {
		select {
		case <-h.open:
		case <-ctx.Done():
			return nil, &resolve.Error{Question: q, Rcode: -1, Err: resolve.ErrTimeout}
		}
	}
	return h.next.Lookup(ctx, q)
}

// TestAuditEachWaitsForFacts: while one fact is late, every other area
// is decided and emitted, and the area that needs the late fact is not:
// it comes last, once the fact is in.
func TestAuditEachWaitsForFacts(t *testing.T) {
	z := exampleZones(t)
	all := auditor(resolve.NewCache(z, 0)).Audit(t.Context(), dnsname.MustParse("good.example"))
	total := len(all.Areas) + len(all.Skipped)
	for _, tt := range []struct {
		late finding.Area
		hold func(resolve.Question) bool
	}{
		{finding.AreaPTR, func(q resolve.Question) bool { return q.Type == dns.TypePTR }},
		{finding.AreaDMARC, func(q resolve.Question) bool { return q == resolve.Q("_dmarc.good.example", dns.TypeTXT) }},
		{finding.AreaSPF, func(q resolve.Question) bool { return q == resolve.Q("good.example", dns.TypeTXT) }},
	} {
		t.Run(string(tt.late), func(t *testing.T) {
			h := held{next: z, hold: tt.hold, open: make(chan struct{})}
			r := resolve.NewCache(h, 0)
			a := auditor(r)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var order []finding.Area
			rep := a.AuditEach(ctx, dnsname.MustParse("good.example"), func(p check.Progress) {
				order = append(order, p.Area)
				if len(order) == total-1 {
					if slices.Contains(order, tt.late) {
						t.Errorf("%s emitted before its fact was in: %v", tt.late, order)
					}
					close(h.open)
				}
			})
			if !isClosed(h.open) {
				t.Fatalf("only %v emitted while %s's fact was late: the others waited for it", order, tt.late)
			}
			if len(order) != total || order[total-1] != tt.late {
				t.Errorf("events %v: want %d, %s last", order, total, tt.late)
			}
			if errs := rep.Errors(); len(errs) > 0 {
				t.Error(errors.Join(errs...))
			}
			rep.ElapsedMS, all.ElapsedMS = 0, 0
			if fmt.Sprint(rep.Areas) != fmt.Sprint(all.Areas) {
				t.Errorf("areas\n%v\nwant\n%v", rep.Areas, all.Areas)
			}
		})
	}
}

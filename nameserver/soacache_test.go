package nameserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// countingDirect answers every question with a record of ttl (or fails
// with err) and counts the questions per server and question; with gate
// set, each answer waits for it to close.
type countingDirect struct {
	ttl  uint32
	err  error
	gate chan struct{}

	mu    sync.Mutex
	calls map[soaKey]int
}

func (d *countingDirect) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	d.mu.Lock()
	if d.calls == nil {
		d.calls = map[soaKey]int{}
	}
	d.calls[soaKey{server, q}]++
	err := d.err
	d.mu.Unlock()
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	rr, perr := dns.NewRR(fmt.Sprintf("%s %d IN SOA ns.%s hostmaster.%s 7 3600 600 86400 300", q.Name, d.ttl, q.Name, q.Name))
	if perr != nil {
		return nil, perr
	}
	return &resolve.Answer{Question: q, Answer: []dns.RR{rr}, Authoritative: true}, nil
}

func (d *countingDirect) count(server netip.AddrPort, q resolve.Question) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[soaKey{server, q}]
}

var (
	server1 = netip.MustParseAddrPort("127.0.0.1:53")
	server2 = netip.MustParseAddrPort("127.0.0.2:53")
	soaQ    = resolve.Q("zone.test.", dns.TypeSOA)
)

// clock is a settable time for the cache.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestSOACacheShares: the SOA of a zone at one server is asked once for
// every audit within the answer's age, per server; the domain's own MX
// question every time; and an answer older than min(MaxAge, TTL) is asked
// again.
func TestSOACacheShares(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ttl    uint32
		maxAge time.Duration
		fresh  time.Duration // still shared at this age
		stale  time.Duration // asked again at this age
	}{
		{"max age", 3600, 30 * time.Second, 29 * time.Second, 30 * time.Second},
		{"ttl lower", 10, 30 * time.Second, 9 * time.Second, 10 * time.Second},
		{"ttl zero", 0, 30 * time.Second, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &countingDirect{ttl: tc.ttl}
			c := NewSOACache(d, tc.maxAge)
			clk := &clock{t: time.Unix(1e9, 0)}
			c.now = clk.now
			start := clk.t
			ask := func(server netip.AddrPort, q resolve.Question) {
				t.Helper()
				a, err := c.Ask(t.Context(), server, q)
				if err != nil || a == nil || a.Question != q {
					t.Fatalf("Ask(%v, %v) = %v, %v", server, q, a, err)
				}
			}
			ask(server1, soaQ)
			if tc.fresh >= 0 {
				clk.t = start.Add(tc.fresh)
				ask(server1, soaQ)
				if n := d.count(server1, soaQ); n != 1 {
					t.Errorf("SOA asked %d times within its age, want 1", n)
				}
			}
			clk.t = start.Add(tc.stale)
			ask(server1, soaQ)
			if n := d.count(server1, soaQ); n != 2 {
				t.Errorf("SOA asked %d times after its age, want 2", n)
			}
			ask(server2, soaQ)
			if n := d.count(server2, soaQ); n != 1 {
				t.Errorf("another server's SOA asked %d times, want 1", n)
			}
			mx := resolve.Q("zone.test.", dns.TypeMX)
			ask(server1, mx)
			ask(server1, mx)
			if n := d.count(server1, mx); n != 2 {
				t.Errorf("MX asked %d times, want 2 (never shared)", n)
			}
		})
	}
}

// TestSOACacheJoins: audits asking at once share one question in
// flight; when it fails, each asks again itself, and no failure is kept.
func TestSOACacheJoins(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &countingDirect{ttl: 3600, gate: make(chan struct{})}
				if fail {
					d.err = errors.New("no answer")
				}
				c := NewSOACache(d, 0)
				const audits = 20
				errs := make(chan error, audits)
				for range audits {
					go func() {
						_, err := c.Ask(t.Context(), server1, soaQ)
						errs <- err
					}()
				}
				synctest.Wait() // all asked or joined
				if n := d.count(server1, soaQ); n != 1 {
					t.Errorf("%d questions in flight, want 1", n)
				}
				close(d.gate)
				for range audits {
					if err := <-errs; (err != nil) != fail {
						t.Errorf("Ask: %v, want failure %v", err, fail)
					}
				}
				want := 1
				if fail {
					want = audits // the first, and each joiner again
				}
				if n := d.count(server1, soaQ); n != want {
					t.Errorf("%d questions, want %d", n, want)
				}
				if _, kept := c.entries[soaKey{server1, soaQ}]; kept == fail {
					t.Errorf("entry kept: %v, want %v", kept, !fail)
				}
			})
		})
	}
}

// TestSOACacheBounded: a full cache keeps no more answers until entries
// expire.
func TestSOACacheBounded(t *testing.T) {
	d := &countingDirect{ttl: 3600}
	c := NewSOACache(d, time.Minute)
	clk := &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	for i := range maxSOAEntries {
		s := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 53)
		if _, err := c.Ask(t.Context(), s, soaQ); err != nil {
			t.Fatal(err)
		}
	}
	extra := netip.MustParseAddrPort("192.0.2.1:53")
	for range 2 {
		c.Ask(t.Context(), extra, soaQ)
	}
	if n := d.count(extra, soaQ); n != 2 || len(c.entries) != maxSOAEntries {
		t.Errorf("full cache: asked %d times (want 2), %d entries (want %d)", n, len(c.entries), maxSOAEntries)
	}
	clk.t = clk.t.Add(time.Minute)
	for range 2 {
		c.Ask(t.Context(), extra, soaQ)
	}
	if n := d.count(extra, soaQ); n != 3 || len(c.entries) != 1 {
		t.Errorf("after expiry: asked %d times (want 3), %d entries (want 1)", n, len(c.entries))
	}
}

package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
)

// TestFollowBounds: loops (to the name asked or to a name inside the
// chain) and chains longer than MaxCNAMEChain end with an error, never an
// endless walk; a chain within the bound is followed.
func TestFollowBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("f.test. 300 SOA ns.f.test. h.f.test. 1 7200 900 1209600 300\n")
	b.WriteString("self.f.test. 300 CNAME self.f.test.\n")
	b.WriteString("a.f.test. 300 CNAME b.f.test.\nb.f.test. 300 CNAME c.f.test.\nc.f.test. 300 CNAME b.f.test.\n")
	for i := range resolve.MaxCNAMEChain + 2 {
		fmt.Fprintf(&b, "long%d.f.test. 300 CNAME long%d.f.test.\n", i, i+1)
	}
	fmt.Fprintf(&b, "long%d.f.test. 300 A 192.0.2.1\n", resolve.MaxCNAMEChain+2)
	z, err := resolve.ParseZones(strings.NewReader(b.String()), "follow")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		want  error
		chain int
	}{
		{"self.f.test.", resolve.ErrCNAMELoop, 0},
		{"a.f.test.", resolve.ErrCNAMELoop, 2},
		{"long0.f.test.", resolve.ErrCNAMEChain, resolve.MaxCNAMEChain},
		{fmt.Sprintf("long%d.f.test.", 3), nil, resolve.MaxCNAMEChain - 1},
	} {
		res, err := resolve.Follow(t.Context(), z, resolve.Q(tt.name, dns.TypeA))
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
		if len(res.Chain) != tt.chain {
			t.Errorf("%s: chain %v, want %d names", tt.name, res.Chain, tt.chain)
		}
	}
}

// fixed answers every question with the same answer.
type fixed struct{ a *resolve.Answer }

func (f fixed) Lookup(context.Context, resolve.Question) (*resolve.Answer, error) { return f.a, nil }

// TestFollowRecords: the records of the asked type are those owned by the
// end of the chain, in the order served. A single run of them is shared
// with the answer, not copied, and cannot be appended into it; records
// interleaved with others are copied.
func TestFollowRecords(t *testing.T) {
	rr := func(s string) dns.RR { return resolvetest.MustRR(t, s) }
	q := resolve.Q("a.test.", dns.TypeA)
	for _, tt := range []struct {
		name   string
		answer []dns.RR
		want   []int // indexes into answer
		shared bool
	}{
		{"run after alias", []dns.RR{rr("a.test. 300 CNAME b.test."), rr("b.test. 300 A 192.0.2.1"), rr("b.test. 300 A 192.0.2.2")}, []int{1, 2}, true},
		{"interleaved", []dns.RR{rr("a.test. 300 A 192.0.2.1"), rr("a.test. 300 AAAA 2001:db8::1"), rr("A.Test. 300 A 192.0.2.2")}, []int{0, 2}, false},
		{"other owner", []dns.RR{rr("a.test. 300 A 192.0.2.1"), rr("x.test. 300 A 192.0.2.9")}, []int{0}, true},
		{"none", []dns.RR{rr("a.test. 300 AAAA 2001:db8::1")}, nil, false},
	} {
		a := &resolve.Answer{Question: q, Answer: tt.answer, Authority: []dns.RR{rr("test. 300 SOA ns.test. h.test. 1 2 3 4 300")}}
		before := slices.Clone(a.Answer)
		res, err := resolve.Follow(t.Context(), fixed{a}, q)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var want []dns.RR
		for _, i := range tt.want {
			want = append(want, tt.answer[i])
		}
		if !slices.Equal(res.Records, want) {
			t.Errorf("%s: records %v, want %v", tt.name, res.Records, want)
		}
		if shared := len(res.Records) > 0 && &res.Records[0] == &a.Answer[tt.want[0]]; shared != tt.shared {
			t.Errorf("%s: records shared with the answer: %v, want %v", tt.name, shared, tt.shared)
		}
		_ = append(res.Records, rr("a.test. 300 A 192.0.2.99"))
		if !slices.Equal(a.Answer, before) {
			t.Errorf("%s: appending to the records changed the answer: %v", tt.name, a.Answer)
		}
	}
}

// table answers from a map and counts what it is asked.
type table struct {
	answers map[resolve.Question]*resolve.Answer
	asked   *int
}

func (tb table) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	*tb.asked++
	if a, ok := tb.answers[q]; ok {
		return a, nil
	}
	return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
}

// TestFollowCached: FollowCached walks the chain from the cache alone. It
// asks nobody, says ErrNotCached when any answer of the walk is missing
// (also the second of a chain the server stopped), and otherwise gives
// Follow's result; a resolver with no memory never has an answer.
func TestFollowCached(t *testing.T) {
	rr := func(s string) dns.RR { return resolvetest.MustRR(t, s) }
	soa := []dns.RR{rr("test. 300 SOA ns.test. h.test. 1 2 3 4 60")}
	qa, qb, qnx := resolve.Q("a.test.", dns.TypeA), resolve.Q("b.other.", dns.TypeA), resolve.Q("nx.test.", dns.TypeA)
	asked := 0
	tb := table{asked: &asked, answers: map[resolve.Question]*resolve.Answer{
		// The server stops at the alias: its target is another zone's.
		qa:  {Question: qa, Answer: []dns.RR{rr("a.test. 300 CNAME b.other.")}},
		qb:  {Question: qb, Answer: []dns.RR{rr("b.other. 120 A 192.0.2.7"), rr("b.other. 120 A 192.0.2.8")}},
		qnx: {Question: qnx, Rcode: dns.RcodeNameError, Authority: soa},
	}}
	if ttl := tb.answers[qa].TTL(); ttl != 300 {
		t.Fatalf("an answer that stops at an alias holds for %d s, want the alias's 300", ttl)
	}
	c := resolve.NewCache(tb, 0)

	if _, err := resolve.FollowCached(c, qa); err != resolve.ErrNotCached {
		t.Fatalf("empty cache: %v, want ErrNotCached", err)
	}
	if _, err := c.Lookup(t.Context(), qa); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve.FollowCached(c, qa); err != resolve.ErrNotCached {
		t.Fatalf("the alias cached, its target not: %v, want ErrNotCached", err)
	}
	want, err := resolve.Follow(t.Context(), c, qa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(t.Context(), qnx); err != nil {
		t.Fatal(err)
	}
	before := asked
	got, err := resolve.FollowCached(c, qa)
	if err != nil {
		t.Fatalf("the whole chain cached: %v", err)
	}
	if got.Name != "b.other." || !slices.Equal(got.Chain, []string{"b.other."}) || len(got.Records) != 2 || got.TTL != 120 {
		t.Errorf("FollowCached = %+v, want b.other.'s two addresses, TTL 120, after one alias", got)
	}
	if got.Name != want.Name || !slices.Equal(got.Chain, want.Chain) || !slices.Equal(got.Records, want.Records) || got.TTL != want.TTL || got.NXDomain != want.NXDomain {
		t.Errorf("FollowCached = %+v, Follow = %+v", got, want)
	}

	if nx, err := resolve.FollowCached(c, qnx); err != nil || !nx.NXDomain {
		t.Errorf("a cached NXDOMAIN: %+v, %v", nx, err)
	}
	if asked != before {
		t.Errorf("FollowCached asked the resolver %d times", asked-before)
	}
	if _, err := resolve.FollowCached(tb, qb); err != resolve.ErrNotCached || asked != before {
		t.Errorf("a resolver with no memory: %v after %d lookups, want ErrNotCached and none", err, asked-before)
	}
}

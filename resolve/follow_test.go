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
	rr := func(s string) dns.RR {
		t.Helper()
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
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

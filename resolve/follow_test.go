package resolve_test

import (
	"errors"
	"fmt"
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

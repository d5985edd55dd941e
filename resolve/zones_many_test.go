package resolve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// manyZones is zone text of n zones, each with an MX and an address, and
// a child zone under every tenth.
func manyZones(n int) string {
	var b strings.Builder
	b.WriteString("$TTL 300\n")
	for i := range n {
		fmt.Fprintf(&b, "z%d.test. SOA ns h 1 2 3 4 5\nz%d.test. MX 10 mx.z%d.test.\nmx.z%d.test. A 192.0.2.1\n", i, i, i, i)
		if i%10 == 0 {
			fmt.Fprintf(&b, "c.z%d.test. SOA ns h 1 2 3 4 5\nc.z%d.test. MX 20 mx.c.z%d.test.\n", i, i, i)
		}
	}
	return b.String()
}

// TestZonesClosest: with many zones, some nested, every name is answered
// by its closest enclosing zone (a child zone's data, the parent's NXDOMAIN
// below it), whatever the order of the file.
func TestZonesClosest(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(manyZones(100)), "many")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		pref  uint16
		rcode int
	}{
		{"z0.test.", 10, dns.RcodeSuccess},
		{"c.z0.test.", 20, dns.RcodeSuccess},
		{"z99.test.", 10, dns.RcodeSuccess},
		{"c.z99.test.", 0, dns.RcodeNameError}, // no child zone under z99
		{"x.c.z10.test.", 0, dns.RcodeNameError},
	} {
		a, err := z.Lookup(t.Context(), resolve.Q(tt.name, dns.TypeMX))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if a.Rcode != tt.rcode || tt.pref != 0 && (len(a.Answer) != 1 || a.Answer[0].(*dns.MX).Preference != tt.pref) {
			t.Errorf("%s: rcode %d, answer %v", tt.name, a.Rcode, a.Answer)
		}
	}
	if _, err := z.Lookup(t.Context(), resolve.Q("other.example.", dns.TypeMX)); err == nil {
		t.Error("a name outside every zone was answered")
	}
}

// BenchmarkParseManyZones: loading a file is linear in its zones (each
// record finds its zone by its own labels; it was compared with every
// apex: 20,000 zones took 72 s).
func BenchmarkParseManyZones(b *testing.B) {
	for _, n := range []int{2_000, 20_000} {
		text := manyZones(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := resolve.ParseZones(strings.NewReader(text), "many"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

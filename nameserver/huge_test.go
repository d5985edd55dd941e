package nameserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
)

// hugeNS is the test world with 20,000 more IPv4 and 20,000 more IPv6
// addresses for ns1.
func hugeNS(t testing.TB) string {
	var b strings.Builder
	b.WriteString(world)
	b.WriteString("$ORIGIN example.test.\n")
	for i := range 20_000 {
		fmt.Fprintf(&b, "ns1 A 10.%d.%d.1\nns1 AAAA fd00::%x\n", i>>8, i&0xff, i)
	}
	return b.String()
}

// TestHugeNSAddresses: an NS name with 40,000 addresses is asked at its
// first DefaultMaxAddresses, the rest counted, with the work linear in
// the addresses (BenchmarkHugeNSAddresses).
func TestHugeNSAddresses(t *testing.T) {
	rep, err := Lookup(t.Context(), zones(t, hugeNS(t)), dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served)})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Servers, func(s Server) bool { return s.Name == "ns1.example.test" })
	if i < 0 {
		t.Fatalf("no ns1 in %+v", rep.Servers)
	}
	if s := rep.Servers[i]; len(s.Addresses) != DefaultMaxAddresses || s.AddressesOmitted != 40_001-DefaultMaxAddresses {
		t.Errorf("ns1: %d addresses asked, %d omitted; want %d and %d", len(s.Addresses), s.AddressesOmitted, DefaultMaxAddresses, 40_001-DefaultMaxAddresses)
	}
}

// BenchmarkHugeNSAddresses audits a zone whose ns1 has 40,000 addresses.
func BenchmarkHugeNSAddresses(b *testing.B) {
	z := zones(b, hugeNS(b))
	d := sameZone(b, served)
	for b.Loop() {
		if _, err := Lookup(b.Context(), z, dnsname.MustParse("example.test"), Options{Direct: d}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDistinctAddrs: each address once, in the order served, from a few
// records and from many; other records are skipped.
func TestDistinctAddrs(t *testing.T) {
	for _, n := range []int{3, 16, 50} {
		var rrs []dns.RR
		var want []netip.Addr
		for i := range n {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			want = append(want, ip)
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Rrtype: dns.TypeA}, A: ip.AsSlice()}, &dns.TXT{})
		}
		for i := range n {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Rrtype: dns.TypeA}, A: want[n-1-i].AsSlice()})
		}
		if got := distinctAddrs(rrs); !slices.Equal(got, want) {
			t.Errorf("%d addresses twice: got %v", n, got)
		}
	}
}

package probe

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// gatherZone: mx1's address has a forward-confirmed PTR, mx2's a PTR that
// does not resolve back, mx3's address is outside the zone files; only
// mx1 has TLSA records.
const gatherZone = `
$ORIGIN example.test.
@            3600 IN SOA ns hostmaster 1 3600 600 86400 300
mx1          3600 IN A    127.0.0.2
mx2          3600 IN A    127.0.0.3
_25._tcp.mx1 3600 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

$ORIGIN 0.0.127.in-addr.arpa.
@ 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
2 3600 IN PTR mx1.example.test.
3 3600 IN PTR elsewhere.example.test.
`

// TestGather: the one way check and probe gather the exchanges' PTR and
// TLSA records.
func TestGather(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(gatherZone), "gather")
	if err != nil {
		t.Fatal(err)
	}
	hosts := []route.Host{
		{Name: "mx1.example.test", Addresses: []string{"127.0.0.2"}},
		{Name: "mx2.example.test", Addresses: []string{"127.0.0.3", "192.0.2.9"}},
		{Name: "dangling.example.test"},
		{Name: "[192.0.2.1]", Addresses: []string{"192.0.2.1"}},
	}
	ptr := GatherPTR(t.Context(), zones, hosts, nil)
	if len(ptr) != len(hosts) {
		t.Fatalf("%d HostPTR for %d hosts", len(ptr), len(hosts))
	}
	if r := ptr[0].Results; len(r) != 1 || r[0].Confirmed != "mx1.example.test" {
		t.Errorf("mx1: %+v", ptr[0])
	}
	if r := ptr[1].Results; len(r) != 1 || r[0].Confirmed != "" || ptr[1].Outside != 1 {
		t.Errorf("mx2: %+v (want one unconfirmed PTR, one address outside the zones)", ptr[1])
	}
	names := PTRNames(ptr)
	if !slices.Equal(names[netip.MustParseAddr("127.0.0.3")], []string{"elsewhere.example.test"}) || len(names) != 2 {
		t.Errorf("PTRNames %v", names)
	}

	tlsaHosts := Addressed(hosts)
	if !slices.Equal(tlsaHosts, []string{"mx1.example.test", "mx2.example.test"}) {
		t.Fatalf("Addressed %v: want the named hosts with an address", tlsaHosts)
	}
	res, errs := GatherTLSA(t.Context(), zones, tlsaHosts, dane.Options{})
	if len(res) != 2 || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
		t.Fatalf("GatherTLSA %v, %v", res, errs)
	}
	if len(res[0].Records) != 1 || len(res[1].Records) != 0 {
		t.Errorf("TLSA records: mx1 %d, mx2 %d; want 1 and 0", len(res[0].Records), len(res[1].Records))
	}
}

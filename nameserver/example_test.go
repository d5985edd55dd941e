package nameserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
)

// servers stands in for the Internet's authoritative servers: each address
// answers from its own copy of the zone. In real use Direct is left nil
// (nameserver.StubDirect asks the servers over UDP and TCP on port 53).
type servers map[netip.Addr]resolve.Resolver

func (s servers) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	return s[server.Addr()].Lookup(ctx, q)
}

func mustZones(text string) *resolve.Zones {
	z, err := resolve.ParseZones(strings.NewReader(text), "example")
	if err != nil {
		panic(err)
	}
	return z
}

func Example() {
	const zone = `
$ORIGIN example.com.
@   3600 IN SOA ns1 hostmaster 2026112201 3600 600 86400 300
@   NS  ns1
@   NS  ns2
@   MX  10 mx1
ns1 A   192.0.2.1
ns2 A   192.0.2.2
`
	// ns2 missed the last change: an older serial and the old exchange.
	stale := strings.NewReplacer("2026112201", "2026110901", "MX  10 mx1", "MX  10 old-mx").Replace(zone)

	// Normally: the resolver is a resolve.Cache over a stub.Stub asking
	// the system's resolvers, and CDResolver the same with CheckingDisabled.
	opts := nameserver.Options{
		Direct: servers{
			netip.MustParseAddr("192.0.2.1"): mustZones(zone),
			netip.MustParseAddr("192.0.2.2"): mustZones(stale),
		},
	}
	rep, err := nameserver.Lookup(context.Background(), mustZones(zone), dnsname.MustParse("example.com"), opts)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("zone", rep.Apex, "served by", len(rep.Servers), "servers; DNSSEC", rep.DNSSEC.State)
	for _, f := range nameserver.Findings(rep) {
		fmt.Printf("%s %s: %s\n", f.ID, f.Subject, f.Message)
	}
	// Output:
	// zone example.com served by 2 servers; DNSSEC unsigned
	// ns-inconsistent ns2.example.com (192.0.2.2): ns2.example.com (192.0.2.2) answers MX 10 old-mx.example.com for example.com, but ns1.example.com (192.0.2.1) answers MX 10 mx1.example.com.
	// ns-serial-mismatch ns2.example.com (192.0.2.2): ns2.example.com (192.0.2.2) serves example.com with SOA serial 2026110901, behind serial 2026112201 served by ns1.example.com (192.0.2.1).
	// dnssec-unsigned example.com: example.com is not DNSSEC-signed: its parent zone has no DS record for it.
}

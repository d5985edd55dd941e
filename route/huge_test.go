package route_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// hugeMX is an in-process resolver for huge.test with n MX records, the
// most a zone file can hold and far more than a DNS message can: the
// first half are n/2 distinct exchanges mx0…, served in reverse, 50 to a
// preference from 10 up; the second half list each of them again at
// preference 60000. Every mxI.huge.test has one address of its own.
type hugeMX struct{ mx *resolve.Answer }

const hugeDomain = "huge.test."

func newHugeMX(n int) hugeMX {
	half := n / 2
	rrs := make([]dns.RR, 0, n)
	mx := func(pref uint16, i int) dns.RR {
		return &dns.MX{Hdr: dns.RR_Header{Name: hugeDomain, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 3600},
			Preference: pref, Mx: fmt.Sprintf("mx%d.%s", i, hugeDomain)}
	}
	for i := half - 1; i >= 0; i-- {
		rrs = append(rrs, mx(uint16(10+i/50), i))
	}
	for i := range half {
		rrs = append(rrs, mx(60000, i))
	}
	return hugeMX{&resolve.Answer{Question: resolve.Q(hugeDomain, dns.TypeMX), Answer: rrs, Server: "test"}}
}

func (h hugeMX) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	a := &resolve.Answer{Question: q, Server: "test"}
	switch {
	case q.Name == hugeDomain && q.Type == dns.TypeMX:
		return h.mx, nil
	case q.Type == dns.TypeA && strings.HasPrefix(q.Name, "mx") && strings.HasSuffix(q.Name, "."+hugeDomain):
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(q.Name, "mx"), "."+hugeDomain))
		if err != nil {
			break
		}
		ip := net.IPv4(198, 51, byte(i>>8), byte(i))
		a.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: ip}}
	}
	return a, nil
}

// TestPlanHugeMX: 200,000 MX records (docs/routing.md#bounded-work) give
// the bounded plan: the 64 most preferred distinct exchanges in their
// tiers, the cut reported with the number of exchanges, the duplicates
// reported but not 100,000 times, and the records as served capped at
// route.MaxRecords with the rest counted.
func TestPlanHugeMX(t *testing.T) {
	const n = 200_000
	p := &route.Planner{Resolver: newHugeMX(n), Seed: 1, HasSeed: true}
	plan, err := p.Plan(t.Context(), "huge.test")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Result != route.ResultOK {
		t.Fatalf("result %s, want ok", plan.Result)
	}
	var prefs, sizes []int
	for _, tier := range plan.Tiers {
		prefs, sizes = append(prefs, int(tier.Preference)), append(sizes, len(tier.Hosts))
	}
	if !slices.Equal(prefs, []int{10, 11}) || !slices.Equal(sizes, []int{50, 14}) {
		t.Errorf("tiers: preferences %v of sizes %v, want [10 11] of [50 14]", prefs, sizes)
	}
	// Inside a tier the served order is kept: the records came in reverse.
	if h := plan.Tiers[0].Hosts; h[0].Name != "mx49.huge.test" || h[49].Name != "mx0.huge.test" || len(h[0].Addresses) != 1 {
		t.Errorf("tier 10 runs %s … %s, want mx49 … mx0 with an address each", h[0].Name, h[len(h)-1].Name)
	}
	if h := plan.Tiers[1].Hosts; h[0].Name != "mx99.huge.test" || h[13].Name != "mx86.huge.test" {
		t.Errorf("tier 11 runs %s … %s, want mx99 … mx86", h[0].Name, h[len(h)-1].Name)
	}
	if len(plan.Order) != 64 {
		t.Errorf("order has %d hosts, want 64", len(plan.Order))
	}
	count := func(id finding.ID) (int, []finding.Finding) {
		var fs []finding.Finding
		for _, f := range plan.Findings {
			if f.ID == id {
				fs = append(fs, f)
			}
		}
		return len(fs), fs
	}
	if k, fs := count(finding.MXTooManyExchanges); k != 1 || !strings.Contains(fs[0].Message, "100000 exchanges") {
		t.Errorf("mx-too-many-exchanges: %v, want one saying 100000 exchanges", fs)
	}
	if k, fs := count(finding.MXDuplicate); k == 0 || k > route.DefaultMaxExchanges+1 || !strings.Contains(fs[len(fs)-1].Message, "more") {
		t.Errorf("mx-duplicate: %d findings, want between 1 and %d, the last counting the rest", k, route.DefaultMaxExchanges+1)
	}
	if len(plan.Records) != route.MaxRecords || plan.RecordsOmitted != n-route.MaxRecords {
		t.Errorf("records: %d kept and %d omitted, want %d and %d", len(plan.Records), plan.RecordsOmitted, route.MaxRecords, n-route.MaxRecords)
	}
	if r := plan.Records[0]; r.Exchange != "mx99999.huge.test" || r.Preference != 10+99999/50 {
		t.Errorf("records[0] = %+v, want the first served, mx99999 at %d", r, 10+99999/50)
	}
}

// TestPlanHugeMXCancelled: a plan of 200,000 records whose context is
// already done ends with the context's error, not a plan.
func TestPlanHugeMXCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := &route.Planner{Resolver: newHugeMX(200_000)}
	plan, err := p.Plan(ctx, "huge.test")
	if err == nil || plan.Result != route.ResultError || len(plan.Tiers) != 0 {
		t.Errorf("cancelled: result %s with %d tiers, error %v; want error, none, context.Canceled", plan.Result, len(plan.Tiers), err)
	}
}

// TestMaxRecordsAboveMessage: route.MaxRecords of the smallest MX records
// a plan can be given (the owner a pointer to the question, the root as
// exchange) do not fit in a DNS message, so a plan from the network
// always keeps every record served.
func TestMaxRecordsAboveMessage(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeMX)
	m.Compress = true
	for range route.MaxRecords {
		m.Answer = append(m.Answer, &dns.MX{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeMX, Class: dns.ClassINET}, Mx: "."})
	}
	b, err := m.Pack()
	if err == nil && len(b) <= dns.MaxMsgSize {
		t.Errorf("%d MX records pack into %d octets, within a DNS message's %d", route.MaxRecords, len(b), dns.MaxMsgSize)
	}
}

// TestPlanLargeMXOverTCP: the largest MX set a server can send (as many
// records as fit in one 65,535-octet message, over TCP after a truncated
// UDP answer) is planned through the stub with every record listed and
// none omitted: route.MaxRecords cuts only what a zone file serves.
func TestPlanLargeMXOverTCP(t *testing.T) {
	const n = 2500 // 23 octets each with "mxNNNN" exchanges: 57,500
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n$TTL 3600\n@ SOA ns.test. h.test. 1 7200 900 1209600 300\nmx0 A 192.0.2.1\n")
	for i := range n {
		fmt.Fprintf(&b, "d MX %d mx%d.test.\n", i/50, i)
	}
	srv := dnstest.NewZone(t, b.String())
	s, err := stub.New(stub.Config{Servers: []string{srv.Addr}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := (&route.Planner{Resolver: s}).Plan(t.Context(), "d.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Records) != n || plan.RecordsOmitted != 0 || len(plan.Order) != route.DefaultMaxExchanges {
		t.Errorf("%d records listed, %d omitted, %d planned; want %d, 0, %d", len(plan.Records), plan.RecordsOmitted, len(plan.Order), n, route.DefaultMaxExchanges)
	}
}

package check_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

const benchDelay = 50 * time.Millisecond

// BenchmarkCheckLatency audits a domain over the stub resolver against a
// server that delays every answer by benchDelay, with a fresh cache each
// time, nameservers included (asked directly on loopback), SMTP, the
// MTA-STS policy fetch and blacklists left out.
//
// The critical path is three round trips: MX, then the exchanges' A/AAAA,
// then their PTR (the forward confirmation of a PTR that names the exchange
// is answered from the cache). Every other area fits beside it: SPF (TXT, then the include's TXT and the mx term's MX, then
// its addresses for the void count: 3), DMARC (_dmarc and the
// organizational domain at once, then consent: 2), DKIM (_domainkey and the
// named selector at once, then the built-in list: 2), MTA-STS and TLS-RPT
// (1), DANE (after the plan, TLSA and addresses at once: 3), nameservers
// (SOA and NS at once, then the NS addresses, then the direct MX and SOA
// questions: 3; DS beside them). "delays/op" should stay within 3 × 1.1.
func BenchmarkCheckLatency(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(dnstest.AuditZone), "bench")
	if err != nil {
		b.Fatal(err)
	}
	srv := dnstest.New(b, dnstest.Authoritative(z), dnstest.WithDelay(benchDelay))
	st, err := stub.New(stub.Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	port := uint16(0)
	if _, p, ok := strings.Cut(srv.Addr, ":"); ok {
		for _, c := range p {
			port = port*10 + uint16(c-'0')
		}
	}
	domain := dnsname.MustParse("d.test")
	for b.Loop() {
		r := resolve.NewCache(st, 0)
		a := &check.Auditor{
			Resolver:      r,
			Planner:       &route.Planner{Resolver: r},
			Nameservers:   &nameserver.Options{Port: port, IPv4: true},
			DKIMSelectors: []string{"mail"},
		}
		rep := a.Audit(b.Context(), domain)
		if errs := rep.Errors(); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(benchDelay), "delays/op")
}

// BenchmarkJudge judges the gathered facts of the example zone's domains
// (the judging alone, which a scan runs for every domain): allocs/op is
// what the judging adds to an audit's garbage.
func BenchmarkJudge(b *testing.B) {
	text, err := os.ReadFile("../examples/example.zone")
	if err != nil {
		b.Fatal(err)
	}
	z, err := resolve.ParseZones(bytes.NewReader(text), "examples")
	if err != nil {
		b.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r, Seed: 1, HasSeed: true}, SkipReason: "offline"}
	var facts []*check.Facts
	for _, d := range []string{"good.example", "tiers.example", "nosuch.example"} {
		facts = append(facts, a.Gather(b.Context(), dnsname.MustParse(d)))
	}
	for b.Loop() {
		for _, f := range facts {
			check.Judge(f, nil)
		}
	}
}

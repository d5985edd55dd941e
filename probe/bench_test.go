package probe

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/route"
)

// BenchmarkProbeParallel: a plan of 10 addresses (127.0.0.2..11, one
// port), each greeting after d, is probed in about d, not 10 × d (every
// address at once; docs/performance.md). The "xd" metric is the time per plan in units of d.
func BenchmarkProbeParallel(b *testing.B) {
	const d = 100 * time.Millisecond
	port := smtptest.Port(b)
	var addrs []string
	for i := range 10 {
		ap := netip.AddrPortFrom(smtptest.Loopback(byte(2+i)), uint16(port))
		smtptest.Start(b, smtptest.Options{Addr: ap.String(), Hostname: "mx.example.test", BannerDelay: d})
		addrs = append(addrs, ap.Addr().String())
	}
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "mx.example.test", Addresses: addrs}}},
	}}
	p := &Prober{Port: port, HelloName: "probe.example.test"}
	start := time.Now()
	n := 0
	for b.Loop() {
		for _, r := range p.ProbePlan(b.Context(), plan) {
			if r.Err != nil || r.Banner == nil {
				b.Fatalf("%s: %v", r.Subject(), r.Err)
			}
		}
		n++
	}
	b.ReportMetric(float64(time.Since(start))/float64(n)/float64(d), "xd")
}

package check_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// servfail answers SERVFAIL for the questions in fail and passes the rest
// to next: a temporary failure, which an area reports as "could not check".
type servfail struct {
	next resolve.Resolver
	fail map[resolve.Question]bool
}

func (s servfail) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if s.fail[q] {
		return nil, &resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return s.next.Lookup(ctx, q)
}

// elapsedMS matches the only run-dependent parts of the output.
var elapsedMS = regexp.MustCompile(`"elapsed_ms":\d+|\(\d+ ms\)`)

func zeroElapsed(b []byte) []byte {
	return elapsedMS.ReplaceAllFunc(b, func(m []byte) []byte {
		if m[0] == '(' {
			return []byte("(N ms)")
		}
		return []byte(`"elapsed_ms":0`)
	})
}

// TestAuditGolden pins check's JSON and text reports with the areas an
// offline run skips: nameservers (two servers that disagree on the MX set
// and the serial, through a fake Direct), a blacklist hit, and an area
// whose lookup fails temporarily. cmd/mxtrace's golden files pin the
// offline run over every example domain. Rewrite with
// go test ./check -run TestAuditGolden -update, and review the diff.
func TestAuditGolden(t *testing.T) {
	var js, txt bytes.Buffer
	for _, rep := range goldenReports(t) {
		if err := report.WriteJSON(&js, rep); err != nil {
			t.Fatal(err)
		}
		if err := report.WriteCheck(&txt, rep, report.Style{}); err != nil {
			t.Fatal(err)
		}
	}
	golden.Check(t, filepath.Join("testdata", "audit.json"), zeroElapsed(js.Bytes()))
	golden.Check(t, filepath.Join("testdata", "audit.text"), zeroElapsed(txt.Bytes()))
}

// goldenReports audits the domains of TestAuditGolden.
func goldenReports(t testing.TB) []*check.Report {
	t.Helper()
	extra, err := os.ReadFile("testdata/golden.zone")
	if err != nil {
		t.Fatal(err)
	}
	text := exampleZoneText(t)
	parse := func(s string) *resolve.Zones {
		z, err := resolve.ParseZones(strings.NewReader(s), "golden")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	zones := parse(text + string(extra))
	stale := parse(text + strings.NewReplacer("2026120601", "2026110901", "mx-new", "mx-old").Replace(string(extra)))
	r := resolve.NewCache(servfail{next: zones, fail: map[resolve.Question]bool{
		resolve.Q("_dmarc.tiers.example", dns.TypeTXT): true,
	}}, 0)
	a := &check.Auditor{
		Resolver: r,
		Planner:  &route.Planner{Resolver: r, Seed: 1, HasSeed: true},
		Nameservers: &nameserver.Options{Direct: dnstest.Servers{
			netip.MustParseAddr("192.0.2.53"):  zones,
			netip.MustParseAddr("192.0.2.251"): zones,
			netip.MustParseAddr("192.0.2.252"): stale,
		}},
		DNSBL:          &dnsbl.Options{Lists: []string{"bl.test"}},
		DKIMSelectors:  []string{"mail"},
		SMTPSkipReason: "the test does not connect",
		SkipReason:     "the test has no HTTPS server",
	}
	var reps []*check.Report
	for _, d := range []string{"good.example", "tiers.example", "split.test", "nosuch.example"} {
		reps = append(reps, a.Audit(t.Context(), dnsname.MustParse(d)))
	}
	return reps
}

package check_test

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
)

// down is a resolver that answers nothing: every question is a SERVFAIL.
type down struct{}

func (down) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
}

func skippedFor(r *check.Report, a finding.Area) (string, bool) {
	i := slices.IndexFunc(r.Skipped, func(s check.Skip) bool { return s.Area == a })
	if i < 0 {
		return "", false
	}
	return r.Skipped[i].Reason, true
}

// TestAuditResolverDown: with a resolver that answers nothing, every area
// that could not be checked says so in one line (DKIM once, not once per
// selector), and the areas about the exchanges are not checked, never a
// pass (DANE with 0 of 0 exchanges was one).
func TestAuditResolverDown(t *testing.T) {
	r := auditor(down{}).Audit(t.Context(), dnsname.MustParse("good.example"))
	for _, a := range r.Areas {
		if a.Status != check.StatusError {
			t.Errorf("%s: status %s (%s), want error", a.Area, a.Status, a.Summary)
		}
		if strings.Contains(a.Error, "\n") {
			t.Errorf("%s: error of %d lines: %q", a.Area, strings.Count(a.Error, "\n")+1, a.Error)
		}
	}
	for _, a := range []finding.Area{finding.AreaPTR, finding.AreaDANE} {
		if _, ok := area(r, a); ok {
			t.Errorf("%s judged although the route could not be computed", a)
		}
		if reason, ok := skippedFor(r, a); !ok || reason != "the route could not be computed" {
			t.Errorf("%s: skipped %v (%q), want not checked because the route failed", a, ok, reason)
		}
	}
	var text bytes.Buffer
	if err := report.WriteCheck(&text, r, report.Style{}); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "dkim:") {
			t.Errorf("a DKIM error line of its own: %q\n%s", l, out)
			break
		}
	}
	if n := strings.Count(out, "DKIM"); n != 1 {
		t.Errorf("DKIM named %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "✓ DANE") || !strings.Contains(out, "DANE") {
		t.Errorf("DANE shown as a pass, or not at all:\n%s", out)
	}
}

// TestAuditNoServerAsked: a nameserver audit that asked no server checked
// nothing; the area is "could not check", not a pass.
func TestAuditNoServerAsked(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN nons.test.
@    3600 SOA ns.nons.test. hostmaster.nons.test. 1 7200 900 1209600 300
@    3600 MX 10 mx
mx   3600 A 192.0.2.25
$ORIGIN six.test.
@    3600 SOA ns.six.test. hostmaster.six.test. 1 7200 900 1209600 300
@    3600 NS ns1
@    3600 NS ns2
@    3600 MX 10 mx
mx   3600 A 192.0.2.25
ns1  3600 AAAA 2001:db8::53
ns2  3600 AAAA 2001:db8::54
$ORIGIN half.test.
@    3600 SOA ns1.half.test. hostmaster.half.test. 1 7200 900 1209600 300
@    3600 NS ns1
@    3600 NS ns2
@    3600 MX 10 mx
mx   3600 A 192.0.2.25
ns1  3600 A 192.0.2.53
ns2  3600 AAAA 2001:db8::54
`), "nons")
	if err != nil {
		t.Fatal(err)
	}
	a := auditor(z)
	// Only IPv4 is asked; ns1.half.test answers from the zone files.
	a.Nameservers = &nameserver.Options{IPv4: true, Direct: dnstest.Servers{netip.MustParseAddr("192.0.2.53"): z}}
	for _, tt := range []struct{ domain, want string }{
		{"nons.test", "zone nons.test has no NS records: there is no server to ask"},
		{"six.test", "none of the 2 servers of zone six.test could be asked"},
	} {
		r := a.Audit(t.Context(), dnsname.MustParse(tt.domain))
		ns, ok := area(r, finding.AreaNameservers)
		if !ok || ns.Status != check.StatusError || !strings.HasPrefix(ns.Error, tt.want) {
			t.Errorf("%s: nameservers %+v, want could not check: %q", tt.domain, ns, tt.want)
		}
	}
	// One of two asked: judged, and the summary says how many.
	r := a.Audit(t.Context(), dnsname.MustParse("half.test"))
	if ns, _ := area(r, finding.AreaNameservers); ns.Status == check.StatusError || !strings.Contains(ns.Summary, "1 of 2 servers asked") {
		t.Errorf("half.test: nameservers %+v, want judged with 1 of 2 servers asked", ns)
	}
}

// TestAuditPTRFailuresOneLine: reverse DNS that fails for every address
// is one line: the first failure and how many more.
func TestAuditPTRFailuresOneLine(t *testing.T) {
	r := auditor(failType{exampleZones(t), dns.TypePTR}).Audit(t.Context(), dnsname.MustParse("tiers.example"))
	a, ok := area(r, finding.AreaPTR)
	if !ok || a.Status != check.StatusError || strings.Contains(a.Error, "; lookup") || !strings.Contains(a.Error, "more)") {
		t.Errorf("reverse DNS %+v, want one failure and the count of the others", a)
	}
}

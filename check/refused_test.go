package check_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/ipclass"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/resolve"
)

// forbidding is a Dialer whose policy refuses one address, as serve's
// refuses the non-public ones, and dials the others.
type forbidding struct{ addr netip.Addr }

func (d forbidding) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr() == d.addr {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &dial.ForbiddenError{Addr: d.addr, Class: ipclass.Of(d.addr)}}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

// TestRefusedTargets: a target the dialer's policy refuses is not
// compared with the other tiers (a primary that was not probed is not one
// that refuses connections: no mx-nolisting), and the summaries count
// what was asked, not what was refused; the areas are judged.
func TestRefusedTargets(t *testing.T) {
	w := newSMTPWorld(t)
	w.auditor.Probe.Dialer = forbidding{netip.MustParseAddr("127.0.0.4")}
	r := w.auditor.Audit(t.Context(), dnsname.MustParse("nolist.smtp.test"))
	var got []finding.ID
	for _, f := range r.Findings {
		got = append(got, f.ID)
	}
	if !slices.Contains(got, finding.SMTPTargetRefused) || slices.Contains(got, finding.MXNolisting) || slices.Contains(got, finding.SMTPUnreachable) {
		t.Errorf("findings %v: want smtp-target-refused, and neither mx-nolisting nor smtp-unreachable", got)
	}
	if a, ok := area(r, finding.AreaSMTP); !ok || a.Status != "pass" || !strings.Contains(a.Summary, "1 not probed") {
		t.Errorf("SMTP area %+v", a)
	}

	// Every nameserver refused: judged, with what was asked counted.
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN ns.test.
$TTL 300
@   SOA ns1 h 1 7200 900 1209600 300
@   NS  ns1
ns1 A   127.0.0.53
`), "ns")
	if err != nil {
		t.Fatal(err)
	}
	w.auditor.Resolver = z
	w.auditor.Planner.Resolver = z
	w.auditor.Probe = nil
	w.auditor.Nameservers = &nameserver.Options{Policy: &dial.Policy{}}
	r = w.auditor.Audit(t.Context(), dnsname.MustParse("ns.test"))
	a, ok := area(r, finding.AreaNameservers)
	if !ok || a.Status != "pass" || !strings.Contains(a.Summary, "0 of 1 server asked") || !slices.ContainsFunc(a.Findings, func(f finding.Finding) bool { return f.ID == finding.NSTargetRefused }) {
		t.Errorf("nameservers area %+v", a)
	}
	if errs := r.Errors(); len(errs) > 0 {
		t.Errorf("errors %v", errs)
	}
}

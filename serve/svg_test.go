package serve

import (
	"encoding/xml"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// auditTest checks domain offline against testdata/route.zone and
// testdata/reverse.zone, with a fixed shuffle.
func auditTest(t *testing.T, domain string) *check.Report {
	t.Helper()
	z, err := resolve.LoadZones("testdata/route.zone", "testdata/reverse.zone")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{Resolver: r, Planner: &route.Planner{Resolver: r, Seed: 1, HasSeed: true}}
	return a.Audit(t.Context(), dnsname.MustParse(domain))
}

// TestRouteSVG compares the route picture of every kind of route with its
// golden file (go test ./serve -run TestRouteSVG -update rewrites them;
// open them in a browser beside the style sheet to look).
func TestRouteSVG(t *testing.T) {
	cases := map[string]func(t *testing.T) *check.Report{
		"spread":   func(t *testing.T) *check.Report { return auditTest(t, "spread.test") },
		"single":   func(t *testing.T) *check.Report { return auditTest(t, "single.test") },
		"nullmx":   func(t *testing.T) *check.Report { return auditTest(t, "nullmx.test") },
		"implicit": func(t *testing.T) *check.Report { return auditTest(t, "implicit.test") },
		"nxdomain": func(t *testing.T) *check.Report { return auditTest(t, "nosuch.test") },
		"nomail":   func(t *testing.T) *check.Report { return auditTest(t, "nomail.test") },
		"cname":    func(t *testing.T) *check.Report { return auditTest(t, "cname.test") },
		"private":  func(t *testing.T) *check.Report { return auditTest(t, "private.test") },
		"dangling": func(t *testing.T) *check.Report { return auditTest(t, "dangling.test") },
		"many":     func(t *testing.T) *check.Report { return auditTest(t, "many.test") },
		"error": func(t *testing.T) *check.Report {
			return &check.Report{Plan: &route.Plan{Schema: 1, Domain: "broken.test", Result: route.ResultError,
				Error: "route broken.test: temporary DNS failure: lookup broken.test. MX: SERVFAIL"}}
		},
		"badges": func(t *testing.T) *check.Report {
			// The spread route as probed: mx-a speaks TLS with a valid
			// certificate and insecure TLSA records, mx-b has no
			// STARTTLS, the backup does not answer.
			r := auditTest(t, "spread.test")
			d := r.Details
			d.SMTP = []*probe.Result{
				{Host: "mx-a.spread.test", Address: netip.MustParseAddr("192.0.2.1"), Connected: true, StartTLS: true,
					TLS: &probe.TLS{Version: "TLS1.3", Verified: true, ExpiresInDays: 61}},
				{Host: "mx-a.spread.test", Address: netip.MustParseAddr("2001:db8::1"), Connected: true, StartTLS: true,
					TLS: &probe.TLS{Version: "TLS1.3", Verified: true, ExpiresInDays: 60}},
				{Host: "mx-b.spread.test", Address: netip.MustParseAddr("192.0.2.2"), Connected: true},
				{Host: "backup.spread.test", Address: netip.MustParseAddr("198.51.100.1")},
			}
			for _, x := range d.DANE {
				if x != nil && x.Host == "mx-a.spread.test" {
					x.Records = []dane.Record{{Usage: dane.DANEEE, Selector: dane.SelectorSPKI, MatchingType: 1, Data: make([]byte, 32)}}
				}
			}
			return r
		},
		"refused": func(t *testing.T) *check.Report {
			// serve's dialer refused to probe the private exchanges.
			r := auditTest(t, "private.test")
			for host, a := range map[string]string{"mx.private.test": "10.0.0.25", "mx2.private.test": "192.168.1.25"} {
				r.Details.SMTP = append(r.Details.SMTP, &probe.Result{Host: host, Address: netip.MustParseAddr(a),
					Err: &probe.StepError{Step: probe.StepConnect, Kind: probe.KindForbidden, Message: "refused by policy"}})
			}
			return r
		},
	}
	for name, report := range cases {
		t.Run(name, func(t *testing.T) {
			rep := report(t)
			for _, l := range []layout{wide, narrow} {
				got := string(routeSVG(rep, l))
				wellFormed(t, got)
				if strings.Contains(got, "style=") {
					t.Error("the picture has a style attribute, which the CSP blocks")
				}
				file := name + ".svg"
				if l == narrow {
					file = name + "-narrow.svg"
				}
				golden.Check(t, filepath.Join("testdata", "svg", file), []byte(got+"\n"))
			}
		})
	}
}

// wellFormed fails t unless s is one well-formed XML element: the
// browser draws nothing of an SVG with an error.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
	}
}

// TestRouteSVGSays checks what the pictures say, beside the golden files:
// the words a person reads for each case.
func TestRouteSVGSays(t *testing.T) {
	for domain, want := range map[string][]string{
		"spread.test": {
			"2 exchanges at equal preference: each sender tries them in random order",
			"If every exchange at preference 10 is down, senders try preference 20.",
			"Backup: gets mail only while the tiers above are unreachable.",
			`role="img" aria-label="Mail for spread.test goes to 1st, preference 10: mx-a.spread.test and mx-b.spread.test, in random order; then, if those are down, 2nd, preference 20: backup.spread.test."`,
			`rt-badge-ok"><title>Reverse DNS confirmed for 2 addresses.</title>`,
			`rt-badge-bad"><title>Reverse DNS: 192.0.2.2 → somewhere-else.test, which does not lead back.</title>`,
		},
		"single.test":      {"Every sender tries this exchange first.", "+ 2 more addresses"},
		"nullmx.test":      {"Null MX: nullmx.test accepts no mail", `class="rt-end rt-end-info"`},
		"implicit.test":    {"No MX records: implicit MX", "rt-box rt-box-implicit"},
		"nosuch.test":      {"nosuch.test does not exist (NXDOMAIN)", `class="rt-end rt-end-bad"`},
		"nomail.test":      {"No MX and no address for nomail.test"},
		"cname.test":       {"→ alias (CNAME) of host.cname.test"},
		"private.test":     {"✗ not reachable from the Internet: 10.0.0.25", "No exchange here can receive mail.", "senders go straight to preference 20"},
		"halfprivate.test": {"✗ not reachable from the Internet: 10.0.0.26", `<rect class="rt-box" x="12"`, "Every sender tries this exchange first."},
		"dangling.test":    {"✗ the name does not exist", "<title>this-exchange-has-a-name-longer-than-a-box.dangling.test</title>"},
		"many.test":        {"14 exchanges at equal preference", "… and 2 more exchanges at this preference", "… and 2 more tiers with 2 exchanges behind,"},
	} {
		got := string(routeSVG(auditTest(t, domain), wide))
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: the picture lacks %q", domain, w)
			}
		}
	}
}

// TestHostsOfPrivate: an exchange is reachable while one of its addresses
// is public; the note names the others, or all of them when route judged
// addresses (documentation ones, outside a documentation domain) that
// the address table alone would pass.
func TestHostsOfPrivate(t *testing.T) {
	plan := &route.Plan{Domain: "mail.org", Result: route.ResultOK, Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{
		{Name: "half.mail.org", Addresses: []string{"10.0.0.1", "203.0.113.1"}, Problems: []finding.ID{finding.MXTargetPrivate}},
		{Name: "doc.mail.org", Addresses: []string{"192.0.2.5"}, Problems: []finding.ID{finding.MXTargetPrivate}},
		{Name: "lan.mail.org", Addresses: []string{"192.168.0.1", "fe80::1"}, Problems: []finding.ID{finding.MXTargetPrivate}},
	}}}}
	hosts := hostsOf(&check.Report{Plan: plan})
	for name, want := range map[string]struct {
		note   string
		usable bool
	}{
		"half.mail.org": {"✗ not reachable from the Internet: 10.0.0.1", true},
		"doc.mail.org":  {"✗ not reachable from the Internet: 192.0.2.5", false},
		"lan.mail.org":  {"✗ not reachable from the Internet: 192.168.0.1, fe80::1", false},
	} {
		h := hosts[name]
		if len(h.Notes) != 1 || h.Notes[0] != want.note || h.Usable != want.usable {
			t.Errorf("%s: notes %q, usable %v; want %q, %v", name, h.Notes, h.Usable, want.note, want.usable)
		}
	}
}

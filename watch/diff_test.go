package watch

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/route"
)

var allAreas = []finding.Area{
	finding.AreaRouting, finding.AreaNameservers, finding.AreaSPF, finding.AreaDMARC, finding.AreaDKIM,
	finding.AreaMTASTS, finding.AreaTLSRPT, finding.AreaSMTP, finding.AreaDNSBL, finding.AreaPTR,
}

var t0 = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

// base is a healthy domain with every area judged.
func base() *Snapshot {
	serial := uint32(2026120101)
	mx := []string{"MX 10 mx1.example.com", "MX 20 mx2.example.com"}
	return &Snapshot{
		Version: SnapshotVersion, Domain: "example.com", At: t0, Result: route.ResultOK,
		Records: []MX{{"mx1.example.com", 10, 3600}, {"mx2.example.com", 20, 3600}},
		Hosts:   []Host{{Name: "mx1.example.com", Addresses: []string{"192.0.2.1"}}, {Name: "mx2.example.com", Addresses: []string{"192.0.2.2"}}},
		Nameservers: &Nameservers{Apex: "example.com", MXAgree: true, SerialsAgree: true, Servers: []NSReply{
			{Server: "ns1.example.com", Address: "192.0.2.53", Serial: &serial, MX: mx, MXAnswered: true},
			{Server: "ns2.example.com", Address: "192.0.2.54", Serial: &serial, MX: mx, MXAnswered: true},
		}},
		SPF:   &SPF{Record: "v=spf1 mx -all", All: "-all"},
		DMARC: &DMARC{Record: "v=DMARC1; p=reject", PolicyDomain: "example.com", Policy: dmarc.Reject, Subdomain: dmarc.Reject, Percent: 100},
		DKIM: &DKIM{Probed: []string{"mail", "s1"}, Keys: []DKIMKey{
			{Selector: "mail", Text: "v=DKIM1; p=AAA", KeyType: "rsa", Bits: 2048, Usable: true}}},
		MTASTS: &MTASTS{TXT: "v=STSv1; id=1", ID: "1", Fetched: true, Mode: mtasts.ModeEnforce, MaxAge: 604800, MX: []string{"mx1.example.com", "mx2.example.com"}},
		TLSRPT: &TLSRPT{Record: "v=TLSRPTv1; rua=mailto:tls@example.com", RUA: []string{"mailto:tls@example.com"}},
		SMTP: []SMTP{{Host: "mx1.example.com", Address: "192.0.2.1", Reached: true, StartTLS: true,
			Cert: &Cert{Fingerprint: "aa", Subject: "CN=mx1.example.com", NotAfter: t0.AddDate(0, 3, 0), Verified: true}}},
		DNSBL:    []Listing{{Address: "192.0.2.1", List: "bl.test", Listed: false}},
		Findings: []Finding{{finding.AreaDMARC, finding.DMARCNoRUA, finding.Warning, "example.com"}},
		Checked:  slices.Clone(allAreas),
	}
}

type want struct {
	kind     ChangeKind
	severity finding.Severity
	subject  string
}

func (w want) String() string { return fmt.Sprintf("%s %s %s", w.kind, w.severity, w.subject) }

// TestDiffKinds has a case for every kind, in both directions where the
// kind has two, and the cases that must give nothing.
func TestDiffKinds(t *testing.T) {
	seen := map[ChangeKind]bool{}
	defer func() {
		for _, k := range Kinds() {
			if !seen[k] {
				t.Errorf("no case for %s", k)
			}
		}
	}()
	test := func(name string, old, new func(*Snapshot), wants ...want) {
		t.Helper()
		o, n := base(), base()
		if old != nil {
			old(o)
		}
		if new != nil {
			new(n)
		}
		var got []string
		for _, c := range Diff(o, n) {
			seen[c.Kind] = true
			got = append(got, want{c.Kind, c.Severity, c.Subject}.String())
			if c.Message == "" || strings.Contains(c.Message, "\n") || !strings.HasSuffix(c.Message, ".") {
				t.Errorf("%s: %s: message %q is not one sentence", name, c.Kind, c.Message)
			}
		}
		var exp []string
		for _, w := range wants {
			exp = append(exp, w.String())
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, exp)
		}
	}
	dom := "example.com"
	const mx1, mx2 = "mx1.example.com", "mx2.example.com"
	const smtp1 = "mx1.example.com[192.0.2.1]"

	test("nothing", nil, nil)

	// The route.
	nullMX := func(s *Snapshot) {
		s.Result, s.Records, s.Hosts, s.SMTP, s.DNSBL = route.ResultNullMX, []MX{{"", 0, 3600}}, nil, nil, nil
	}
	test("null MX added", nil, nullMX,
		want{KindNullMXAdded, finding.Error, dom}, want{KindExchangeRemoved, finding.Error, mx1}, want{KindExchangeRemoved, finding.Error, mx2})
	test("null MX removed", nullMX, nil,
		want{KindNullMXRemoved, finding.Info, dom}, want{KindExchangeAdded, finding.Info, mx1}, want{KindExchangeAdded, finding.Info, mx2})
	nx := func(s *Snapshot) { s.Result, s.Records, s.Hosts = route.ResultNXDomain, nil, nil }
	test("domain gone", nil, nx,
		want{KindResultChanged, finding.Error, dom}, want{KindExchangeRemoved, finding.Error, mx1}, want{KindExchangeRemoved, finding.Error, mx2})
	test("domain back", nx, nil,
		want{KindResultChanged, finding.Info, dom}, want{KindExchangeAdded, finding.Info, mx1}, want{KindExchangeAdded, finding.Info, mx2})
	implicit := func(s *Snapshot) {
		s.Implicit, s.Records, s.Hosts = true, nil, []Host{{Name: dom, Addresses: []string{"192.0.2.80"}}}
	}
	test("implicit MX added", nil, implicit,
		want{KindImplicitMXAdded, finding.Warning, dom}, want{KindExchangeRemoved, finding.Error, mx1}, want{KindExchangeRemoved, finding.Error, mx2})
	test("implicit MX removed", implicit, nil,
		want{KindImplicitMXRemoved, finding.Info, dom}, want{KindExchangeAdded, finding.Info, mx1}, want{KindExchangeAdded, finding.Info, mx2})
	oneMX := func(s *Snapshot) { s.Records, s.Hosts = s.Records[:1], s.Hosts[:1] }
	test("exchange removed, one left", nil, oneMX, want{KindExchangeRemoved, finding.Warning, mx2})
	test("exchange added", oneMX, nil, want{KindExchangeAdded, finding.Info, mx2})
	test("preference changed", nil, func(s *Snapshot) { s.Records[1].Preference = 5 }, want{KindPreferenceChanged, finding.Warning, mx2})
	test("preference changed back", func(s *Snapshot) { s.Records[1].Preference = 5 }, nil, want{KindPreferenceChanged, finding.Warning, mx2})
	test("TTL lowered", nil, func(s *Snapshot) { s.Records[0].TTL = 300 }, want{KindTTLChanged, finding.Info, mx1})
	test("TTL raised", func(s *Snapshot) { s.Records[0].TTL = 300 }, nil, want{KindTTLChanged, finding.Info, mx1})
	moved := func(s *Snapshot) { s.Hosts[1].Addresses = []string{"192.0.2.22", "2001:db8::22"} }
	test("address changed", nil, moved, want{KindAddressChanged, finding.Warning, mx2})
	test("address changed back", moved, nil, want{KindAddressChanged, finding.Warning, mx2})
	test("addresses not settled", nil, func(s *Snapshot) { s.Hosts[1].Addresses, s.Hosts[1].Unsettled = nil, true })

	// Nameservers.
	split := func(s *Snapshot) {
		s.Nameservers.MXAgree, s.Nameservers.SerialsAgree = false, false
		older := uint32(2026110101)
		s.Nameservers.Servers[1].Serial, s.Nameservers.Servers[1].MX = &older, []string{"MX 10 mx-old.example.com"}
	}
	test("nameservers disagree", nil, split,
		want{KindNSMXDisagree, finding.Error, dom}, want{KindNSSerialDisagree, finding.Warning, dom})
	test("nameservers agree again", split, nil,
		want{KindNSMXAgree, finding.Info, dom}, want{KindNSSerialAgree, finding.Info, dom})

	// SPF: -all > ~all > ?all > +all > none.
	spf := func(all string) func(*Snapshot) {
		return func(s *Snapshot) {
			s.SPF = &SPF{Record: "v=spf1 mx " + all, All: all}
			if all == "" {
				s.SPF.Record = ""
			}
		}
	}
	test("SPF -all to ~all", nil, spf("~all"), want{KindSPFWeakened, finding.Warning, dom})
	test("SPF ~all to ?all", spf("~all"), spf("?all"), want{KindSPFWeakened, finding.Warning, dom})
	test("SPF to +all", spf("?all"), spf("+all"), want{KindSPFWeakened, finding.Error, dom})
	test("SPF removed", spf("+all"), spf(""), want{KindSPFWeakened, finding.Error, dom})
	test("SPF published", spf(""), nil, want{KindSPFStrengthened, finding.Info, dom})
	test("SPF ~all to -all", spf("~all"), nil, want{KindSPFStrengthened, finding.Info, dom})
	redirectFailed := func(s *Snapshot) { s.SPF = &SPF{Record: "v=spf1 redirect=_spf.example.com", Incomplete: true} }
	test("SPF redirect target failed", func(s *Snapshot) { s.SPF = &SPF{Record: "v=spf1 redirect=_spf.example.com", All: "-all"} }, redirectFailed)
	test("SPF redirect target failed before", redirectFailed, func(s *Snapshot) { s.SPF = &SPF{Record: "v=spf1 redirect=_spf.example.com", All: "-all"} })
	test("SPF record changed, policy unknown", nil, redirectFailed, want{KindSPFChanged, finding.Info, dom})
	test("SPF same policy", nil, func(s *Snapshot) { s.SPF.Record = "v=spf1 a mx -all" }, want{KindSPFChanged, finding.Info, dom})

	// DMARC: reject > quarantine > none > no record; sp; pct.
	dm := func(p, sp dmarc.Policy, pct int) func(*Snapshot) {
		return func(s *Snapshot) {
			s.DMARC = &DMARC{Record: fmt.Sprintf("v=DMARC1; p=%s; sp=%s; pct=%d", p, sp, pct), PolicyDomain: dom, Policy: p, Subdomain: sp, Percent: pct}
			if p == "" {
				s.DMARC = &DMARC{}
			}
		}
	}
	const ddom = "_dmarc.example.com"
	test("DMARC reject to quarantine", nil, dm(dmarc.Quarantine, dmarc.Quarantine, 100), want{KindDMARCWeakened, finding.Warning, ddom})
	test("DMARC quarantine to none", dm(dmarc.Quarantine, dmarc.Quarantine, 100), dm(dmarc.None, dmarc.None, 100), want{KindDMARCWeakened, finding.Error, ddom})
	test("DMARC removed", dm(dmarc.None, dmarc.None, 100), dm("", "", 0), want{KindDMARCWeakened, finding.Error, ddom})
	test("DMARC published", dm("", "", 0), dm(dmarc.None, dmarc.None, 100), want{KindDMARCStrengthened, finding.Info, ddom})
	test("DMARC none to reject", dm(dmarc.None, dmarc.None, 100), nil, want{KindDMARCStrengthened, finding.Info, ddom})
	test("DMARC pct lowered", nil, dm(dmarc.Reject, dmarc.Reject, 10), want{KindDMARCWeakened, finding.Warning, ddom})
	test("DMARC pct raised", dm(dmarc.Reject, dmarc.Reject, 10), nil, want{KindDMARCStrengthened, finding.Info, ddom})
	test("DMARC pct under none", dm(dmarc.None, dmarc.None, 100), dm(dmarc.None, dmarc.None, 10), want{KindDMARCChanged, finding.Info, ddom})
	test("DMARC sp weakened", nil, dm(dmarc.Reject, dmarc.None, 100), want{KindDMARCWeakened, finding.Warning, ddom})
	test("DMARC mixed", dm(dmarc.Quarantine, dmarc.Reject, 100), dm(dmarc.Reject, dmarc.Quarantine, 100), want{KindDMARCChanged, finding.Warning, ddom})
	test("DMARC same policy", nil, func(s *Snapshot) { s.DMARC.Record += "; rua=mailto:d@example.com" }, want{KindDMARCChanged, finding.Info, ddom})

	// DKIM, per selector.
	const dk = "mail._domainkey.example.com"
	key := func(text string, bits int, usable bool) func(*Snapshot) {
		return func(s *Snapshot) {
			s.DKIM.Keys = []DKIMKey{{Selector: "mail", Text: text, KeyType: "rsa", Bits: bits, Usable: usable}}
			if text == "" {
				s.DKIM.Keys = nil
			}
		}
	}
	test("DKIM key removed", nil, key("", 0, false), want{KindDKIMWeakened, finding.Error, dk})
	test("DKIM key revoked", nil, key("v=DKIM1; p=", 0, false), want{KindDKIMWeakened, finding.Error, dk})
	test("DKIM key shorter", nil, key("v=DKIM1; p=BBB", 1024, true), want{KindDKIMWeakened, finding.Warning, dk})
	test("DKIM key published", key("", 0, false), nil, want{KindDKIMStrengthened, finding.Info, dk})
	test("DKIM key longer", key("v=DKIM1; p=BBB", 1024, true), nil, want{KindDKIMStrengthened, finding.Info, dk})
	test("DKIM key rotated", nil, key("v=DKIM1; p=CCC", 2048, true), want{KindDKIMChanged, finding.Info, dk})
	test("DKIM selector not asked before", func(s *Snapshot) { s.DKIM.Probed = []string{"s1"} }, key("", 0, false))
	test("DKIM selector failed", nil, func(s *Snapshot) { s.DKIM.Keys, s.DKIM.Failed = nil, []string{"mail"} })

	// MTA-STS: enforce > testing > none > no record.
	sts := func(mode mtasts.Mode) func(*Snapshot) {
		return func(s *Snapshot) {
			s.MTASTS.Mode = mode
			if mode == "" {
				s.MTASTS = &MTASTS{}
			}
		}
	}
	const stsDom = "_mta-sts.example.com"
	test("MTA-STS enforce to testing", nil, sts(mtasts.ModeTesting), want{KindMTASTSWeakened, finding.Warning, stsDom})
	test("MTA-STS testing to none", sts(mtasts.ModeTesting), sts(mtasts.ModeNone), want{KindMTASTSWeakened, finding.Error, stsDom})
	test("MTA-STS removed", nil, sts(""), want{KindMTASTSWeakened, finding.Error, stsDom})
	test("MTA-STS removed, policy never fetched", func(s *Snapshot) { s.MTASTS.Fetched = false }, sts(""), want{KindMTASTSWeakened, finding.Error, stsDom})
	test("MTA-STS published", sts(""), nil, want{KindMTASTSStrengthened, finding.Info, stsDom})
	test("MTA-STS testing to enforce", sts(mtasts.ModeTesting), nil, want{KindMTASTSStrengthened, finding.Info, stsDom})
	test("MTA-STS patterns changed", nil, func(s *Snapshot) { s.MTASTS.MX, s.MTASTS.ID = []string{"*.example.com"}, "2" }, want{KindMTASTSChanged, finding.Info, stsDom})
	test("MTA-STS max_age changed", nil, func(s *Snapshot) { s.MTASTS.MaxAge = 86400 }, want{KindMTASTSChanged, finding.Info, stsDom})
	test("MTA-STS policy not fetched", nil, func(s *Snapshot) { s.MTASTS.Fetched, s.MTASTS.Mode, s.MTASTS.MX = false, "", nil })

	// TLS-RPT.
	const rpt = "_smtp._tls.example.com"
	noRPT := func(s *Snapshot) { s.TLSRPT = &TLSRPT{} }
	test("TLS-RPT removed", nil, noRPT, want{KindTLSRPTWeakened, finding.Warning, rpt})
	test("TLS-RPT published", noRPT, nil, want{KindTLSRPTStrengthened, finding.Info, rpt})
	test("TLS-RPT invalid", nil, func(s *Snapshot) { s.TLSRPT = &TLSRPT{Record: "v=TLSRPTv1; rua=ftp://x"} }, want{KindTLSRPTWeakened, finding.Warning, rpt})
	test("TLS-RPT changed", nil, func(s *Snapshot) {
		s.TLSRPT = &TLSRPT{Record: "v=TLSRPTv1; rua=mailto:t@example.net", RUA: []string{"mailto:t@example.net"}}
	}, want{KindTLSRPTChanged, finding.Info, rpt})

	// SMTP.
	noTLS := func(s *Snapshot) { s.SMTP[0].StartTLS, s.SMTP[0].Cert = false, nil }
	test("STARTTLS lost", nil, noTLS, want{KindStartTLSLost, finding.Error, smtp1})
	test("STARTTLS gained", noTLS, nil, want{KindStartTLSGained, finding.Info, smtp1})
	test("unreachable is no loss", nil, func(s *Snapshot) { s.SMTP[0] = SMTP{Host: mx1, Address: "192.0.2.1"} })
	renewed := func(s *Snapshot) { s.SMTP[0].Cert.Fingerprint, s.SMTP[0].Cert.NotAfter = "bb", t0.AddDate(0, 6, 0) }
	test("certificate renewed", nil, renewed, want{KindCertRenewed, finding.Info, smtp1})
	test("certificate replaced by a shorter one", renewed, nil, want{KindCertChanged, finding.Warning, smtp1})
	later := func(days int) func(*Snapshot) {
		return func(s *Snapshot) { s.At = s.SMTP[0].Cert.NotAfter.AddDate(0, 0, -days) }
	}
	test("certificate expiring", nil, later(13), want{KindCertExpiring, finding.Warning, smtp1})
	test("certificate not yet expiring", nil, later(15))
	test("certificate still expiring", later(13), later(12))
	test("certificate expired", later(13), later(-1), want{KindCertExpired, finding.Error, smtp1})
	test("certificate expired at once", nil, later(0), want{KindCertExpired, finding.Error, smtp1})
	test("expiring certificate renewed", later(13), func(s *Snapshot) { later(12)(s); renewed(s) }, want{KindCertRenewed, finding.Info, smtp1})
	unverified := func(s *Snapshot) { s.SMTP[0].Cert.Verified = false }
	test("certificate no longer verifies", nil, unverified, want{KindCertUnverified, finding.Error, smtp1})
	test("certificate verifies", unverified, nil, want{KindCertVerified, finding.Info, smtp1})

	// Blacklists.
	listed := func(s *Snapshot) { s.DNSBL[0].Listed = true }
	test("listed", nil, listed, want{KindDNSBLListed, finding.Error, "192.0.2.1 on bl.test"})
	test("delisted", listed, nil, want{KindDNSBLDelisted, finding.Info, "192.0.2.1 on bl.test"})
	test("list refused", nil, func(s *Snapshot) { s.DNSBL = nil })

	// Findings.
	errFinding := func(s *Snapshot) {
		s.Findings = append(s.Findings, Finding{finding.AreaRouting, finding.MXTargetNoAddress, finding.Error, mx2})
	}
	test("new error finding", nil, errFinding, want{KindFindingNew, finding.Error, mx2})
	test("error finding resolved", errFinding, nil, want{KindFindingResolved, finding.Info, mx2})
	test("warning resolved", nil, func(s *Snapshot) { s.Findings = nil }, want{KindFindingResolved, finding.Info, dom})
	test("new warning is no change", func(s *Snapshot) { s.Findings = nil }, nil)
	test("temporary finding", nil, func(s *Snapshot) {
		s.Findings = append(s.Findings, Finding{finding.AreaRouting, finding.MXLookupFailed, finding.Error, mx2})
	})
	test("finding beside its typed change", nil, func(s *Snapshot) {
		listed(s)
		s.Findings = append(s.Findings, Finding{finding.AreaDNSBL, finding.DNSBLListed, finding.Error, "192.0.2.1"},
			Finding{finding.AreaDNSBL, finding.DNSBLListed, finding.Error, "192.0.2.9"})
	}, want{KindDNSBLListed, finding.Error, "192.0.2.1 on bl.test"}, want{KindFindingNew, finding.Error, "192.0.2.9"})
	test("STARTTLS finding beside its change", nil, func(s *Snapshot) {
		noTLS(s)
		s.Findings = append(s.Findings, Finding{finding.AreaSMTP, finding.SMTPStartTLSMissing, finding.Error, smtp1 + ":25"})
	}, want{KindStartTLSLost, finding.Error, smtp1})
}

// TestDiffIncomplete: an area that could not be judged (a temporary
// failure) or was skipped is not compared, whichever side it is on, so
// an empty area is never read as a removal.
func TestDiffIncomplete(t *testing.T) {
	failed := func(s *Snapshot) {
		s.Incomplete = slices.Clone(allAreas)
		s.Checked = nil
		s.Result, s.Error = route.ResultError, "SERVFAIL"
		s.Records, s.Hosts, s.Nameservers, s.SPF, s.DMARC, s.DKIM, s.MTASTS, s.TLSRPT, s.SMTP, s.DNSBL = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
		s.Findings = []Finding{{finding.AreaRouting, finding.MXLookupFailed, finding.Error, "example.com"}}
	}
	skipped := func(s *Snapshot) {
		failed(s)
		s.Incomplete = nil
	}
	for _, tc := range []struct {
		name     string
		old, new func(*Snapshot)
	}{
		{"new failed", nil, failed},
		{"old failed", failed, nil},
		{"both failed", failed, failed},
		{"new skipped", nil, skipped},
		{"old skipped", skipped, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, n := base(), base()
			if tc.old != nil {
				tc.old(o)
			}
			if tc.new != nil {
				tc.new(n)
			}
			if got := Diff(o, n); len(got) != 0 {
				t.Errorf("Diff = %+v, want nothing", got)
			}
		})
	}
	// One area failing leaves the others compared.
	o, n := base(), base()
	n.Incomplete, n.DMARC = []finding.Area{finding.AreaDMARC}, nil
	n.Checked = slices.DeleteFunc(n.Checked, func(a finding.Area) bool { return a == finding.AreaDMARC })
	n.SPF.All = "~all"
	got := Diff(o, n)
	if len(got) != 1 || got[0].Kind != KindSPFWeakened {
		t.Errorf("Diff = %+v, want only %s", got, KindSPFWeakened)
	}
	if !n.Temporary() || o.Temporary() {
		t.Errorf("Temporary: old %v new %v, want false true", o.Temporary(), n.Temporary())
	}
	if got := Diff(nil, n); got != nil {
		t.Errorf("Diff(nil, s) = %+v, want nothing", got)
	}
}

// TestKindsDocumented: docs/watch.md has a row for every kind.
func TestKindsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/watch.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if !strings.Contains(string(b), "| `"+string(k)+"` |") {
			t.Errorf("docs/watch.md has no row for %s", k)
		}
	}
}

// TestDiffHostileText: text from a domain's DNS or its policy server
// reaches an alert escaped and one line long, however the snapshot was
// stored.
func TestDiffHostileText(t *testing.T) {
	o, n := base(), base()
	n.MTASTS.MX = []string{"mx1.example.com\r\nX-Injected: yes\x1b[2J", strings.Repeat("*.example.com ", 200)}
	n.TLSRPT.Record, n.TLSRPT.RUA = "v=TLSRPTv1; rua=mailto:a@b\n", []string{"mailto:a@b\x1b]0;owned\x07"}
	got := Diff(o, n)
	if len(got) != 2 {
		t.Fatalf("Diff = %+v, want the MTA-STS and TLS-RPT changes", got)
	}
	for _, c := range got {
		for _, s := range []string{c.Message, c.Old, c.New, c.Subject} {
			if strings.ContainsAny(s, "\r\n\x1b\x07") {
				t.Errorf("%s: control character in %q", c.Kind, s)
			}
		}
		if len(c.Message) > MaxMessage {
			t.Errorf("%s: message of %d octets", c.Kind, len(c.Message))
		}
	}
}

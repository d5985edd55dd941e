package check_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// smtpWorld is a signed zone (a DNSKEY at its apex, so answers carry AD)
// whose exchanges are in-process SMTP servers on 127.0.0.x sharing one
// port: mx1 with STARTTLS and a certificate from a test CA, mx2 without
// STARTTLS, and dead, where nothing listens.
type smtpWorld struct {
	auditor *check.Auditor
	mx1     *smtptest.Server
	mx2     *smtptest.Server
}

func newSMTPWorld(t *testing.T) *smtpWorld {
	t.Helper()
	port := smtptest.Port(t)
	ca := testpki.NewCA(t, "check test CA")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.smtp.test"}})
	at := func(n byte) string { return netip.AddrPortFrom(smtptest.Loopback(n), uint16(port)).String() }
	w := &smtpWorld{
		mx1: smtptest.Start(t, smtptest.Options{Addr: at(2), Hostname: "mx1.smtp.test", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}),
		mx2: smtptest.Start(t, smtptest.Options{Addr: at(3), Hostname: "mx2.smtp.test"}),
	}
	smtptest.Refused(t, at(4))
	spki := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	zone := fmt.Sprintf(`$ORIGIN smtp.test.
$TTL 300
@        SOA  ns h 1 7200 900 1209600 300
@        DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
mx1      A    127.0.0.2
mx2      A    127.0.0.3
dead     A    127.0.0.4
weak     MX   10 mx1
weak     MX   20 mx2
nolist   MX   10 dead
nolist   MX   20 mx1
equal    MX   10 mx1
equal    MX   20 mx1
dane     MX   10 mx1
_25._tcp.mx1 TLSA 3 1 1 %s
badane   MX   10 other
other    A    127.0.0.2
_25._tcp.other TLSA 3 1 1 %s
`, hex.EncodeToString(spki[:]), strings.Repeat("ab", 32))
	z, err := resolve.ParseZones(strings.NewReader(zone), "smtp")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	w.auditor = &check.Auditor{
		Resolver: r,
		Planner:  &route.Planner{Resolver: r},
		Probe: &probe.Prober{Port: port, RootCAs: ca.Pool, HelloName: "checker.test",
			Timeouts: dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, Command: 5 * time.Second, TLSHandshake: 5 * time.Second}},
		SkipReason: "offline",
	}
	return w
}

// TestAuditSMTP: check probes every exchange, reports what the SMTP
// servers show, compares the backup tiers with the primary and matches
// the DANE records against the presented certificate, and never sends a
// message.
func TestAuditSMTP(t *testing.T) {
	w := newSMTPWorld(t)
	for _, tt := range []struct {
		domain   string
		want     []finding.ID // among the SMTP, tier and DANE findings
		subjects []string     // named by those findings
	}{
		{"weak.smtp.test", []finding.ID{finding.MXBackupWeaker, finding.SMTPStartTLSMissing}, []string{"mx2.smtp.test"}},
		{"nolist.smtp.test", []finding.ID{finding.MXNolisting, finding.SMTPUnreachable}, []string{"dead.smtp.test"}},
		{"equal.smtp.test", nil, nil},
		{"dane.smtp.test", nil, nil},
		{"badane.smtp.test", []finding.ID{finding.DANEMismatch, finding.SMTPBannerName, finding.SMTPCertNameMismatch}, []string{"other.smtp.test"}},
	} {
		t.Run(tt.domain, func(t *testing.T) {
			r := w.auditor.Audit(t.Context(), dnsname.MustParse(tt.domain))
			var got []finding.ID
			for _, f := range r.Findings {
				if strings.HasPrefix(string(f.ID), "smtp-") || f.ID == finding.MXBackupWeaker || f.ID == finding.MXNolisting || strings.HasPrefix(string(f.ID), "dane-") {
					got = append(got, f.ID)
					if !slices.ContainsFunc(tt.subjects, func(s string) bool { return strings.Contains(f.Subject, s) }) {
						t.Errorf("%s is about %q, want one of %v", f.ID, f.Subject, tt.subjects)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings %v, want %v\n%v", got, tt.want, r.Findings)
			}
			if a, ok := area(r, finding.AreaSMTP); !ok || a.Summary == "" {
				t.Errorf("no SMTP area: %v", r.Areas)
			}
		})
	}
	if n := len(w.mx1.Messages()) + len(w.mx2.Messages()); n != 0 {
		t.Errorf("check delivered %d messages; it must never send DATA", n)
	}
	if w.mx1.Connections() == 0 || w.mx2.Connections() == 0 {
		t.Errorf("connections: mx1 %d, mx2 %d: not every exchange was probed", w.mx1.Connections(), w.mx2.Connections())
	}
}

// TestAuditSMTPSkipped: without a Prober the SMTP and tier areas are
// skipped, with the reason.
func TestAuditSMTPSkipped(t *testing.T) {
	w := newSMTPWorld(t)
	w.auditor.Probe, w.auditor.SMTPSkipReason = nil, "--no-smtp"
	r := w.auditor.Audit(t.Context(), dnsname.MustParse("weak.smtp.test"))
	for _, name := range []finding.Area{finding.AreaSMTP, finding.AreaTiers} {
		if _, ok := area(r, name); ok {
			t.Errorf("area %s judged without a probe", name)
		}
		if !slices.Contains(r.Skipped, check.Skip{Area: name, Reason: "--no-smtp"}) {
			t.Errorf("%s not in skipped %v", name, r.Skipped)
		}
	}
	if w.mx1.Connections()+w.mx2.Connections() != 0 {
		t.Error("connected to an exchange with SMTP skipped")
	}
}

// TestAuditorWith: the variants of one shared Auditor (a server's
// smtp=0 and dkim_selector=) change only the copy, even when many
// requests make them at once (run with -race).
func TestAuditorWith(t *testing.T) {
	w := newSMTPWorld(t)
	w.auditor.DKIMSelectors = make([]string, 1, 8) // room to append in place
	w.auditor.DKIMSelectors[0] = "shared"
	noSMTP := w.auditor.WithoutSMTP("smtp=0")
	if noSMTP.Probe != nil || w.auditor.Probe == nil {
		t.Fatalf("WithoutSMTP: copy's Probe %v, original's %v", noSMTP.Probe, w.auditor.Probe)
	}
	r := noSMTP.Audit(t.Context(), dnsname.MustParse("weak.smtp.test"))
	if !slices.Contains(r.Skipped, check.Skip{Area: finding.AreaSMTP, Reason: "smtp=0"}) || w.mx1.Connections()+w.mx2.Connections() != 0 {
		t.Errorf("smtp=0: skipped %v, %d connections", r.Skipped, w.mx1.Connections()+w.mx2.Connections())
	}
	if again := (&check.Auditor{SMTPSkipReason: "--no-smtp"}).WithoutSMTP("smtp=0"); again.SMTPSkipReason != "--no-smtp" {
		t.Errorf("an Auditor without a Prober lost its reason: %q", again.SMTPSkipReason)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			sel := fmt.Sprint("s", i)
			c := w.auditor.WithoutSMTP("smtp=0").WithDKIMSelectors(sel)
			if !slices.Equal(c.DKIMSelectors, []string{"shared", sel}) {
				t.Errorf("copy %d has selectors %v", i, c.DKIMSelectors)
			}
			c.Audit(t.Context(), dnsname.MustParse("weak.smtp.test"))
		})
	}
	wg.Wait()
	if !slices.Equal(w.auditor.DKIMSelectors, []string{"shared"}) || w.auditor.Probe == nil {
		t.Errorf("the shared Auditor changed: %v, probe %v", w.auditor.DKIMSelectors, w.auditor.Probe)
	}
}

package report_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

func pref(p uint16) *uint16 { return &p }

// probeReport is a domain with a good primary, a backup without STARTTLS
// and a silent third exchange.
func probeReport() *probe.Report {
	good := &probe.Result{
		Host: "mx1.example.test", Preference: pref(10), Address: netip.MustParseAddr("192.0.2.1"), Port: 25, Connected: true,
		Banner:   &probe.Banner{Code: 220, Host: "mx1.example.test", MS: 12},
		EHLO:     &probe.EHLO{Command: "EHLO", Code: 250, StartTLS: true},
		StartTLS: true,
		TLS: &probe.TLS{Version: "TLS1.3", Verified: true, Trusted: true, NameOK: true, ExpiresInDays: 80,
			Chain: []probe.Certificate{{Subject: "CN=mx1.example.test", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		Transcript: []probe.TranscriptLine{{Dir: "*", Text: "connected to 192.0.2.1:25"}, {Dir: "S", Text: "220 mx1.example.test ESMTP", MS: 12}},
	}
	plain := &probe.Result{
		Host: "mx1.example.test", Preference: pref(10), Address: netip.MustParseAddr("2001:db8::1"), Port: 25, Connected: true,
		Banner: &probe.Banner{Code: 220, Host: "mx1.example.test", MS: 15000, Slow: true},
		EHLO:   &probe.EHLO{Command: "EHLO", Code: 250},
	}
	silent := &probe.Result{
		Host: "backup.example.test", Preference: pref(20), Address: netip.MustParseAddr("192.0.2.2"), Port: 25, Connected: true,
		Err: &probe.StepError{Step: probe.StepBanner, Kind: probe.KindTimeout, Message: "greeting: nothing within 30s"},
	}
	results := []*probe.Result{good, plain, silent}
	return &probe.Report{
		Schema: 1, Target: "example.test", Kind: "domain", Plan: &route.Plan{Domain: "example.test", Result: route.ResultOK},
		Results: results,
		DANE: []*probe.DANECheck{
			{Status: probe.DANEMatch}, {Status: probe.DANENoTLS}, {Status: probe.DANENotReach},
		},
		Findings:  probe.Findings(results, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), nil),
		ElapsedMS: 30012,
	}
}

func TestWriteProbe(t *testing.T) {
	rep := probeReport()
	finding.Sort(rep.Findings)
	var out bytes.Buffer
	if err := report.WriteProbe(&out, rep, report.Style{}, report.ProbeOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `example.test  3 addresses probed  errors  (30012 ms)
  PREF  HOST                 ADDRESS      BANNER    TLS          CERTIFICATE         DANE         RESULT
  10    mx1.example.test     192.0.2.1    220 12ms  TLS1.3       verified, 80d left  match        ok
        mx1.example.test     2001:db8::1  220 15s   no STARTTLS  -                   no-tls       ok
  20    backup.example.test  192.0.2.2    -         -            -                   not-reached  banner: timeout

  error   smtp-banner-invalid  backup.example.test[192.0.2.2]:25 sent no greeting: nothing within 30s.
          fix: Make the MTA send ` + "`220 host.name ESMTP`" + ` promptly; check for a middlebox that rewrites or blocks SMTP. (RFC 5321 §4.2, §4.3.1)
  warning smtp-banner-slow  mx1.example.test[2001:db8::1]:25 took 15s to greet.
          fix: Find the delay (reverse DNS lookups of clients, an overloaded filter, a greet-pause policy) and shorten it. (RFC 5321 §4.5.3.2)
  warning smtp-starttls-missing  mx1.example.test[2001:db8::1]:25 does not offer STARTTLS; mail to it travels in clear text.
          fix: Enable STARTTLS with a certificate for the MX name (Postfix ` + "`smtpd_tls_security_level = may`" + `). (RFC 3207 §4; RFC 8314)

`
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Errorf("output differs (-want +got):\n%s", d)
	}
	if strings.Contains(out.String(), "connected to") {
		t.Error("transcript printed without ProbeOptions.Transcript")
	}

	// -v adds each session, line by line.
	out.Reset()
	report.WriteProbe(&out, rep, report.Style{}, report.ProbeOptions{Transcript: true})
	for _, s := range []string{"\n  mx1.example.test[192.0.2.1]:25\n", "    12 ms  S  220 mx1.example.test ESMTP\n", "  backup.example.test[192.0.2.2]:25\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("transcript output lacks %q:\n%s", s, out.String())
		}
	}

	// Colour changes nothing but the escape codes.
	var colour bytes.Buffer
	report.WriteProbe(&colour, rep, report.Style{Color: true}, report.ProbeOptions{Transcript: true})
	if !strings.Contains(colour.String(), "\x1b[") || escapes.ReplaceAllString(colour.String(), "") != out.String() {
		t.Errorf("colour output minus escapes differs from plain")
	}
}

// TestWriteProbeNothing: a domain without exchanges says why, and a host
// target has no preference column values.
func TestWriteProbeNothing(t *testing.T) {
	var out bytes.Buffer
	rep := &probe.Report{Target: "nosuch.example", Kind: "domain", Plan: &route.Plan{Result: route.ResultNXDomain},
		Findings: []finding.Finding{finding.New(finding.MXNXDomain, "nosuch.example", "nosuch.example does not exist.")}}
	report.WriteProbe(&out, rep, report.Style{}, report.ProbeOptions{})
	if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(first, "nosuch.example  nxdomain  nothing to probe  errors") {
		t.Errorf("heading %q", first)
	}
	if strings.Contains(out.String(), "PREF") {
		t.Error("a table without rows")
	}

	out.Reset()
	rep = &probe.Report{Target: "[::1]:2525", Kind: "host", Results: []*probe.Result{{Address: netip.MustParseAddr("::1"), Port: 2525,
		Err: &probe.StepError{Step: probe.StepConnect, Kind: probe.KindRefused, Message: "refused"}}}}
	report.WriteProbe(&out, rep, report.Style{}, report.ProbeOptions{})
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], "1 address probed on port 2525") || !strings.Contains(lines[2], "connect: refused") || strings.Contains(lines[1], "DANE") {
		t.Errorf("output:\n%s", out.String())
	}
}

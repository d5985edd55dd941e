package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

const reverseZone = "../../examples/reverse.zone"

// checkDomains are the example zone's domains whose audits the golden
// files pin: a clean one, and one for each kind of broken routing.
// Every domain of examples/example.zone is here: bigtiers.example and
// multihomed.example pin --seed's order inside a tier, alias.example the
// alias chain.
var checkDomains = []string{"good.example", "tiers.example", "bigtiers.example", "multihomed.example", "alias.example",
	"nullmx.example", "implicit.example", "nomail.example", "cname-mx.example", "ip-mx.example", "dangling.example",
	"private.example", "mixed-null.example", "nosuch.example"}

// elapsed matches the only run-dependent parts of check's output.
var elapsed = regexp.MustCompile(`"elapsed_ms":\d+|\(\d+ ms\)`)

func stable(s string) string {
	return elapsed.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "(") {
			return "(N ms)"
		}
		return `"elapsed_ms":0`
	})
}

// TestCheckGolden pins check's JSON and text output for the example zone,
// offline, so a change to any finding, summary or field shows up as a
// reviewed diff (go test ./cmd/mxtrace -run TestCheckGolden -update).
func TestCheckGolden(t *testing.T) {
	args := append([]string{"check", "--zone", exampleZone, "--zone", reverseZone, "--seed", "1"}, checkDomains...)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			a := args
			if format == "json" {
				a = append([]string{"--json"}, args...)
			}
			code, out, errOut := mxtrace(t, a...)
			// Several example domains are broken on purpose: exit 1.
			if code != exitFindings {
				t.Errorf("exit %d, want %d; stderr %s", code, exitFindings, errOut)
			}
			golden.Check(t, filepath.Join("testdata", "check."+format), []byte(stable(out)))
		})
	}
}

// TestCheckJSONShape: check --json has route's fields and the audit's, one
// object per domain in input order.
func TestCheckJSONShape(t *testing.T) {
	code, out, _ := mxtrace(t, "check", "--json", "--fail-on", "never", "--zone", exampleZone, "good.example", "dangling.example")
	if code != exitOK {
		t.Fatalf("exit %d with --fail-on never", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	for i, want := range []string{"good.example", "dangling.example"} {
		var obj map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &obj); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"schema", "domain", "result", "implicit", "alias_chain", "records", "tiers", "order", "findings", "elapsed_ms", "areas", "skipped", "details"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s: no %q member", want, k)
			}
		}
		if obj["domain"] != want {
			t.Errorf("line %d is %v, want %s", i, obj["domain"], want)
		}
	}
}

// TestCheckFailOn: --fail-on sets the severity that makes check exit 1,
// so it can gate a pipeline.
func TestCheckFailOn(t *testing.T) {
	for _, tt := range []struct {
		domain, failOn string
		want           int
	}{
		{"dangling.example", "error", exitFindings}, // mx-target-nxdomain is an error
		{"dangling.example", "never", exitOK},
		{"good.example", "error", exitOK},
		{"good.example", "info", exitOK}, // not even an info finding
		{"tiers.example", "warning", exitFindings},
		{"nullmx.example", "warning", exitFindings}, // no SPF
		{"nullmx.example", "error", exitOK},
	} {
		code, _, errOut := mxtrace(t, "check", "--zone", exampleZone, "--fail-on", tt.failOn, tt.domain)
		if code != tt.want {
			t.Errorf("%s --fail-on %s: exit %d, want %d (%s)", tt.domain, tt.failOn, code, tt.want, errOut)
		}
	}
	if code, _, errOut := mxtrace(t, "check", "--zone", exampleZone, "--fail-on", "fatal", "good.example"); code != exitUsage || !strings.Contains(errOut, "fail-on") {
		t.Errorf("bad --fail-on: exit %d, stderr %q", code, errOut)
	}
}

// TestCheckOfflineSkips: offline, check says in one line what it skipped
// and why, and sends nothing to the network.
func TestCheckOfflineSkips(t *testing.T) {
	_, out, _ := mxtrace(t, "check", "--zone", exampleZone, "good.example")
	var skipped []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "skipped:") {
			skipped = append(skipped, l)
		}
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "nameservers") || !strings.Contains(skipped[0], "blacklists") || !strings.Contains(skipped[0], "need the network") {
		t.Errorf("skipped lines %q", skipped)
	}
}

// TestCheckSMTP: check --smtp probes the exchanges of a --zone file (new
// servers before the zone is published), reports what they show, and
// never sends a message; --no-smtp does not connect at all.
func TestCheckSMTP(t *testing.T) {
	port := smtptest.Port(t)
	ca := testpki.NewCA(t, "cmd test CA")
	at := func(n byte) string { return netip.AddrPortFrom(smtptest.Loopback(n), uint16(port)).String() }
	primary := smtptest.Start(t, smtptest.Options{Addr: at(2), Hostname: "mx1.smtpcheck.test",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.smtpcheck.test"}})}}})
	backup := smtptest.Start(t, smtptest.Options{Addr: at(3), Hostname: "mx2.smtpcheck.test"})
	zone := filepath.Join(t.TempDir(), "smtpcheck.zone")
	if err := os.WriteFile(zone, []byte(`$ORIGIN smtpcheck.test.
@    300 SOA ns h 1 7200 900 1209600 300
@    300 MX 10 mx1
@    300 MX 20 mx2
mx1  300 A 127.0.0.2
mx2  300 A 127.0.0.3
`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"check", "--zone", zone, "--smtp-port", strconv.Itoa(port), "--ca", ca.WriteCertFile(t), "--fail-on", "never"}

	_, out, errOut := mxtrace(t, append(base, "--no-smtp", "smtpcheck.test")...)
	if primary.Connections()+backup.Connections() != 0 {
		t.Fatalf("--no-smtp connected; stderr %s", errOut)
	}
	if !strings.Contains(out, "SMTP, tiers (--no-smtp)") {
		t.Errorf("--no-smtp not reported as skipped:\n%s", out)
	}

	code, out, errOut := mxtrace(t, append(base, "--smtp", "--json", "smtpcheck.test")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Findings []struct{ ID, Subject string }
		Details  struct {
			SMTP []struct {
				Host string
				TLS  *struct{ Verified bool }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Details.SMTP) != 2 || rep.Details.SMTP[0].TLS == nil || !rep.Details.SMTP[0].TLS.Verified || rep.Details.SMTP[1].TLS != nil {
		t.Errorf("details.smtp %+v: want mx1 with a verified TLS session (--ca), mx2 without", rep.Details.SMTP)
	}
	var ids []string
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.ID, "smtp-") || f.ID == "mx-backup-weaker" {
			ids = append(ids, f.ID+" "+f.Subject)
		}
	}
	slices.Sort(ids)
	want := []string{"mx-backup-weaker mx2.smtpcheck.test", "smtp-starttls-missing mx2.smtpcheck.test[127.0.0.3]:" + strconv.Itoa(port)}
	if !slices.Equal(ids, want) {
		t.Errorf("findings %q, want %q", ids, want)
	}
	if n := len(primary.Messages()) + len(backup.Messages()); n != 0 {
		t.Errorf("check sent %d messages", n)
	}
}

// TestCheckSPFIncludeNone: an include or redirect= whose target publishes
// no SPF record is reported on the record that holds the term
// (spf-include-none, spf-redirect-none; RFC 7208 §5.2, §6.1), never as
// spf-missing on the target; an include of a record that exists is not.
func TestCheckSPFIncludeNone(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "spf.zone")
	if err := os.WriteFile(zone, []byte(`$ORIGIN spf.test.
@      300 SOA ns h 1 7200 900 1209600 300
broken 300 MX  10 mx
broken 300 TXT "v=spf1 include:_spf.broken.spf.test redirect=_gone.spf.test"
_spf.broken 300 TXT "not an SPF record"
fine   300 MX  10 mx
fine   300 TXT "v=spf1 include:_spf.fine.spf.test -all"
_spf.fine 300 TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx     300 A   192.0.2.1
`), 0o644); err != nil {
		t.Fatal(err)
	}
	spfFindings := func(domain string) []string {
		t.Helper()
		_, out, errOut := mxtrace(t, "check", "--json", "--fail-on", "never", "--zone", zone, domain)
		var rep struct {
			Findings []struct{ ID, Subject, Message string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: %v (stderr %s)", domain, err, errOut)
		}
		var got []string
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.ID, "spf-") {
				got = append(got, f.ID+" "+f.Subject+": "+f.Message)
			}
		}
		slices.Sort(got)
		return got
	}
	got := spfFindings("broken.spf.test")
	if len(got) != 2 || !strings.HasPrefix(got[0], "spf-include-none broken.spf.test: ") || !strings.Contains(got[0], "_spf.broken.spf.test publishes no SPF record") ||
		!strings.HasPrefix(got[1], "spf-redirect-none broken.spf.test: ") || !strings.Contains(got[1], "_gone.spf.test publishes no SPF record") {
		t.Errorf("broken.spf.test: SPF findings %q, want spf-include-none and spf-redirect-none on broken.spf.test naming the targets", got)
	}
	if got := spfFindings("fine.spf.test"); len(got) != 0 {
		t.Errorf("fine.spf.test: SPF findings %q, want none", got)
	}
}

// TestCheckRouteFailedOnce: when the MX lookup fails, the routing block
// says the lookup's error once (in mx-lookup-failed), not again in its
// "could not check" line.
func TestCheckRouteFailedOnce(t *testing.T) {
	srv := dnstest.New(t, dnstest.Rcode(dns.RcodeServerFailure))
	code, out, _ := mxtrace(t, "check", "--resolver", srv.Addr, "--timeout", "5s", "d.example")
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	var block string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "  ! routing") || (block != "" && strings.HasPrefix(l, "      ")) {
			block += l
		} else if block != "" {
			break
		}
	}
	if n := strings.Count(block, "lookup d.example. MX"); n != 1 || !strings.Contains(block, "mx-lookup-failed") {
		t.Errorf("routing block says the lookup error %d times, want once:\n%s", n, block)
	}
}

// TestCheckNSPort: with --ns-port the nameserver audit asks the zone's
// servers on that port, so a server on a loopback test port is audited
// (bench/audit.sh relies on it): both direct questions reach it and are
// answered, and no server is unreachable.
func TestCheckNSPort(t *testing.T) {
	srv := dnstest.NewZone(t, `$ORIGIN nsport.test.
@ 3600 IN SOA ns1 hostmaster 1 3600 900 604800 300
@ 3600 IN NS ns1
ns1 3600 IN A 127.0.0.1
@ 3600 IN MX 0 .
`)
	_, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mxtrace(t, "check", "--resolver", srv.Addr, "--ns-port", port, "--no-smtp", "--no-dnsbl",
		"--json", "--fail-on", "never", "nsport.test")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Findings []struct{ ID string }
		Details  struct {
			Nameservers struct {
				Servers []struct {
					Addresses []struct {
						MX, SOA struct{ Status string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	ns := r.Details.Nameservers.Servers
	if len(ns) != 1 || len(ns[0].Addresses) != 1 || ns[0].Addresses[0].MX.Status != "ok" || ns[0].Addresses[0].SOA.Status != "ok" {
		t.Errorf("servers %+v: want ns1's one address answering both questions", ns)
	}
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, "ns-") {
			t.Errorf("finding %s: the server on --ns-port answers", f.ID)
		}
	}
	if code, _, errOut := mxtrace(t, "check", "--ns-port", "0", "nsport.test"); code != exitUsage || !strings.Contains(errOut, "--ns-port") {
		t.Errorf("--ns-port 0: exit %d (%s), want a usage error", code, errOut)
	}
}

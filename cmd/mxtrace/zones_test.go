package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
)

// rootZone is a zone file at the root, as a lab or a test driver writes
// one: every name hangs below its apex ".", and a wildcard sits right
// below it.
const rootZone = `. 3600 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
. 3600 IN NS ns.lab.test.
ns.lab.test. 3600 IN A 192.0.2.53
example.com. 3600 IN MX 10 mx.example.com.
example.com. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx.example.com. 3600 IN A 192.0.2.25
*.wild.test. 3600 IN MX 10 mx.example.com.
`

// runBounded runs one command line, failing the test rather than hanging
// when the command never returns (a walk over labels that does not end
// ignores every deadline).
func runBounded(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := mxtrace(t, args...)
		done <- result{code, out, errOut}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.err
	case <-time.After(time.Minute):
		t.Fatalf("mxtrace %s did not return within a minute", strings.Join(args, " "))
		return 0, "", ""
	}
}

// TestRootApexZone: a zone file whose apex is the root answers route,
// check, spf and scan (it used to spin for ever walking from "com." to ""
// and never reaching the apex ".").
func TestRootApexZone(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "root.zone")
	if err := os.WriteFile(zone, []byte(rootZone), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("example.com\nnosuch.test\nx.wild.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"route", "example.com", "nosuch.test", "x.wild.test"}, []string{"mx.example.com", "192.0.2.25", "nosuch.test", "does not exist"}},
		{[]string{"check", "--no-smtp", "--no-dnsbl", "example.com"}, []string{"mx.example.com"}},
		{[]string{"spf", "example.com", "--ip", "192.0.2.7"}, []string{"pass"}},
		{[]string{"scan", list}, []string{`"domain":"example.com","result":"ok"`, `"domain":"nosuch.test","result":"nxdomain"`, `"domain":"x.wild.test","result":"ok"`}},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			args := append(append([]string{}, tt.args...), "--zone", zone, "--fail-on", "never", "--timeout", "5s")
			code, out, errOut := runBounded(t, args...)
			if code != exitOK {
				t.Errorf("exit %d, stderr %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// brokenZone holds names whose messages end with a name: alias chains that
// loop or run too long, for a domain and for an exchange, an exchange
// outside the zone files, a dangling alias.
const brokenZone = `$ORIGIN broken.test.
$TTL 3600
@      SOA ns.broken.test. h.broken.test. 1 7200 900 1209600 300
@      NS  ns
ns     A   192.0.2.53
loop   CNAME loop2
loop2  CNAME loop
long   CNAME c1
c1 CNAME c2
c2 CNAME c3
c3 CNAME c4
c4 CNAME c5
c5 CNAME c6
c6 CNAME c7
c7 CNAME c8
c8 CNAME c9
c9 MX 10 mx
mx     A   192.0.2.1
mxloop MX  10 ml1
mxloop MX  20 c2
mxloop TXT "v=spf1 include:loop.broken.test. a:gone.broken.test. -all"
ml1    CNAME ml2
ml2    CNAME ml1
out    MX  10 mx.elsewhere.example.
out    MX  20 10.0.0.1.
dangle CNAME gone
`

// TestNoDoubledDot: no message, fix, summary or error ends in "..", the
// mark of a sentence ending with an absolute name: every finding the
// catalogue describes, and everything route, check and spf print, in
// text and JSON, for every domain of the example zones, of route's test
// zones and of a zone of broken names.
func TestNoDoubledDot(t *testing.T) {
	for _, e := range finding.Catalogue {
		for _, s := range []string{e.Title, e.Fix, e.Example} {
			if doubledDot(s) {
				t.Errorf("catalogue %s: %q", e.ID, s)
			}
		}
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.zone")
	if err := os.WriteFile(broken, []byte(brokenZone), 0o644); err != nil {
		t.Fatal(err)
	}
	routeZones, err := filepath.Glob("../../route/testdata/route/*.zone")
	if err != nil || len(routeZones) == 0 {
		t.Fatalf("route's test zones: %v", err)
	}
	sets := [][]string{{exampleZone, reverseZone}, {broken}}
	for _, z := range routeZones {
		sets = append(sets, []string{z})
	}
	checked := 0
	for _, zones := range sets {
		var flags []string
		for _, z := range zones {
			flags = append(flags, "--zone", z)
		}
		for _, d := range zoneDomains(t, zones) {
			for _, cmd := range [][]string{
				{"route", d}, {"route", "--json", d},
				{"check", "--no-smtp", d}, {"check", "--no-smtp", "--json", d},
				{"spf", d, "--ip", "192.0.2.1"}, {"spf", "--json", d, "--ip", "192.0.2.1"},
			} {
				args := append(append(cmd, flags...), "--fail-on", "never")
				_, out, errOut := mxtrace(t, args...)
				for _, line := range strings.Split(out+errOut, "\n") {
					if doubledDot(strings.TrimSpace(line)) {
						t.Errorf("mxtrace %s: %q", strings.Join(args, " "), line)
					}
				}
				if slices.Contains(cmd, "--json") {
					var v any
					if json.Unmarshal([]byte(out), &v) == nil {
						walkStrings(v, func(s string) {
							if doubledDot(s) {
								t.Errorf("mxtrace %s: JSON string %q", strings.Join(args, " "), s)
							}
						})
					}
				}
				checked++
			}
		}
	}
	if checked < 300 {
		t.Errorf("ran %d commands", checked)
	}
}

// doubledDot reports text ending in two dots, not in an ellipsis.
func doubledDot(s string) bool {
	return strings.HasSuffix(s, "..") && !strings.HasSuffix(s, "...")
}

// zoneDomains lists the owners of MX, CNAME, TXT and A records in the
// zone files, without the trailing dot.
func zoneDomains(t *testing.T, files []string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		zp := dns.NewZoneParser(strings.NewReader(string(text)), ".", f)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			switch rr.Header().Rrtype {
			case dns.TypeMX, dns.TypeCNAME, dns.TypeTXT, dns.TypeA:
				if n := strings.TrimSuffix(rr.Header().Name, "."); !strings.HasPrefix(n, "_") && !strings.Contains(n, "in-addr") && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		if err := zp.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// walkStrings calls f with every string in a decoded JSON value.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range v {
			walkStrings(e, f)
		}
	}
}

// danezones: a signed zone (a DNSKEY set at its apex) and an unsigned
// one, each with an exchange that has TLSA records, and a signed domain
// whose exchange lives in the unsigned zone.
const daneZones = `$TTL 300
signed.test.          SOA    ns.signed.test. h.signed.test. 1 7200 900 1209600 300
signed.test.          NS     ns.signed.test.
signed.test.          DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
ns.signed.test.       A      192.0.2.53
signed.test.          MX     10 mx.signed.test.
mx.signed.test.       A      192.0.2.1
_25._tcp.mx.signed.test. TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
across.signed.test.   MX     10 mx.plain.test.
plain.test.           SOA    ns.plain.test. h.plain.test. 1 7200 900 1209600 300
plain.test.           NS     ns.plain.test.
ns.plain.test.        A      192.0.2.54
plain.test.           MX     10 mx.plain.test.
mx.plain.test.        A      192.0.2.2
_25._tcp.mx.plain.test. TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`

// TestSignedZoneDANE: with --zone, a zone file signed with DNSSEC counts
// as secure for DANE, as a validating resolver will vouch for it once it
// is published (RFC 7672 §2.2): check reports no dane-tlsa-insecure for
// its exchange, and does for an exchange in an unsigned zone, whichever
// domain points at it.
func TestSignedZoneDANE(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "dane.zone")
	if err := os.WriteFile(zone, []byte(daneZones), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		domain   string
		insecure bool
	}{
		{"signed.test", false},
		{"plain.test", true},
		{"across.signed.test", true},
	} {
		_, out, errOut := mxtrace(t, "check", "--json", "--no-smtp", "--zone", zone, "--fail-on", "never", tt.domain)
		var r struct {
			Findings []struct{ ID, Subject string }
			Areas    []struct{ Area, Status string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v in %q (%s)", tt.domain, err, out, errOut)
		}
		insecure := slices.ContainsFunc(r.Findings, func(f struct{ ID, Subject string }) bool { return f.ID == string(finding.DANEInsecure) })
		if insecure != tt.insecure {
			t.Errorf("%s: dane-tlsa-insecure %v, want %v: %+v", tt.domain, insecure, tt.insecure, r.Findings)
		}
		if !slices.ContainsFunc(r.Areas, func(a struct{ Area, Status string }) bool { return a.Area == "DANE" }) {
			t.Errorf("%s: no DANE area in %+v", tt.domain, r.Areas)
		}
	}
}

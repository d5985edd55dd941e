package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

// probeZone: a domain with a primary (STARTTLS, a certificate from the
// test CA, on 127.0.0.2 and ::1) and a backup without STARTTLS; a domain
// whose only exchange is silent; one whose exchange is an open relay.
const probeZone = `$ORIGIN example.test.
@        3600 IN SOA ns hostmaster 1 3600 600 86400 300
@        3600 IN MX 10 mx1
@        3600 IN MX 20 mx2
mx1      3600 IN A    127.0.0.2
mx1      3600 IN AAAA ::1
mx2      3600 IN A    127.0.0.3
silent   3600 IN MX 10 mx.silent
mx.silent 3600 IN A   127.0.0.4
relay    3600 IN MX 10 mx.relay
mx.relay 3600 IN A    127.0.0.5
noaddr   3600 IN TXT  "nothing"
`

type probeEnv struct {
	zone, ca string
	port     int
}

func startProbeEnv(t *testing.T) *probeEnv {
	t.Helper()
	zone := filepath.Join(t.TempDir(), "example.test.zone")
	if err := os.WriteFile(zone, []byte(probeZone), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, "mxtrace test root")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.example.test"}})
	port := smtptest.Port(t)
	at := func(a string) string { return netip.AddrPortFrom(netip.MustParseAddr(a), uint16(port)).String() }
	for _, a := range []string{"127.0.0.2", "::1"} {
		smtptest.Start(t, smtptest.Options{Addr: at(a), Hostname: "mx1.example.test", TLS: serverTLSConfig(cert)})
	}
	smtptest.Start(t, smtptest.Options{Addr: at("127.0.0.3"), Hostname: "mx2.example.test"})
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at("127.0.0.4"), Behaviour: smtptest.Silent})
	smtptest.Start(t, smtptest.Options{Addr: at("127.0.0.5"), Hostname: "mx.relay.example.test", Relay: true, Domains: []string{"relay.example.test"}})
	return &probeEnv{zone: zone, ca: ca.WriteCertFile(t), port: port}
}

func (e *probeEnv) args(args ...string) []string {
	return append([]string{"probe", "--zone", e.zone, "--ca", e.ca, "--smtp-port", fmt.Sprint(e.port), "--helo", "probe.example.test"}, args...)
}

func TestProbeCommand(t *testing.T) {
	e := startProbeEnv(t)
	port := fmt.Sprint(e.port)

	t.Run("domain", func(t *testing.T) {
		code, out, errOut := mxtrace(t, e.args("example.test")...)
		// The backup lacks STARTTLS: a warning, below --fail-on error.
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s\n%s", code, errOut, out)
		}
		for _, want := range []string{
			"example.test  3 addresses probed on port " + port + "  warnings",
			"mx1.example.test  127.0.0.2", "mx1.example.test  ::1", "mx2.example.test  127.0.0.3",
			"TLS1.3", "verified, 89d left", "no STARTTLS",
			"warning smtp-starttls-missing  mx2.example.test[127.0.0.3]:" + port,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "EHLO probe.example.test") {
			t.Errorf("transcript without -v:\n%s", out)
		}
		if code, _, _ := mxtrace(t, e.args("--fail-on", "warning", "example.test")...); code != exitFindings {
			t.Errorf("--fail-on warning: exit %d, want %d", code, exitFindings)
		}
	})

	t.Run("verbose", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("-v", "example.test")...)
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		for _, want := range []string{"mx1.example.test[::1]:" + port + "\n", "C  EHLO probe.example.test", "C  STARTTLS", "S  220 mx1.example.test", "C  QUIT"} {
			if !strings.Contains(out, want) {
				t.Errorf("-v output lacks %q", want)
			}
		}
		if strings.Contains(out, "C  DATA") || strings.Contains(out, "C  MAIL") {
			t.Errorf("the probe started a mail transaction:\n%s", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := mxtrace(t, e.args("--json", "example.test", "mx2.example.test:"+port)...)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want one object per target:\n%s", len(lines), out)
		}
		type probeJSON struct {
			Schema  int    `json:"schema"`
			Target  string `json:"target"`
			Kind    string `json:"kind"`
			Results []struct {
				Host       string  `json:"host"`
				Preference *uint16 `json:"preference"`
				Address    string  `json:"address"`
				Port       int     `json:"port"`
				Banner     struct {
					Code int    `json:"code"`
					Host string `json:"host"`
				} `json:"banner"`
				TLS *struct {
					Version  string `json:"version"`
					Verified bool   `json:"verified"`
				} `json:"tls"`
				Transcript []struct{ Dir, Text string } `json:"transcript"`
			} `json:"results"`
			DANE []struct {
				Status string `json:"status"`
			} `json:"dane"`
			Findings []struct {
				ID string `json:"id"`
			} `json:"findings"`
		}
		var rep probeJSON
		if err := json.Unmarshal([]byte(lines[0]), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Schema != 1 || rep.Target != "example.test" || rep.Kind != "domain" || len(rep.Results) != 3 || len(rep.DANE) != 3 {
			t.Fatalf("report %+v", rep)
		}
		r := rep.Results[0]
		if r.Host != "mx1.example.test" || *r.Preference != 10 || r.Address != "127.0.0.2" || r.Port != e.port || r.Banner.Code != 220 ||
			r.TLS == nil || !r.TLS.Verified || len(r.Transcript) == 0 || rep.DANE[0].Status != "none" {
			t.Errorf("first result %+v", r)
		}
		if len(rep.Findings) != 1 || rep.Findings[0].ID != "smtp-starttls-missing" {
			t.Errorf("findings %+v", rep.Findings)
		}
		rep = probeJSON{}
		if err := json.Unmarshal([]byte(lines[1]), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Kind != "host" || len(rep.Results) != 1 || rep.Results[0].Host != "mx2.example.test" || rep.Results[0].Preference != nil {
			t.Errorf("host target %+v", rep)
		}
	})

	t.Run("targets", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"mx1.example.test:" + port}, []string{"mx1.example.test:" + port + "  2 addresses probed", "127.0.0.2", "::1"}},
			{[]string{"-6", "--host", "mx1.example.test"}, []string{"mx1.example.test  1 address probed", "::1"}},
			{[]string{"[::1]:" + port}, []string{"[::1]:" + port + "  1 address probed", "-     ::1"}},
			{[]string{"127.0.0.3"}, []string{"127.0.0.3  1 address probed", "no STARTTLS"}},
		} {
			code, out, errOut := mxtrace(t, e.args(tt.args...)...)
			if code != exitOK {
				t.Errorf("%v: exit %d, stderr %s", tt.args, code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
				}
			}
		}
	})

	t.Run("silent", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--timeout", "1s", "silent.example.test")...)
		// The greeting's deadline fits in --timeout (half of it): the
		// server's silence is a finding, not our time running out.
		if code != exitFindings || !strings.Contains(out, "smtp-banner-invalid") || !strings.Contains(out, "banner: timeout") ||
			!strings.Contains(out, "sent no greeting: nothing within 500ms.") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})

	t.Run("relay", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("relay.example.test")...)
		if code != exitOK || strings.Contains(out, "smtp-open-relay") {
			t.Errorf("without --relay-test: exit %d:\n%s", code, out)
		}
		code, out, _ = mxtrace(t, e.args("--relay-test", "Relay-Target.Example.", "relay.example.test")...)
		if code != exitFindings || !strings.Contains(out, "smtp-open-relay") || !strings.Contains(out, "mxtrace-relay-test@relay-target.example") {
			t.Errorf("with --relay-test: exit %d:\n%s", code, out)
		}
	})

	t.Run("failures", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"mx1.example.test:99999"}, exitUsage, "not a TCP port"},
			{[]string{"mx1.example.test:0"}, exitUsage, "not a TCP port"},
			{[]string{"bad..name:25"}, exitUsage, "empty label"},
			{[]string{"--relay-test", "bad..name", "example.test"}, exitUsage, "--relay-test"},
			{[]string{"noaddr.example.test:25"}, exitFailed, "no address"},
			{[]string{"--host", "elsewhere.example.org"}, exitFailed, "not in any loaded zone"},
			{[]string{"nosuch.example.test"}, exitFindings, ""}, // mx-nxdomain
		} {
			code, out, errOut := mxtrace(t, e.args(tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("%v: exit %d stderr %q, want %d and %q\n%s", tt.args, code, errOut, tt.code, tt.msg, out)
			}
		}
	})
}

func TestParseTarget(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		host bool
		want string // "domain NAME" or "host NAME PORT"
	}{
		{"Example.COM.", false, "domain example.com 0"},
		{"postmaster@example.com", false, "domain example.com 0"},
		{"example.com", true, "host example.com 0"},
		{"mx.example.com:2525", false, "host mx.example.com 2525"},
		{"192.0.2.1", false, "host 192.0.2.1 0"},
		{"192.0.2.1:587", false, "host 192.0.2.1 587"},
		{"[2001:db8::1]:25", false, "host 2001:db8::1 25"},
		{"2001:db8::1", false, "host 2001:db8::1 0"},
		{"[2001:db8::1]", false, "host 2001:db8::1 0"},
		{"::ffff:192.0.2.1", false, "host 192.0.2.1 0"},
	} {
		tg, err := parseTarget(tt.arg, tt.host)
		if err != nil {
			t.Errorf("%q: %v", tt.arg, err)
			continue
		}
		got := fmt.Sprintf("host %s %d", tg.Host, tg.Port)
		if tg.Domain != "" {
			got = fmt.Sprintf("domain %s %d", tg.Domain, tg.Port)
		}
		if got != tt.want {
			t.Errorf("%q: %s, want %s", tt.arg, got, tt.want)
		}
	}
}

func serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

package serve

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/scan"
	"github.com/mxtrace/mxtrace/spf"
)

// TestPeers asks the API about zones served by a real Knot through a
// real validating Unbound, wired as mxtrace serve wires a resolver: the
// bodies are what the library (and so the command line) computes through
// the same resolver, a DNSSEC-bogus zone is a temporary failure (result
// "error", never "no-mail"), and the nameservers the zone names at
// documentation addresses are refused, not asked. SPF evaluations, a
// scan (route and check) and a probe of an exchange on loopback (an SMTP
// server the test runs, private addresses allowed for the prober alone)
// answer what the library answers through the same resolver. It fails
// under CI=true when knot or unbound is missing.
func TestPeers(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	signed := read("testdata/signed.zone")
	k := peers.StartKnot(t,
		peers.Zone{Origin: "example.", Text: read(testZone)},
		peers.Zone{Origin: "signed.example.", Text: signed, DNSSEC: peers.Signed},
		peers.Zone{Origin: "bogus.example.", Text: signed, DNSSEC: peers.Bogus},
		peers.Zone{Origin: "probe.example.", Text: "$ORIGIN probe.example.\n@ 3600 SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 NS ns\nns 3600 A 192.0.2.53\n@ 3600 MX 10 mx\nmx 3600 A 127.0.0.2\n"},
	)
	port := smtptest.Port(t)
	mx := smtptest.StartRaw(t, smtptest.RawOptions{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)).String(), Behaviour: smtptest.NoSTARTTLS, Hostname: "mx.probe.example"})
	u := peers.StartUnbound(t, k.UnboundConfig())
	network := func(cd bool) resolve.Resolver {
		r, err := stub.New(stub.Config{Servers: []string{u.Addr}, Timeout: 2 * time.Second, CheckingDisabled: cd})
		if err != nil {
			t.Fatal(err)
		}
		return resolve.NewCache(r, 0)
	}
	r := network(false)
	e := newEnv(t, r, func(c *Config) {
		c.Planner = &route.Planner{Resolver: r, Seed: 1, HasSeed: true}
		c.Auditor = &check.Auditor{
			Resolver:    r,
			Planner:     c.Planner,
			Nameservers: &nameserver.Options{CDResolver: network(true), Policy: &dial.Policy{}},
			SkipReason:  "not in this test",
		}
		c.Prober = &probe.Auditor{
			Prober:   &probe.Prober{Port: port, HelloName: "serve.example", Dialer: &dial.Net{Policy: &dial.Policy{AllowPrivate: true}}},
			Resolver: r,
			Planner:  c.Planner,
		}
	})

	for _, domain := range []string{"tiers.example", "signed.example", "nullmx.example", "implicit.example", "nosuch.example", "bogus.example"} {
		status, _, body := e.get(t, "/api/v1/route/"+domain)
		plan, _ := e.planner.Plan(t.Context(), dnsname.MustParse(domain))
		if diff := cmp.Diff(normalized(t, jsonOf(t, plan)), normalized(t, body)); status != 200 || diff != "" {
			t.Errorf("route %s: %d, differs from the library's (-lib +api):\n%s", domain, status, diff)
		}
		status, _, body = e.get(t, "/api/v1/check/"+domain+"?smtp=0")
		rep := e.auditor.Audit(t.Context(), dnsname.MustParse(domain))
		if diff := cmp.Diff(normalized(t, jsonOf(t, rep)), normalized(t, body)); status != 200 || diff != "" {
			t.Errorf("check %s: %d, differs from the library's (-lib +api):\n%s", domain, status, diff)
		}
	}

	_, _, body := e.get(t, "/api/v1/route/bogus.example")
	var plan route.Plan
	if err := json.Unmarshal(body, &plan); err != nil || plan.Result != route.ResultError {
		t.Errorf("a DNSSEC-bogus zone: result %q (%v), want %q (a temporary failure, not no MX)", plan.Result, err, route.ResultError)
	}
	_, _, body = e.get(t, "/api/v1/check/signed.example")
	var rep struct {
		Findings []struct{ ID string } `json:"findings"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, f := range rep.Findings {
		refused = refused || f.ID == "ns-target-refused"
	}
	if !refused {
		t.Errorf("the nameserver at a documentation address was not refused: %s", body)
	}
	if status, _, _ := e.get(t, "/api/v1/check/signed.example/events"); status != http.StatusOK {
		t.Errorf("events: %d", status)
	}

	// SPF: the evaluation spf --json prints, through the same resolver.
	for _, tt := range []struct {
		path string
		req  spf.Request
	}{
		{"tiers.example?ip=192.0.2.20&sender=joe@tiers.example", spf.Request{Domain: "tiers.example", IP: "192.0.2.20", Sender: "joe@tiers.example"}},
		{"tiers.example?ip=198.51.100.1&sender=joe@tiers.example&helo=mail.example", spf.Request{Domain: "tiers.example", IP: "198.51.100.1", Sender: "joe@tiers.example", HELO: "mail.example"}},
		{"nomail.example?ip=192.0.2.10&sender=", spf.Request{Domain: "nomail.example", IP: "192.0.2.10", Sender: "<>"}},
		{"bogus.example?ip=192.0.2.10&sender=a@bogus.example", spf.Request{Domain: "bogus.example", IP: "192.0.2.10", Sender: "a@bogus.example"}},
	} {
		status, _, body := e.get(t, "/api/v1/spf/"+tt.path)
		q, tree, err := tt.req.Query()
		if err != nil {
			t.Fatal(err)
		}
		want := spf.Evaluate(t.Context(), &spf.Checker{Resolver: r}, q, tree, spf.Options{})
		if diff := cmp.Diff(normalized(t, jsonOf(t, want)), normalized(t, body)); status != 200 || diff != "" {
			t.Errorf("spf %s: %d, differs from the library's (-lib +api):\n%s", tt.path, status, diff)
		}
	}

	// POST /api/v1/scan: the lines scan writes for the same list.
	input := "tiers.example\nsigned.example\nbogus.example\nbad..name\nnosuch.example\n"
	for _, tt := range []struct {
		mode string
		job  scan.Job
	}{
		{"", scan.Route(e.planner)},
		{"?mode=check", scan.Check(e.auditor)},
	} {
		status, _, body := e.do(t, http.MethodPost, "/api/v1/scan"+tt.mode, strings.NewReader(input))
		got, want := strings.SplitAfter(string(body), "\n"), scanLines(t, tt.job, input)
		if status != 200 || len(got) != len(want) {
			t.Fatalf("scan%s: %d, %d lines, want %d:\n%s", tt.mode, status, len(got), len(want), body)
		}
		for i := range want {
			if want[i] == "" && got[i] == "" {
				continue
			}
			if diff := cmp.Diff(normalized(t, []byte(want[i])), normalized(t, []byte(got[i]))); diff != "" {
				t.Errorf("scan%s line %d differs from scan's (-scan +api):\n%s", tt.mode, i+1, diff)
			}
		}
	}

	// GET /api/v1/probe: the exchange the zone names, probed once by the
	// API and once by the library.
	status, _, body := e.get(t, "/api/v1/probe/probe.example")
	want, _ := e.srv.cfg.Prober.Audit(t.Context(), probe.Target{Domain: "probe.example"})
	if got, want := probeSummary(t, body), probeSummary(t, jsonOf(t, want)); status != 200 || got != want {
		t.Errorf("probe: %d, differs from the library's:\n%s\nwant\n%s", status, got, want)
	}
	if !strings.Contains(string(body), "smtp-starttls-missing") || mx.Connections() != 2 {
		t.Errorf("%d connections, body %s: want the exchange probed twice, no STARTTLS found", mx.Connections(), body)
	}
}

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

// The send world: Knot serves testdata/send_world.zone, Unbound resolves
// it, and three Postfix instances receive, all on one port P of five
// loopback addresses, the way every exchange listens on 25:
//
//	primary  mx1    127.0.0.11  land's primary tier; greylists grey@, refuses gone@
//	backup   mx2    127.0.0.12  land's and spread's backup tier
//	pool     mxa    127.0.0.13  spread's equal-preference tier, first listener
//	         mxb    127.0.0.14  spread's equal-preference tier, second listener
//	         mxtls  127.0.0.15  tls's exchange, with STARTTLS (certificate of the test CA)
//
// The tests run the mxtrace binary as a user does, with --resolver pointed
// at Unbound and --smtp-port P, and compare what it prints (--json) with
// what Postfix logged.
type sendWorld struct {
	bin      string
	resolver string
	port     int
	caFile   string
	primary  *peers.Postfix
	backup   *peers.Postfix
	pool     *peers.Postfix
}

// sendDomains are the recipient domains every instance accepts.
var sendDomains = []string{"land.send.test", "spread.send.test", "tls.send.test"}

func startSendWorld(t *testing.T) *sendWorld {
	t.Helper()
	bin := buildMxtrace(t)
	k := peers.StartKnot(t, peers.Zone{Origin: "send.test.", Text: readFile(t, "testdata/send_world.zone")})
	u := peers.StartUnbound(t, k.UnboundConfig())
	ip := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, last}) }
	port, err := peers.FreePortOn(ip(11), ip(12), ip(13), ip(14), ip(15))
	if err != nil {
		t.Fatal(err)
	}
	at := func(last byte) netip.AddrPort { return netip.AddrPortFrom(ip(last), uint16(port)) }
	ca := testpki.NewCA(t, "mxtrace send integration CA")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mxtls.send.test"}})
	w := &sendWorld{bin: bin, resolver: u.Addr, port: port, caFile: ca.WriteCertFile(t)}
	w.primary = peers.StartPostfix(t, peers.PostfixConfig{
		Hostname:  "mx1.send.test",
		Domains:   sendDomains,
		Listeners: []peers.PostfixListener{{Addr: at(11), Name: "mx1"}},
		Reject: map[string]string{
			"grey@land.send.test": "450 4.2.0 greylisted, try again later",
			"gone@land.send.test": "550 5.1.1 no such user",
		},
	})
	w.backup = peers.StartPostfix(t, peers.PostfixConfig{
		Hostname:  "mx2.send.test",
		Domains:   sendDomains,
		Listeners: []peers.PostfixListener{{Addr: at(12), Name: "mx2"}},
	})
	w.pool = peers.StartPostfix(t, peers.PostfixConfig{
		Hostname: "pool.send.test",
		Domains:  sendDomains,
		Listeners: []peers.PostfixListener{
			{Addr: at(13), Name: "mxa", Hostname: "mxa.send.test"},
			{Addr: at(14), Name: "mxb", Hostname: "mxb.send.test"},
			{Addr: at(15), Name: "mxtls", Hostname: "mxtls.send.test", TLS: &cert},
		},
	})
	return w
}

// buildMxtrace builds the command once per test into a temporary
// directory.
func buildMxtrace(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "mxtrace")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, goBin, "build", "-o", out, "../cmd/mxtrace").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../cmd/mxtrace: %v\n%s", err, b)
	}
	return out
}

// sendOutput is the part of mxtrace send --json this test reads.
type sendOutput struct {
	Accepted  bool   `json:"accepted"`
	Host      string `json:"host"`
	Address   string `json:"address"`
	QueueID   string `json:"queue_id"`
	MessageID string `json:"message_id"`
	Permanent bool   `json:"permanent"`
	Kind      string `json:"error_kind"`
	TLS       *struct {
		Version  string `json:"version"`
		Verified bool   `json:"verified"`
	} `json:"tls"`
	Attempts []sendAttempt `json:"attempts"`
}

type sendAttempt struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	Stage   string `json:"stage"`
	Outcome string `json:"outcome"`
	Code    int    `json:"code"`
	Error   string `json:"error"`
}

// send runs mxtrace send --json to the address to, with extra flags, and
// returns what it printed and its exit status.
func (w *sendWorld) send(t *testing.T, to string, extra ...string) (sendOutput, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := append([]string{"send", "--json",
		"--resolver", w.resolver, "--smtp-port", strconv.Itoa(w.port), "--timeout", "30s",
		"--from", "tester@example.org", "--to", to}, extra...)
	cmd := exec.CommandContext(ctx, w.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mxtrace %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var out sendOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("mxtrace %s (exit %d): output is not the JSON of one result: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), code, err, stdout.String(), stderr.String())
	}
	return out, code
}

// delivery waits for the message with queue ID id in p's log.
func delivery(t *testing.T, p *peers.Postfix, id string) peers.PostfixDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		got := p.Received()
		if i := slices.IndexFunc(got, func(d peers.PostfixDelivery) bool { return d.QueueID == id }); i >= 0 {
			return got[i]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("queue ID %q never showed in the Postfix log; received %+v", id, got)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hostOf strips a port from an attempt's or result's address.
func hostOf(a string) string {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return ap.Addr().String()
	}
	return a
}

// TestSend delivers with mxtrace send to real Postfix receivers and checks
// each claim of the output against Postfix's log.
func TestSend(t *testing.T) {
	w := startSendWorld(t)
	// In this order: the fail-over case stops the primary.
	t.Run("lands", func(t *testing.T) { sendLands(t, w) })
	t.Run("deferred", func(t *testing.T) { sendDeferred(t, w) })
	t.Run("permanent", func(t *testing.T) { sendPermanent(t, w) })
	t.Run("starttls", func(t *testing.T) { sendSTARTTLS(t, w) })
	t.Run("spread", func(t *testing.T) { sendSpread(t, w) })
	t.Run("probe", func(t *testing.T) { probePostfix(t, w) })
	t.Run("failover", func(t *testing.T) { sendFailover(t, w) })
}

// sendLands: the message goes to the primary tier, and the queue ID
// mxtrace prints is the one Postfix logged on the primary's listener.
func sendLands(t *testing.T, w *sendWorld) {
	out, code := w.send(t, "user@land.send.test")
	if code != 0 || !out.Accepted {
		t.Fatalf("exit %d, accepted %v: %+v", code, out.Accepted, out)
	}
	if out.Host != "mx1.send.test" || hostOf(out.Address) != "127.0.0.11" || out.QueueID == "" {
		t.Errorf("accepted by %s (%s) as %q, want mx1.send.test (127.0.0.11) with a queue ID", out.Host, out.Address, out.QueueID)
	}
	d := delivery(t, w.primary, out.QueueID)
	if d.Listener != "mx1" || d.From != "tester@example.org" || !slices.Equal(d.To, []string{"user@land.send.test"}) {
		t.Errorf("Postfix logged %+v", d)
	}
	if want := strings.Trim(out.MessageID, "<>"); d.MessageID != want {
		t.Errorf("Postfix logged Message-ID %q, mxtrace sent %q", d.MessageID, want)
	}
	if n := len(w.backup.Received()); n != 0 {
		t.Errorf("the backup received %d messages", n)
	}
}

// sendDeferred: a 4xx at RCPT on the primary moves on to the backup tier
// (RFC 5321 §4.2.5, §5.1).
func sendDeferred(t *testing.T, w *sendWorld) {
	before := len(w.backup.Received())
	out, code := w.send(t, "grey@land.send.test")
	if code != 0 || !out.Accepted || out.Host != "mx2.send.test" {
		t.Fatalf("exit %d, accepted %v by %s, want mx2.send.test: %+v", code, out.Accepted, out.Host, out)
	}
	if len(out.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the primary's deferral, then the backup", out.Attempts)
	}
	if a := out.Attempts[0]; a.Host != "mx1.send.test" || a.Outcome != "deferred" || a.Code != 450 || a.Stage != "rcpt" {
		t.Errorf("first attempt %+v, want mx1.send.test deferred with 450 at rcpt", a)
	}
	d := delivery(t, w.backup, out.QueueID)
	if d.Listener != "mx2" || len(w.backup.Received()) != before+1 {
		t.Errorf("backup logged %+v (%d messages, %d before)", d, len(w.backup.Received()), before)
	}
}

// sendPermanent: a 5xx at RCPT stops delivery; the backup is not tried.
func sendPermanent(t *testing.T, w *sendWorld) {
	out, code := w.send(t, "gone@land.send.test")
	if code == 0 || out.Accepted || !out.Permanent || out.Kind != "permanent" {
		t.Fatalf("exit %d, accepted %v, permanent %v, kind %q: want a permanent failure", code, out.Accepted, out.Permanent, out.Kind)
	}
	if len(out.Attempts) != 1 || out.Attempts[0].Host != "mx1.send.test" || out.Attempts[0].Code != 550 || out.Attempts[0].Outcome != "rejected" {
		t.Errorf("attempts %+v, want one, rejected by mx1.send.test with 550", out.Attempts)
	}
	if strings.Contains(w.backup.Log(), "gone@land.send.test") {
		t.Errorf("the backup saw the recipient:\n%s", w.backup.Log())
	}
}

// sendSTARTTLS: the exchange that offers STARTTLS is used with TLS, its
// certificate verified with --ca; without --ca the session is still
// encrypted (opportunistic, RFC 7435) but not verified.
func sendSTARTTLS(t *testing.T, w *sendWorld) {
	for _, tc := range []struct {
		name     string
		flags    []string
		verified bool
	}{
		{"with --ca", []string{"--ca", w.caFile}, true},
		{"system roots", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := w.send(t, "secure@tls.send.test", tc.flags...)
			if code != 0 || !out.Accepted || out.Host != "mxtls.send.test" {
				t.Fatalf("exit %d, accepted %v by %s: %+v", code, out.Accepted, out.Host, out)
			}
			if out.TLS == nil || !strings.HasPrefix(out.TLS.Version, "TLS") || out.TLS.Verified != tc.verified {
				t.Errorf("TLS %+v, want a session, verified=%v", out.TLS, tc.verified)
			}
			d := delivery(t, w.pool, out.QueueID)
			if d.Listener != "mxtls" || !strings.HasPrefix(d.TLSVersion(), "TLSv1.") {
				t.Errorf("Postfix logged %+v, want a TLS session on mxtls", d)
			}
		})
	}
}

// spreadSends is how many messages sendSpread sends; spreadMin is how
// many each of the two equal exchanges must get. With a fair shuffle each
// send picks either with probability 1/2, so one of them gets fewer than
// 3 of 30 with probability 2·(1+30+435)/2³⁰ ≈ 8.7e-7.
const (
	spreadSends = 30
	spreadMin   = 3
)

// sendSpread: the hosts of an equal-preference tier are tried in random
// order (RFC 5321 §5.1), so both receive mail; the backup tier receives
// none; and every queue ID mxtrace reports for a host is logged on that
// host's listener.
func sendSpread(t *testing.T, w *sendWorld) {
	backupBefore := len(w.backup.Received())
	before := len(w.pool.Received())
	byHost := map[string][]string{}
	for i := range spreadSends {
		out, code := w.send(t, "n"+strconv.Itoa(i)+"@spread.send.test")
		if code != 0 || !out.Accepted {
			t.Fatalf("send %d: exit %d: %+v", i, code, out)
		}
		byHost[out.Host] = append(byHost[out.Host], out.QueueID)
	}
	t.Logf("of %d messages, mxa took %d and mxb %d", spreadSends, len(byHost["mxa.send.test"]), len(byHost["mxb.send.test"]))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := w.pool.WaitReceived(ctx, before+spreadSends)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string][]string{}
	for _, d := range got[before:] {
		logged[d.Listener+".send.test"] = append(logged[d.Listener+".send.test"], d.QueueID)
	}
	for _, host := range []string{"mxa.send.test", "mxb.send.test"} {
		if n := len(byHost[host]); n < spreadMin {
			t.Errorf("%s accepted %d of %d messages, want at least %d: %v", host, n, spreadSends, spreadMin, byHost)
		}
		slices.Sort(byHost[host])
		slices.Sort(logged[host])
		if !slices.Equal(byHost[host], logged[host]) {
			t.Errorf("%s: mxtrace reported queue IDs %v, Postfix logged %v", host, byHost[host], logged[host])
		}
	}
	if len(byHost) != 2 || len(w.backup.Received()) != backupBefore {
		t.Errorf("messages went beyond the first tier: %v", byHost)
	}
}

// sendFailover: with the primary's Postfix stopped, the backup tier takes
// the message, and the attempts show the refused connection first.
func sendFailover(t *testing.T, w *sendWorld) {
	if err := w.primary.Stop(); err != nil {
		t.Fatalf("stopping the primary: %v", err)
	}
	out, code := w.send(t, "after@land.send.test")
	if code != 0 || !out.Accepted || out.Host != "mx2.send.test" {
		t.Fatalf("exit %d, accepted %v by %s, want mx2.send.test: %+v", code, out.Accepted, out.Host, out)
	}
	if len(out.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the refused primary, then the backup", out.Attempts)
	}
	a := out.Attempts[0]
	if a.Host != "mx1.send.test" || hostOf(a.Address) != "127.0.0.11" || a.Stage != "connect" || a.Outcome != "deferred" ||
		!strings.Contains(a.Error, "refused") {
		t.Errorf("first attempt %+v, want a refused connection to mx1.send.test at 127.0.0.11", a)
	}
	if d := delivery(t, w.backup, out.QueueID); d.Listener != "mx2" || !slices.Equal(d.To, []string{"after@land.send.test"}) {
		t.Errorf("backup logged %+v", d)
	}
}

// probePostfix runs mxtrace probe and check over real Postfix listeners:
// the STARTTLS listener is seen with a verified TLS session (--ca), the
// plain ones without STARTTLS, and neither command leaves a message in
// any Postfix log: they never send DATA.
func probePostfix(t *testing.T, w *sendWorld) {
	before := len(w.primary.Received()) + len(w.backup.Received()) + len(w.pool.Received())
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		args = append(args, "--json", "--fail-on", "never", "--resolver", w.resolver, "--smtp-port", strconv.Itoa(w.port), "--ca", w.caFile)
		out, err := exec.CommandContext(ctx, w.bin, args...).Output()
		if err != nil {
			t.Fatalf("mxtrace %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	var rep struct {
		Results []struct {
			Host     string
			Banner   *struct{ Code int }
			StartTLS bool
			TLS      *struct {
				Version  string
				Verified bool
			}
		}
	}
	if err := json.Unmarshal(run("probe", "tls.send.test"), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Banner == nil || rep.Results[0].Banner.Code != 220 ||
		rep.Results[0].TLS == nil || !rep.Results[0].TLS.Verified || rep.Results[0].TLS.Version == "" {
		t.Errorf("probe tls.send.test: %+v, want one verified TLS session", rep.Results)
	}

	var chk struct {
		Findings []struct{ ID, Subject string }
		Details  struct {
			SMTP []struct {
				Host     string
				StartTLS bool
			}
		}
	}
	if err := json.Unmarshal(run("check", "--no-dnsbl", "land.send.test"), &chk); err != nil {
		t.Fatal(err)
	}
	if len(chk.Details.SMTP) != 2 {
		t.Fatalf("check land.send.test probed %d addresses, want 2", len(chk.Details.SMTP))
	}
	missing := 0
	for _, f := range chk.Findings {
		if f.ID == "smtp-starttls-missing" {
			missing++
		}
	}
	if missing != 2 {
		t.Errorf("%d smtp-starttls-missing findings for two plain Postfix listeners: %+v", missing, chk.Findings)
	}
	// Postfix logs a queue ID for every message it accepts; none appears.
	time.Sleep(200 * time.Millisecond)
	if after := len(w.primary.Received()) + len(w.backup.Received()) + len(w.pool.Received()); after != before {
		t.Errorf("probe and check left %d messages in Postfix's logs", after-before)
	}
}

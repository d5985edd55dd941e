package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// watchNetnsEnv marks the child test process that runs inside its own
// network namespace.
const watchNetnsEnv = "MXTRACE_WATCH_NETNS"

// watchZone is watch.test as Knot serves it: shop with two exchanges and a
// DMARC policy that rejects (the later version drops mx2 and weakens
// DMARC to p=none), blog unchanged throughout. The exchanges have
// documentation addresses (RFC 5737), which the test's namespace puts on
// its loopback interface, so they are probed for real and are no error.
func watchZone(serial int, later bool) string {
	mx2, policy := "shop MX 20 mx2.shop\n", "reject"
	if later {
		mx2, policy = "", "none"
	}
	return fmt.Sprintf(`$TTL 300
@     SOA  ns hostmaster %d 3600 600 86400 300
@     NS   ns
ns    A    127.0.0.1
shop  MX   10 mx1.shop
%sshop  TXT  "v=spf1 mx -all"
_dmarc.shop TXT "v=DMARC1; p=%s; rua=mailto:dmarc@shop.watch.test"
mx1.shop A 192.0.2.25
mx2.shop A 192.0.2.26
blog  MX   10 mx1.shop
blog  TXT  "v=spf1 -all"
_dmarc.blog TXT "v=DMARC1; p=reject"
`, serial, mx2, policy)
}

// watchReverseZone gives the exchanges' addresses their names back (RFC 1912
// §2.1), so reverse DNS is no finding.
const watchReverseZone = `$TTL 300
@   SOA ns.watch.test. hostmaster.watch.test. 1 3600 600 86400 300
@   NS  ns.watch.test.
25  PTR mx1.shop.watch.test.
26  PTR mx2.shop.watch.test.
`

// blacklistZone is each default DNS blacklist, healthy (its test entry
// 127.0.0.2 listed, RFC 5782 §5) and listing no exchange.
const blacklistZone = `$TTL 300
@          SOA ns.watch.test. hostmaster.watch.test. 1 3600 600 86400 300
@          NS  ns.watch.test.
2.0.0.127  A   127.0.0.2
`

// TestWatchKnot is the scripted scenario of docs/watch.md#alerts against
// real servers: Knot serves the watched domains and is changed between
// `mxtrace watch run --once --all` runs (knotc zone-reload), stopped and
// started again; each run's alerts reach a webhook receiver (signature
// checked) and a submission server (STARTTLS, AUTH PLAIN), and nothing
// else does: nothing on the first check or a run without change, one
// webhook and one mail per change, nothing for one failed check, a
// confirmed failure after the second, and a recovery notice. On SQLite,
// then on PostgreSQL.
//
// The test runs itself again inside a network namespace of its own
// (unshare -n), where Knot answers on 127.0.0.1:53 (the address its NS
// record gives, for the nameserver audit) and the exchanges listen on
// 192.0.2.25:25 and 192.0.2.26:25.
func TestWatchKnot(t *testing.T) {
	if os.Getenv(watchNetnsEnv) != "1" {
		reexecInNetns(t, "^TestWatchKnot$")
		return
	}
	for _, a := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "192.0.2.25/32", "dev", "lo"}, {"addr", "add", "192.0.2.26/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", a...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
	bin := buildMxtrace(t)
	ca := testpki.NewCA(t, "mxtrace watch integration CA")
	for i, host := range []string{"mx1.shop.watch.test", "mx2.shop.watch.test"} {
		startSMTP(t, fmt.Sprintf("192.0.2.%d:25", 25+i), host, ca.Leaf(t, testpki.LeafOptions{Names: []string{host}}), false)
	}
	zones := []peers.Zone{{Origin: "watch.test.", Text: watchZone(1, false)}, {Origin: "2.0.192.in-addr.arpa.", Text: watchReverseZone}}
	for _, list := range dnsbl.DefaultLists {
		zones = append(zones, peers.Zone{Origin: list, Text: blacklistZone})
	}
	knot := peers.StartKnotAt(t, netip.MustParseAddrPort("127.0.0.1:53"), zones...)
	pg := peers.StartPostgres(t)
	for i, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "watch.db")
			if engine == "postgres" {
				db = pg.NewDatabase(t)
			}
			serial := 10 * (i + 1)
			knot.SetZone(t, "watch.test.", watchZone(serial, false))
			watchScenario(t, bin, db, knot, ca, serial+1)
		})
	}
}

// reexecInNetns runs the test run again as a child in a new network
// namespace and fails t when the child fails. It needs root (unshare -n).
func reexecInNetns(t *testing.T, run string) {
	t.Helper()
	unshare := peers.Binary(t, "unshare", "util-linux")
	peers.Binary(t, "ip", "iproute2")
	if os.Geteuid() != 0 {
		if peers.InCI() {
			t.Fatal("CI=true and the test needs root for its network namespace (unshare -n)")
		}
		t.Skip("the test needs root for its network namespace (unshare -n)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", os.Args[0], "-test.run", run, "-test.v", "-test.count", "1")
	cmd.Env = append(os.Environ(), watchNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in its network namespace: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Skipf("skipped in its network namespace:\n%s", out)
	}
	t.Logf("in its network namespace:\n%s", out)
}

// watchScenario is the scenario on one database.
// later is the serial of the zone's change.
func watchScenario(t *testing.T, bin, db string, knot *peers.Knot, ca *testpki.CA, later int) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	password := filepath.Join(dir, "password")
	for f, v := range map[string]string{secret: "s3cret\n", password: "hunter2\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hooks := &received[map[string]any]{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := watch.Verify([]byte("s3cret"), r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var n map[string]any
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hooks.add(n)
	}))
	defer hook.Close()
	sink := startSMTP(t, "127.0.0.1:0", "submission.watch.test", ca.Leaf(t, testpki.LeafOptions{Names: []string{"127.0.0.1"}}), true)

	mx := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		args = append([]string{"--resolver", knot.Addr, "--timeout", "10s", "--ca", ca.WriteCertFile(t)}, append(args, "--db", db)...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("mxtrace %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	mx("watch", "add", "shop.watch.test", "blog.watch.test", "--alert", hook.URL+"/hook", "--alert", "mailto:ops@watch.test")
	run := func() {
		t.Helper()
		mx("watch", "run", "--once", "--all", "--webhook-secret-file", secret,
			"--mail-server", sink.addr, "--mail-from", "mxtrace@watch.test", "--mail-user", "alerts", "--mail-password-file", password)
	}
	// step runs once more and checks what arrived since the last step: the
	// webhook notices as "domain kind", one per alert, each also mailed.
	seen := 0
	step := func(what string, want ...string) {
		t.Helper()
		run()
		got := hooks.since(seen)
		msgs := sink.since(seen)
		seen += len(got)
		var kinds []string
		for _, n := range got {
			kinds = append(kinds, fmt.Sprintf("%v %v", n["domain"], n["kind"]))
		}
		slices.Sort(kinds)
		slices.Sort(want)
		if !slices.Equal(kinds, want) {
			t.Errorf("%s: the webhook got %q, want %q\n%v", what, kinds, want, got)
		}
		if len(msgs) != len(got) {
			t.Errorf("%s: %d messages for %d webhook notices", what, len(msgs), len(got))
		}
		for _, m := range msgs {
			if !m.tls || m.user != "alerts" || m.from != "mxtrace@watch.test" || m.to != "ops@watch.test" {
				t.Errorf("%s: message from %q to %q, TLS %v, user %q", what, m.from, m.to, m.tls, m.user)
			}
		}
		if len(msgs) > len(got) {
			seen = len(msgs) // keep the two lists in step after a failure
		}
	}

	step("the first checks")
	step("a run without change")

	knot.SetZone(t, "watch.test.", watchZone(later, true))
	run()
	got := hooks.since(seen)
	seen += len(got)
	// One alert per change the run stored, each once, for shop only.
	s, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.Changes(t.Context(), "shop.watch.test", time.Time{}, 0)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want, kinds []string
	for _, c := range changes {
		want = append(want, c.Kind+" "+c.Subject)
	}
	for _, n := range got {
		if n["domain"] != "shop.watch.test" || n["kind"] != "change" {
			t.Errorf("after the zone change the webhook got %v", n)
			continue
		}
		for _, c := range n["changes"].([]any) {
			c := c.(map[string]any)
			kinds = append(kinds, fmt.Sprintf("%v %v", c["kind"], c["subject"]))
		}
	}
	slices.Sort(want)
	slices.Sort(kinds)
	if !slices.Equal(kinds, want) || !slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, "exchange-removed ") }) ||
		!slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, "dmarc-weakened ") }) {
		t.Errorf("after the zone change the webhook got the changes %q, want one alert for each change stored, %q, among them exchange-removed and dmarc-weakened", kinds, want)
	}
	if msgs := sink.since(seen - len(got)); len(msgs) != len(got) {
		t.Errorf("after the zone change: %d messages for %d webhook notices", len(msgs), len(got))
	}
	step("a run after the change, without change")

	knot.Stop(t)
	step("one failed check")
	step("the second failed check", "blog.watch.test confirmed-failure", "shop.watch.test confirmed-failure")
	knot.Start(t)
	step("the recovery", "blog.watch.test recovery", "shop.watch.test recovery")
	step("a run after the recovery")
}

// received is what a receiver got, in order.
type received[T any] struct {
	mu   sync.Mutex
	list []T
}

func (r *received[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
}

func (r *received[T]) since(i int) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list[min(i, len(r.list)):])
}

// smtpServer is an in-process go-smtp server: an exchange to probe, or
// (with auth) the submission server the alerts go through, which asks for
// AUTH PLAIN (alerts/hunter2) inside STARTTLS and keeps what it accepts.
type smtpServer struct {
	addr string
	auth bool
	received[smtpMsg]
}

type smtpMsg struct {
	from, to, user string
	tls            bool
}

type smtpSession struct {
	s        *smtpServer
	conn     *smtp.Conn
	user     string
	from, to string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, inTLS := ss.conn.TLSConnectionState(); !inTLS || user != "alerts" || pass != "hunter2" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.auth && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = to
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	_, inTLS := ss.conn.TLSConnectionState()
	ss.s.add(smtpMsg{from: ss.from, to: ss.to, user: ss.user, tls: inTLS})
	return nil
}

func (ss *smtpSession) Reset()        {}
func (ss *smtpSession) Logout() error { return nil }

// startSMTP serves SMTP on addr with STARTTLS (cert) until the test ends.
func startSMTP(t *testing.T, addr, host string, cert tls.Certificate, auth bool) *smtpServer {
	t.Helper()
	s := &smtpServer{auth: auth}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, conn: c}, nil
	}))
	srv.Domain = host
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return s
}

package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/mtasts"
)

// sendZone: one domain per case, every exchange on its own 127.0.0.x
// address, all on one port.
const sendZone = `$ORIGIN example.test.
@          3600 IN SOA ns hostmaster 1 3600 600 86400 300
@          3600 IN MX 10 mx1
@          3600 IN MX 20 mx2
mx1        3600 IN A 127.0.0.2
mx2        3600 IN A 127.0.0.3
refused    3600 IN MX 10 mx.refused
refused    3600 IN MX 20 mx2
mx.refused 3600 IN A 127.0.0.4
busy       3600 IN MX 10 mx.busy
busy       3600 IN MX 20 mx2
mx.busy    3600 IN A 127.0.0.5
reject     3600 IN MX 10 mx.reject
reject     3600 IN MX 20 mx2
mx.reject  3600 IN A 127.0.0.6
spread     3600 IN MX 10 a.spread
spread     3600 IN MX 10 b.spread
a.spread   3600 IN A 127.0.0.7
b.spread   3600 IN A 127.0.0.8
plain      3600 IN MX 10 mx.plain
mx.plain   3600 IN A 127.0.0.9
grey       3600 IN MX 10 mx.grey
mx.grey    3600 IN A 127.0.0.10
sts        3600 IN MX 10 mx.a.sts
sts        3600 IN MX 20 mx.b.sts
mx.a.sts   3600 IN A 127.0.0.11
mx.b.sts   3600 IN A 127.0.0.12
_mta-sts.sts 3600 IN TXT "v=STSv1; id=1"
mta-sts.sts  3600 IN A 127.0.0.1
nullmx     3600 IN MX 0 .
`

// daneZone is signed (a DNSKEY at the apex), so the zone-file resolver
// answers with AD, as a validating resolver would.
const daneZone = `$ORIGIN dane.test.
@          3600 IN SOA ns hostmaster 1 3600 600 86400 300
@          3600 IN DNSKEY 257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==
ok         3600 IN MX 10 mx.ok
mx.ok      3600 IN A 127.0.0.13
bad        3600 IN MX 10 mx.bad
bad        3600 IN MX 20 mx2.bad
mx.bad     3600 IN A 127.0.0.13
mx2.bad    3600 IN A 127.0.0.14
`

type sendEnv struct {
	zone, daneZone, ca string
	port, httpsPort    int
	servers            map[string]*smtptest.Server
}

func startSendEnv(t *testing.T) *sendEnv {
	t.Helper()
	ca := testpki.NewCA(t, "mxtrace test root")
	leaf := func(names ...string) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: names})}}
	}
	// The DANE exchange's certificate comes from a CA nobody trusts: only
	// its TLSA record vouches for it.
	daneCert := testpki.NewCA(t, "untrusted").Leaf(t, testpki.LeafOptions{Names: []string{"whatever.invalid"}})
	sum := sha256.Sum256(daneCert.Leaf.RawSubjectPublicKeyInfo)
	dz := daneZone +
		"_25._tcp.mx.ok  3600 IN TLSA 3 1 1 " + hex.EncodeToString(sum[:]) + "\n" +
		"_25._tcp.mx.bad 3600 IN TLSA 3 1 1 " + strings.Repeat("ab", 32) + "\n"

	dir := t.TempDir()
	e := &sendEnv{zone: filepath.Join(dir, "example.test.zone"), daneZone: filepath.Join(dir, "dane.test.zone"),
		ca: ca.WriteCertFile(t), port: smtptest.Port(t), servers: map[string]*smtptest.Server{}}
	for name, text := range map[string]string{e.zone: sendZone, e.daneZone: dz} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := func(n int) string { return fmt.Sprintf("127.0.0.%d:%d", n, e.port) }
	start := func(name string, o smtptest.Options) {
		o.Hostname = name
		e.servers[name] = smtptest.Start(t, o)
	}
	start("mx1", smtptest.Options{Addr: at(2), TLS: leaf("mx1.example.test")})
	start("mx2", smtptest.Options{Addr: at(3)})
	smtptest.Refused(t, at(4))
	start("mx.busy", smtptest.Options{Addr: at(5), Rcpt: func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}})
	start("mx.reject", smtptest.Options{Addr: at(6), Rcpt: func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}})
	start("a.spread", smtptest.Options{Addr: at(7)})
	start("b.spread", smtptest.Options{Addr: at(8)})
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(9), Behaviour: smtptest.NoSTARTTLS})
	start("mx.grey", smtptest.Options{Addr: at(10), Greylist: 1})
	start("mx.a.sts", smtptest.Options{Addr: at(11)})
	start("mx.b.sts", smtptest.Options{Addr: at(12), TLS: leaf("mx.b.sts.example.test")})
	start("mx.dane", smtptest.Options{Addr: at(13), TLS: &tls.Config{Certificates: []tls.Certificate{daneCert}}})
	start("mx2.bad", smtptest.Options{Addr: at(14)})

	// The MTA-STS policy host of sts.example.test, on 127.0.0.1 at a port
	// of the kernel's (--mta-sts-port).
	policy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mtasts.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "version: STSv1\nmode: enforce\nmx: mx.b.sts.example.test\nmax_age: 86400\n")
	}))
	policy.TLS = leaf("mta-sts.sts.example.test")
	policy.StartTLS()
	t.Cleanup(policy.Close)
	e.httpsPort = policy.Listener.Addr().(*net.TCPAddr).Port
	return e
}

func (e *sendEnv) args(args ...string) []string {
	return append([]string{"send", "--zone", e.zone, "--zone", e.daneZone, "--ca", e.ca, "--smtp-port", fmt.Sprint(e.port),
		"--helo", "client.example.test", "--mta-sts-port", fmt.Sprint(e.httpsPort), "--timeout", "5s"}, args...)
}

// delivered counts the messages a server accepted for rcpt.
func delivered(s *smtptest.Server, rcpt string) int {
	n := 0
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if to == rcpt {
				n++
			}
		}
	}
	return n
}

func TestSendCommand(t *testing.T) {
	e := startSendEnv(t)

	t.Run("primary over verified TLS", func(t *testing.T) {
		code, out, errOut := mxtrace(t, e.args("--to", "user@example.test")...)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s\n%s", code, errOut, out)
		}
		msgs := e.servers["mx1"].Messages()
		if len(msgs) != 1 || !msgs[0].TLS || msgs[0].From != "mxtrace@client.example.test" {
			t.Fatalf("mx1 messages: %+v", msgs)
		}
		for _, want := range []string{
			"send to user@example.test  from mxtrace@client.example.test",
			"route: example.test ok  10: mx1.example.test; 20: mx2.example.test",
			"mx1.example.test [127.0.0.2]  accepted: 250 2.0.0 Ok: queued as " + msgs[0].QueueID,
			"accepted by mx1.example.test [127.0.0.2] as " + msgs[0].QueueID + "  (TLS 1.3, certificate verified; 1 attempt in 1 round",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if delivered(e.servers["mx2"], "user@example.test") != 0 {
			t.Errorf("the backup got the message too")
		}
	})

	t.Run("failover after a refused connection", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@refused.example.test")...)
		if code != exitOK || delivered(e.servers["mx2"], "a@refused.example.test") != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{"mx.refused.example.test [127.0.0.4]  deferred at connect:", "accepted by mx2.example.test [127.0.0.3]"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("failover after a 4xx", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@busy.example.test")...)
		if code != exitOK || delivered(e.servers["mx2"], "a@busy.example.test") != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if !strings.Contains(out, "mx.busy.example.test [127.0.0.5]  deferred at rcpt: 451 4.3.0 try again later") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("5xx stops", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@reject.example.test")...)
		if code != exitFindings {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		if delivered(e.servers["mx2"], "a@reject.example.test") != 0 {
			t.Errorf("the backup was tried after a 5xx")
		}
		for _, want := range []string{"rejected at rcpt: 550 5.1.1 no such user", "not delivered: permanent failure"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("equal preferences spread", func(t *testing.T) {
		// 40 sends, each host at least 5: a fair shuffle fails this with
		// probability below 1e-6.
		for range 40 {
			if code, out, _ := mxtrace(t, e.args("--to", "a@spread.example.test")...); code != exitOK {
				t.Fatalf("exit %d\n%s", code, out)
			}
		}
		a, b := delivered(e.servers["a.spread"], "a@spread.example.test"), delivered(e.servers["b.spread"], "a@spread.example.test")
		if a+b != 40 || a < 5 || b < 5 {
			t.Errorf("a.spread got %d, b.spread %d of 40", a, b)
		}
	})

	t.Run("require-tls without STARTTLS", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@plain.example.test", "--require-tls", "--json")...)
		if code != exitFindings {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		var r struct {
			Accepted bool   `json:"accepted"`
			Kind     string `json:"error_kind"`
			Attempts []struct {
				Stage, Outcome, Error string
				Rule                  string `json:"tls_rule"`
			} `json:"attempts"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("not one JSON object (%v):\n%s", err, out)
		}
		if r.Accepted || r.Kind != "policy" || len(r.Attempts) != 1 || r.Attempts[0].Stage != "starttls" ||
			r.Attempts[0].Outcome != "policy" || r.Attempts[0].Rule != "require-tls" || !strings.Contains(r.Attempts[0].Error, "STARTTLS") {
			t.Errorf("result %+v", r)
		}
	})

	t.Run("greylisting with --retry", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@grey.example.test", "--retry", "--retry-base", "100ms", "--retry-max", "1s", "--retry-for", "10s")...)
		if code != exitOK || delivered(e.servers["mx.grey"], "a@grey.example.test") != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{
			"retry: up to 12 more rounds within 10s, waiting 100ms, 200ms, 400ms, 800ms, 1s",
			"deferred at rcpt: 451 4.7.1",
			"waiting 1", "before round 2",
			"round 2, route: grey.example.test ok",
			"accepted by mx.grey.example.test [127.0.0.10]", "2 attempts in 2 rounds",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("MTA-STS enforce skips an exchange the policy does not list", func(t *testing.T) {
		code, out, errOut := mxtrace(t, e.args("--to", "a@sts.example.test")...)
		if code != exitOK {
			t.Fatalf("exit %d %s\n%s", code, errOut, out)
		}
		if e.servers["mx.a.sts"].Connections() != 0 || delivered(e.servers["mx.b.sts"], "a@sts.example.test") != 1 {
			t.Errorf("mx.a.sts: %d connections; mx.b.sts: %d messages", e.servers["mx.a.sts"].Connections(), delivered(e.servers["mx.b.sts"], "a@sts.example.test"))
		}
		for _, want := range []string{"MTA-STS: mode enforce, mx mx.b.sts.example.test", "mx.a.sts.example.test  policy at policy:", "[rule mta-sts]", "certificate verified"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("DANE match", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@ok.dane.test")...)
		if code != exitOK || !strings.Contains(out, "certificate matches DANE") || !strings.Contains(out, "[rule dane]") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("DANE mismatch passes the exchange over", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@bad.dane.test")...)
		if code != exitOK || delivered(e.servers["mx2.bad"], "a@bad.dane.test") != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if !strings.Contains(out, "mx.bad.dane.test [127.0.0.13]  policy at tls:") || !strings.Contains(out, "no usable TLSA record matches") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("transcript with -v", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("-v", "--to", "v@example.test", "--subject", "verbose")...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{"S: 220 mx1", "C: EHLO client.example.test", "C: STARTTLS", "-- TLS established", "C: RCPT TO:<v@example.test>", "C: <message data:"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "Subject: verbose") {
			t.Errorf("the transcript shows the message")
		}
	})

	t.Run("no route", func(t *testing.T) {
		code, out, _ := mxtrace(t, e.args("--to", "a@nullmx.example.test")...)
		if code != exitFindings || !strings.Contains(out, "Null MX") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("DNS failure", func(t *testing.T) {
		code, _, errOut := mxtrace(t, e.args("--to", "a@elsewhere.invalid")...)
		if code != exitFailed || !strings.Contains(errOut, "lookup elsewhere.invalid. MX") {
			t.Errorf("exit %d, stderr %s", code, errOut)
		}
	})

	t.Run("body file and JSON", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "body.txt")
		if err := os.WriteFile(body, []byte("Bonjour, ça va ?\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := mxtrace(t, e.args("--json", "--to", "body@example.test", "--from", "me@client.example.test", "--body-file", body)...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var r struct {
			Schema    int
			Accepted  bool
			Host      string
			QueueID   string `json:"queue_id"`
			MessageID string `json:"message_id"`
			Route     struct{ Result string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, m := range e.servers["mx1"].Messages() {
			if m.To[0] == "body@example.test" {
				got = m.Data
				if m.QueueID != r.QueueID || m.From != "me@client.example.test" {
					t.Errorf("queue ID %q, server %q; from %s", r.QueueID, m.QueueID, m.From)
				}
			}
		}
		if r.Schema != 1 || !r.Accepted || r.Host != "mx1.example.test" || r.Route.Result != "ok" ||
			!strings.Contains(string(got), "Message-ID: <"+r.MessageID+">") || !strings.Contains(string(got), "Bonjour, =C3=A7a va ?") {
			t.Errorf("result %+v, message:\n%s", r, got)
		}
	})
}

// TestSendUsage: bad flags are exit 2 with one line, before anything is
// sent.
func TestSendUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--to is required"},
		{[]string{"--to", "user@exa mple.test"}, "white space"},
		{[]string{"--to", "example.test"}, "not an e-mail address"},
		{[]string{"--to", "a@example.test", "--body", "x", "--body-file", "f"}, "exclude each other"},
		{[]string{"--to", "a@example.test", "--body-file", "/nonexistent/body"}, "--body-file"},
		{[]string{"--to", "a@example.test", "--from", "not an address"}, "invalid message"},
		{[]string{"--to", "a@example.test", "--retry-factor", "0.5"}, "--retry-factor"},
		{[]string{"--to", "a@example.test", "--helo", "bad name"}, "--helo"},
		{[]string{"--to", "a@example.test", "stray"}, "unknown command"},
	} {
		code, out, errOut := mxtrace(t, append([]string{"send", "--zone", exampleZone, "--smtp-port", "1"}, tt.args...)...)
		if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/smtptest"
)

// hostileZone: one exchange that greets with control bytes and a
// backslash, one that drips its greeting one byte at a time.
const hostileZone = `$ORIGIN example.test.
@        3600 IN SOA ns hostmaster 1 3600 600 86400 300
binary   3600 IN MX 10 mx.binary
mx.binary 3600 IN A  127.0.0.20
drip     3600 IN MX 10 mx.drip
mx.drip  3600 IN A   127.0.0.21
`

func startHostileSMTP(t *testing.T) (zone string, port int) {
	t.Helper()
	zone = filepath.Join(t.TempDir(), "example.test.zone")
	if err := os.WriteFile(zone, []byte(hostileZone), 0o644); err != nil {
		t.Fatal(err)
	}
	port = smtptest.Port(t)
	at := func(n int) string { return fmt.Sprintf("127.0.0.%d:%d", n, port) }
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(20), Behaviour: smtptest.CustomBanner,
		Banner: "220 mx\x01\\x ESMTP\r\n"})
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(21), Behaviour: smtptest.DripBanner,
		Delay: 400 * time.Millisecond, Hostname: "mx.drip.example.test"})
	return zone, port
}

// TestBannerEscapedOnce: a greeting with a control byte and a backslash is
// escaped once (internal/printable: \x01 and \\) in the finding, the text
// report and the JSON, never escaped again on the way.
func TestBannerEscapedOnce(t *testing.T) {
	zone, port := startHostileSMTP(t)
	args := []string{"probe", "--zone", zone, "--smtp-port", fmt.Sprint(port), "--helo", "probe.example.test"}
	const want = `mx.binary.example.test[127.0.0.20]:` + "%d" + ` greets as "mx\x01\\x", which is not the MX name mx.binary.example.test.`
	msg := fmt.Sprintf(want, port)

	_, out, errOut := mxtrace(t, append(args, "-v", "binary.example.test")...)
	if !strings.Contains(out, msg) {
		t.Errorf("text output lacks %s\n%s%s", msg, out, errOut)
	}
	if !strings.Contains(out, `S  220 mx\x01\\x ESMTP`) {
		t.Errorf("transcript lacks the greeting escaped once:\n%s", out)
	}

	_, out, errOut = mxtrace(t, append(args, "--json", "binary.example.test")...)
	var rep struct {
		Results []struct {
			Banner struct{ Host, Text string } `json:"banner"`
		} `json:"results"`
		Findings []struct{ ID, Message string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 1 {
		t.Fatalf("%v: %s%s", err, out, errOut)
	}
	if b := rep.Results[0].Banner; b.Host != `mx\x01\\x` || b.Text != `mx\x01\\x ESMTP` {
		t.Errorf("banner host %q text %q", b.Host, b.Text)
	}
	found := false
	for _, f := range rep.Findings {
		found = found || f.Message == msg
	}
	if !found {
		t.Errorf("JSON findings %+v lack %s", rep.Findings, msg)
	}
}

// TestDripBanner: a greeting dripped one byte at a time is a time-out of
// the greeting stage within --timeout: send defers at the banner ("no
// complete greeting"), probe reports a partial greeting with what came.
func TestDripBanner(t *testing.T) {
	zone, port := startHostileSMTP(t)
	start := time.Now()
	code, out, errOut := mxtrace(t, "send", "--zone", zone, "--smtp-port", fmt.Sprint(port), "--helo", "client.example.test",
		"--timeout", "2s", "--no-mta-sts", "--no-dane", "--to", "user@drip.example.test")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("send took %v with --timeout 2s", took)
	}
	if code != exitFindings || !strings.Contains(out, "no complete greeting within 2s: partial greeting (") {
		t.Errorf("send: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "ehlo") || strings.Contains(out, "short response") {
		t.Errorf("send went past the greeting:\n%s", out)
	}

	code, out, errOut = mxtrace(t, "probe", "--zone", zone, "--smtp-port", fmt.Sprint(port), "--timeout", "2s", "drip.example.test")
	if code != exitFindings {
		t.Errorf("probe: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"partial", "smtp-banner-invalid", "sent only part of a greeting: partial greeting ("} {
		if !strings.Contains(out, want) {
			t.Errorf("probe output lacks %q:\n%s", want, out)
		}
	}
}

// TestHostileSMTPEveryCommand: every hostile SMTP server smtptest knows,
// behind one exchange, against probe -v, send -v and check --smtp: an
// answer (0 or 1, never a usage error or a failed job), a bounded output
// without raw control characters, and reasons in words ("the server
// closed the connection", not "EOF"; no Go package prefixes).
func TestHostileSMTPEveryCommand(t *testing.T) {
	var zone strings.Builder
	zone.WriteString("$ORIGIN example.test.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n")
	port := smtptest.Port(t)
	for i, b := range smtptest.Behaviours() {
		ip := fmt.Sprintf("127.0.0.%d", 60+i)
		fmt.Fprintf(&zone, "b%d 3600 IN MX 10 mx.b%d\nmx.b%d 3600 IN A %s\n", i, i, i, ip)
		o := smtptest.RawOptions{Addr: fmt.Sprintf("%s:%d", ip, port), Behaviour: b, Delay: 300 * time.Millisecond}
		if b == smtptest.CustomBanner {
			o.Banner = "220 mx \x1b[2J\x1b]0;title\x07 ESMTP\r\n"
		}
		smtptest.StartRaw(t, o)
	}
	path := filepath.Join(t.TempDir(), "hostile.zone")
	if err := os.WriteFile(path, []byte(zone.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, b := range smtptest.Behaviours() {
		domain := fmt.Sprintf("b%d.example.test", i)
		for _, args := range [][]string{
			{"probe", "-v", domain},
			{"send", "-v", "--no-mta-sts", "--no-dane", "--to", "user@" + domain},
			{"check", "--smtp", domain},
		} {
			t.Run(b.String()+"/"+args[0], func(t *testing.T) {
				args = append(args, "--zone", path, "--smtp-port", fmt.Sprint(port), "--timeout", "2s", "--helo", "client.example.test")
				start := time.Now()
				code, out, errOut := mxtrace(t, args...)
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("took %v with --timeout 2s", took)
				}
				if code != exitOK && code != exitFindings {
					t.Errorf("exit %d\n%s%s", code, out, errOut)
				}
				all := out + errOut
				if len(all) > 100<<10 {
					t.Errorf("%d octets of output", len(all))
				}
				if strings.ContainsAny(all, "\x00\x07\x1b") {
					t.Errorf("raw control characters in the output")
				}
				// The debug log of -v (slog's time=... lines) is for
				// programs, and keeps the errors as they are.
				var text strings.Builder
				for l := range strings.Lines(all) {
					if !strings.HasPrefix(l, "time=") {
						text.WriteString(l)
					}
				}
				for _, bad := range []string{"probe: ", "send: ", ": tls: ", ": EOF", "read tcp "} {
					if strings.Contains(text.String(), bad) {
						i := strings.Index(text.String(), bad)
						t.Errorf("output has %q: …%s…", bad, text.String()[max(0, i-300):min(len(text.String()), i+200)])
					}
				}
			})
		}
	}
}

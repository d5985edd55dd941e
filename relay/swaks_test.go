package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

// TestSwaksOpenRelay sends the open-relay tricks with swaks, a real SMTP
// client that writes each address exactly as given, and then one message
// the server must take.
func TestSwaksOpenRelay(t *testing.T) {
	bin := peers.Binary(t, "swaks", "swaks")
	q := &fakeQueue{}
	_, addr := startServer(t, testConfig(q))
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, to string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "--server", host, "--port", port, "--helo", "client.example",
			"--from", "sender@sender.example", "--to", to, "--timeout", "15").CombinedOutput()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		return string(out), 0
	}
	for _, to := range []string{
		"user%other.example@d.example",
		`"u@other.example"@d.example`,
		"user@other.example@d.example",
		"other.example!user@d.example",
		"@d.example:user@other.example",
		"user@[127.0.0.1]",
		"user@d.example.",
		"user@D.EXAMPLE.evil.example",
		"user@sub.d.example",
	} {
		t.Run(to, func(t *testing.T) {
			out, code := run(t, to)
			// Exit status 24: every recipient was refused.
			if code != 24 || !strings.Contains(out, " -> RCPT TO:<"+to+">") || !strings.Contains(out, "<** 550 5.7.1 ") {
				t.Errorf("exit status %d:\n%s", code, out)
			}
		})
	}
	if n := len(q.messages()); n != 0 {
		t.Fatalf("%d messages queued by the tricks", n)
	}
	out, code := run(t, "User@D.Example")
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 OK queued as 1") {
		t.Fatalf("exit status %d:\n%s", code, out)
	}
	if msgs := q.messages(); len(msgs) != 1 || msgs[0].Recipients[0] != "User@d.example" || msgs[0].Sender != "sender@sender.example" {
		t.Errorf("queued %+v", msgs)
	}
}

// TestSwaksSTARTTLS: swaks negotiates STARTTLS with the configured
// certificate and its message is queued as received over TLS.
func TestSwaksSTARTTLS(t *testing.T) {
	bin := peers.Binary(t, "swaks", "swaks")
	// swaks does TLS with Perl's Net::SSLeay.
	if err := exec.Command("perl", "-MNet::SSLeay", "-MIO::Socket::SSL", "-e", "1").Run(); err != nil {
		msg := "swaks cannot do TLS without Net::SSLeay and IO::Socket::SSL (apt-get install libnet-ssleay-perl libio-socket-ssl-perl): " + err.Error()
		if peers.InCI() {
			t.Fatal("CI=true and " + msg)
		}
		t.Skip(msg)
	}
	q := &fakeQueue{}
	cfg := testConfig(q)
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{testpki.SelfSigned(t, "relay.example")}, MinVersion: tls.VersionTLS12}
	_, addr := startServer(t, cfg)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--server", host, "--port", port, "--helo", "client.example", "--tls",
		"--from", "sender@sender.example", "--to", "user@d.example", "--timeout", "15").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "=== TLS started with cipher") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if msgs := q.messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), " with ESMTPS id ") {
		t.Errorf("queued %+v", msgs)
	}
}

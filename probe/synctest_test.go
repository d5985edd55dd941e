package probe

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mxtrace/mxtrace/finding"
)

// pipeDialer connects the probe to a scripted in-memory server: greet is
// sent after delay (never, when negative), then EHLO, HELO, QUIT and
// anything else get fixed answers.
type pipeDialer struct {
	delay    time.Duration
	greet    string
	ehlo     string
	starttls string // the reply to STARTTLS; "": 502
}

func (d pipeDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go d.serve(server)
	return client, nil
}

func (d pipeDialer) serve(c net.Conn) {
	defer c.Close()
	if d.delay < 0 {
		io.Copy(io.Discard, c) // silent until the client hangs up
		return
	}
	time.Sleep(d.delay)
	if _, err := io.WriteString(c, d.greet); err != nil {
		return
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		reply := "502 5.5.2 unknown\r\n"
		switch strings.ToUpper(verb(strings.TrimSpace(line))) {
		case "EHLO":
			reply = d.ehlo
		case "HELO":
			reply = "250 mx.example.test\r\n"
		case "STARTTLS":
			reply = cmp.Or(d.starttls, reply)
		case "QUIT":
			io.WriteString(c, "221 2.0.0 bye\r\n")
			return
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// TestBannerTiming: time to greeting is measured from the connection,
// judged against SlowBanner, and a silent server ends at the greeting time-out,
// all on the fake clock of a synctest bubble (no real waiting).
func TestBannerTiming(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		name  string
		delay time.Duration
		ms    int64
		kind  Kind
		want  []finding.ID
	}{
		{"prompt", 2 * time.Second, 2000, "", []finding.ID{finding.SMTPStartTLSMissing}},
		{"slow", 12 * time.Second, 12000, "", []finding.ID{finding.SMTPBannerSlow, finding.SMTPStartTLSMissing}},
		{"just under the deadline", 29 * time.Second, 29000, "", []finding.ID{finding.SMTPBannerSlow, finding.SMTPStartTLSMissing}},
		{"silent", -1, 0, KindTimeout, []finding.ID{finding.SMTPBannerInvalid}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &Prober{HelloName: "probe.example.test", Dialer: pipeDialer{delay: tt.delay, greet: "220 mx.example.test ESMTP\r\n", ehlo: "250-mx.example.test\r\n250 PIPELINING\r\n"}}
				start := time.Now()
				r := p.Probe(t.Context(), "mx.example.test", addr)
				elapsed := time.Since(start)
				if tt.kind != "" {
					if r.Err == nil || r.Err.Kind != tt.kind || r.Err.Step != StepBanner {
						t.Fatalf("error %+v, want %s at banner", r.Err, tt.kind)
					}
					if elapsed != DefaultTimeouts().Greeting {
						t.Errorf("gave up after %s, want %s", elapsed, DefaultTimeouts().Greeting)
					}
				} else if r.Banner == nil || r.Banner.MS != tt.ms || r.Err != nil {
					t.Fatalf("banner %+v error %+v, want %d ms", r.Banner, r.Err, tt.ms)
				}
				if got := ids(Findings([]*Result{r}, time.Time{}, nil)); !slices.Equal(got, tt.want) {
					t.Errorf("findings %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// TestHELOFallback: a server that rejects EHLO gets HELO (RFC 5321 §3.2),
// and cannot offer STARTTLS.
func TestHELOFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Prober{HelloName: "probe.example.test", Dialer: pipeDialer{greet: "220 mx.example.test\r\n", ehlo: "500 5.5.1 what?\r\n"}}
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if r.Err != nil || r.EHLO == nil || r.EHLO.Command != "HELO" || r.EHLO.Domain != "mx.example.test" {
			t.Fatalf("error %+v ehlo %+v", r.Err, r.EHLO)
		}
		if got, want := sentVerbs(r), []string{"EHLO", "HELO", "QUIT"}; !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
		fs := Findings([]*Result{r}, time.Time{}, nil)
		if len(fs) != 1 || fs[0].ID != finding.SMTPStartTLSMissing || !strings.Contains(fs[0].Message, "EHLO") {
			t.Errorf("findings %v", fs)
		}
	})
}

// TestEHLORejected: EHLO and HELO both refused ends the session at ehlo.
func TestEHLORejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Prober{HelloName: "probe.example.test", Dialer: pipeDialer{greet: "220 mx.example.test\r\n", ehlo: "421 4.3.2 go away\r\n"}}
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if r.Err == nil || r.Err.Step != StepEHLO || r.Err.Kind != KindReply || r.Err.Code != 421 {
			t.Fatalf("error %+v", r.Err)
		}
	})
}

// errDialer fails every dial with err, or blocks until the context ends
// when err is nil.
type errDialer struct{ err error }

func (d errDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	if d.err == nil {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	return nil, d.err
}

// TestConnectErrors: each way a connection fails has its kind and a
// message without the dialer's repetitions.
func TestConnectErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		kind Kind
		msg  string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, KindRefused, "connect 192.0.2.1:25: connection refused"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, KindNoRoute, "connect 192.0.2.1:25: no route to the address"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, KindNoRoute, "connect 192.0.2.1:25: no route to the address"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}, KindNetwork, "connect 192.0.2.1:25: too many open files"},
		{nil, KindTimeout, "connect 192.0.2.1:25: nothing within 10s"},
	} {
		synctest.Test(t, func(t *testing.T) {
			p := &Prober{Dialer: errDialer{tt.err}}
			start := time.Now()
			r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
			if r.Connected || r.Err == nil || r.Err.Step != StepConnect || r.Err.Kind != tt.kind || r.Err.Message != tt.msg {
				t.Errorf("%v: %+v, want %s %q", tt.err, r.Err, tt.kind, tt.msg)
			}
			if tt.err == nil && time.Since(start) != DefaultTimeouts().Connect {
				t.Errorf("gave up after %s", time.Since(start))
			}
			if fs := Findings([]*Result{r}, time.Time{}, nil); len(fs) != 1 || fs[0].ID != finding.SMTPUnreachable {
				t.Errorf("findings %v", fs)
			}
		})
	}
}

// TestRelayMailRejected: a server that refuses MAIL FROM:<> is not an
// open relay, and the session still ends with one QUIT.
func TestRelayMailRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Prober{HelloName: "probe.example.test", RelayTo: "relay-target.example",
			Dialer: pipeDialer{greet: "220 mx.example.test\r\n", ehlo: "250 mx.example.test\r\n"}}
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if r.Err != nil || r.Relay == nil || r.Relay.MailCode != 502 || r.Relay.Open {
			t.Fatalf("error %+v relay %+v", r.Err, r.Relay)
		}
		if got, want := sentVerbs(r), []string{"EHLO", "MAIL", "QUIT"}; !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
	})
}

// dripDialer connects the probe to a server that sends greet one byte
// every d, then hangs until the client hangs up.
type dripDialer struct {
	greet string
	d     time.Duration
}

func (dd dripDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		for i := range len(dd.greet) {
			time.Sleep(dd.d)
			if _, err := server.Write([]byte{dd.greet[i]}); err != nil {
				return
			}
		}
		io.Copy(io.Discard, server)
	}()
	return client, nil
}

// TestPartialGreeting: a greeting the deadline cuts short is a partial
// greeting, reported with the octets that came (escaped once), not
// "nothing" and not a greeting.
func TestPartialGreeting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		defer time.Sleep(time.Minute) // the server notices the hang-up at its next write
		p := &Prober{Dialer: dripDialer{greet: "22\x1b\\0 mx.example.test ESMTP\r\n", d: 3 * time.Second}}
		p.Timeouts.Greeting = 14 * time.Second
		start := time.Now()
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if took := time.Since(start); took != 14*time.Second {
			t.Errorf("took %v, want the greeting time-out", took)
		}
		want := `partial greeting (4 octets: 22\x1b\\), then nothing within 14s`
		if r.Banner != nil || r.Err == nil || r.Err.Step != StepBanner || r.Err.Kind != KindTimeout ||
			r.Err.Message != want || r.Err.Partial != `22\x1b\\` {
			t.Fatalf("banner %+v, error %+v\nwant message %q", r.Banner, r.Err, want)
		}
		fs := Findings([]*Result{r}, time.Time{}, nil)
		if len(fs) != 1 || fs[0].ID != finding.SMTPBannerInvalid ||
			fs[0].Message != "mx.example.test[192.0.2.1]:25 sent only part of a greeting: "+want+"." {
			t.Errorf("findings %v", fs)
		}
	})
}

// TestSessionBound: Timeouts.Session ends the whole session, whatever the
// stage deadlines allow, and says so.
func TestSessionBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		defer time.Sleep(time.Minute) // the server notices the hang-up
		p := &Prober{Dialer: dripDialer{greet: "220 mx.example.test ESMTP\r\n", d: 3 * time.Second}}
		p.Timeouts.Session = 7 * time.Second
		start := time.Now()
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if took := time.Since(start); took != 7*time.Second {
			t.Errorf("took %v, want the session bound", took)
		}
		want := "partial greeting (2 octets: 22), then the session's time limit of 7s passed"
		if r.Err == nil || r.Err.Kind != KindOutOfTime || r.Err.Message != want {
			t.Errorf("error %+v, want %q", r.Err, want)
		}
	})
}

// TestClearTextAfterSTARTTLS: one byte after the 220 to STARTTLS ends the
// session (the STARTTLS injection flaw), and the message counts it in the
// singular.
func TestClearTextAfterSTARTTLS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Prober{Dialer: pipeDialer{greet: "220 mx.example.test\r\n", ehlo: "250-mx.example.test\r\n250 STARTTLS\r\n", starttls: "220 2.0.0 go ahead\r\nX"}}
		r := p.Probe(t.Context(), "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		want := "the server sent 1 byte after its 220 to STARTTLS instead of waiting for the TLS handshake"
		if r.Err == nil || r.Err.Step != StepTLS || r.Err.Message != want {
			t.Errorf("error %+v, want %q", r.Err, want)
		}
	})
}

// TestCallerDeadlineWording: a session cut by the caller's deadline (the
// command's --timeout) says the time allowed ran out, in a person's words.
func TestCallerDeadlineWording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		p := &Prober{Dialer: pipeDialer{delay: -1}}
		r := p.Probe(ctx, "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if want := "greeting: the time allowed ran out"; r.Err == nil || r.Err.Message != want {
			t.Errorf("error %+v, want %q", r.Err, want)
		}
	})
}

// TestConnectOutOfTime: the caller's deadline passing while the
// connection is still being made is our time running out, not the server
// refusing connections: no smtp-unreachable. The connect time-out itself
// (TestConnectErrors) still is.
func TestConnectOutOfTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		p := &Prober{Dialer: errDialer{nil}}
		start := time.Now()
		r := p.Probe(ctx, "mx.example.test", netip.MustParseAddr("192.0.2.1"))
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("took %v, want the caller's 2s", took)
		}
		if r.Err == nil || r.Err.Step != StepConnect || r.Err.Kind != KindOutOfTime || r.Err.Message != "connect 192.0.2.1:25: the time allowed ran out" {
			t.Errorf("error %+v, want %s", r.Err, KindOutOfTime)
		}
		if fs := Findings([]*Result{r}, time.Time{}, nil); len(fs) != 0 {
			t.Errorf("findings %v, want none", fs)
		}
		if err := OutOfTime([]*Result{r}); err == nil || err.Error() != "mx.example.test[192.0.2.1]:25 not probed: the time allowed ran out" {
			t.Errorf("OutOfTime = %v", err)
		}
	})
}

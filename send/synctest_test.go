package send

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/route"
)

// pipeServer is a scripted in-memory SMTP server, reached through its
// DialContext: greet writes the greeting, then each command gets its
// answer from reply (a default ESMTP exchange when reply has none), and the
// message data, read to its final dot, gets dot's.
type pipeServer struct {
	greet func(c net.Conn)
	reply map[string]func(c net.Conn)
	dot   func(c net.Conn)
}

func (p *pipeServer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go p.serve(server)
	return client, nil
}

func (p *pipeServer) serve(c net.Conn) {
	defer c.Close()
	p.greet(c)
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		verb = strings.ToUpper(verb)
		if f, ok := p.reply[verb]; ok {
			f(c)
		} else {
			switch verb {
			case "EHLO":
				io.WriteString(c, "250-mx.example.test\r\n250 8BITMIME\r\n")
			case "MAIL", "RCPT":
				io.WriteString(c, "250 2.1.0 Ok\r\n")
			case "DATA":
				io.WriteString(c, "354 go ahead\r\n")
			case "QUIT":
				io.WriteString(c, "221 2.0.0 Bye\r\n")
				return
			default:
				io.WriteString(c, "502 5.5.2 unknown\r\n")
			}
		}
		if verb == "DATA" {
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if p.dot != nil {
				p.dot(c)
			} else {
				io.WriteString(c, "250 2.0.0 Ok: queued as ABC\r\n")
			}
		}
	}
}

// drip writes s one byte every d.
func drip(s string, d time.Duration) func(c net.Conn) {
	return func(c net.Conn) {
		for i := range len(s) {
			time.Sleep(d)
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}
}

func write(s string) func(c net.Conn) {
	return func(c net.Conn) { io.WriteString(c, s) }
}

// stall writes s and then nothing until the client hangs up.
func stall(s string) func(c net.Conn) {
	return func(c net.Conn) {
		io.WriteString(c, s)
		io.Copy(io.Discard, c)
	}
}

// oneMX is a zone with one exchange.
const oneMX = `
$ORIGIN example.test.
@    3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@    3600 IN MX 10 mx1
mx1  3600 IN A 192.0.2.1
`

// TestCutReplies: a reply that a deadline cuts short is a time-out of the
// stage it happened in, never a reply; and an attempt ends within its
// Session bound whatever the stages allow. All on the fake clock of a
// synctest bubble.
func TestCutReplies(t *testing.T) {
	for _, tt := range []struct {
		name     string
		t        dial.SMTPTimeouts
		server   *pipeServer
		stage    Stage
		err      string
		elapsed  time.Duration
		accepted bool
	}{
		{
			// The server drips its banner one byte every 3 s: the sender
			// waits for the whole greeting until the session ends, and
			// never takes "220 mx" for a greeting.
			name:    "dripping banner",
			t:       dial.SMTPTimeouts{Session: 10 * time.Second, Greeting: time.Minute},
			server:  &pipeServer{greet: drip("220 mx.example.test ESMTP\r\n", 3*time.Second)},
			stage:   StageBanner,
			err:     "no complete greeting within 10s: partial greeting (3 octets: 220) then nothing",
			elapsed: 10 * time.Second,
		},
		{
			name:    "dripping banner, greeting time-out first",
			t:       dial.SMTPTimeouts{Session: time.Minute, Greeting: 5 * time.Second},
			server:  &pipeServer{greet: drip("220 mx.example.test ESMTP\r\n", 3*time.Second)},
			stage:   StageBanner,
			err:     "no complete greeting within 5s: partial greeting (1 octet: 2) then nothing",
			elapsed: 5 * time.Second,
		},
		{
			name:    "silent",
			t:       dial.SMTPTimeouts{Session: 10 * time.Second},
			server:  &pipeServer{greet: func(c net.Conn) { io.Copy(io.Discard, c) }},
			stage:   StageBanner,
			err:     "no complete greeting within 10s",
			elapsed: 10 * time.Second,
		},
		{
			name: "cut EHLO reply",
			t:    dial.SMTPTimeouts{Session: time.Minute, Command: 3 * time.Second},
			server: &pipeServer{greet: write("220 mx.example.test ESMTP\r\n"),
				reply: map[string]func(net.Conn){"EHLO": stall("250-mx.example.test\r\n250 PIPEL")}},
			stage:   StageEHLO,
			err:     "no complete reply to EHLO within 3s",
			elapsed: 3 * time.Second,
		},
		{
			// "250 2.0.0 Ok: que" cut by the deadline is not an
			// acceptance: the message may or may not have been taken.
			name: "cut reply to the final dot",
			t:    dial.SMTPTimeouts{Session: time.Minute, DataTerm: 4 * time.Second},
			server: &pipeServer{greet: write("220 mx.example.test ESMTP\r\n"),
				dot: stall("250 2.0.0 Ok: que")},
			stage:   StageMessage,
			err:     "no complete reply to the end of the message data within 4s",
			elapsed: 4 * time.Second,
		},
		{
			// Each reply comes just within the command time-out; the
			// session bound ends the attempt all the same.
			name: "slow replies, session bound",
			t:    dial.SMTPTimeouts{Session: 10 * time.Second, Command: 5 * time.Second},
			server: &pipeServer{greet: write("220 mx.example.test ESMTP\r\n"), reply: map[string]func(net.Conn){
				"EHLO": func(c net.Conn) { time.Sleep(4 * time.Second); io.WriteString(c, "250 mx.example.test\r\n") },
				"MAIL": func(c net.Conn) { time.Sleep(4 * time.Second); io.WriteString(c, "250 Ok\r\n") },
				"RCPT": func(c net.Conn) { time.Sleep(4 * time.Second); io.WriteString(c, "250 Ok\r\n") },
			}},
			stage:   StageRcpt,
			err:     "no complete reply to RCPT within 2s",
			elapsed: 10 * time.Second,
		},
		{
			name:     "prompt",
			t:        dial.SMTPTimeouts{Session: 10 * time.Second},
			server:   &pipeServer{greet: write("220 mx.example.test ESMTP\r\n")},
			elapsed:  0,
			accepted: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &Sender{
					Planner:    &route.Planner{Resolver: zones(t, oneMX)},
					HelloName:  "client.example.test",
					Dialer:     tt.server,
					Timeouts:   tt.t,
					Transcript: true,
				}
				start := time.Now()
				res, err := s.Send(t.Context(), testMessage())
				if took := time.Since(start); took != tt.elapsed {
					t.Errorf("took %v, want %v", took, tt.elapsed)
				}
				// The servers notice the hang-up at their next write.
				defer time.Sleep(time.Minute)
				if tt.accepted {
					if err != nil || !res.Accepted {
						t.Fatalf("not accepted: %v", err)
					}
					return
				}
				if res.Accepted || len(res.Attempts) != 1 {
					t.Fatalf("accepted %v after %d attempts (%v)", res.Accepted, len(res.Attempts), err)
				}
				a := res.Attempts[0]
				if a.Stage != tt.stage || a.Outcome != OutcomeDeferred || a.Error != tt.err {
					t.Errorf("attempt ended at %s, %s: %q\nwant %s, deferred: %q\ntranscript:\n%s",
						a.Stage, a.Outcome, a.Error, tt.stage, tt.err, strings.Join(a.Transcript, "\n"))
				}
			})
		})
	}
}

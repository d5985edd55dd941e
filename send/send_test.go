package send

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// A zone whose exchanges live on 127.0.0.x; every server of a test shares
// one port (smtptest.Port).
const baseZone = `
$ORIGIN example.test.
@    3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@    3600 IN MX 10 mx1
@    3600 IN MX 20 mx2
mx1  3600 IN A 127.0.0.2
mx2  3600 IN A 127.0.0.3
`

// signed makes a zone "signed" for the zone-file resolver: a DNSKEY set at
// the apex makes it answer with AD.
const signed = "@ 3600 IN DNSKEY 257 3 13 " +
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==\n"

func zones(t *testing.T, text string) *resolve.Zones {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(text), "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// newSender is a Sender on zone text with short time-outs.
func newSender(t *testing.T, r resolve.Resolver, port int) *Sender {
	t.Helper()
	return &Sender{
		Planner:    &route.Planner{Resolver: r},
		Port:       port,
		HelloName:  "client.example.test",
		Timeouts:   dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: time.Second, Command: time.Second, TLSHandshake: time.Second, DataInit: time.Second, DataBlock: 2 * time.Second, DataTerm: 2 * time.Second},
		Transcript: true,
	}
}

func testMessage() *Message {
	return &Message{From: "sender@client.example.test", To: "user@example.test", Subject: "hello"}
}

func at(n byte, port int) string { return fmt.Sprintf("127.0.0.%d:%d", n, port) }

func outcomes(res *Result) []string {
	var out []string
	for _, a := range res.Attempts {
		out = append(out, fmt.Sprintf("%s %s %s", a.Host, a.Stage, a.Outcome))
	}
	return out
}

func wantOutcomes(t *testing.T, res *Result, want ...string) {
	t.Helper()
	if got := outcomes(res); !slices.Equal(got, want) {
		t.Errorf("attempts:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func reject(code int, enh smtp.EnhancedCode, msg string) func(string) error {
	return func(string) error { return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg} }
}

// TestDeliverPrimary: the message lands on the most preferred exchange,
// the backup is never contacted, and the queue ID is the server's.
func TestDeliverPrimary(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Hostname: "mx1.example.test"})
	mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port), Hostname: "mx2.example.test"})
	s := newSender(t, zones(t, baseZone), port)
	var events []EventKind
	s.Observer = func(e Event) { events = append(events, e.Kind) }

	res, err := s.Send(t.Context(), testMessage())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := mx1.Messages()
	if len(msgs) != 1 || mx2.Connections() != 0 {
		t.Fatalf("mx1 got %d messages, mx2 %d connections; want 1 and 0", len(msgs), mx2.Connections())
	}
	if !res.Accepted || res.Host != "mx1.example.test" || res.Address != "127.0.0.2" || res.Preference != 10 {
		t.Errorf("accepted %v by %s [%s] pref %d", res.Accepted, res.Host, res.Address, res.Preference)
	}
	if res.QueueID != msgs[0].QueueID {
		t.Errorf("queue ID %q, server says %q (reply %q)", res.QueueID, msgs[0].QueueID, res.Reply)
	}
	if msgs[0].From != "sender@client.example.test" || !slices.Equal(msgs[0].To, []string{"user@example.test"}) || msgs[0].Helo != "client.example.test" {
		t.Errorf("envelope %s → %v, HELO %s", msgs[0].From, msgs[0].To, msgs[0].Helo)
	}
	if !strings.Contains(string(msgs[0].Data), "Message-ID: <"+res.MessageID+">\r\n") {
		t.Errorf("the delivered message lacks Message-ID %s:\n%s", res.MessageID, msgs[0].Data)
	}
	wantOutcomes(t, res, "mx1.example.test message accepted")
	if res.Rounds != 1 || res.Kind != KindNone || res.Permanent {
		t.Errorf("rounds %d kind %q permanent %v", res.Rounds, res.Kind, res.Permanent)
	}
	tr := strings.Join(res.Attempts[0].Transcript, "\n")
	for _, want := range []string{"S: 220 mx1.example.test", "C: EHLO client.example.test", "C: MAIL FROM:<sender@client.example.test>", "C: RCPT TO:<user@example.test>", "C: DATA", "C: <message data:", "S: 250 2.0.0 Ok: queued as " + res.QueueID, "C: QUIT"} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, "Subject:") {
		t.Errorf("the transcript shows the message data:\n%s", tr)
	}
	for _, k := range []EventKind{EventPlan, EventConnect, EventLine, EventAttempt} {
		if !slices.Contains(events, k) {
			t.Errorf("no %s event in %v", k, events)
		}
	}
}

// TestFailover: a refused connection, a 4xx at any step, a 5xx greeting
// and a hostile server move on to the next exchange; the backup gets the
// message.
func TestFailover(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		start func(t *testing.T, addr string)
		stage Stage
	}{
		{"refused", func(t *testing.T, addr string) { smtptest.Refused(t, addr) }, StageConnect},
		{"rcpt 450", func(t *testing.T, addr string) {
			smtptest.Start(t, smtptest.Options{Addr: addr, Rcpt: reject(450, smtp.EnhancedCode{4, 2, 1}, "mailbox busy")})
		}, StageRcpt},
		{"data 451", func(t *testing.T, addr string) {
			smtptest.Start(t, smtptest.Options{Addr: addr, Data: func(string, []string, []byte) error {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}})
		}, StageMessage},
		{"greeting 554", func(t *testing.T, addr string) {
			smtptest.StartRaw(t, smtptest.RawOptions{Addr: addr, Behaviour: smtptest.WrongCode})
		}, StageBanner},
		{"silent", raw(smtptest.Silent), StageBanner},
		{"slow banner", func(t *testing.T, addr string) {
			smtptest.StartRaw(t, smtptest.RawOptions{Addr: addr, Behaviour: smtptest.SlowBanner, Delay: 5 * time.Second})
		}, StageBanner},
		{"endless banner", raw(smtptest.EndlessBanner), StageBanner},
		{"endless EHLO", raw(smtptest.EndlessEHLO), StageEHLO},
		{"long line", raw(smtptest.LongLine), StageBanner},
		{"garbage", raw(smtptest.Garbage), StageBanner},
		{"close after banner", raw(smtptest.CloseAfterBanner), StageEHLO},
		{"close after EHLO", raw(smtptest.CloseAfterEHLO), StageEHLO},
		{"reset", raw(smtptest.Reset), StageBanner},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := smtptest.Port(t)
			tt.start(t, at(2, port))
			mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
			s := newSender(t, zones(t, baseZone), port)
			start := time.Now()
			res, err := s.Send(t.Context(), testMessage())
			if err != nil {
				t.Fatalf("Send: %v\n%v", err, outcomes(res))
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("took %v: a step was not bounded", took)
			}
			if len(mx2.Messages()) != 1 || res.Host != "mx2.example.test" {
				t.Fatalf("mx2 got %d messages; accepted by %q", len(mx2.Messages()), res.Host)
			}
			wantOutcomes(t, res, fmt.Sprintf("mx1.example.test %s deferred", tt.stage), "mx2.example.test message accepted")
			if res.Attempts[0].Error == "" {
				t.Errorf("the deferred attempt says nothing about why")
			}
		})
	}
}

func raw(b smtptest.Behaviour) func(t *testing.T, addr string) {
	return func(t *testing.T, addr string) { smtptest.StartRaw(t, smtptest.RawOptions{Addr: addr, Behaviour: b}) }
}

// TestPermanent: a 5xx to MAIL, RCPT or DATA stops delivery (RFC 5321
// §4.2.1): the backup is not tried.
func TestPermanent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		opts  smtptest.Options
		stage Stage
		code  int
	}{
		{"rcpt 550", smtptest.Options{Rcpt: reject(550, smtp.EnhancedCode{5, 1, 1}, "no such user")}, StageRcpt, 550},
		{"relay denied", smtptest.Options{Domains: []string{"other.test"}}, StageRcpt, 554},
		{"data 554", smtptest.Options{Data: func(string, []string, []byte) error {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
		}}, StageMessage, 554},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := smtptest.Port(t)
			tt.opts.Addr = at(2, port)
			smtptest.Start(t, tt.opts)
			mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
			res, err := newSender(t, zones(t, baseZone), port).Send(t.Context(), testMessage())
			if !errors.Is(err, ErrPermanent) || errors.Is(err, ErrNoRoute) || !res.Permanent || res.Kind != KindPermanent {
				t.Fatalf("err %v kind %q permanent %v; want ErrPermanent", err, res.Kind, res.Permanent)
			}
			if mx2.Connections() != 0 {
				t.Errorf("the backup was contacted after a 5xx")
			}
			wantOutcomes(t, res, fmt.Sprintf("mx1.example.test %s rejected", tt.stage))
			if a := res.Attempts[0]; a.Code != tt.code || !strings.HasPrefix(a.Enhanced, "5.") {
				t.Errorf("code %d enhanced %q, want %d 5.x.x", a.Code, a.Enhanced, tt.code)
			}
		})
	}
}

// TestNoRoute: NXDOMAIN, Null MX, no mail and exchanges without address
// are permanent without a connection; a DNS failure is ErrDNS.
func TestNoRoute(t *testing.T) {
	z := zones(t, `
$ORIGIN test.
@ 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
nullmx        MX 0 .
nomail        TXT "nothing"
noaddr        MX 10 gone.noaddr
`)
	for _, tt := range []struct {
		to   string
		kind Kind
	}{
		{"a@nosuch.test", KindNoRoute},
		{"a@nullmx.test", KindNoRoute},
		{"a@nomail.test", KindNoRoute},
		{"a@noaddr.test", KindNoRoute},
		{"a@outside.example", KindDNS},
	} {
		s := newSender(t, z, 1)
		s.Dialer = failDialer{t}
		m := testMessage()
		m.To = tt.to
		res, err := s.Send(t.Context(), m)
		if KindOf(err) != tt.kind || res.Kind != tt.kind {
			t.Errorf("%s: err %v (kind %q), want kind %q", tt.to, err, KindOf(err), tt.kind)
		}
		if tt.kind == KindNoRoute && (!errors.Is(err, ErrPermanent) || !res.Permanent) {
			t.Errorf("%s: no route is not permanent: %v", tt.to, err)
		}
	}
}

// failDialer fails the test when anything is dialled.
type failDialer struct{ t *testing.T }

func (d failDialer) DialContext(_ context.Context, _, addr string) (net.Conn, error) {
	d.t.Errorf("dialled %s", addr)
	return nil, errors.New("no dialling in this test")
}

// TestTemporary: every exchange defers: ErrTemporary, not permanent.
func TestTemporary(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: reject(451, smtp.EnhancedCode{4, 7, 1}, "greylisted")})
	smtptest.Refused(t, at(3, port))
	res, err := newSender(t, zones(t, baseZone), port).Send(t.Context(), testMessage())
	if !errors.Is(err, ErrTemporary) || res.Permanent || res.Kind != KindTemporary {
		t.Fatalf("err %v kind %q permanent %v", err, res.Kind, res.Permanent)
	}
	wantOutcomes(t, res, "mx1.example.test rcpt deferred", "mx2.example.test connect deferred")
	if a := res.Attempts[0]; a.Code != 451 || a.Enhanced != "4.7.1" || a.Reply != "greylisted" {
		t.Errorf("reply %d %q %q", a.Code, a.Enhanced, a.Reply)
	}
}

// TestMultihomed: every address of an exchange is tried before the next
// exchange.
func TestMultihomed(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Refused(t, at(2, port))
	mx1b := smtptest.Start(t, smtptest.Options{Addr: at(4, port)})
	mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
	res, err := newSender(t, zones(t, baseZone+"mx1 3600 IN A 127.0.0.4\n"), port).Send(t.Context(), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if len(mx1b.Messages()) != 1 || mx2.Connections() != 0 || res.Address != "127.0.0.4" {
		t.Errorf("accepted at %s; mx1's second address got %d, mx2 %d connections", res.Address, len(mx1b.Messages()), mx2.Connections())
	}
}

// TestEqualPreferenceSpread: hosts of one tier are tried in random order,
// so repeated sends reach both. 40 sends, each host at least 5: a fair
// shuffle fails this with probability below 1e-6.
func TestEqualPreferenceSpread(t *testing.T) {
	port := smtptest.Port(t)
	a := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	b := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
	s := newSender(t, zones(t, strings.Replace(baseZone, "MX 20 mx2", "MX 10 mx2", 1)), port)
	for range 40 {
		if _, err := s.Send(t.Context(), testMessage()); err != nil {
			t.Fatal(err)
		}
	}
	na, nb := len(a.Messages()), len(b.Messages())
	if na+nb != 40 || na < 5 || nb < 5 {
		t.Errorf("mx1 got %d, mx2 %d of 40", na, nb)
	}
	if a.Connections()+b.Connections() != 40 {
		t.Errorf("%d connections for 40 messages: a host was tried after acceptance", a.Connections()+b.Connections())
	}
}

// tlsWorld is a CA and STARTTLS servers for mx1 and mx2.
func tlsConfig(t *testing.T, ca *testpki.CA, names ...string) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: names})}}
}

// TestOpportunisticTLS: STARTTLS is used when offered; the certificate is
// checked and reported but a bad one does not stop delivery.
func TestOpportunisticTLS(t *testing.T) {
	ca := testpki.NewCA(t, "send test CA")
	for _, tt := range []struct {
		name     string
		certName string
		roots    bool
		verified bool
	}{
		{"trusted", "mx1.example.test", true, true},
		{"unknown CA", "mx1.example.test", false, false},
		{"wrong name", "other.example.test", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), TLS: tlsConfig(t, ca, tt.certName)})
			s := newSender(t, zones(t, baseZone), port)
			if tt.roots {
				s.RootCAs = ca.Pool
			}
			res, err := s.Send(t.Context(), testMessage())
			if err != nil {
				t.Fatal(err)
			}
			msgs := mx1.Messages()
			if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Helo != "client.example.test" {
				t.Fatalf("messages %+v: want one over TLS after a new EHLO", msgs)
			}
			st := res.TLS
			if st == nil || st.Version == "" || st.Verified != tt.verified || st.Method != "pkix" || (st.VerifyError == "") == !tt.verified {
				t.Errorf("TLS state %+v, want verified %v", st, tt.verified)
			}
			if res.Attempts[0].Rule != RuleOpportunistic {
				t.Errorf("rule %s", res.Attempts[0].Rule)
			}
			tr := strings.Join(res.Attempts[0].Transcript, "\n")
			if strings.Count(tr, "C: EHLO") != 2 || !strings.Contains(tr, "C: STARTTLS") || !strings.Contains(tr, "-- TLS established") {
				t.Errorf("transcript:\n%s", tr)
			}
		})
	}
}

// TestOpportunisticFallback: a failed handshake is retried in clear text
// at the same address; a refused STARTTLS goes on in clear text.
func TestOpportunisticFallback(t *testing.T) {
	t.Run("broken handshake", func(t *testing.T) {
		port := smtptest.Port(t)
		r := smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: smtptest.BrokenSTARTTLS})
		res, _ := newSender(t, zones(t, baseZone), port).Send(t.Context(), testMessage())
		if len(res.Attempts) < 2 {
			t.Fatalf("attempts %v", outcomes(res))
		}
		first, second := res.Attempts[0], res.Attempts[1]
		if first.Stage != StageTLS || first.Outcome != OutcomeDeferred || !errors.Is(first.Err, ErrHandshake) {
			t.Errorf("first attempt %s %s %v", first.Stage, first.Outcome, first.Err)
		}
		if !second.Plaintext || second.Address != first.Address || slices.Contains(second.Transcript, "C: STARTTLS") {
			t.Errorf("second attempt is not a clear-text retry: %+v", second)
		}
		// The minimal ESMTP of the raw server refuses MAIL with 502.
		if second.Stage != StageMail || r.Connections() != 2 {
			t.Errorf("second attempt ended at %s; %d connections", second.Stage, r.Connections())
		}
	})
	t.Run("refused STARTTLS", func(t *testing.T) {
		port := smtptest.Port(t)
		smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: smtptest.RefuseSTARTTLS})
		res, _ := newSender(t, zones(t, baseZone), port).Send(t.Context(), testMessage())
		a := res.Attempts[0]
		tr := strings.Join(a.Transcript, "\n")
		if a.Stage != StageMail || !strings.Contains(tr, "S: 454") || !strings.Contains(tr, "C: MAIL FROM") {
			t.Errorf("did not go on in clear text after 454: stage %s\n%s", a.Stage, tr)
		}
	})
}

// TestRequireTLS: every exchange must do STARTTLS with a certificate valid
// for its name; one that cannot is passed over as a policy failure.
func TestRequireTLS(t *testing.T) {
	ca := testpki.NewCA(t, "send test CA")
	for _, tt := range []struct {
		name    string
		mx1     func(t *testing.T, addr string)
		mx2TLS  bool
		wantErr error
		want    []string
	}{
		{"no STARTTLS, backup good", raw(smtptest.NoSTARTTLS), true, nil,
			[]string{"mx1.example.test starttls policy", "mx2.example.test message accepted"}},
		{"wrong name, backup good", func(t *testing.T, addr string) {
			smtptest.Start(t, smtptest.Options{Addr: addr, TLS: tlsConfig(t, ca, "other.example.test")})
		}, true, nil,
			[]string{"mx1.example.test tls policy", "mx2.example.test message accepted"}},
		{"nowhere", raw(smtptest.NoSTARTTLS), false, ErrPolicy,
			[]string{"mx1.example.test starttls policy", "mx2.example.test starttls policy"}},
		{"refused STARTTLS", raw(smtptest.RefuseSTARTTLS), false, ErrPolicy,
			[]string{"mx1.example.test starttls policy", "mx2.example.test starttls policy"}},
		{"broken handshake: no clear-text retry", raw(smtptest.BrokenSTARTTLS), false, ErrPolicy,
			[]string{"mx1.example.test tls policy", "mx2.example.test starttls policy"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			tt.mx1(t, at(2, port))
			o := smtptest.Options{Addr: at(3, port)}
			if tt.mx2TLS {
				o.TLS = tlsConfig(t, ca, "mx2.example.test")
			}
			mx2 := smtptest.Start(t, o)
			s := newSender(t, zones(t, baseZone), port)
			s.RootCAs, s.RequireTLS = ca.Pool, true
			res, err := s.Send(t.Context(), testMessage())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			wantOutcomes(t, res, tt.want...)
			if tt.wantErr != nil {
				if len(mx2.Messages()) != 0 {
					t.Errorf("delivered without TLS")
				}
				if res.Kind != KindPolicy || res.Permanent {
					t.Errorf("kind %q permanent %v", res.Kind, res.Permanent)
				}
				return
			}
			if msgs := mx2.Messages(); len(msgs) != 1 || !msgs[0].TLS || !res.TLS.Verified {
				t.Errorf("not delivered over verified TLS: %+v", res.TLS)
			}
			if res.Attempts[0].Rule != RuleRequireTLS || !errors.Is(res.Attempts[0].Err, ErrNoSTARTTLS) && !errors.Is(res.Attempts[0].Err, ErrCertificate) {
				t.Errorf("first attempt: rule %s err %v", res.Attempts[0].Rule, res.Attempts[0].Err)
			}
		})
	}
}

// stsChecker serves an MTA-STS policy for example.test over HTTPS on
// loopback (smtptest.PolicyHost), which its fetcher reaches whatever
// address it resolved for mta-sts.example.test.
func stsChecker(t *testing.T, r resolve.Resolver, ca *testpki.CA, policy string) *mtasts.Options {
	t.Helper()
	host := smtptest.StartPolicyHost(t, ca.Leaf(t, testpki.LeafOptions{Names: []string{"mta-sts.example.test"}}), policy)
	f := &mtasts.Fetcher{Resolver: r, RootCAs: ca.Pool, Dialer: host, Timeout: 5 * time.Second}
	return &mtasts.Options{Fetcher: f}
}

const stsZone = baseZone + `
_mta-sts 3600 IN TXT "v=STSv1; id=20240101"
mta-sts  3600 IN A 127.0.0.1
`

// TestMTASTS: in enforce mode an exchange the policy does not list is
// skipped and the listed one must present a valid certificate; in testing
// mode delivery goes on and the would-be failure is noted; mode none
// changes nothing.
func TestMTASTS(t *testing.T) {
	ca := testpki.NewCA(t, "send test CA")
	policy := func(mode string) string {
		return "version: STSv1\nmode: " + mode + "\nmx: mx2.example.test\nmax_age: 86400\n"
	}
	for _, tt := range []struct {
		name   string
		policy string
		mx2TLS bool
		want   []string
		mode   mtasts.Mode
		err    error
	}{
		{"enforce", policy("enforce"), true, []string{"mx1.example.test policy policy", "mx2.example.test message accepted"}, mtasts.ModeEnforce, nil},
		{"enforce without TLS", policy("enforce"), false, []string{"mx1.example.test policy policy", "mx2.example.test starttls policy"}, mtasts.ModeEnforce, ErrPolicy},
		{"testing", policy("testing"), false, []string{"mx1.example.test message accepted"}, mtasts.ModeTesting, nil},
		{"none", policy("none"), false, []string{"mx1.example.test message accepted"}, mtasts.ModeNone, nil},
		{"unparsable policy: as if none", "version: STSv1\nmode: sometimes\n", false, []string{"mx1.example.test message accepted"}, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
			o := smtptest.Options{Addr: at(3, port)}
			if tt.mx2TLS {
				o.TLS = tlsConfig(t, ca, "mx2.example.test")
			}
			smtptest.Start(t, o)
			z := zones(t, stsZone)
			s := newSender(t, z, port)
			s.RootCAs = ca.Pool
			s.MTASTS = stsChecker(t, z, ca, tt.policy)
			res, err := s.Send(t.Context(), testMessage())
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			wantOutcomes(t, res, tt.want...)
			if res.MTASTS == nil || res.MTASTS.Mode != tt.mode || (tt.mode == "") != (res.MTASTS.Error != "") {
				t.Errorf("MTA-STS state %+v, want mode %q", res.MTASTS, tt.mode)
			}
			if tt.mode == mtasts.ModeEnforce && mx1.Connections() != 0 {
				t.Errorf("the exchange outside the policy was contacted")
			}
			if tt.mode == mtasts.ModeTesting {
				note := res.Attempts[0].PolicyNote
				if res.Attempts[0].Rule != RuleMTASTSTesting || !strings.Contains(note, "matches no mx pattern") || !strings.Contains(note, "STARTTLS") {
					t.Errorf("testing mode: rule %s note %q", res.Attempts[0].Rule, note)
				}
			}
		})
	}
}

// failTLSA fails the TLSA lookups of mx1 with SERVFAIL.
type failTLSA struct{ resolve.Resolver }

func (f failTLSA) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Type == dns.TypeTLSA && q.Name == "_25._tcp.mx1.example.test." {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.Resolver.Lookup(ctx, q)
}

// TestDANE: with validated TLSA records the chain must match (RFC 7672
// §3) whatever the CA; a mismatch passes the exchange over; a TLSA lookup
// that fails in a signed zone defers that exchange without connecting;
// unsigned TLSA records are ignored.
func TestDANE(t *testing.T) {
	untrusted := testpki.NewCA(t, "not a trusted CA")
	cert := untrusted.Leaf(t, testpki.LeafOptions{Names: []string{"whatever.invalid"}})
	good := "_25._tcp.mx1 3600 IN TLSA 3 1 1 " + testpki.SPKIHash(cert) + "\n"
	bad := "_25._tcp.mx1 3600 IN TLSA 3 1 1 " + strings.Repeat("ab", 32) + "\n"
	for _, tt := range []struct {
		name     string
		zone     string
		failTLSA bool
		want     []string
		rule     Rule
	}{
		{"match", baseZone + signed + good, false, []string{"mx1.example.test message accepted"}, RuleDANE},
		{"mismatch", baseZone + signed + bad, false, []string{"mx1.example.test tls policy", "mx2.example.test message accepted"}, RuleDANE},
		{"lookup fails in a signed zone", baseZone + signed + good, true, []string{"mx1.example.test dns deferred", "mx2.example.test message accepted"}, RuleDANE},
		{"unsigned zone: ignored", baseZone + bad, false, []string{"mx1.example.test message accepted"}, RuleOpportunistic},
		{"unusable records: TLS without authentication", baseZone + signed + "_25._tcp.mx1 3600 IN TLSA 1 1 1 " + testpki.SPKIHash(cert) + "\n", false,
			[]string{"mx1.example.test message accepted"}, RuleEncrypt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
			smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
			var r resolve.Resolver = zones(t, tt.zone)
			if tt.failTLSA {
				r = failTLSA{r}
			}
			s := newSender(t, r, port)
			s.DANE = &dane.Options{}
			res, err := s.Send(t.Context(), testMessage())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			wantOutcomes(t, res, tt.want...)
			if a := res.Attempts[0]; a.Rule != tt.rule {
				t.Errorf("rule %s, want %s", a.Rule, tt.rule)
			}
			switch tt.name {
			case "match":
				if res.TLS == nil || !res.TLS.Verified || res.TLS.Method != "dane" || !strings.Contains(res.TLS.DANERecord, "3 1 1") {
					t.Errorf("TLS state %+v", res.TLS)
				}
			case "mismatch":
				if !errors.Is(res.Attempts[0].Err, dane.ErrNoMatch) {
					t.Errorf("error %v, want dane.ErrNoMatch", res.Attempts[0].Err)
				}
			case "lookup fails in a signed zone":
				if mx1.Connections() != 0 {
					t.Errorf("connected to an exchange whose TLSA lookup failed")
				}
			}
		})
	}
}

// fakeClock is a clock that Sleep advances.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return nil
}

// TestGreylisting: a 451 to the first RCPT; with Retry the second round
// delivers after B(0) plus jitter, and the schedule is announced.
func TestGreylisting(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Greylist: 1})
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), port)
	s.Retry = &Retry{Base: 30 * time.Second, Factor: 2, Max: 5 * time.Minute, For: 10 * time.Minute}
	s.Sleep, s.Now, s.Rand = clock.Sleep, clock.Now, rand.New(rand.NewPCG(1, 2))
	var waits []Event
	s.Observer = func(e Event) {
		if e.Kind == EventWait {
			waits = append(waits, e)
		}
	}
	res, err := s.Send(t.Context(), testMessage())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Rounds != 2 || len(mx1.Messages()) != 1 {
		t.Fatalf("rounds %d, messages %d", res.Rounds, len(mx1.Messages()))
	}
	if len(clock.waits) != 1 || clock.waits[0] < 30*time.Second || clock.waits[0] > 33*time.Second {
		t.Errorf("waits %v, want one in [30s, 33s]", clock.waits)
	}
	if len(waits) != 1 || waits[0].Wait != clock.waits[0] || waits[0].Round != 1 {
		t.Fatalf("wait events %+v", waits)
	}
	// 30s, 1m, 2m, 4m fit in 10 minutes; 5m more would not.
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	if !slices.Equal(waits[0].Schedule, want) {
		t.Errorf("schedule %v, want %v", waits[0].Schedule, want)
	}
	wantOutcomes(t, res, "mx1.example.test rcpt deferred", "mx1.example.test message accepted")
	if res.Attempts[0].Round != 1 || res.Attempts[1].Round != 2 {
		t.Errorf("rounds of the attempts: %d, %d", res.Attempts[0].Round, res.Attempts[1].Round)
	}
}

// TestRetryGivesUp: the retry time limit bounds the rounds, and a 5xx is
// never retried.
func TestRetryGivesUp(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Greylist: 1000})
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), port)
	s.Retry = &Retry{Base: time.Minute, Factor: 2, Max: 5 * time.Minute, For: 10 * time.Minute}
	s.Sleep, s.Now = clock.Sleep, clock.Now
	res, err := s.Send(t.Context(), testMessage())
	if !errors.Is(err, ErrTemporary) || !strings.Contains(err.Error(), "retry time limit") {
		t.Fatalf("err %v", err)
	}
	// 1m + 2m + 4m (+ up to 10% each) = at most 7.7m; 5m more passes 10m.
	if res.Rounds != 4 || len(clock.waits) != 3 || mx1.Connections() != 4 {
		t.Errorf("rounds %d, waits %v, connections %d", res.Rounds, clock.waits, mx1.Connections())
	}

	port = smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: reject(550, smtp.EnhancedCode{5, 1, 1}, "no")})
	s = newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), port)
	clock = &fakeClock{}
	s.Retry, s.Sleep, s.Now = &Retry{}, clock.Sleep, clock.Now
	if res, err := s.Send(t.Context(), testMessage()); !errors.Is(err, ErrPermanent) || res.Rounds != 1 || len(clock.waits) != 0 {
		t.Errorf("5xx with retry: err %v, rounds %d, waits %v", err, res.Rounds, clock.waits)
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		r    Retry
		n    int
		want time.Duration
	}{
		{Retry{}, 0, 30 * time.Second},
		{Retry{}, 1, time.Minute},
		{Retry{}, 3, 4 * time.Minute},
		{Retry{}, 4, 5 * time.Minute}, // capped at Max
		{Retry{}, 1000, 5 * time.Minute},
		{Retry{Base: time.Second, Factor: 3, Max: time.Hour}, 2, 9 * time.Second},
		{Retry{Base: time.Second, Factor: 0.5}, 5, time.Second}, // factors below 1 count as 1
		{Retry{Base: time.Second}, -1, time.Second},
	} {
		if got := tt.r.Backoff(tt.n); got != tt.want {
			t.Errorf("%+v.Backoff(%d) = %v, want %v", tt.r, tt.n, got, tt.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		if j := Jitter(time.Minute, rng); j < 0 || j > 6*time.Second {
			t.Fatalf("jitter %v outside [0, 6s]", j)
		}
	}
	if j := Jitter(5*time.Nanosecond, nil); j != 0 {
		t.Errorf("jitter of 5ns: %v", j)
	}
	if got, want := (Retry{}).Schedule(), []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("default schedule %v, want %v", got, want)
	}
}

// TestCancel: cancelling the context ends a session that waits for a
// silent server at once.
func TestCancel(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: smtptest.Silent})
	s := newSender(t, zones(t, baseZone), port)
	s.Timeouts.Greeting, s.Timeouts.Command = time.Minute, time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	s.Observer = func(e Event) {
		if e.Kind == EventConnect {
			time.AfterFunc(50*time.Millisecond, cancel)
		}
	}
	start := time.Now()
	_, err := s.Send(ctx, testMessage())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v after cancel", took)
	}
}

// TestHelloName: without HelloName the EHLO argument is a domain name or
// an address literal (RFC 5321 §4.1.4).
func TestHelloName(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	s := newSender(t, zones(t, baseZone), port)
	s.HelloName = ""
	if _, err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatal(err)
	}
	helo := mx1.Messages()[0].Helo
	if !strings.Contains(helo, ".") || strings.ContainsAny(helo, " \r\n") {
		t.Errorf("EHLO %q is neither a domain name nor an address literal", helo)
	}
	if strings.HasPrefix(helo, "[") && helo != "[127.0.0.1]" {
		t.Errorf("address literal %q, want the local address [127.0.0.1]", helo)
	}
}

// TestIPv6: an exchange's IPv6 address is tried like any other, after its
// IPv4 one (the order the plan serves).
func TestIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
	port := smtptest.Port(t)
	smtptest.Refused(t, at(2, port))
	v6 := smtptest.Start(t, smtptest.Options{Addr: fmt.Sprintf("[::1]:%d", port)})
	res, err := newSender(t, zones(t, baseZone+"mx1 3600 IN AAAA ::1\n"), port).Send(t.Context(), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if res.Address != "::1" || len(v6.Messages()) != 1 {
		t.Errorf("accepted at %q; the IPv6 server got %d messages", res.Address, len(v6.Messages()))
	}
	wantOutcomes(t, res, "mx1.example.test connect deferred", "mx1.example.test message accepted")
}

// TestRetryGivesUpAfterOneRound: a first wait already past the retry time
// limit gives up "after 1 round".
func TestRetryGivesUpAfterOneRound(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Greylist: 1000})
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), port)
	s.Retry = &Retry{Base: time.Hour, For: time.Minute}
	s.Sleep, s.Now = clock.Sleep, clock.Now
	res, err := s.Send(t.Context(), testMessage())
	if err == nil || !strings.Contains(err.Error(), "gave up after 1 round:") || res.Rounds != 1 {
		t.Errorf("rounds %d, err %v; want 'gave up after 1 round'", res.Rounds, err)
	}
}

// TestTranscriptBounded: a server that answers EHLO with endless lines
// (1 MiB of them before the session cap) gives at most
// MaxTranscriptLines transcript lines, printed (EventLine) or kept, and
// one saying where it stopped.
func TestTranscriptBounded(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: smtptest.EndlessEHLO})
	smtptest.Refused(t, at(3, port))
	s := newSender(t, zones(t, baseZone), port)
	printed := 0
	s.Observer = func(e Event) {
		if e.Kind == EventLine {
			printed++
		}
	}
	res, _ := s.Send(t.Context(), testMessage())
	if printed > MaxTranscriptLines+1 {
		t.Errorf("%d lines printed, more than %d", printed, MaxTranscriptLines+1)
	}
	if len(res.Attempts) == 0 {
		t.Fatal("no attempt")
	}
	tr := res.Attempts[0].Transcript
	if len(tr) != MaxTranscriptLines+1 || !strings.Contains(tr[len(tr)-1], "stops at") {
		t.Errorf("%d transcript lines, the last %q", len(tr), tr[len(tr)-1])
	}
}

// TestLostConnectionWords: a server that closes or resets the connection,
// or breaks the TLS handshake, is deferred with words a person reads
// ("EOF" and "read tcp A->B: read: connection reset by peer" before).
func TestLostConnectionWords(t *testing.T) {
	for _, tt := range []struct {
		b    smtptest.Behaviour
		want string
	}{
		{smtptest.CloseAfterBanner, "the server closed the connection"},
		{smtptest.Reset, "the server reset the connection"},
		// The garbage is random: crypto/tls usually says "first record does
		// not look like a TLS handshake", but about one run in 500 the
		// bytes look like SSLv2 or a record with another flaw; the words
		// are checked, not which flaw.
		{smtptest.BrokenSTARTTLS, "TLS handshake failed: "},
	} {
		t.Run(tt.b.String(), func(t *testing.T) {
			port := smtptest.Port(t)
			smtptest.StartRaw(t, smtptest.RawOptions{Addr: at(2, port), Behaviour: tt.b})
			s := newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), port)
			res, _ := s.Send(t.Context(), testMessage())
			if len(res.Attempts) == 0 || res.Attempts[0].Err == nil {
				t.Fatalf("attempts %+v", res.Attempts)
			}
			got := res.Attempts[0].Err.Error()
			ok := strings.HasSuffix(got, tt.want)
			if tt.b == smtptest.BrokenSTARTTLS {
				_, rest, found := strings.Cut(got, tt.want)
				ok = found && rest != ""
			}
			if !ok || strings.Contains(got, "tls: ") {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMaxAddresses: a round tries at most MaxAddresses addresses (RFC
// 5321 §5.1 allows the limit), so 64 exchanges of 16 silent addresses
// each do not keep send connecting for hours; the error says where it
// stopped.
func TestMaxAddresses(t *testing.T) {
	port := smtptest.Port(t)
	zone := "$ORIGIN example.test.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n"
	for i := range 6 {
		zone += fmt.Sprintf("@ 3600 IN MX %d mx%d\nmx%d 3600 IN A 127.0.0.%d\n", 10*i, i, i, 2+i)
		smtptest.Refused(t, at(byte(2+i), port))
	}
	s := newSender(t, zones(t, zone), port)
	s.MaxAddresses = 4
	res, err := s.Send(t.Context(), testMessage())
	if len(res.Attempts) != 4 {
		t.Errorf("%d attempts, want 4", len(res.Attempts))
	}
	if !errors.Is(err, ErrTemporary) || !strings.Contains(err.Error(), "no more addresses tried after 4") {
		t.Errorf("err %v", err)
	}
	if DefaultMaxAddresses < 2 {
		t.Error("RFC 5321 §5.1: a sender SHOULD try at least two addresses")
	}
}

// timeoutDialer fails every dial with a socket time-out (as a dialer's own
// Timeout does), not the context's deadline.
type timeoutDialer struct{}

type ioTimeout struct{}

func (ioTimeout) Error() string   { return "i/o timeout" }
func (ioTimeout) Timeout() bool   { return true }
func (ioTimeout) Temporary() bool { return true }

func (timeoutDialer) DialContext(_ context.Context, network, addr string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: ioTimeout{}}
}

// TestConnectTimeoutWords: a connection that times out is "no connection
// within" the connect time-out however the time-out came (it was "dial
// tcp 192.0.2.10:25: i/o timeout" when the socket's own deadline ended it).
func TestConnectTimeoutWords(t *testing.T) {
	s := newSender(t, zones(t, strings.Replace(baseZone, "@    3600 IN MX 20 mx2\n", "", 1)), 25)
	s.Dialer = timeoutDialer{}
	res, _ := s.Send(t.Context(), testMessage())
	if len(res.Attempts) != 1 || res.Attempts[0].Error != "connect: no connection within 2s" {
		t.Errorf("attempts %+v", res.Attempts)
	}
}

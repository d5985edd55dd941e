package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/route"
)

// TestProbeTLS: a well-behaved server with STARTTLS and a certificate from
// a trusted CA: every step is recorded, the chain verifies, nothing is
// reported, and the probe never sends DATA, over IPv4 and IPv6.
func TestProbeTLS(t *testing.T) {
	pk := newPKI(t)
	for _, addr := range []string{"127.0.0.2:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			srv := startTLSServer(t, addr, pk.cert, "mx.example.test")
			p := quick(int(srv.Addr().Port()), pk.ca)
			r := p.Probe(t.Context(), "MX.Example.Test.", srv.Addr().Addr())
			if r.Err != nil {
				t.Fatalf("error %+v\n%v", r.Err, r.Transcript)
			}
			if r.Host != "mx.example.test" || r.Address != srv.Addr().Addr() || r.Port != int(srv.Addr().Port()) || !r.Connected {
				t.Errorf("endpoint %s connected %t", r.Subject(), r.Connected)
			}
			if r.Banner == nil || r.Banner.Code != 220 || r.Banner.Host != "mx.example.test" || r.Banner.Slow {
				t.Errorf("banner %+v", r.Banner)
			}
			if r.EHLO == nil || !r.EHLO.StartTLS || !r.StartTLS || r.EHLO.Domain != "mx.example.test" || r.EHLO.Command != "EHLO" {
				t.Errorf("ehlo %+v", r.EHLO)
			}
			if r.EHLOTLS == nil || r.EHLOTLS.StartTLS {
				t.Errorf("EHLO inside TLS %+v: must exist and not offer STARTTLS again", r.EHLOTLS)
			}
			tl := r.TLS
			if tl == nil || tl.Version != "TLS1.3" || tl.Cipher == "" || !tl.Verified || !tl.Trusted || !tl.NameOK || tl.Expired {
				t.Fatalf("tls %+v", tl)
			}
			if tl.ExpiresInDays < 88 || tl.ExpiresInDays > 90 || tl.ServerName != "mx.example.test" {
				t.Errorf("expires in %d days, SNI %q", tl.ExpiresInDays, tl.ServerName)
			}
			if len(r.Chain) != 1 || len(tl.Chain) != 1 || !slices.Equal(tl.Chain[0].SANs, []string{"mx.example.test"}) || len(tl.Chain[0].SPKISHA256) != 64 {
				t.Errorf("chain %+v", tl.Chain)
			}
			if got, want := sentVerbs(r), []string{"EHLO", "STARTTLS", "EHLO", "QUIT"}; !slices.Equal(got, want) {
				t.Errorf("sent %v, want %v", got, want)
			}
			if fs := Findings([]*Result{r}, time.Time{}, nil); len(fs) != 0 {
				t.Errorf("findings for a good server: %v", fs)
			}
			if srv.Transactions() != 0 || len(srv.Messages()) != 0 {
				t.Errorf("the probe started a mail transaction")
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("JSON: %v", err)
			}
		})
	}
}

// TestProbeServers: one server per problem the probe must recognise, and
// the findings each yields (exactly those).
func TestProbeServers(t *testing.T) {
	ca := testpki.NewCA(t, "mxtrace test root")
	good := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}})
	inter := ca.Intermediate(t, "mxtrace test intermediate")
	chained := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}, Intermediate: inter})
	noInter := chained
	noInter.Certificate = noInter.Certificate[:1]
	expired := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}, NotAfter: time.Now().Add(-48 * time.Hour)})
	future := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}, NotBefore: time.Now().Add(48 * time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	expiring := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx.example.test"}, NotAfter: time.Now().Add(6 * 24 * time.Hour)})
	otherName := ca.Leaf(t, testpki.LeafOptions{Names: []string{"mail.example.net"}})
	selfSigned := testpki.SelfSigned(t, "mx.example.test")
	oldTLS := &tls.Config{Certificates: []tls.Certificate{good}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}

	for _, tt := range []struct {
		name     string
		opts     smtptest.Options
		host     string
		want     []finding.ID
		step     Step
		tlsCheck func(*TLS) bool
	}{
		{name: "good", opts: smtptest.Options{TLS: serverTLS(good)}},
		{name: "intermediate sent", opts: smtptest.Options{TLS: serverTLS(chained)},
			tlsCheck: func(t *TLS) bool { return t.Verified && len(t.Chain) == 2 }},
		{name: "intermediate missing", opts: smtptest.Options{TLS: serverTLS(noInter)},
			want: []finding.ID{finding.SMTPCertUntrusted}, tlsCheck: func(t *TLS) bool { return !t.Trusted && t.NameOK && !t.Expired }},
		{name: "self-signed", opts: smtptest.Options{TLS: serverTLS(selfSigned)},
			want: []finding.ID{finding.SMTPCertUntrusted}, tlsCheck: func(t *TLS) bool { return !t.Verified && t.VerifyError != "" }},
		{name: "expired", opts: smtptest.Options{TLS: serverTLS(expired)},
			want: []finding.ID{finding.SMTPCertExpired}, tlsCheck: func(t *TLS) bool { return t.Expired && t.Trusted && t.ExpiresInDays < 0 }},
		{name: "not yet valid", opts: smtptest.Options{TLS: serverTLS(future)},
			want: []finding.ID{finding.SMTPCertExpired}, tlsCheck: func(t *TLS) bool { return t.Expired && t.Trusted }},
		{name: "expiring", opts: smtptest.Options{TLS: serverTLS(expiring)},
			want: []finding.ID{finding.SMTPCertExpiring}, tlsCheck: func(t *TLS) bool { return t.Verified && t.ExpiresInDays == 5 }},
		{name: "wrong name", opts: smtptest.Options{TLS: serverTLS(otherName)},
			want: []finding.ID{finding.SMTPCertNameMismatch}, tlsCheck: func(t *TLS) bool { return !t.NameOK && t.Trusted && !t.Verified }},
		{name: "TLS 1.1", opts: smtptest.Options{TLS: oldTLS},
			want: []finding.ID{finding.SMTPTLSOld}, tlsCheck: func(t *TLS) bool { return t.Version == "TLS1.1" && t.Verified }},
		{name: "no STARTTLS", opts: smtptest.Options{},
			want: []finding.ID{finding.SMTPStartTLSMissing}},
		{name: "banner names another host", opts: smtptest.Options{TLS: serverTLS(good), Hostname: "localhost.localdomain"},
			want: []finding.ID{finding.SMTPBannerName}},
		{name: "slow banner", opts: smtptest.Options{TLS: serverTLS(good), BannerDelay: 300 * time.Millisecond},
			want: []finding.ID{finding.SMTPBannerSlow}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Hostname == "" {
				tt.opts.Hostname = "mx.example.test"
			}
			srv := smtptest.Start(t, tt.opts)
			p := quick(int(srv.Addr().Port()), &testpki.CA{Pool: ca.Pool})
			p.SlowBanner = 200 * time.Millisecond
			r := p.Probe(t.Context(), "mx.example.test", srv.Addr().Addr())
			noData(t, r)
			if tt.step == "" && r.Err != nil {
				t.Fatalf("error %+v", r.Err)
			}
			got := ids(Findings([]*Result{r}, time.Time{}, nil))
			want := append([]finding.ID{}, tt.want...)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("findings %v, want %v", got, want)
			}
			if tt.tlsCheck != nil && (r.TLS == nil || !tt.tlsCheck(r.TLS)) {
				t.Errorf("tls %+v", r.TLS)
			}
		})
	}
}

// TestProbeHostile: a server that misbehaves in each way smtptest knows
// ends the probe at the right step, with the right kind and finding,
// well within the deadlines, and never panics or hangs.
func TestProbeHostile(t *testing.T) {
	for _, tt := range []struct {
		b    smtptest.Behaviour
		step Step
		kind Kind
		want []finding.ID
	}{
		{smtptest.Silent, StepBanner, KindTimeout, []finding.ID{finding.SMTPBannerInvalid}},
		{smtptest.EndlessBanner, StepBanner, KindTooLong, []finding.ID{finding.SMTPBannerInvalid}},
		{smtptest.LongLine, StepBanner, KindTooLong, []finding.ID{finding.SMTPBannerInvalid}},
		{smtptest.Garbage, StepBanner, KindMalformed, []finding.ID{finding.SMTPBannerInvalid}},
		{smtptest.WrongCode, StepBanner, KindReply, []finding.ID{finding.SMTPBannerInvalid}},
		{smtptest.CloseAfterBanner, StepEHLO, KindClosed, []finding.ID{finding.SMTPEHLOFailed}},
		{smtptest.CloseAfterEHLO, StepEHLO, KindClosed, []finding.ID{finding.SMTPEHLOFailed}},
		{smtptest.EndlessEHLO, StepEHLO, KindTooLong, []finding.ID{finding.SMTPEHLOFailed}},
		{smtptest.BrokenSTARTTLS, StepTLS, KindTLS, []finding.ID{finding.SMTPTLSFailed}},
		{smtptest.RefuseSTARTTLS, StepStartTLS, KindReply, []finding.ID{finding.SMTPTLSFailed}},
		{smtptest.NoSTARTTLS, "", "", []finding.ID{finding.SMTPStartTLSMissing}},
		{smtptest.Reset, StepBanner, KindClosed, []finding.ID{finding.SMTPBannerInvalid}},
	} {
		t.Run(tt.b.String(), func(t *testing.T) {
			t.Parallel()
			raw := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: tt.b, Hostname: "mx.example.test"})
			p := quick(int(raw.Addr().Port()), nil)
			start := time.Now()
			r := p.Probe(t.Context(), "mx.example.test", raw.Addr().Addr())
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			noData(t, r)
			var step Step
			var kind Kind
			if r.Err != nil {
				step, kind = r.Err.Step, r.Err.Kind
			}
			if step != tt.step || kind != tt.kind {
				t.Errorf("ended at %q/%q (%v), want %q/%q", step, kind, r.Err, tt.step, tt.kind)
			}
			// The message goes into findings, for people: no Go package
			// prefix ("probe: reply of more than 200 lines" before).
			if r.Err != nil && (strings.Contains(r.Err.Message, "probe: ") || strings.Contains(r.Err.Message, ": tls: ")) {
				t.Errorf("message %q", r.Err.Message)
			}
			if got := ids(Findings([]*Result{r}, time.Time{}, nil)); !slices.Equal(got, tt.want) {
				t.Errorf("findings %v, want %v", got, tt.want)
			}
			if len(r.Transcript) > MaxTranscriptLines {
				t.Errorf("transcript of %d lines", len(r.Transcript))
			}
			for _, l := range r.Transcript {
				if len(l.Text) > maxTranscriptText || strings.ContainsAny(l.Text, "\x00\x1b\r\n") {
					t.Errorf("transcript line not cleaned or bounded: %q", l.Text[:min(len(l.Text), 80)])
					break
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("JSON: %v", err)
			}
		})
	}
}

// TestTranscriptEscapedOnce: a malformed greeting with a control byte
// and a backslash is escaped once in the transcript's own line about it
// ("banner failed: ..."), as in the server's line; it was escaped twice
// there (\\x01, \\\\).
func TestTranscriptEscapedOnce(t *testing.T) {
	raw := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: smtptest.CustomBanner, Banner: "\x01\\bad\r\n"})
	r := quick(int(raw.Addr().Port()), nil).Probe(t.Context(), "mx.example.test", raw.Addr().Addr())
	var got []string
	for _, l := range r.Transcript {
		got = append(got, l.Dir+" "+l.Text)
	}
	want := []string{"S \\x01\\\\bad", `* banner failed: greeting: malformed SMTP reply: \x01\\bad`}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("transcript %q lacks %q", got, w)
		}
	}
}

// TestProbeWrongCodeQuits: after a 554 greeting the probe says QUIT
// (RFC 5321 §3.1) and nothing else.
func TestProbeWrongCodeQuits(t *testing.T) {
	raw := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: smtptest.WrongCode})
	r := quick(int(raw.Addr().Port()), nil).Probe(t.Context(), "mx.example.test", raw.Addr().Addr())
	if r.Err == nil || r.Err.Code != 554 || r.Banner == nil || r.Banner.Code != 554 {
		t.Fatalf("error %+v banner %+v", r.Err, r.Banner)
	}
	if got := sentVerbs(r); !slices.Equal(got, []string{"QUIT"}) {
		t.Errorf("sent %v, want QUIT only", got)
	}
}

// TestProbeRefused: nothing listening is smtp-unreachable, at once.
func TestProbeRefused(t *testing.T) {
	for _, a := range []string{"127.0.0.9", "::1"} {
		ap := smtptest.Refused(t, a)
		r := quick(int(ap.Port()), nil).Probe(t.Context(), "mx.example.test", ap.Addr())
		if r.Connected || r.Err == nil || r.Err.Step != StepConnect || r.Err.Kind != KindRefused {
			t.Fatalf("%s: %+v", a, r.Err)
		}
		if got := ids(Findings([]*Result{r}, time.Time{}, nil)); !slices.Equal(got, []finding.ID{finding.SMTPUnreachable}) {
			t.Errorf("%s: findings %v", a, got)
		}
	}
}

// TestProbeCanceled: the caller's context ends a session at once, and a
// canceled probe is no verdict on the server.
func TestProbeCanceled(t *testing.T) {
	raw := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: smtptest.Silent})
	p := quick(int(raw.Addr().Port()), nil)
	p.Timeouts.Greeting = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r := p.Probe(ctx, "mx.example.test", raw.Addr().Addr())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s after cancel", d)
	}
	if r.Err == nil || r.Err.Kind != KindCanceled {
		t.Fatalf("error %+v, want canceled", r.Err)
	}
	if fs := Findings([]*Result{r}, time.Time{}, nil); len(fs) != 0 {
		t.Errorf("findings for a canceled probe: %v", fs)
	}
}

// TestProbeRelay: the relay test runs only when asked, never sends DATA,
// and reports an open relay only when the recipient is accepted.
func TestProbeRelay(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    smtptest.Options
		relayTo string
		open    bool
		want    []finding.ID
	}{
		{"closed", smtptest.Options{Domains: []string{"example.test"}}, "relay-target.example", false, []finding.ID{finding.SMTPStartTLSMissing}},
		{"open", smtptest.Options{Domains: []string{"example.test"}, Relay: true}, "relay-target.example", true, []finding.ID{finding.SMTPOpenRelay, finding.SMTPStartTLSMissing}},
		{"not asked", smtptest.Options{Relay: true}, "", false, []finding.ID{finding.SMTPStartTLSMissing}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Hostname = "mx.example.test"
			srv := smtptest.Start(t, tt.opts)
			p := quick(int(srv.Addr().Port()), nil)
			p.RelayTo = tt.relayTo
			r := p.Probe(t.Context(), "mx.example.test", srv.Addr().Addr())
			noData(t, r)
			if r.Err != nil {
				t.Fatalf("error %+v", r.Err)
			}
			if tt.relayTo == "" {
				if r.Relay != nil || slices.Contains(sentVerbs(r), "MAIL") {
					t.Errorf("relay test ran unasked: %v", sentVerbs(r))
				}
			} else {
				if r.Relay == nil || r.Relay.Open != tt.open || r.Relay.Recipient != "mxtrace-relay-test@relay-target.example" {
					t.Fatalf("relay %+v", r.Relay)
				}
				if got, want := sentVerbs(r), []string{"EHLO", "MAIL", "RCPT", "RSET", "QUIT"}; !slices.Equal(got, want) {
					t.Errorf("sent %v, want %v", got, want)
				}
			}
			if got := ids(Findings([]*Result{r}, time.Time{}, nil)); !slices.Equal(got, tt.want) {
				t.Errorf("findings %v, want %v", got, tt.want)
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("a message was delivered")
			}
		})
	}
}

// TestBannerName: the greeting may carry the MX name, a PTR name of the
// address, or the address literal.
func TestBannerName(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		banner, host string
		ptr          []string
		ok           bool
	}{
		{"mx.example.com", "mx.example.com", nil, true},
		{"MX.Example.COM.", "mx.example.com", nil, true},
		{"host1.provider.net", "mx.example.com", []string{"host1.provider.net"}, true},
		{"[192.0.2.1]", "mx.example.com", nil, true},
		{"[IPv6:2001:db8::1]", "mx.example.com", nil, false},
		{"localhost", "mx.example.com", []string{"host1.provider.net"}, false},
		{"", "mx.example.com", nil, false},
		{"anything", "", nil, true}, // nothing to compare with
	} {
		r := &Result{Host: tt.host, Address: a}
		if got := bannerNameOK(tt.banner, r, tt.ptr); got != tt.ok {
			t.Errorf("banner %q host %q ptr %v: %t, want %t", tt.banner, tt.host, tt.ptr, got, tt.ok)
		}
	}
}

// TestProbePlan: every address of every exchange, in plan order, in
// parallel; the preference travels with each result.
func TestProbePlan(t *testing.T) {
	port := smtptest.Port(t)
	var addrs []string
	for i := range 4 {
		ap := netip.AddrPortFrom(smtptest.Loopback(byte(2+i)), uint16(port))
		// The first addresses answer last: results must stay in plan order.
		smtptest.Start(t, smtptest.Options{Addr: ap.String(), Hostname: "mx.example.test", BannerDelay: time.Duration(3-i) * 50 * time.Millisecond})
		addrs = append(addrs, ap.Addr().String())
	}
	refused := smtptest.Refused(t, netip.AddrPortFrom(smtptest.Loopback(9), uint16(port)).String())
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "mx1.example.test", Addresses: addrs[:2]}, {Name: "mx2.example.test", Addresses: addrs[2:3]}}},
		{Preference: 20, Hosts: []route.Host{{Name: "backup.example.test", Addresses: []string{addrs[3], refused.Addr().String()}}}},
	}}
	p := quick(port, nil)
	p.MaxParallel = 2
	rs := p.ProbePlan(t.Context(), plan)
	want := []struct {
		host string
		addr string
		pref uint16
	}{
		{"mx1.example.test", addrs[0], 10}, {"mx1.example.test", addrs[1], 10}, {"mx2.example.test", addrs[2], 10},
		{"backup.example.test", addrs[3], 20}, {"backup.example.test", refused.Addr().String(), 20},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if r.Host != w.host || r.Address.String() != w.addr || r.Preference == nil || *r.Preference != w.pref {
			t.Errorf("result %d: %s pref %v, want %s[%s] pref %d", i, r.Subject(), r.Preference, w.host, w.addr, w.pref)
		}
	}
	if rs[4].Err == nil || rs[4].Err.Step != StepConnect {
		t.Errorf("refused address: %+v", rs[4].Err)
	}
	for _, r := range rs[:4] {
		if r.Err != nil || r.Banner == nil {
			t.Errorf("%s: %+v", r.Subject(), r.Err)
		}
	}
}

// TestSubject: findings name the endpoint the way Postfix logs it.
func TestSubject(t *testing.T) {
	for _, tt := range []struct {
		r    Result
		want string
	}{
		{Result{Host: "mx.example.com", Address: netip.MustParseAddr("192.0.2.1"), Port: 25}, "mx.example.com[192.0.2.1]:25"},
		{Result{Host: "mx.example.com", Address: netip.MustParseAddr("2001:db8::1"), Port: 25}, "mx.example.com[2001:db8::1]:25"},
		{Result{Address: netip.MustParseAddr("192.0.2.1"), Port: 2525}, "[192.0.2.1]:2525"},
	} {
		if got := tt.r.Subject(); got != tt.want {
			t.Errorf("Subject() = %q, want %q", got, tt.want)
		}
	}
}

// TestProbeOutOfTime: our own deadline passing is no verdict on the
// server. A silent server whose greeting time-out is still far off when
// the caller's deadline passes, and a slow-banner server whose session
// limit passes first, were not probed (KindOutOfTime, no finding, and
// OutOfTime's error, which unwraps to context.DeadlineExceeded); a
// refused connection is still smtp-unreachable.
func TestProbeOutOfTime(t *testing.T) {
	silent := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: smtptest.Silent})
	slow := smtptest.StartRaw(t, smtptest.RawOptions{Behaviour: smtptest.SlowBanner, Delay: time.Minute})
	refused := smtptest.Refused(t, "127.0.0.9")

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	p := quick(int(silent.Addr().Port()), nil)
	p.Timeouts.Greeting = time.Minute
	r := p.Probe(ctx, "mx.example.test", silent.Addr().Addr())
	if r.Err == nil || r.Err.Kind != KindOutOfTime || r.Err.Message != "greeting: the time allowed ran out" {
		t.Fatalf("caller's deadline: error %+v, want %s", r.Err, KindOutOfTime)
	}

	p = quick(int(slow.Addr().Port()), nil)
	p.Timeouts.Greeting = time.Minute
	p.Timeouts.Session = 200 * time.Millisecond
	rs := p.Probe(t.Context(), "mx.example.test", slow.Addr().Addr())
	if rs.Err == nil || rs.Err.Kind != KindOutOfTime || rs.Err.Message != "greeting: the session's time limit of 200ms passed" {
		t.Fatalf("session limit: error %+v, want %s", rs.Err, KindOutOfTime)
	}

	rr := quick(int(refused.Port()), nil).Probe(t.Context(), "mx.example.test", refused.Addr())
	results := []*Result{r, rs, rr}
	if got := ids(Findings(results, time.Time{}, nil)); !slices.Equal(got, []finding.ID{finding.SMTPUnreachable}) {
		t.Errorf("findings %v, want only the refused server's smtp-unreachable", got)
	}
	err := OutOfTime(results)
	if want := r.Subject() + " and " + rs.Subject() + " not probed: the time allowed ran out"; err == nil || err.Error() != want {
		t.Errorf("OutOfTime = %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("OutOfTime's error does not unwrap to context.DeadlineExceeded")
	}
	if err := OutOfTime([]*Result{rr}); err != nil {
		t.Errorf("OutOfTime of a refused server: %v", err)
	}
}

// TestProbeForbidden: through a Dialer whose policy refuses non-public
// addresses (serve's), a loopback server is never connected to, and the
// result is smtp-target-refused naming the range, not smtp-unreachable.
func TestProbeForbidden(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	p := quick(int(srv.Addr().Port()), nil)
	p.Dialer = &dial.Net{Policy: &dial.Policy{}}
	r := p.Probe(t.Context(), "mx.example.test", srv.Addr().Addr())
	if r.Connected || r.Err == nil || r.Err.Step != StepConnect || r.Err.Kind != KindForbidden || !errors.Is(r.Err, dial.ErrForbidden) {
		t.Fatalf("err = %+v", r.Err)
	}
	fs := Findings([]*Result{r}, time.Time{}, nil)
	if got := ids(fs); !slices.Equal(got, []finding.ID{finding.SMTPTargetRefused}) {
		t.Fatalf("findings %v", got)
	}
	if m := fs[0].Message; !strings.Contains(m, "127.0.0.1 is not a public address (loopback, RFC 1122)") {
		t.Errorf("message %q", m)
	}
	if fs[0].Severity != finding.Info {
		t.Errorf("severity %v", fs[0].Severity)
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("the server accepted %d connections", n)
	}
	if err := OutOfTime([]*Result{r}); err != nil {
		t.Errorf("OutOfTime = %v: a refused address is no failure to do the job", err)
	}
	// Allowed: the same server is probed.
	p.Dialer = &dial.Net{Policy: &dial.Policy{AllowPrivate: true}}
	if r := p.Probe(t.Context(), "mx.example.test", srv.Addr().Addr()); !r.Connected {
		t.Errorf("with AllowPrivate: %+v", r.Err)
	}
}

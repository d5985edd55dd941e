package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// hostileDNSZone is what the honest handler behind each hostile option
// serves: a domain with one exchange (and its reverse zone, so that check
// can judge every area; its nameserver is a loopback address where nothing
// listens, which is a finding), and an alias to itself.
const hostileDNSZone = `$ORIGIN example.test.
@     300 SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@     300 NS  ns.example.test.
@     300 MX  10 mx.example.test.
mx    300 A   192.0.2.1
ns    300 A   127.83.83.83
loop  300 CNAME loop.example.test.
$ORIGIN 2.0.192.in-addr.arpa.
@     300 SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
1     300 PTR mx.example.test.
`

// TestExitStatusHostile: each hostile DNS server of internal/dnstest, as
// the only --resolver, gives route and check the same exit status: 3 when
// no usable answer came back (whatever the way it failed: silence,
// SERVFAIL, REFUSED, garbage, a reply for another question, TC then a
// closed or stalled TCP connection), the findings' status when the answer
// got through in the end (0 at --fail-on never), and 1 for an alias that
// loops, which is an answer: the domain is broken for good.
func TestExitStatusHostile(t *testing.T) {
	zone := func(opts ...dnstest.Option) func(*testing.T) *dnstest.Server {
		return func(t *testing.T) *dnstest.Server { return dnstest.NewZone(t, hostileDNSZone, opts...) }
	}
	handler := func(h dns.Handler) func(*testing.T) *dnstest.Server {
		return func(t *testing.T) *dnstest.Server { return dnstest.New(t, h) }
	}
	for _, tc := range []struct {
		name         string
		server       func(*testing.T) *dnstest.Server
		domain       string
		route, check int
	}{
		{"Silent", handler(dnstest.Silent()), "example.test", exitFailed, exitFailed},
		{"SERVFAIL", handler(dnstest.Rcode(dns.RcodeServerFailure)), "example.test", exitFailed, exitFailed},
		{"REFUSED", handler(dnstest.Rcode(dns.RcodeRefused)), "example.test", exitFailed, exitFailed},
		{"FORMERR", handler(dnstest.Rcode(dns.RcodeFormatError)), "example.test", exitFailed, exitFailed},
		{"NOTIMP", handler(dnstest.Rcode(dns.RcodeNotImplemented)), "example.test", exitFailed, exitFailed},
		{"Garbage/RandomBytes", handler(dnstest.Garbage(dnstest.RandomBytes)), "example.test", exitFailed, exitFailed},
		{"Garbage/ShortHeader", handler(dnstest.Garbage(dnstest.ShortHeader)), "example.test", exitFailed, exitFailed},
		{"Garbage/LyingCounts", handler(dnstest.Garbage(dnstest.LyingCounts)), "example.test", exitFailed, exitFailed},
		// The largest answers: the MX set is usable (the plan keeps 64
		// exchanges); the server has no SOA, so check cannot find the
		// zone's nameservers.
		{"Huge", handler(dnstest.Huge()), "example.test", exitOK, exitFailed},
		{"WrongID", zone(dnstest.WrongID()), "example.test", exitFailed, exitFailed},
		{"WrongIDThenRight", zone(dnstest.WrongIDThenRight()), "example.test", exitOK, exitOK},
		{"WrongQuestion/Name", zone(dnstest.WrongQuestion(dnstest.QuestionName)), "example.test", exitFailed, exitFailed},
		{"WrongQuestion/Type", zone(dnstest.WrongQuestion(dnstest.QuestionType)), "example.test", exitFailed, exitFailed},
		{"WrongQuestion/Class", zone(dnstest.WrongQuestion(dnstest.QuestionClass)), "example.test", exitFailed, exitFailed},
		{"NotResponse", zone(dnstest.NotResponse()), "example.test", exitFailed, exitFailed},
		{"FormErrOnEDNS", zone(dnstest.FormErrOnEDNS()), "example.test", exitOK, exitOK},
		{"AlwaysTruncated", zone(dnstest.AlwaysTruncated()), "example.test", exitOK, exitOK},
		{"AlwaysTruncated+BrokenTCP/CloseConn", zone(dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn)), "example.test", exitFailed, exitFailed},
		{"AlwaysTruncated+BrokenTCP/LengthOnly", zone(dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.LengthOnly)), "example.test", exitFailed, exitFailed},
		{"AlwaysTruncated+SlowTCP", zone(dnstest.AlwaysTruncated(), dnstest.SlowTCP(time.Second)), "example.test", exitFailed, exitFailed},
		{"CNAME to itself", zone(), "loop.example.test", exitFindings, exitFindings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := tc.server(t)
			for _, c := range []struct {
				args []string
				want int
			}{{[]string{"route"}, tc.route}, {[]string{"check", "--no-smtp", "--no-dnsbl"}, tc.check}} {
				// A failure shows in a second; an answer gets the time it
				// needs on a busy machine.
				timeout, failOn := "1s", "never"
				if c.want != exitFailed {
					timeout = "30s"
				}
				if c.want == exitFindings {
					failOn = "error"
				}
				args := append(c.args, "--resolver", srv.Addr, "--timeout", timeout, "--fail-on", failOn, tc.domain)
				if code, out, errOut := mxtrace(t, args...); code != c.want {
					t.Errorf("%s: exit %d, want %d\n%s%s", c.args[0], code, c.want, out, errOut)
				}
			}
		})
	}
}

// TestExitStatusEveryCommand: the failures that used to give 1 (or 0 at
// --fail-on never) on one path and 3 on another give 3 in every command
// that looks up a domain's MX records or its SPF policy.
func TestExitStatusEveryCommand(t *testing.T) {
	for name, srv := range map[string]*dnstest.Server{
		"SERVFAIL":                    dnstest.New(t, dnstest.Rcode(dns.RcodeServerFailure)),
		"NOTIMP":                      dnstest.New(t, dnstest.Rcode(dns.RcodeNotImplemented)),
		"TC, then TCP closes at once": dnstest.NewZone(t, hostileDNSZone, dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn)),
	} {
		for _, args := range [][]string{
			{"route", "example.test"},
			{"check", "--no-smtp", "--no-dnsbl", "example.test"},
			{"spf", "example.test", "--ip", "192.0.2.1"},
			{"probe", "example.test"},
			{"send", "--to", "postmaster@example.test"},
			{"scan", "--retries", "0", writeList(t, "example.test")},
		} {
			args = append(args, "--resolver", srv.Addr, "--timeout", "2s", "--fail-on", "never")
			if code, out, errOut := mxtrace(t, args...); code != exitFailed {
				t.Errorf("%s: %s: exit %d, want %d\n%s%s", name, args[0], code, exitFailed, out, errOut)
			}
		}
	}
}

// TestJobFailed: which errors mean the job could not be done, however
// deeply wrapped.
func TestJobFailed(t *testing.T) {
	lookup := func(err error) error {
		return fmt.Errorf("route x.example: %w: %w", route.ErrTemporary, &resolve.Error{Question: resolve.Q("x.example.", dns.TypeMX), Rcode: -1, Err: err})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{lookup(resolve.ErrTimeout), true},
		{lookup(resolve.ErrServerFailure), true},
		{lookup(fmt.Errorf("%w: FORMERR", resolve.ErrRcode)), true},
		{lookup(fmt.Errorf("%w: connection closed mid-reply", resolve.ErrBadResponse)), true},
		{lookup(resolve.ErrNotInZone), true},
		{errors.Join(errors.New("spf: lookup"), lookup(resolve.ErrRefused)), true},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{lookup(fmt.Errorf("%w at loop.example.", resolve.ErrCNAMELoop)), false},
		{lookup(resolve.ErrCNAMEChain), false},
		{fmt.Errorf("route x.example: %w", route.ErrMailLoop), false},
		{errors.New("spf: no SPF record"), false},
	} {
		if got := jobFailed(tc.err); got != tc.want {
			t.Errorf("jobFailed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestErrorLineAdvice: each way a lookup fails gets its advice.
func TestErrorLineAdvice(t *testing.T) {
	q := resolve.Q("d.test.", dns.TypeMX)
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, context.DeadlineExceeded)},
			"lookup d.test. MX: no answer from 192.0.2.53:53 before the time allowed ran out; allow more time with --timeout"},
		{fmt.Errorf("route d.test: %w: %w", route.ErrTemporary, &resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: dns.RcodeRefused, Err: resolve.ErrRefused}),
			"lookup d.test. MX: 192.0.2.53:53 refused to answer (REFUSED); name a resolver that answers for any domain with --resolver"},
		{&check.AreaError{Area: "DMARC", Err: &resolve.Error{Question: q, Server: "192.0.2.53:53", Rcode: -1, Err: fmt.Errorf("%w: x", resolve.ErrBadResponse)}},
			"could not check DMARC: lookup d.test. MX: 192.0.2.53:53 sent a malformed reply: x; the server, or something on the way, mangles DNS: try another with --resolver"},
		{fmt.Errorf("spf: %w", errors.New("dns: bad rdata")), "bad rdata"},
	} {
		if got := errorLine(tt.err); got != tt.want {
			t.Errorf("errorLine(%v)\n = %q\nwant %q", tt.err, got, tt.want)
		}
	}
}

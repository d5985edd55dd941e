// Package resolvetest holds what the tests of resolve's transports share:
// the zones the test servers serve, a stub with short time-outs, and a
// middleware that silences a server.
package resolvetest

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// Zones holds the names the resolver tests ask about: answers, aliases,
// loops, a wildcard, an empty non-terminal, a delegation and a second zone.
const Zones = `
$TTL 3600
$ORIGIN test.
@            SOA  ns.test. h.test. 7 7200 900 1209600 300
@            NS   ns.test.
ns           A    192.0.2.53
d            MX   10 mx.d.test.
d            MX   20 mx2.d.test.
mx.d         A    192.0.2.1
mx.d         A    192.0.2.3
mx.d         AAAA 2001:db8::1
txt.d        TXT  "only text"
alias        CNAME d.test.
chain        CNAME alias.test.
out          CNAME mx.other.example.
loop1        CNAME loop2.test.
loop2        CNAME loop1.test.
*.wild       MX   5 mx.d.test.
a.b.ent      A    192.0.2.9
sub          NS   ns.elsewhere.example.
into-other   CNAME host.other.test.
; a second zone in the same file, below the first
$ORIGIN other.test.
@            SOA  ns.test. h.test. 9 7200 900 1209600 60
host         A    192.0.2.77
`

// StubZone is served by the honest test servers: a normal answer, a set
// too big for 1232 octets (TCP fallback) and the negative cases.
func StubZone() string {
	var b strings.Builder
	b.WriteString(Zones)
	for i := range 80 {
		fmt.Fprintf(&b, "big.test. 300 IN A 198.51.100.%d\n", i+1)
	}
	return b.String()
}

// ShortTimeout keeps the tests that must time out quick; every wait is
// bounded by it times the attempts.
const ShortTimeout = 200 * time.Millisecond

// NewStub is a stub resolver for servers, with ShortTimeout unless cfg
// sets one.
func NewStub(t *testing.T, cfg stub.Config, servers ...*dnstest.Server) *stub.Stub {
	t.Helper()
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.Addr)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = ShortTimeout
	}
	s, err := stub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// MustRR parses one record in presentation form.
func MustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// ManyZone holds n names, n0.test. to n{n-1}.test., each with an A
// record encoding its number and a TXT record naming it, so every answer
// can be checked against its question.
func ManyZone(n int) string {
	var b strings.Builder
	b.WriteString(Zones)
	for i := range n {
		fmt.Fprintf(&b, "n%d.test. 300 IN A 10.%d.%d.%d\n", i, byte(i>>16), byte(i>>8), byte(i))
		fmt.Fprintf(&b, "n%d.test. 300 IN TXT \"n%d\"\n", i, i)
	}
	return b.String()
}

// CheckMany checks that a answers the question for name number i of
// ManyZone with its own record, and nothing else.
func CheckMany(a *resolve.Answer, i int, qtype uint16) error {
	name := fmt.Sprintf("n%d.test.", i)
	if a.Question != resolve.Q(name, qtype) || a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
		return fmt.Errorf("%s: answer for %v, rcode %d, %d records", name, a.Question, a.Rcode, len(a.Answer))
	}
	rr := a.Answer[0]
	if !strings.EqualFold(rr.Header().Name, name) {
		return fmt.Errorf("%s: record for %s", name, rr.Header().Name)
	}
	switch rr := rr.(type) {
	case *dns.A:
		if want := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)); !rr.A.Equal(want) {
			return fmt.Errorf("%s: A %v, want %v", name, rr.A, want)
		}
	case *dns.TXT:
		if len(rr.Txt) != 1 || rr.Txt[0] != name[:len(name)-len(".test.")] {
			return fmt.Errorf("%s: TXT %q", name, rr.Txt)
		}
	default:
		return fmt.Errorf("%s: unexpected %v", name, rr)
	}
	if qtype != rr.Header().Rrtype {
		return fmt.Errorf("%s: %s record for a %s question", name, dns.TypeToString[rr.Header().Rrtype], dns.TypeToString[qtype])
	}
	return nil
}

// Silenceable is a middleware that answers nothing while silent is set:
// a server whose host went quiet.
func Silenceable(silent *atomic.Bool) dnstest.Option {
	return dnstest.WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if !silent.Load() {
				next.ServeDNS(w, r)
			}
		})
	})
}

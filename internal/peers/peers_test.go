package peers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = `
$TTL 300
@     SOA ns hostmaster 1 7200 900 1209600 300
@     NS  ns
ns    A   192.0.2.53
@     MX  10 mx
mx    A   192.0.2.25
`

// query asks addr one question with RD set and the AD bit requested.
func query(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.AuthenticatedData = true
	m.SetEdns0(1232, true)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return r
}

func TestKnotAndUnbound(t *testing.T) {
	var knotPID, unboundPID int
	t.Run("run", func(t *testing.T) {
		k := StartKnot(t,
			Zone{Origin: "plain.test", Text: testZone},
			Zone{Origin: "signed.test.", Text: testZone, DNSSEC: Signed},
			Zone{Origin: "bogus.test.", Text: testZone, DNSSEC: Bogus},
		)
		knotPID = k.proc.cmd.Process.Pid
		if got := len(k.TrustAnchors()); got != 2 {
			t.Fatalf("TrustAnchors: got %d, want 2 (one per signed zone): %q", got, k.TrustAnchors())
		}
		u := StartUnbound(t, k.UnboundConfig())
		unboundPID = u.proc.cmd.Process.Pid

		// Knot itself answers authoritatively, signed zones with RRSIGs.
		r := query(t, k.Addr, "signed.test.", dns.TypeDNSKEY)
		if !r.Authoritative || len(r.Answer) < 2 {
			t.Errorf("knot DNSKEY signed.test.: aa=%v answer=%v", r.Authoritative, r.Answer)
		}

		tests := []struct {
			name  string
			qtype uint16
			rcode int
			ad    bool
			n     int // records of the asked type in the answer
		}{
			{"plain.test.", dns.TypeMX, dns.RcodeSuccess, false, 1},
			{"mx.plain.test.", dns.TypeA, dns.RcodeSuccess, false, 1},
			{"none.plain.test.", dns.TypeA, dns.RcodeNameError, false, 0},
			{"signed.test.", dns.TypeMX, dns.RcodeSuccess, true, 1},
			{"none.signed.test.", dns.TypeA, dns.RcodeNameError, true, 0},
			{"mx.signed.test.", dns.TypeTXT, dns.RcodeSuccess, true, 0}, // NODATA, proven by NSEC
			{"bogus.test.", dns.TypeMX, dns.RcodeServerFailure, false, 0},
			// Outside every zone: Knot refuses, so Unbound fails rather
			// than asking the Internet.
			{"example.com.", dns.TypeA, dns.RcodeServerFailure, false, 0},
		}
		for _, tc := range tests {
			r := query(t, u.Addr, tc.name, tc.qtype)
			n := 0
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == tc.qtype {
					n++
				}
			}
			if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad || n != tc.n {
				t.Errorf("unbound %s %s: rcode %s ad %v %d records, want %s ad %v %d records\n%v",
					tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], r.AuthenticatedData, n,
					dns.RcodeToString[tc.rcode], tc.ad, tc.n, r)
			}
		}
	})
	// The subtest's cleanup stopped both servers by PID.
	for name, pid := range map[string]int{"knotd": knotPID, "unbound": unboundPID} {
		if pid == 0 {
			continue // skipped
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s pid %d still exists after cleanup (kill 0: %v)", name, pid, err)
		}
	}
}

// recTB records Skip and Fatal instead of ending the goroutine.
type recTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recTB) Helper()                      {}
func (r *recTB) Skip(args ...any)             { r.skipped, r.msg = true, fmt.Sprint(args...) }
func (r *recTB) Fatalf(f string, args ...any) { r.failed = true }

func TestBinaryMissing(t *testing.T) {
	const missing = "mxtrace-no-such-program"
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recTB{TB: t}
		if got := Binary(r, missing, "nothing"); got != "" {
			t.Errorf("CI=%q: Binary returned %q for a missing program", ci, got)
		}
		if ci == "true" && (!r.failed || r.skipped) {
			t.Errorf("CI=true: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
		}
		if ci == "" && (r.failed || !r.skipped || !strings.Contains(r.msg, "apt-get install nothing")) {
			t.Errorf("CI unset: failed=%v skipped=%v msg=%q, want a skip naming the package", r.failed, r.skipped, r.msg)
		}
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

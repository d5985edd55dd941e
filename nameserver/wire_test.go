package nameserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
)

// world is what the recursive resolver sees: the zone with its NS set and
// the servers' addresses, all on loopback.
const world = `
$ORIGIN example.test.
@    3600 IN SOA ns1 hostmaster 2026010101 3600 600 86400 300
@    NS  ns1
@    NS  ns2
@    NS  ns3
@    MX  10 mx1
mx1  A   192.0.2.10
www  A   192.0.2.20
ns1  A   127.0.0.2
ns2  A   127.0.0.3
ns3  A   127.0.0.4
$ORIGIN other.test.
@    3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
alias CNAME example.test.
`

// served is the zone the authoritative servers serve by default: the same
// data as world's example.test.
const served = `
$ORIGIN example.test.
@    3600 IN SOA ns1 hostmaster 2026010101 3600 600 86400 300
@    NS  ns1
@    NS  ns2
@    NS  ns3
@    MX  10 mx1
mx1  A   192.0.2.10
www  A   192.0.2.20
ns1  A   127.0.0.2
ns2  A   127.0.0.3
ns3  A   127.0.0.4
`

func zones(t testing.TB, text string) *resolve.Zones {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(text), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// authoritative serves text like an authoritative server.
func authoritative(t *testing.T, text string) dns.Handler {
	t.Helper()
	return dnstest.Authoritative(zones(t, text))
}

// rewrite wraps h and lets f change every reply before it is sent.
func rewrite(h dns.Handler, f func(*dns.Msg)) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		h.ServeDNS(rewriter{w, f}, r)
	})
}

type rewriter struct {
	dns.ResponseWriter
	f func(*dns.Msg)
}

func (w rewriter) WriteMsg(m *dns.Msg) error {
	w.f(m)
	return w.ResponseWriter.WriteMsg(m)
}

// noAA answers like h, without the AA bit: a cache or a recursive server
// listed as authoritative.
func noAA(h dns.Handler) dns.Handler {
	return rewrite(h, func(m *dns.Msg) { m.Authoritative = false })
}

// upward answers every question with a referral to the root, as old
// servers do for zones they do not hold.
func upward() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := dnstest.Reply(r)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: "a.root-servers.net."}}
		w.WriteMsg(m) //nolint:errcheck
	})
}

// delegating answers like h, except for names at or below child, which get
// a referral to ns.child.
func delegating(h dns.Handler, child string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if len(r.Question) == 1 && dns.IsSubDomain(child, r.Question[0].Name) {
			m := dnstest.Reply(r)
			m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: child, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: "ns." + child}}
			w.WriteMsg(m) //nolint:errcheck
			return
		}
		h.ServeDNS(w, r)
	})
}

// silent never answers.
func silent() dns.Handler { return dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}) }

// serveAll starts one server per address, UDP and TCP, all on the same
// port (as real nameservers share port 53), and returns the port. Servers
// stop when the test ends.
func serveAll(t *testing.T, handlers map[string]dns.Handler) uint16 {
	t.Helper()
	addrs := make([]string, 0, len(handlers))
	for a := range handlers {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for range 20 {
		var pcs []net.PacketConn
		var ls []net.Listener
		closeAll := func() {
			for _, pc := range pcs {
				pc.Close()
			}
			for _, l := range ls {
				l.Close()
			}
		}
		port := uint16(0)
		ok := true
		for _, a := range addrs {
			ap := netip.AddrPortFrom(netip.MustParseAddr(a), port).String()
			pc, err := net.ListenPacket("udp", ap)
			if err != nil {
				ok = false
				break
			}
			pcs = append(pcs, pc)
			port = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
			l, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(a), port).String())
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		if !ok {
			closeAll()
			continue
		}
		var servers []*dns.Server
		var started sync.WaitGroup
		for i, a := range addrs {
			for _, s := range []*dns.Server{
				{PacketConn: pcs[i], Handler: handlers[a]},
				{Listener: ls[i], Handler: handlers[a]},
			} {
				started.Add(1)
				s.NotifyStartedFunc = started.Done
				servers = append(servers, s)
				go s.ActivateAndServe() //nolint:errcheck // ends at Shutdown
			}
		}
		started.Wait()
		t.Cleanup(func() {
			for _, s := range servers {
				s.Shutdown() //nolint:errcheck
			}
		})
		return port
	}
	t.Fatal("no port free on every address")
	return 0
}

// testDirect asks with a generous deadline (the test machine may be
// loaded), except at the addresses in silent, which are known not to
// answer and get a short one.
type testDirect struct{ silent []string }

func (d testDirect) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	sd := StubDirect{Timeout: 5 * time.Second, Attempts: 1}
	if slices.Contains(d.silent, server.Addr().String()) {
		sd.Timeout = 300 * time.Millisecond
	}
	return sd.Ask(ctx, server, q)
}

// findingKeys lists "id subject" for the findings whose ID starts with
// prefix, sorted.
func findingKeys(rep *Result, prefix string) []string {
	var out []string
	for _, f := range Findings(rep) {
		if strings.HasPrefix(string(f.ID), prefix) {
			out = append(out, string(f.ID)+" "+f.Subject)
		}
	}
	slices.Sort(out)
	return out
}

func TestAuditWire(t *testing.T) {
	t.Parallel()
	const (
		ns1 = "ns1.example.test (127.0.0.2)"
		ns2 = "ns2.example.test (127.0.0.3)"
		ns3 = "ns3.example.test (127.0.0.4)"
	)
	for _, tt := range []struct {
		name     string
		world    string // "" means world
		domain   string // "" means example.test
		handlers func(t *testing.T) map[string]dns.Handler
		silent   []string // addresses that never answer
		want     []string // ns-* findings, "id subject"
		check    func(t *testing.T, rep *Result)
	}{
		{
			name: "consistent",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, served)}
			},
			check: func(t *testing.T, rep *Result) {
				if rep.Apex != "example.test" || len(rep.Servers) != 3 {
					t.Errorf("apex %q, %d servers; want example.test and 3", rep.Apex, len(rep.Servers))
				}
				for _, s := range rep.Servers {
					for _, a := range s.Addresses {
						if a.MX.Status != StatusOK || a.SOA.Status != StatusOK || a.SOA.Serial == nil || *a.SOA.Serial != 2026010101 ||
							!slices.Equal(a.MX.Records, []string{"MX 10 mx1.example.test"}) {
							t.Errorf("%s %s: MX %+v, SOA %+v", s.Name, a.Address, a.MX, a.SOA)
						}
					}
				}
			},
		},
		{
			name: "MX order does not matter",
			handlers: func(t *testing.T) map[string]dns.Handler {
				two := strings.Replace(served, "@    MX  10 mx1", "@ MX 10 mx1\n@ MX 20 mx2", 1)
				rev := strings.Replace(served, "@    MX  10 mx1", "@ MX 20 mx2\n@ MX 10 mx1", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, two), "127.0.0.3": authoritative(t, rev), "127.0.0.4": authoritative(t, two)}
			},
		},
		{
			name: "mismatched MX",
			handlers: func(t *testing.T) map[string]dns.Handler {
				old := strings.Replace(served, "MX  10 mx1", "MX  10 old-mx", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, old), "127.0.0.4": authoritative(t, served)}
			},
			want: []string{"ns-inconsistent " + ns2},
			check: func(t *testing.T, rep *Result) {
				msg := Findings(rep)[slices.IndexFunc(Findings(rep), func(f finding.Finding) bool { return f.ID == "ns-inconsistent" })].Message
				for _, s := range []string{"MX 10 old-mx.example.test", "MX 10 mx1.example.test", ns1, ns3, ns2} {
					if !strings.Contains(msg, s) {
						t.Errorf("message %q does not name %q", msg, s)
					}
				}
			},
		},
		{
			name: "NODATA against MX",
			handlers: func(t *testing.T) map[string]dns.Handler {
				none := strings.Replace(served, "@    MX  10 mx1", "", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, none)}
			},
			want: []string{"ns-inconsistent " + ns3},
		},
		{
			name: "mismatched serial",
			handlers: func(t *testing.T) map[string]dns.Handler {
				old := strings.Replace(served, "2026010101", "2025123101", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, old)}
			},
			want: []string{"ns-serial-mismatch " + ns3},
			check: func(t *testing.T, rep *Result) {
				msg := Findings(rep)[slices.IndexFunc(Findings(rep), func(f finding.Finding) bool { return f.ID == "ns-serial-mismatch" })].Message
				if !strings.Contains(msg, "2025123101, behind serial 2026010101") {
					t.Errorf("message %q", msg)
				}
			},
		},
		{
			name: "newest serial on one server only",
			handlers: func(t *testing.T) map[string]dns.Handler {
				old := strings.Replace(served, "2026010101", "2025123101", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, old), "127.0.0.4": authoritative(t, old)}
			},
			want: []string{"ns-serial-mismatch " + ns2, "ns-serial-mismatch " + ns3},
		},
		{
			name: "serial wraps around (RFC 1982)",
			handlers: func(t *testing.T) map[string]dns.Handler {
				wrapped := strings.Replace(served, "2026010101", "5", 1)
				old := strings.Replace(served, "2026010101", "4294967290", 1)
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, wrapped), "127.0.0.3": authoritative(t, old), "127.0.0.4": authoritative(t, wrapped)}
			},
			want: []string{"ns-serial-mismatch " + ns2},
		},
		{
			name: "nothing listens",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served)}
			},
			want: []string{"ns-unreachable " + ns3},
		},
		{
			name: "no reply",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": silent(), "127.0.0.4": authoritative(t, served)}
			},
			silent: []string{"127.0.0.3"},
			want:   []string{"ns-unreachable " + ns2},
			check: func(t *testing.T, rep *Result) {
				if a := rep.Servers[1].Addresses[0]; a.MX.Status != StatusUnreachable || !strings.Contains(a.MX.Reason, "deadline") {
					t.Errorf("ns2 MX reply %+v", a.MX)
				}
			},
		},
		{
			name: "REFUSED",
			handlers: func(t *testing.T) map[string]dns.Handler {
				other := "other.test. 3600 IN SOA ns1.other.test. h.other.test. 1 3600 600 86400 300\n"
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, other)}
			},
			want: []string{"ns-lame " + ns3},
			check: func(t *testing.T, rep *Result) {
				if a := rep.Servers[2].Addresses[0]; a.SOA.Rcode != "REFUSED" {
					t.Errorf("ns3 SOA reply %+v", a.SOA)
				}
			},
		},
		{
			name: "SERVFAIL",
			handlers: func(t *testing.T) map[string]dns.Handler {
				fail := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
					m := dnstest.Reply(r)
					m.Rcode = dns.RcodeServerFailure
					w.WriteMsg(m) //nolint:errcheck
				})
				return map[string]dns.Handler{"127.0.0.2": fail, "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, served)}
			},
			want: []string{"ns-lame " + ns1},
		},
		{
			name: "no AA bit",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": noAA(authoritative(t, served)), "127.0.0.4": authoritative(t, served)}
			},
			want: []string{"ns-lame " + ns2},
		},
		{
			name: "upward referral",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": upward()}
			},
			want: []string{"ns-lame " + ns3},
		},
		{
			name: "served from another zone",
			handlers: func(t *testing.T) map[string]dns.Handler {
				// The server holds the parent zone "test." only, with no
				// delegation: it answers NXDOMAIN from "test.".
				parent := "test. 3600 IN SOA ns.test. h.test. 1 3600 600 86400 300\n"
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, parent)}
			},
			want: []string{"ns-lame " + ns3},
		},
		{
			name:   "downward referral is compared, not lame",
			domain: "www.example.test",
			handlers: func(t *testing.T) map[string]dns.Handler {
				h := authoritative(t, served)
				return map[string]dns.Handler{"127.0.0.2": h, "127.0.0.3": delegating(h, "www.example.test."), "127.0.0.4": h}
			},
			want: []string{"ns-inconsistent " + ns2},
			check: func(t *testing.T, rep *Result) {
				if rep.Apex != "example.test" || rep.Name != "www.example.test" {
					t.Errorf("apex %q name %q", rep.Apex, rep.Name)
				}
				if a := rep.Servers[1].Addresses[0]; a.MX.Status != StatusReferral || a.MX.Referral != "www.example.test" {
					t.Errorf("ns2 MX reply %+v", a.MX)
				}
			},
		},
		{
			name:  "NS name does not exist",
			world: strings.Replace(world, "@    NS  ns3", "@    NS  ns3\n@    NS  ns4", 1),
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, served)}
			},
			want: []string{"ns-unreachable ns4.example.test"},
		},
		{
			name:  "dual-stack server lame on both addresses",
			world: strings.Replace(world, "ns1  A   127.0.0.2", "ns1  A   127.0.0.2\nns1 AAAA ::1", 1),
			handlers: func(t *testing.T) map[string]dns.Handler {
				lame := noAA(authoritative(t, served))
				return map[string]dns.Handler{"127.0.0.2": lame, "::1": lame, "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, served)}
			},
			want: []string{"ns-lame ns1.example.test (127.0.0.2, ::1)"},
		},
		{
			name:   "alias to the zone",
			domain: "alias.other.test",
			handlers: func(t *testing.T) map[string]dns.Handler {
				return map[string]dns.Handler{"127.0.0.2": authoritative(t, served), "127.0.0.3": authoritative(t, served), "127.0.0.4": authoritative(t, served)}
			},
			check: func(t *testing.T, rep *Result) {
				if rep.Apex != "example.test" || rep.Name != "example.test" || !slices.Equal(rep.AliasChain, []string{"example.test"}) {
					t.Errorf("apex %q name %q chain %q", rep.Apex, rep.Name, rep.AliasChain)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := tt.world
			if w == "" {
				w = world
			}
			port := serveAll(t, tt.handlers(t))
			r, opts := zones(t, w), Options{Direct: testDirect{silent: tt.silent}, Port: port}
			domain := cmpOr(tt.domain, "example.test")
			rep, err := Lookup(t.Context(), r, dnsname.MustParse(domain), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := findingKeys(rep, "ns-"); !slices.Equal(got, tt.want) {
				t.Errorf("findings %q, want %q\n%+v", got, tt.want, Findings(rep))
			}
			if tt.check != nil {
				tt.check(t, rep)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestAuditWireTruncated checks the TCP fallback: an MX set too large for
// a UDP reply is still compared.
func TestAuditWireTruncated(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(served)
	for i := range 120 {
		b.WriteString("@ MX " + string(rune('0'+i%10)) + " mx-with-a-rather-long-name-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "\n")
	}
	big := b.String()
	h := authoritative(t, big)
	port := serveAll(t, map[string]dns.Handler{"127.0.0.2": h, "127.0.0.3": h, "127.0.0.4": h})
	r, opts := zones(t, world), Options{Direct: testDirect{}, Port: port}
	rep, err := Lookup(t.Context(), r, dnsname.MustParse("example.test"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := findingKeys(rep, "ns-"); len(got) > 0 {
		t.Errorf("findings %q", got)
	}
	if n := len(rep.Servers[0].Addresses[0].MX.Records); n != 121 {
		t.Errorf("%d MX records compared, want 121", n)
	}
}

// TestAuditCancelled checks that silence after the caller gave up is an
// error, not ns-unreachable.
func TestAuditCancelled(t *testing.T) {
	t.Parallel()
	port := serveAll(t, map[string]dns.Handler{"127.0.0.2": silent(), "127.0.0.3": silent(), "127.0.0.4": silent()})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	r, opts := zones(t, world), Options{Direct: StubDirect{Timeout: 5 * time.Second, Attempts: 1}, Port: port}
	rep, err := Lookup(ctx, r, dnsname.MustParse("example.test"), opts)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's", err)
	}
	if got := findingKeys(rep, ""); len(got) > 0 {
		t.Errorf("findings %q after cancellation", got)
	}
}

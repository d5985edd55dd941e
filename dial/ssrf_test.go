package dial_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// The SSRF tests run inside a network namespace that TestSSRF creates:
// it holds only its own loopback interface, which also carries publicAddr,
// so even a policy that failed would send nothing off the machine, and a
// "public" address can be listened on. TestSSRF re-executes the test
// binary there with netnsEnv set, running TestSSRFInNamespace.
const (
	netnsEnv   = "MXTRACE_SSRF_NETNS"
	publicAddr = "9.9.9.9" // globally reachable (Quad9), local to the namespace only
)

// TestSSRF creates the namespace and runs TestSSRFInNamespace in it. It
// needs root and iproute2's ip: without them it skips, and fails when
// CI=true.
func TestSSRF(t *testing.T) {
	if os.Getenv(netnsEnv) != "" {
		t.Skip("inside the namespace: TestSSRFInNamespace runs")
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	ip, err := exec.LookPath("ip")
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
		if err != nil {
			ip, err = exec.LookPath(p)
		}
	}
	if err != nil {
		unavailable("the SSRF tests need iproute2's ip: %v", err)
	}
	if os.Geteuid() != 0 {
		unavailable("the SSRF tests create a network namespace, which needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("mxtrace-ssrf-%d", os.Getpid())
	run := func(args ...string) error {
		out, err := exec.CommandContext(t.Context(), ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", ns); err != nil {
		unavailable("cannot create a network namespace: %v", err)
	}
	// "ip netns exec" mounts /etc/netns/NAME/resolv.conf over
	// /etc/resolv.conf: the system resolver inside asks the test's DNS
	// server on 127.0.0.1:53.
	etc := "/etc/netns/" + ns
	t.Cleanup(func() {
		if err := exec.Command(ip, "netns", "del", ns).Run(); err != nil {
			t.Errorf("ip netns del %s: %v", ns, err)
		}
		os.RemoveAll(etc)
	})
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(etc+"/resolv.conf", []byte("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The public address goes on the namespace's own loopback interface:
	// a dummy link would do the same, but needs a kernel module that
	// containers often lack.
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", publicAddr + "/32", "dev", "lo"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, self, "-test.run", "^TestSSRFInNamespace$", "-test.v", "-test.count=1", "-test.timeout=150s")
	cmd.Env = append(os.Environ(), netnsEnv+"=1", "GODEBUG=netdns=go")
	out, err := cmd.CombinedOutput()
	t.Logf("inside %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("the tests inside the namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestSSRFInNamespace") {
		t.Fatal("TestSSRFInNamespace did not run inside the namespace")
	}
}

// TestSSRFInNamespace is the body of TestSSRF, run inside its namespace.
func TestSSRFInNamespace(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		t.Skip("runs inside the network namespace TestSSRF creates")
	}
	t.Run("every refused range", testEveryRange)
	t.Run("rebinding", testRebinding)
	t.Run("IPv4-mapped by name", testMappedByName)
}

// refused has one address in every range serve refuses, and every IPv6
// form that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
// well-known and local-use, 6to4, Teredo) of a private IPv4 address and of
// publicAddr, which the namespace answers at: each form is refused
// whatever it holds.
var refused = []string{
	"0.0.0.1", "10.1.2.3", "100.64.0.1", "127.0.0.1", "127.1.2.3", "169.254.169.254",
	"172.16.0.1", "192.0.0.1", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1",
	"198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
	"::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:9.9.9.9", "::127.0.0.1", "::9.9.9.9",
	"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::909:909",
	"64:ff9b:1::7f00:1", "64:ff9b:1::909:909",
	"100::1", "2001::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f6f6:f6f6",
	"2001:2::1", "2001:20::1",
	"2001:db8::1", "2002:7f00:1::1", "2002:a00:1::1", "2002:c0a8:101::1", "2002:909:909::1", "3fff::1", "5f00::1",
	"fc00::1", "fd00::25", "fe80::1", "fec0::1", "ff02::1", "4000::1",
}

// counter accepts TCP connections and UDP datagrams on every address of
// the namespace and counts them by local address.
type counter struct {
	port uint16
	mu   sync.Mutex
	by   map[netip.Addr]int
}

func (c *counter) hit(a net.Addr) {
	ap, _ := netip.ParseAddrPort(a.String())
	c.mu.Lock()
	c.by[ap.Addr().Unmap()]++
	c.mu.Unlock()
}

// total is every connection or datagram received; at, those at one local
// address.
func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.by {
		n += v
	}
	return n
}

func (c *counter) at(a string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[netip.MustParseAddr(a)]
}

// listenCounter listens on TCP (and UDP when udp) on one port of every
// address; greeting, when set, is written to each connection.
func listenCounter(t *testing.T, udp bool, greeting string) *counter {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &counter{port: uint16(ln.Addr().(*net.TCPAddr).Port), by: map[netip.Addr]int{}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.hit(conn.LocalAddr())
			if greeting != "" {
				conn.SetDeadline(time.Now().Add(time.Second))
				conn.Write([]byte(greeting))
			}
			conn.Close()
		}
	}()
	if udp {
		pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", c.port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				// The local address of a datagram is not known here: a
				// datagram counts as one to the unspecified address.
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				c.hit(pc.LocalAddr())
			}
		}()
	}
	return c
}

// portDialer sends every connection to the same host on another port
// through d, whose policy sees the real address.
type portDialer struct {
	d    dial.Dialer
	port uint16
}

func (p portDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return p.d.DialContext(ctx, network, net.JoinHostPort(host, fmt.Sprint(p.port)))
}

// ports are the listeners an audit's connections would reach.
type ports struct{ smtp, https, dns *counter }

// auditor wires a check as serve wires it: one dial.Net with the policy
// for the SMTP probe and the MTA-STS fetch, and the same policy on the
// nameserver audit, with the listeners' ports in place of 25, 443 and 53.
func auditor(r resolve.Resolver, policy *dial.Policy, p ports) *check.Auditor {
	d := &dial.Net{Policy: policy, Timeout: 2 * time.Second}
	return &check.Auditor{
		Resolver: r,
		Planner:  &route.Planner{Resolver: r},
		Nameservers: &nameserver.Options{
			Policy: policy, Port: p.dns.port,
			Direct: nameserver.StubDirect{Timeout: 300 * time.Millisecond, Attempts: 1},
		},
		MTASTS: &mtasts.Options{Fetcher: &mtasts.Fetcher{Resolver: r, Dialer: portDialer{d, p.https.port}, Timeout: 5 * time.Second}},
		Probe: &probe.Prober{
			Port: int(p.smtp.port), HelloName: "ssrf.example.test", Dialer: d,
			Timeouts: dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: time.Second, Command: time.Second, TLSHandshake: time.Second},
		},
		SkipReason: "not part of the SSRF test",
	}
}

// everyZone is one domain per refused address: its exchange, its MTA-STS
// policy host and its nameserver all have that address.
func everyZone() (string, []dnsname.Name) {
	var b strings.Builder
	var names []dnsname.Name
	for i, a := range refused {
		typ := "A"
		if strings.Contains(a, ":") {
			typ = "AAAA"
		}
		name := fmt.Sprintf("r%d.test", i)
		names = append(names, dnsname.MustParse(name))
		fmt.Fprintf(&b, `$ORIGIN %s.
@        3600 IN SOA ns hostmaster 1 3600 600 86400 300
@        NS  ns
@        MX  10 mx
_mta-sts TXT "v=STSv1; id=1"
mx       %[2]s %[3]s
mta-sts  %[2]s %[3]s
ns       %[2]s %[3]s
`, name, typ, a)
	}
	return b.String(), names
}

// testEveryRange: zones whose MX, MTA-STS policy host and NS records point
// into every refused range; a check wired as serve wires it connects to
// none of them (the listeners on every local address count zero), and
// each refused target is a finding in a judged area, never an error.
func testEveryRange(t *testing.T) {
	text, names := everyZone()
	zones, err := resolve.ParseZones(strings.NewReader(text), "every")
	if err != nil {
		t.Fatal(err)
	}
	p := ports{
		smtp:  listenCounter(t, false, "554 counted\r\n"),
		https: listenCounter(t, false, ""),
		dns:   listenCounter(t, true, ""),
	}
	a := auditor(zones, &dial.Policy{}, p)
	for i, d := range names {
		r := a.Audit(t.Context(), d)
		if errs := r.Errors(); len(errs) > 0 {
			t.Errorf("%s (%s): areas not judged: %v", d, refused[i], errs)
		}
		var got []finding.ID
		for _, f := range r.Findings {
			got = append(got, f.ID)
		}
		for _, id := range []finding.ID{finding.SMTPTargetRefused, finding.MTASTSRefused, finding.NSTargetRefused} {
			if !slices.Contains(got, id) {
				t.Errorf("%s (%s): no %s in %v", d, refused[i], id, got)
			}
		}
		for _, id := range []finding.ID{finding.SMTPUnreachable, finding.MTASTSUnreachable, finding.NSUnreachable} {
			if slices.Contains(got, id) {
				t.Errorf("%s (%s): %s: a refused target is not a broken one", d, refused[i], id)
			}
		}
		for _, f := range r.Findings {
			if (f.ID == finding.SMTPTargetRefused || f.ID == finding.MTASTSRefused || f.ID == finding.NSTargetRefused) &&
				(f.Severity != finding.Info || !strings.Contains(f.Message, "is not a public address (")) {
				t.Errorf("%s: %s %s %q", d, f.ID, f.Severity, f.Message)
			}
		}
	}
	if n, m, k := p.smtp.total(), p.https.total(), p.dns.total(); n+m+k != 0 {
		t.Errorf("connections reached the listeners: SMTP %d, HTTPS %d, DNS %d", n, m, k)
	}

	// The listeners do count: the same audit allowed private addresses
	// reaches all three at 127.0.0.1.
	a = auditor(zones, &dial.Policy{AllowPrivate: true}, p)
	a.Audit(t.Context(), names[slices.Index(refused, "127.0.0.1")])
	if p.smtp.total() == 0 || p.https.total() == 0 || p.dns.total() == 0 {
		t.Errorf("with AllowPrivate: SMTP %d, HTTPS %d, DNS %d connections, want some of each", p.smtp.total(), p.https.total(), p.dns.total())
	}
}

// rebinder is an authoritative server for rebind.test whose A records
// change: the first question for a name gets publicAddr, every later one
// 127.0.0.1, all with TTL 0 (DNS rebinding).
type rebinder struct {
	mu   sync.Mutex
	seen map[string]int
	asks atomic.Int32
}

func (h *rebinder) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	h.asks.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	soa := rr("rebind.test. 0 IN SOA ns.rebind.test. hostmaster.rebind.test. 1 3600 600 86400 0")
	switch {
	case !dns.IsSubDomain("rebind.test.", name):
		m.Rcode = dns.RcodeRefused
	case name == "rebind.test." && q.Qtype == dns.TypeMX:
		m.Answer = append(m.Answer, rr("rebind.test. 0 IN MX 10 mx1.rebind.test."))
	case name == "rebind.test." && q.Qtype == dns.TypeSOA:
		m.Answer = append(m.Answer, soa)
	case name == "rebind.test." && q.Qtype == dns.TypeNS:
		m.Answer = append(m.Answer, rr("rebind.test. 0 IN NS ns.rebind.test."))
	case name == "_mta-sts.rebind.test." && q.Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, rr(`_mta-sts.rebind.test. 0 IN TXT "v=STSv1; id=1"`))
	case slices.Contains([]string{"mx1.rebind.test.", "mx2.rebind.test.", "mta-sts.rebind.test.", "mta-sts.again.rebind.test."}, name):
		if q.Qtype == dns.TypeA {
			h.mu.Lock()
			h.seen[name]++
			first := h.seen[name] == 1
			h.mu.Unlock()
			a := "127.0.0.1"
			if first {
				a = publicAddr
			}
			m.Answer = append(m.Answer, rr(name+" 0 IN A "+a))
		} else {
			m.Ns = append(m.Ns, soa)
		}
	case name == "mapped.rebind.test." && q.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, rr(name+" 0 IN AAAA ::ffff:"+publicAddr))
	case name == "ns.rebind.test." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, rr("ns.rebind.test. 0 IN A 127.0.0.1"))
	case name == "rebind.test." || name == "ns.rebind.test." || name == "mapped.rebind.test.":
		m.Ns = append(m.Ns, soa)
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, soa)
	}
	w.WriteMsg(m)
}

// startDNS serves h on 127.0.0.1:53 over UDP and TCP, the server the
// namespace's resolv.conf names.
func startDNS(t *testing.T, h dns.Handler) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: "127.0.0.1:53", Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("DNS server on %s 127.0.0.1:53: %v", network, err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
}

// testRebinding: a name that resolves to a public address first and to
// 127.0.0.1 on the next question (TTL 0). A check made before connecting
// sees the public address; the connection, which resolves again (in
// dial.Net, which checks each address it will dial, and Control again),
// is refused, and the loopback listeners count no connection. The audit itself connects to the address
// its plan holds, the public one.
func testRebinding(t *testing.T) {
	h := &rebinder{seen: map[string]int{}}
	startDNS(t, h)
	p := ports{
		smtp:  listenCounter(t, false, "554 counted\r\n"),
		https: listenCounter(t, false, ""),
		dns:   listenCounter(t, true, ""),
	}
	r, err := stub.New(stub.Config{Servers: []string{"127.0.0.1:53"}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	policy := &dial.Policy{}
	ctx := t.Context()

	// The audit, wired as serve wires it: the plan's first answer is
	// public, and the probe and the policy fetch connect to that address,
	// never to the loopback one a second question would give.
	rep := auditor(r, policy, p).Audit(ctx, "rebind.test")
	if p.smtp.at(publicAddr) != 1 || p.https.at(publicAddr) != 1 {
		t.Errorf("the audit's connections to %s: SMTP %d, HTTPS %d, want 1 each (%v)", publicAddr, p.smtp.at(publicAddr), p.https.at(publicAddr), rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.ID == finding.SMTPTargetRefused || f.ID == finding.MTASTSRefused || f.ID == finding.MXTargetPrivate {
			t.Errorf("the public address was refused: %s %s", f.ID, f.Message)
		}
	}

	// Connecting by name: the system resolver (resolv.conf: 127.0.0.1)
	// first says the name is public, then, at connect time, loopback.
	d := &dial.Net{Policy: policy, Timeout: 2 * time.Second}
	for _, name := range []string{"mx2.rebind.test", "mta-sts.again.rebind.test"} {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
		if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr(publicAddr) {
			t.Fatalf("first lookup of %s: %v %v, want %s", name, addrs, err, publicAddr)
		}
	}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("mx2.rebind.test", fmt.Sprint(p.smtp.port)))
	if c != nil {
		c.Close()
	}
	fe, ok := errors.AsType[*dial.ForbiddenError](err)
	if !ok || fe.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("dial mx2.rebind.test after rebinding: %v, want a ForbiddenError for 127.0.0.1", err)
	}
	// The MTA-STS fetch that leaves resolution to the dialer.
	f := &mtasts.Fetcher{Dialer: portDialer{d, p.https.port}, Timeout: 5 * time.Second}
	_, _, err = f.Fetch(ctx, "again.rebind.test")
	if fe, ok := errors.AsType[*mtasts.FetchError](err); !ok || fe.Stage != mtasts.StageForbidden || !errors.Is(err, dial.ErrForbidden) {
		t.Errorf("fetch after rebinding: %v, want the forbidden stage", err)
	}
	if n, m := p.smtp.at("127.0.0.1"), p.https.at("127.0.0.1"); n+m != 0 {
		t.Errorf("loopback listeners: SMTP %d, HTTPS %d connections, want 0", n, m)
	}

	// The rebinding was real: without the policy, the same name now
	// reaches the loopback listener.
	c, err = (&dial.Net{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort("mx2.rebind.test", fmt.Sprint(p.smtp.port)))
	if err != nil {
		t.Fatalf("without a policy: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.smtp.at("127.0.0.1") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.smtp.at("127.0.0.1") != 1 {
		t.Errorf("without a policy the loopback listener counted %d connections, want 1", p.smtp.at("127.0.0.1"))
	}
}

// testMappedByName: a name whose only address is an AAAA record of the
// IPv4-mapped publicAddr. Go would connect to it over an IPv4 socket, and
// Control would see publicAddr, a public address; dial.Net resolves the
// name itself and refuses the mapped form, so the listener at publicAddr
// counts nothing. Without the policy the same name does reach it.
func testMappedByName(t *testing.T) {
	startDNS(t, &rebinder{seen: map[string]int{}})
	smtp := listenCounter(t, false, "554 counted\r\n")
	ctx := t.Context()
	target := net.JoinHostPort("mapped.rebind.test", fmt.Sprint(smtp.port))
	d := &dial.Net{Policy: &dial.Policy{}, Timeout: 2 * time.Second}
	for _, address := range []string{target, net.JoinHostPort("::ffff:"+publicAddr, fmt.Sprint(smtp.port))} {
		c, err := d.DialContext(ctx, "tcp", address)
		if c != nil {
			c.Close()
		}
		fe, ok := errors.AsType[*dial.ForbiddenError](err)
		if !ok || fe.Embedding.Form != "IPv4-mapped" || fe.Embedding.Inner != netip.MustParseAddr(publicAddr) {
			t.Errorf("dial %s: %v, want a ForbiddenError for the IPv4-mapped form", address, err)
		}
	}
	if n := smtp.total(); n != 0 {
		t.Errorf("the listener counted %d connections, want 0", n)
	}
	c, err := (&dial.Net{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatalf("without a policy: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for smtp.at(publicAddr) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if smtp.at(publicAddr) != 1 {
		t.Errorf("without a policy the listener at %s counted %d connections, want 1", publicAddr, smtp.at(publicAddr))
	}
}

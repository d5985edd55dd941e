package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Stub is a zone Unbound resolves by asking the given servers directly
// (unbound.conf(5) stub-zone) instead of walking down from the root.
type Stub struct {
	Zone  string   // e.g. "example." or "."
	Addrs []string // "127.0.0.1:PORT"
}

// UnboundConfig is what StartUnbound needs. Build it with
// Knot.UnboundConfig and adjust it.
type UnboundConfig struct {
	// Stubs must include "." so that no query can go to the Internet's
	// root servers: Unbound has no other root hints in this setup.
	Stubs []Stub
	// TrustAnchors are DS or DNSKEY records in presentation format
	// (RFC 4035 §4.4); zones below none of them are insecure.
	TrustAnchors []string
	// Verbosity is Unbound's log verbosity (0–5); 0 means 1.
	Verbosity int
}

// Unbound is a running, validating, recursive unbound.
type Unbound struct {
	Addr string // "127.0.0.1:PORT", for UDP and TCP
	Port int
	Dir  string // configuration and log

	proc *process
}

// StartUnbound writes an unbound configuration into a temporary directory
// and starts a recursive, DNSSEC-validating unbound in the foreground on
// 127.0.0.1 at a free port, without privilege drop, chroot or remote
// control, and waits until it answers. It is killed by its PID when the
// test ends.
//
// A missing unbound skips the test (fails it under CI=true); any other
// failure fails the test with unbound's log.
func StartUnbound(tb testing.TB, cfg UnboundConfig) *Unbound {
	tb.Helper()
	bin := Binary(tb, "unbound", "unbound")
	root := false
	for _, s := range cfg.Stubs {
		root = root || dns.CanonicalName(s.Zone) == "."
	}
	if !root {
		tb.Fatal(`peers: UnboundConfig.Stubs has no stub for ".": unbound would ask the Internet's root servers`)
	}
	dir, err := workDir(tb, "unbound")
	if err != nil {
		tb.Fatal(err)
	}
	u := &Unbound{Dir: dir}
	for attempt := 1; ; attempt++ {
		err = u.start(tb, bin, cfg, attempt)
		if err == nil {
			return u
		}
		if attempt == startAttempts || !errors.Is(err, ErrPeerExited) && !errors.Is(err, ErrPeerNotReady) {
			tb.Fatalf("peers: unbound: %v", err)
		}
		tb.Logf("peers: unbound did not start on port %d (%v); retrying on another port", u.Port, err)
	}
}

// start is one attempt to start unbound on a fresh port.
func (u *Unbound) start(tb testing.TB, bin string, cfg UnboundConfig, attempt int) error {
	tb.Helper()
	port, err := FreePort()
	if err != nil {
		return err
	}
	u.Port, u.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	text, err := u.config(cfg)
	if err != nil {
		return err
	}
	conf := filepath.Join(u.Dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	logPath := filepath.Join(u.Dir, fmt.Sprintf("unbound.%d.log", attempt))
	p, err := startProcess("unbound", logPath, bin, "-d", "-p", "-c", conf)
	if err != nil {
		return err
	}
	manage(tb, p)
	u.proc = p
	if err := waitReady(p, u.ready); err != nil {
		_ = p.stop()
		return err
	}
	return nil
}

// ready asks for localhost., which Unbound answers from its built-in local
// zone (RFC 6761 §6.3) without asking anyone.
func (u *Unbound) ready(ctx context.Context) error {
	r, err := exchange(ctx, "udp", u.Addr, "localhost.", dns.TypeA, true)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("localhost. A: %s", dns.RcodeToString[r.Rcode])
	}
	return nil
}

// config renders unbound.conf (unbound.conf(5), Unbound 1.17).
func (u *Unbound) config(cfg UnboundConfig) (string, error) {
	if err := quotable(u.Dir); err != nil {
		return "", err
	}
	verbosity := cfg.Verbosity
	if verbosity <= 0 {
		verbosity = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# written by mxtrace internal/peers
server:
    verbosity: %[4]d
    interface: 127.0.0.1@%[2]d
    port: %[2]d
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    so-reuseport: no
    outgoing-range: 64
    directory: %[1]s
    pidfile: %[3]s
    username: ""
    chroot: ""
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    log-servfail: yes
    val-log-level: 2
    # Every name is answered by a stub below; the loopback servers must be
    # queried, and nothing else is.
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-signaling: no
    root-key-sentinel: no
    prefetch: no
    minimal-responses: yes
`, quote(u.Dir), u.Port, quote(filepath.Join(u.Dir, "unbound.pid")), verbosity)
	for _, ta := range cfg.TrustAnchors {
		rr, err := dns.NewRR(ta)
		if err != nil || rr == nil {
			return "", fmt.Errorf("peers: trust anchor %q: %v", ta, err)
		}
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
		default:
			return "", fmt.Errorf("peers: trust anchor %q is neither DS nor DNSKEY", ta)
		}
		// RFC 4035 §4.4: the configured trust anchor starts the chain.
		s := strings.Join(strings.Fields(rr.String()), " ")
		if err := quotable(s); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    trust-anchor: %s\n", quote(s))
	}
	local, err := localZones(cfg.Stubs)
	if err != nil {
		return "", err
	}
	for _, l := range local {
		fmt.Fprintf(&b, "    local-zone: %s\n", l)
	}
	b.WriteString("\nremote-control:\n    control-enable: no\n")
	for _, s := range cfg.Stubs {
		zone := dns.CanonicalName(s.Zone)
		if err := quotable(zone); err != nil {
			return "", err
		}
		if len(s.Addrs) == 0 {
			return "", fmt.Errorf("peers: stub %s has no address", zone)
		}
		fmt.Fprintf(&b, "\nstub-zone:\n    name: %s\n", quote(zone))
		for _, a := range s.Addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				return "", fmt.Errorf("peers: stub %s address: %w", zone, err)
			}
			fmt.Fprintf(&b, "    stub-addr: %s@%s\n", host, port)
		}
	}
	return b.String(), nil
}

// defaultLocalZones are Unbound's built-in local zones (unbound.conf(5),
// "default zone contents") that tests may serve from Knot: RFC 6761
// special-use names and the reverse zones of private and documentation
// ranges. Unbound answers them itself unless told otherwise.
var defaultLocalZones = func() []string {
	zs := []string{
		"test.", "invalid.", "onion.", "home.arpa.",
		"10.in-addr.arpa.", "168.192.in-addr.arpa.", "254.169.in-addr.arpa.",
		"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
		"d.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
	}
	for i := 16; i <= 31; i++ {
		zs = append(zs, fmt.Sprintf("%d.172.in-addr.arpa.", i))
	}
	return zs
}()

// localZones returns the local-zone clauses that let the stubs be
// resolved: "nodefault" for a stub zone and for a built-in local zone below
// one (other than the root), "transparent" for the names above a stub, so
// a built-in zone such as test. does not shadow a stub such as
// signed.test. (unbound.conf(5) stub-zone: "local-zone: name nodefault").
func localZones(stubs []Stub) ([]string, error) {
	kind := map[string]string{}
	var order []string
	set := func(name, k string) {
		if _, ok := kind[name]; !ok {
			order = append(order, name)
		}
		if kind[name] != "nodefault" {
			kind[name] = k
		}
	}
	for _, s := range stubs {
		zone := dns.CanonicalName(s.Zone)
		if zone == "." {
			continue
		}
		set(zone, "nodefault")
		labels := dns.SplitDomainName(zone)
		for i := 1; i < len(labels); i++ {
			set(dns.Fqdn(strings.Join(labels[i:], ".")), "transparent")
		}
		for _, d := range defaultLocalZones {
			if dns.IsSubDomain(zone, d) {
				set(d, "nodefault")
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, name := range order {
		if err := quotable(name); err != nil {
			return nil, err
		}
		out = append(out, quote(name)+" "+kind[name])
	}
	return out, nil
}

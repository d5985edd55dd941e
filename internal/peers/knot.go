package peers

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// DNSSEC says how Knot serves a zone and what trust anchor it hands out.
type DNSSEC int

// DNSSEC modes.
const (
	// Unsigned: served as written.
	Unsigned DNSSEC = iota
	// Signed: Knot signs the zone (automatic signing, one ECDSA P-256 CSK,
	// NSEC) and TrustAnchors returns the DS of its key, so a validating
	// resolver answers with AD=1 (RFC 4035 §3.2.3).
	Signed
	// Bogus: Knot signs the zone like Signed, but TrustAnchors returns the
	// DS of a key the zone does not have, so a validating resolver finds
	// every answer bogus and returns SERVFAIL (RFC 4035 §5.5).
	Bogus
)

// Zone is one zone for Knot to serve.
type Zone struct {
	Origin string // the apex, e.g. "example." (a trailing dot is added)
	Text   string // zone-file text (RFC 1035 §5); relative names are relative to Origin
	DNSSEC DNSSEC
}

// Knot is a running knotd.
type Knot struct {
	Addr string // "127.0.0.1:PORT" (or StartKnotAt's address), for UDP and TCP
	Port int
	Dir  string // configuration, zone files, key database, log

	zones     []Zone
	anchors   map[string][]string // origin → DS records in presentation format
	proc      *process
	host      netip.Addr
	fixedPort int        // 0: a free port per attempt
	tb        testing.TB // the test knotd lives as long as, restarts included
	ns        *Netns     // nil: the machine's own network
}

// StartKnot writes a knotd configuration serving zones into a temporary
// directory, starts knotd in the foreground on 127.0.0.1 at a free port,
// and waits until every zone answers its SOA, and every signed zone its
// signed DNSKEY set. knotd is killed by its PID when the test ends.
//
// A missing knotd skips the test (fails it under CI=true); any other
// failure fails the test with knotd's log.
func StartKnot(tb testing.TB, zones ...Zone) *Knot {
	tb.Helper()
	return StartKnotAt(tb, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), zones...)
}

// StartKnotAt is StartKnot listening on addr, a loopback address. A zero
// port picks a free one; a fixed port lets two servers of one zone share a
// port on different addresses, the way a zone's nameservers all answer on
// 53, so a resolver or an audit can be pointed at both with one port.
func StartKnotAt(tb testing.TB, addr netip.AddrPort, zones ...Zone) *Knot {
	tb.Helper()
	return StartKnotIn(tb, nil, addr, zones...)
}

// StartKnotIn is StartKnotAt in the network namespace ns (nil: the
// machine's own network), listening on addr, one of ns's addresses; port
// 53 makes it the namespace's resolver (Netns.SetResolver) for programs
// that ask the C library.
func StartKnotIn(tb testing.TB, ns *Netns, addr netip.AddrPort, zones ...Zone) *Knot {
	tb.Helper()
	if !addr.Addr().IsLoopback() && !ns.Holds(addr.Addr()) {
		tb.Fatalf("peers: knotd must listen on loopback or in its namespace, not %s", addr.Addr())
	}
	bin := Binary(tb, "knotd", "knot")
	if len(zones) == 0 {
		tb.Fatal("peers: StartKnot needs at least one zone")
	}
	for i := range zones {
		zones[i].Origin = dns.CanonicalName(zones[i].Origin)
		if _, ok := dns.IsDomainName(zones[i].Origin); !ok || quotable(zones[i].Origin) != nil {
			tb.Fatalf("peers: bad zone origin %q", zones[i].Origin)
		}
	}
	dir, err := workDir(tb, "knot")
	if err != nil {
		tb.Fatal(err)
	}
	k := &Knot{Dir: dir, zones: zones, host: addr.Addr(), fixedPort: int(addr.Port()), tb: tb, ns: ns}
	for attempt := 1; ; attempt++ {
		err = k.start(tb, bin, attempt)
		if err == nil {
			break
		}
		if attempt == startAttempts || k.fixedPort != 0 || !errors.Is(err, ErrPeerExited) && !errors.Is(err, ErrPeerNotReady) {
			tb.Fatalf("peers: knotd: %v", err)
		}
		tb.Logf("peers: knotd did not start on port %d (%v); retrying on another port", k.Port, err)
	}
	return k
}

// start is one attempt to start knotd on a fresh port.
func (k *Knot) start(tb testing.TB, bin string, attempt int) error {
	tb.Helper()
	port := k.fixedPort
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return err
		}
	}
	k.Port, k.Addr = port, net.JoinHostPort(k.host.String(), strconv.Itoa(port))
	conf := filepath.Join(k.Dir, "knot.conf")
	text, err := k.config()
	if err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	logPath := filepath.Join(k.Dir, fmt.Sprintf("knotd.%d.log", attempt))
	p, err := startCmd("knotd", logPath, k.ns.command(bin, "-c", conf), nil)
	if err != nil {
		return err
	}
	manage(tb, p)
	k.proc = p
	if err := waitReady(p, k.ready); err != nil {
		_ = p.stop()
		return err
	}
	return k.readAnchors()
}

// config renders knot.conf (knot.conf(5), Knot 3.x).
func (k *Knot) config() (string, error) {
	var b strings.Builder
	if err := quotable(k.Dir); err != nil {
		return "", err
	}
	fmt.Fprintf(&b, `# written by mxtrace internal/peers
server:
    rundir: %[1]s
    pidfile: %[2]s
    listen: %[5]s@%[3]d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: %[4]s

database:
    storage: %[1]s
    kasp-db-max-size: 64M
    timer-db-max-size: 16M
    journal-db-max-size: 64M

log:
  - target: stderr
    any: info

policy:
  - id: mxtrace
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: off
    ksk-lifetime: 0
    zsk-lifetime: 0

template:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none

zone:
`, quote(k.Dir), quote(filepath.Join(k.Dir, "knot.pid")), k.Port, quote(filepath.Join(k.Dir, "knot.sock")), k.host)
	for i, z := range k.zones {
		file := filepath.Join(k.Dir, fmt.Sprintf("zone%d.zone", i))
		text := "$ORIGIN " + z.Origin + "\n" + z.Text
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("peers: %w", err)
		}
		fmt.Fprintf(&b, "  - domain: %s\n    file: %s\n", quote(z.Origin), quote(file))
		if z.DNSSEC != Unsigned {
			b.WriteString("    dnssec-signing: on\n    dnssec-policy: mxtrace\n")
		}
	}
	return b.String(), nil
}

// ready checks that every zone is loaded: its SOA is answered
// authoritatively, and a signed zone serves a signed DNSKEY set with a
// secure entry point (RFC 4034 §2.1.1).
func (k *Knot) ready(ctx context.Context) error {
	for _, z := range k.zones {
		r, err := k.exchange(ctx, "udp", z.Origin, dns.TypeSOA)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			return fmt.Errorf("%s SOA: rcode %s, aa %v, %d records", z.Origin, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		}
		if z.DNSSEC == Unsigned {
			continue
		}
		keys, sigs, err := k.dnskeys(ctx, z.Origin)
		if err != nil {
			return err
		}
		if len(keys) == 0 || sigs == 0 {
			return fmt.Errorf("%s is not signed yet (%d keys, %d signatures)", z.Origin, len(keys), sigs)
		}
	}
	return nil
}

// exchange asks knotd one non-recursive question, from inside its
// namespace.
func (k *Knot) exchange(ctx context.Context, network, name string, qtype uint16) (*dns.Msg, error) {
	var r *dns.Msg
	err := k.ns.Do(func() error {
		var err error
		r, err = exchange(ctx, network, k.Addr, name, qtype, false)
		return err
	})
	return r, err
}

// dnskeys fetches the zone's key-signing keys (SEP flag) over TCP, and
// counts the signatures over the DNSKEY set.
func (k *Knot) dnskeys(ctx context.Context, origin string) (ksks []*dns.DNSKEY, sigs int, err error) {
	r, err := k.exchange(ctx, "tcp", origin, dns.TypeDNSKEY)
	if err != nil {
		return nil, 0, err
	}
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.DNSKEY:
			if rr.Flags&dns.SEP != 0 {
				ksks = append(ksks, rr)
			}
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeDNSKEY {
				sigs++
			}
		}
	}
	return ksks, sigs, nil
}

// readAnchors computes the trust anchor of every signed zone: the SHA-256
// DS of its key-signing keys (RFC 4509), or for a Bogus zone the DS of a
// key it does not have.
func (k *Knot) readAnchors() error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	k.anchors = map[string][]string{}
	for _, z := range k.zones {
		switch z.DNSSEC {
		case Signed:
			keys, _, err := k.dnskeys(ctx, z.Origin)
			if err != nil {
				return fmt.Errorf("peers: DNSKEY %s: %w", z.Origin, err)
			}
			for _, key := range keys {
				k.anchors[z.Origin] = append(k.anchors[z.Origin], key.ToDS(dns.SHA256).String())
			}
		case Bogus:
			ds, err := foreignDS(z.Origin)
			if err != nil {
				return err
			}
			k.anchors[z.Origin] = []string{ds}
		}
	}
	return nil
}

// foreignDS makes a fresh ECDSA P-256 key for origin that no server has and
// returns its DS: a trust anchor that matches nothing in the zone.
func foreignDS(origin string) (string, error) {
	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     dns.ZONE | dns.SEP,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		return "", fmt.Errorf("peers: generate key: %w", err)
	}
	if _, ok := priv.(*ecdsa.PrivateKey); !ok {
		return "", fmt.Errorf("peers: unexpected key type %T", priv)
	}
	return key.ToDS(dns.SHA256).String(), nil
}

// Zones returns the zones Knot serves, origins canonical.
func (k *Knot) Zones() []Zone { return append([]Zone(nil), k.zones...) }

// TrustAnchors returns the DS records (presentation format) a validating
// resolver should trust for the signed zones: the real ones for Signed
// zones, mismatching ones for Bogus zones.
func (k *Knot) TrustAnchors() []string {
	var out []string
	for _, z := range k.zones {
		out = append(out, k.anchors[z.Origin]...)
	}
	return out
}

// UnboundConfig returns an Unbound configuration that resolves every zone
// of k, and the root, through k, trusting k's signed zones: every query
// Unbound makes goes to this Knot, never to the Internet.
func (k *Knot) UnboundConfig() UnboundConfig {
	cfg := UnboundConfig{TrustAnchors: k.TrustAnchors()}
	root := false
	for _, z := range k.zones {
		cfg.Stubs = append(cfg.Stubs, Stub{Zone: z.Origin, Addrs: []string{k.Addr}})
		root = root || z.Origin == "."
	}
	if !root {
		cfg.Stubs = append(cfg.Stubs, Stub{Zone: ".", Addrs: []string{k.Addr}})
	}
	return cfg
}

// SetZone replaces the text of the zone origin (one of the zones k was
// started with) and makes knotd load it (knotc zone-reload), then waits
// until knotd serves the new SOA serial: a test changes a zone between two
// runs the way its operator would. The new text must raise the serial
// (RFC 1982), or the wait cannot tell the new zone from the old one.
func (k *Knot) SetZone(tb testing.TB, origin, text string) {
	tb.Helper()
	origin = dns.CanonicalName(origin)
	i := slices.IndexFunc(k.zones, func(z Zone) bool { return z.Origin == origin })
	if i < 0 {
		tb.Fatalf("peers: knotd does not serve %s", origin)
	}
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	rr, _ := zp.Next()
	soa, ok := rr.(*dns.SOA)
	if !ok {
		tb.Fatalf("peers: the new text of %s does not start with its SOA (%v)", origin, zp.Err())
	}
	k.zones[i].Text = text
	file := filepath.Join(k.Dir, fmt.Sprintf("zone%d.zone", i))
	if err := os.WriteFile(file, []byte("$ORIGIN "+origin+"\n"+text), 0o644); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	ctl := Binary(tb, "knotc", "knot")
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ctl, "-s", filepath.Join(k.Dir, "knot.sock"), "zone-reload", origin).CombinedOutput(); err != nil {
		tb.Fatalf("peers: knotc zone-reload %s: %v\n%s", origin, err, out)
	}
	err := waitReady(k.proc, func(ctx context.Context) error {
		r, err := k.exchange(ctx, "udp", origin, dns.TypeSOA)
		if err != nil {
			return err
		}
		if len(r.Answer) == 0 {
			return fmt.Errorf("%s SOA: rcode %s, no answer", origin, dns.RcodeToString[r.Rcode])
		}
		if got, ok := r.Answer[0].(*dns.SOA); !ok || got.Serial != soa.Serial {
			return fmt.Errorf("%s still serves %v, not serial %d", origin, r.Answer[0], soa.Serial)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("peers: knotd: %v", err)
	}
}

// Stop stops knotd by its PID and waits for it: its address stops
// answering, as a nameserver that went down. Start brings it back.
func (k *Knot) Stop(tb testing.TB) {
	tb.Helper()
	if err := k.proc.stop(); err != nil {
		tb.Fatal(err)
	}
}

// Start starts a stopped knotd again on the same address and port, with
// its zones as they were last set, and waits until it answers. It is
// stopped when the test that started it first ends, not tb.
func (k *Knot) Start(tb testing.TB) {
	tb.Helper()
	if !k.proc.exited() {
		tb.Fatal("peers: knotd is running")
	}
	fixed := k.fixedPort
	k.fixedPort = k.Port
	defer func() { k.fixedPort = fixed }()
	if err := k.start(k.tb, Binary(tb, "knotd", "knot"), 1); err != nil {
		tb.Fatalf("peers: knotd: %v", err)
	}
}

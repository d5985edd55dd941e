package nameserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// zoneDirect is a fake Direct: each address answers from its own zones;
// addresses it does not hold time out. It records the ports asked.
type zoneDirect struct {
	servers map[netip.Addr]resolve.Resolver
	mu      sync.Mutex
	ports   map[uint16]bool
}

func newZoneDirect(servers map[string]resolve.Resolver) *zoneDirect {
	d := &zoneDirect{servers: map[netip.Addr]resolve.Resolver{}, ports: map[uint16]bool{}}
	for a, r := range servers {
		d.servers[netip.MustParseAddr(a)] = r
	}
	return d
}

func (d *zoneDirect) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	d.mu.Lock()
	d.ports[server.Port()] = true
	d.mu.Unlock()
	r, ok := d.servers[server.Addr()]
	if !ok {
		return nil, &resolve.Error{Question: q, Server: server.String(), Rcode: -1, Err: resolve.ErrTimeout}
	}
	return r.Lookup(ctx, q)
}

// sameZone is a zoneDirect where 127.0.0.2–4 all serve text.
func sameZone(t testing.TB, text string) *zoneDirect {
	t.Helper()
	z := zones(t, text)
	return newZoneDirect(map[string]resolve.Resolver{"127.0.0.2": z, "127.0.0.3": z, "127.0.0.4": z})
}

// fake wraps a recursive resolver: it counts questions, fails some, strips
// authority sections, and plays a validating resolver.
type fake struct {
	next resolve.Resolver
	// fail returns the error for a question, or nil to answer it.
	fail func(q resolve.Question) error
	// strip removes the authority section (a resolver with minimal
	// responses that drops the negative answer's SOA).
	strip bool
	// ad sets the AD bit on every answer.
	ad bool

	mu    sync.Mutex
	asked map[resolve.Question]int
}

func (f *fake) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	f.mu.Lock()
	if f.asked == nil {
		f.asked = map[resolve.Question]int{}
	}
	f.asked[q]++
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(q); err != nil {
			return nil, err
		}
	}
	a, err := f.next.Lookup(ctx, q)
	if err != nil {
		return nil, err
	}
	c := *a
	if f.strip {
		c.Authority = nil
	}
	c.AD = f.ad
	return &c, nil
}

func (f *fake) count(name string, t uint16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[resolve.Q(name, t)]
}

func servfail(q resolve.Question) error {
	return &resolve.Error{Question: q, Server: "fake", Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
}

// below fails every question at or below name with SERVFAIL, as a
// validating resolver does for a bogus zone.
func below(name string) func(resolve.Question) error {
	return func(q resolve.Question) error {
		if dns.IsSubDomain(name, q.Name) {
			return servfail(q)
		}
		return nil
	}
}

func only(name string, qtype uint16) func(resolve.Question) error {
	return func(q resolve.Question) error {
		if q == resolve.Q(name, qtype) {
			return servfail(q)
		}
		return nil
	}
}

func TestZoneCut(t *testing.T) {
	t.Parallel()
	deep := world + "\n$ORIGIN example.test.\nsub.www TXT \"x\"\n"
	loop := world + "\n$ORIGIN other.test.\nl1 CNAME l2\nl2 CNAME l1\n"
	for _, tt := range []struct {
		name, domain string
		world        string
		strip        bool
		fail         func(resolve.Question) error
		apex, canon  string
		chain        []string
		nx           bool
		err          error // wanted with errors.Is; nil: success
	}{
		{name: "apex", domain: "example.test", apex: "example.test", canon: "example.test"},
		{name: "below the apex", domain: "www.example.test", apex: "example.test", canon: "www.example.test"},
		{name: "missing name", domain: "nope.example.test", apex: "example.test", canon: "nope.example.test", nx: true},
		{name: "alias into another zone", domain: "alias.other.test", apex: "example.test", canon: "example.test", chain: []string{"example.test"}},
		{name: "no SOA in negative answers", domain: "www.example.test", strip: true, apex: "example.test", canon: "www.example.test"},
		{name: "walk up several labels", domain: "a.b.sub.www.example.test", world: deep, strip: true, apex: "example.test", canon: "a.b.sub.www.example.test", nx: true},
		{name: "SERVFAIL", domain: "example.test", fail: only("example.test.", dns.TypeSOA), err: resolve.ErrServerFailure},
		{name: "SERVFAIL while walking up", domain: "www.example.test", strip: true, fail: only("example.test.", dns.TypeSOA), err: resolve.ErrServerFailure},
		{name: "alias loop", domain: "l1.other.test", world: loop, err: resolve.ErrCNAMELoop},
		{name: "outside every zone", domain: "example.invalid", err: resolve.ErrNotInZone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := cmpOr(tt.world, world)
			r, opts := &fake{next: zones(t, w), strip: tt.strip, fail: tt.fail}, Options{Direct: sameZone(t, served)}
			rep, err := Lookup(t.Context(), r, dnsname.MustParse(tt.domain), opts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				if len(Findings(rep)) > 0 {
					t.Errorf("findings after a failed lookup: %+v", Findings(rep))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Apex != tt.apex || rep.Name != tt.canon || rep.NXDomain != tt.nx || !slices.Equal(rep.AliasChain, append([]string{}, tt.chain...)) {
				t.Errorf("apex %q name %q nx %v chain %q; want %q %q %v %q", rep.Apex, rep.Name, rep.NXDomain, rep.AliasChain, tt.apex, tt.canon, tt.nx, tt.chain)
			}
			if got := findingKeys(rep, "ns-"); len(got) > 0 {
				t.Errorf("findings %q", got)
			}
		})
	}
}

func TestZoneCutNoSOA(t *testing.T) {
	t.Parallel()
	// A resolver that answers NODATA without an SOA for everything.
	empty := resolverFunc(func(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
		return &resolve.Answer{Question: q, Rcode: dns.RcodeSuccess}, nil
	})
	r, opts := empty, Options{Direct: sameZone(t, served)}
	_, err := Lookup(t.Context(), r, dnsname.MustParse("a.b.example.test"), opts)
	if !errors.Is(err, ErrNoZoneCut) {
		t.Fatalf("error %v, want ErrNoZoneCut", err)
	}
	long := strings.Repeat("a.", 40) + "example.test"
	if _, err := Lookup(t.Context(), r, dnsname.MustParse(long), opts); !errors.Is(err, ErrNoZoneCut) || !strings.Contains(err.Error(), "walked up") {
		t.Fatalf("error %v, want the walk bounded", err)
	}
}

type resolverFunc func(context.Context, resolve.Question) (*resolve.Answer, error)

func (f resolverFunc) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	return f(ctx, q)
}

func TestNSLookup(t *testing.T) {
	t.Parallel()
	t.Run("asked once at an apex", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, world)}
		d := sameZone(t, served)
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("example.test"), Options{Direct: d})
		if err != nil {
			t.Fatal(err)
		}
		if n := f.count("example.test.", dns.TypeNS); n != 1 {
			t.Errorf("NS asked %d times, want 1", n)
		}
		if len(rep.Servers) != 3 || rep.Servers[0].Name != "ns1.example.test" {
			t.Errorf("servers %+v", rep.Servers)
		}
		if !slices.Equal(mapKeys(d.ports), []uint16{53}) {
			t.Errorf("ports asked %v, want 53", mapKeys(d.ports))
		}
	})
	t.Run("asked at the apex below it", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, world)}
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("www.example.test"), Options{Direct: sameZone(t, served), Port: 5353})
		if err != nil {
			t.Fatal(err)
		}
		if n := f.count("example.test.", dns.TypeNS); n != 1 || len(rep.Servers) != 3 {
			t.Errorf("NS at the apex asked %d times, %d servers", n, len(rep.Servers))
		}
	})
	t.Run("NS failure is an error", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, world), fail: only("example.test.", dns.TypeNS)}
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("www.example.test"), Options{Direct: sameZone(t, served)})
		if !errors.Is(err, resolve.ErrServerFailure) || len(Findings(rep)) > 0 || rep.Apex != "example.test" {
			t.Errorf("error %v, findings %+v, apex %q", err, Findings(rep), rep.Apex)
		}
	})
	t.Run("no NS records", func(t *testing.T) {
		t.Parallel()
		bare := "example.test. 3600 IN SOA ns1.example.test. h.example.test. 1 3600 600 86400 300\n"
		rep, err := Lookup(t.Context(), zones(t, bare), dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served)})
		if err != nil || len(rep.Servers) != 0 || len(rep.Notes) != 1 || len(findingKeys(rep, "ns-")) > 0 {
			t.Errorf("error %v, servers %+v, notes %q, findings %+v", err, rep.Servers, rep.Notes, Findings(rep))
		}
	})
	t.Run("one address lookup fails", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, world), fail: only("ns2.example.test.", dns.TypeA)}
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served)})
		if err != nil {
			t.Fatal(err)
		}
		if got := findingKeys(rep, "ns-"); len(got) > 0 {
			t.Errorf("findings %q: a temporary failure claims nothing", got)
		}
		if len(rep.Servers[1].Addresses) != 0 || !strings.Contains(rep.Servers[1].Problem, "A lookup failed") || len(rep.Notes) == 0 {
			t.Errorf("ns2 %+v, notes %q", rep.Servers[1], rep.Notes)
		}
		if len(rep.Servers[0].Addresses) != 1 {
			t.Errorf("ns1 not asked: %+v", rep.Servers[0])
		}
	})
	t.Run("every address lookup fails", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, world), fail: func(q resolve.Question) error {
			if strings.HasPrefix(q.Name, "ns") {
				return servfail(q)
			}
			return nil
		}}
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served)})
		if !errors.Is(err, ErrNoAddresses) || !errors.Is(err, resolve.ErrServerFailure) || len(findingKeys(rep, "ns-")) > 0 {
			t.Errorf("error %v, findings %+v", err, Findings(rep))
		}
	})
}

func mapKeys[K comparable](m map[K]bool) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBounds(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(world)
	b.WriteString("$ORIGIN example.test.\n")
	for i := range 20 {
		fmt.Fprintf(&b, "@ NS extra%02d\nextra%02d A 127.0.1.%d\n", i, i, i+1)
	}
	for i := range 6 {
		fmt.Fprintf(&b, "ns1 A 127.0.2.%d\n", i+1)
	}
	rep, err := Lookup(t.Context(), zones(t, b.String()), dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served), MaxServers: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Servers) != 16 || rep.ServersOmitted != 7 {
		t.Errorf("%d servers, %d omitted; want 16 and 7", len(rep.Servers), rep.ServersOmitted)
	}
	// Sorted: extra00…extra15 come first, ns1 is cut.
	if rep.Servers[0].Name != "extra00.example.test" || rep.Servers[15].Name != "extra15.example.test" {
		t.Errorf("servers %q … %q", rep.Servers[0].Name, rep.Servers[15].Name)
	}
	rep, err = Lookup(t.Context(), zones(t, b.String()), dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served), MaxServers: 100})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Servers, func(s Server) bool { return s.Name == "ns1.example.test" })
	if s := rep.Servers[i]; len(s.Addresses) != DefaultMaxAddresses || s.AddressesOmitted != 3 {
		t.Errorf("ns1: %d addresses asked, %d omitted; want %d and 3", len(s.Addresses), s.AddressesOmitted, DefaultMaxAddresses)
	}
}

func TestFamilies(t *testing.T) {
	t.Parallel()
	w := strings.Replace(world, "ns3  A   127.0.0.4", "ns3  AAAA ::1", 1)
	t.Run("IPv4 only", func(t *testing.T) {
		t.Parallel()
		f := &fake{next: zones(t, w)}
		rep, err := Lookup(t.Context(), f, dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served), IPv4: true})
		if err != nil {
			t.Fatal(err)
		}
		if f.count("ns1.example.test.", dns.TypeAAAA) != 0 {
			t.Error("AAAA asked with IPv4 only")
		}
		if got := findingKeys(rep, "ns-"); len(got) > 0 {
			t.Errorf("findings %q for a server without IPv4 when IPv6 was not asked", got)
		}
		if !strings.Contains(rep.Servers[2].Problem, "no IPv4 address") {
			t.Errorf("ns3 problem %q", rep.Servers[2].Problem)
		}
	})
	t.Run("both", func(t *testing.T) {
		t.Parallel()
		d := sameZone(t, served)
		d.servers[netip.MustParseAddr("::1")] = zones(t, served)
		rep, err := Lookup(t.Context(), zones(t, w), dnsname.MustParse("example.test"), Options{Direct: d})
		if err != nil {
			t.Fatal(err)
		}
		if got := findingKeys(rep, "ns-"); len(got) > 0 || rep.Servers[2].Addresses[0].Address != netip.MustParseAddr("::1") {
			t.Errorf("findings %q, ns3 %+v", got, rep.Servers[2])
		}
	})
	t.Run("no address at all", func(t *testing.T) {
		t.Parallel()
		none := strings.Replace(world, "ns3  A   127.0.0.4", "ns3 TXT \"no address\"", 1)
		rep, err := Lookup(t.Context(), zones(t, none), dnsname.MustParse("example.test"), Options{Direct: sameZone(t, served)})
		if err != nil {
			t.Fatal(err)
		}
		if got := findingKeys(rep, "ns-"); !slices.Equal(got, []string{"ns-unreachable ns3.example.test"}) {
			t.Errorf("findings %q", got)
		}
	})
}

// askLog is a Direct that records every address it is asked to send to.
type askLog struct {
	next  Direct
	mu    sync.Mutex
	asked []netip.Addr
}

func (d *askLog) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	d.mu.Lock()
	d.asked = append(d.asked, server.Addr())
	d.mu.Unlock()
	return d.next.Ask(ctx, server, q)
}

// TestPolicy: with a policy that refuses non-public addresses (serve's),
// the loopback servers are never asked and are ns-target-refused, naming
// the range; the public one is asked and judged as usual.
func TestPolicy(t *testing.T) {
	t.Parallel()
	const public = "9.9.9.9"
	z := zones(t, served)
	d := &askLog{next: newZoneDirect(map[string]resolve.Resolver{"127.0.0.2": z, "127.0.0.3": z, public: z})}
	r := zones(t, strings.Replace(world, "ns3  A   127.0.0.4", "ns3  A   "+public, 1))
	rep, err := Lookup(t.Context(), r, dnsname.MustParse("example.test"), Options{Direct: d, Policy: &dial.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr(public), netip.MustParseAddr(public)}; !slices.Equal(d.asked, want) {
		t.Errorf("asked %v, want only %s (MX and SOA)", d.asked, public)
	}
	want := []string{"ns-target-refused ns1.example.test (127.0.0.2)", "ns-target-refused ns2.example.test (127.0.0.3)"}
	if got := findingKeys(rep, "ns-"); !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	for _, f := range Findings(rep) {
		if f.ID == finding.NSTargetRefused && (f.Severity != finding.Info || !strings.Contains(f.Message, "127.0.0.2 is not a public address (loopback, RFC 1122)") && !strings.Contains(f.Message, "127.0.0.3 is not a public address (loopback, RFC 1122)")) {
			t.Errorf("%s: %s %q", f.Subject, f.Severity, f.Message)
		}
	}
	if a := rep.Servers[0].Addresses; len(a) != 1 || a[0].MX.Status != StatusNotAllowed || a[0].SOA.Status != StatusNotAllowed {
		t.Errorf("ns1 %+v", a)
	}

	// Every server refused: the audit is judged (no error), with one
	// finding per server.
	d = &askLog{next: sameZone(t, served)}
	rep, err = Lookup(t.Context(), zones(t, world), dnsname.MustParse("example.test"), Options{Direct: d, Policy: &dial.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.asked) != 0 {
		t.Errorf("asked %v", d.asked)
	}
	if got := findingKeys(rep, "ns-"); len(got) != 3 || !strings.HasPrefix(got[2], "ns-target-refused ns3") {
		t.Errorf("findings %q", got)
	}
	// AllowPrivate asks them all.
	d = &askLog{next: sameZone(t, served)}
	if _, err := Lookup(t.Context(), zones(t, world), dnsname.MustParse("example.test"), Options{Direct: d, Policy: &dial.Policy{AllowPrivate: true}}); err != nil || len(d.asked) != 6 {
		t.Errorf("AllowPrivate: %v, asked %v", err, d.asked)
	}
}

func TestDNSSEC(t *testing.T) {
	t.Parallel()
	const (
		ds     = "example.test. 3600 IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
		dnskey = "example.test. 3600 IN DNSKEY 257 3 13 AwEAAcw5QLr0Xkz1Sbbq1fHfxQ==\n"
	)
	for _, tt := range []struct {
		name    string
		world   string
		ad      bool
		fail    func(resolve.Question) error // of the resolver without CD
		noCD    bool                         // no CD resolver
		state   DNSSECState
		want    []string // dnssec-* findings
		inMsg   string
		inNote  string
		wantErr error
	}{
		{name: "unsigned", state: DNSSECUnsigned, want: []string{"dnssec-unsigned example.test"}, inMsg: "no DS record"},
		{name: "DNSKEY without DS", world: world + dnskey, state: DNSSECUnsigned, want: []string{"dnssec-unsigned example.test"}, inMsg: "publishes DNSKEY records"},
		{name: "secure through DS", world: world + ds + dnskey, ad: true, state: DNSSECSecure},
		{name: "secure through a trust anchor", world: world + dnskey, ad: true, state: DNSSECSecure},
		{name: "DS but no AD", world: world + ds + dnskey, state: DNSSECUnknown, inNote: "does not validate"},
		{name: "bogus", world: world + ds + dnskey, fail: below("example.test."), state: DNSSECBogus,
			want: []string{"dnssec-bogus example.test"}, inMsg: "example.test SOA"},
		{name: "bogus MX only", world: world + ds + dnskey, ad: true, fail: only("example.test.", dns.TypeMX), state: DNSSECBogus,
			want: []string{"dnssec-bogus example.test"}, inMsg: "example.test MX"},
		{name: "bogus without a CD resolver", world: world + ds + dnskey, fail: below("example.test."), noCD: true, wantErr: resolve.ErrServerFailure},
		{name: "MX SERVFAIL without a CD resolver", world: world + ds, fail: only("example.test.", dns.TypeMX), noCD: true, state: DNSSECUnknown, inNote: "CD bit"},
		{name: "DS lookup fails", fail: only("example.test.", dns.TypeDS), noCD: true, state: DNSSECUnknown, inNote: "DS lookup"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := zones(t, cmpOr(tt.world, world))
			r, opts := &fake{next: z, ad: tt.ad, fail: tt.fail}, Options{Direct: sameZone(t, served)}
			if !tt.noCD {
				opts.CDResolver = z
			}
			rep, err := Lookup(t.Context(), r, dnsname.MustParse("example.test"), opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || len(Findings(rep)) > 0 {
					t.Fatalf("error %v, findings %+v; want %v and none", err, Findings(rep), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.DNSSEC.State != tt.state {
				t.Errorf("state %q, want %q (%+v)", rep.DNSSEC.State, tt.state, rep.DNSSEC)
			}
			if got := findingKeys(rep, "dnssec-"); !slices.Equal(got, tt.want) {
				t.Errorf("findings %q, want %q", got, tt.want)
			}
			if tt.inMsg != "" && (len(Findings(rep)) == 0 || !strings.Contains(Findings(rep)[len(Findings(rep))-1].Message, tt.inMsg)) {
				t.Errorf("findings %+v do not say %q", Findings(rep), tt.inMsg)
			}
			if !strings.Contains(rep.DNSSEC.Note, tt.inNote) {
				t.Errorf("note %q does not say %q", rep.DNSSEC.Note, tt.inNote)
			}
			// A bogus zone is still audited: the servers are asked.
			if len(rep.Servers) != 3 || len(rep.Servers[0].Addresses) != 1 || len(findingKeys(rep, "ns-")) > 0 {
				t.Errorf("servers %+v, findings %+v", rep.Servers, Findings(rep))
			}
		})
	}
}

func TestSerialLess(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b uint32
		want bool
	}{
		{1, 2, true},
		{2, 1, false},
		{1, 1, false},
		{4294967290, 5, true}, // RFC 1982 §3.2: wraps around
		{5, 4294967290, false},
		{0, 1 << 31, false}, // exactly half apart: undefined, neither is less
		{1 << 31, 0, false},
	} {
		if got := serialLess(tt.a, tt.b); got != tt.want {
			t.Errorf("serialLess(%d, %d) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestReference checks which answer counts as right when servers disagree:
// the majority, and on a tie the servers with the newest serial.
func TestReference(t *testing.T) {
	t.Parallel()
	old := strings.NewReplacer("2026010101", "2025010101", "MX  10 mx1", "MX  10 old-mx").Replace(served)
	sameSerial := strings.Replace(served, "MX  10 mx1", "MX  10 old-mx", 1)
	two := strings.Replace(world, "@    NS  ns3\n", "", 1)
	for _, tt := range []struct {
		name  string
		world string
		zones map[string]string
		want  []string
	}{
		{name: "majority, stale server first", world: world,
			zones: map[string]string{"127.0.0.2": sameSerial, "127.0.0.3": served, "127.0.0.4": served},
			want:  []string{"ns-inconsistent ns1.example.test (127.0.0.2)"}},
		{name: "tie, newest serial second", world: two,
			zones: map[string]string{"127.0.0.2": old, "127.0.0.3": served},
			want:  []string{"ns-inconsistent ns1.example.test (127.0.0.2)", "ns-serial-mismatch ns1.example.test (127.0.0.2)"}},
		{name: "tie, newest serial first", world: two,
			zones: map[string]string{"127.0.0.2": served, "127.0.0.3": old},
			want:  []string{"ns-inconsistent ns2.example.test (127.0.0.3)", "ns-serial-mismatch ns2.example.test (127.0.0.3)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := map[string]resolve.Resolver{}
			for a, text := range tt.zones {
				srv[a] = zones(t, text)
			}
			rep, err := Lookup(t.Context(), zones(t, tt.world), dnsname.MustParse("example.test"), Options{Direct: newZoneDirect(srv)})
			if err != nil {
				t.Fatal(err)
			}
			if got := findingKeys(rep, "ns-"); !slices.Equal(got, tt.want) {
				t.Errorf("findings %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSharedAddressAskedOnce: NS names that share an address (ns2 and ns3
// both at 127.0.0.3) cost one MX and one SOA question to it, and both
// servers are reported with its reply; the other address is asked as
// usual.
func TestSharedAddressAskedOnce(t *testing.T) {
	t.Parallel()
	shared := strings.Replace(world, "ns3  A   127.0.0.4", "ns3  A   127.0.0.3", 1)
	d := &askLog{next: sameZone(t, served)}
	rep, err := Lookup(t.Context(), zones(t, shared), dnsname.MustParse("example.test"), Options{Direct: d})
	if err != nil {
		t.Fatal(err)
	}
	count := map[netip.Addr]int{}
	for _, a := range d.asked {
		count[a]++
	}
	if want := map[netip.Addr]int{netip.MustParseAddr("127.0.0.2"): 2, netip.MustParseAddr("127.0.0.3"): 2}; !maps.Equal(count, want) {
		t.Errorf("asked %v, want MX and SOA once per address", count)
	}
	if len(rep.Servers) != 3 {
		t.Fatalf("%d servers, want 3", len(rep.Servers))
	}
	for _, s := range rep.Servers {
		if len(s.Addresses) != 1 || s.Addresses[0].MX.Status != StatusOK || s.Addresses[0].SOA.Status != StatusOK || s.Addresses[0].SOA.Serial == nil {
			t.Errorf("%s: %+v, want both questions answered", s.Name, s.Addresses)
		}
	}
	if got := findingKeys(rep, "ns-"); len(got) != 0 {
		t.Errorf("findings %q, want none", got)
	}
}

// TestFindingsJudgedOnce: Findings gives the judgement Lookup made when it
// ended (the deferred DNSSEC state included), the same as judging the
// Result again, and each call its own slice.
func TestFindingsJudgedOnce(t *testing.T) {
	rep, err := Lookup(t.Context(), &fake{next: zones(t, world)}, dnsname.MustParse("example.test"),
		Options{Direct: sameZone(t, served), CDResolver: zones(t, world)})
	if err != nil {
		t.Fatal(err)
	}
	got := Findings(rep)
	if want := judge(rep); len(got) == 0 || !slices.Equal(got, want) {
		t.Fatalf("Findings = %+v, judged again %+v", got, want)
	}
	if !slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == finding.DNSSECUnsigned }) {
		t.Errorf("Findings = %+v: no %s, the DNSSEC state decided on Lookup's way out", got, finding.DNSSECUnsigned)
	}
	got[0].Message = "changed"
	if again := Findings(rep); again[0].Message == "changed" {
		t.Error("a caller's change to Findings' slice shows in the next call")
	}
}

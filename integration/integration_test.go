package integration

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

// lookupTimeout bounds one lookup or one dig run.
const lookupTimeout = 15 * time.Second

// env is the set of peers shared by the subtests of one test.
type env struct {
	knot    *peers.Knot
	unbound *peers.Unbound
	digPath string
}

// start runs Knot with the example zones, a signed zone and a bogus one,
// and a validating Unbound in front of it.
func start(t *testing.T) *env {
	t.Helper()
	dig := peers.Binary(t, "dig", "bind9-dnsutils")
	example := readFile(t, "../examples/example.zone") + "\n" + readFile(t, "testdata/extra.zone")
	signed := readFile(t, "testdata/signed.zone")
	k := peers.StartKnot(t,
		peers.Zone{Origin: "example.", Text: example},
		peers.Zone{Origin: "signed.example.", Text: signed, DNSSEC: peers.Signed},
		peers.Zone{Origin: "bogus.example.", Text: signed, DNSSEC: peers.Bogus},
	)
	u := peers.StartUnbound(t, k.UnboundConfig())
	return &env{knot: k, unbound: u, digPath: dig}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// question is one comparison: what is asked, and what both dig and the
// stub must see. n counts the records of the asked type in the answer
// section (CNAMEs before them are not counted).
type question struct {
	name  string
	qtype uint16
	rcode int
	n     int
	ad    bool // through the validating resolver
}

// questions cover every case of the example zone, the big RRsets that need
// TCP, and the signed zone.
var questions = []question{
	{"tiers.example.", dns.TypeMX, dns.RcodeSuccess, 3, false},                  // three tiers
	{"alln-mx-01.tiers.example.", dns.TypeAAAA, dns.RcodeSuccess, 1, false},     //
	{"aer-mx-01.tiers.example.", dns.TypeAAAA, dns.RcodeSuccess, 0, false},      // v4-only exchange: NODATA
	{"tiers.example.", dns.TypeAAAA, dns.RcodeSuccess, 0, false},                // apex NODATA
	{"bigtiers.example.", dns.TypeMX, dns.RcodeSuccess, 11, false},              // equal preferences
	{"mx-in-last.bigtiers.example.", dns.TypeAAAA, dns.RcodeSuccess, 1, false},  //
	{"multihomed.example.", dns.TypeMX, dns.RcodeSuccess, 1, false},             //
	{"smtp.multihomed.example.", dns.TypeA, dns.RcodeSuccess, 6, false},         // multihomed: 6 A
	{"smtp.multihomed.example.", dns.TypeAAAA, dns.RcodeSuccess, 2, false},      // and 2 AAAA
	{"smtp.multihomed.example.", dns.TypeMX, dns.RcodeSuccess, 0, false},        // NODATA on a host
	{"alias.example.", dns.TypeMX, dns.RcodeSuccess, 3, false},                  // CNAME'd domain
	{"alias.example.", dns.TypeCNAME, dns.RcodeSuccess, 1, false},               // the alias itself
	{"alias.example.", dns.TypeA, dns.RcodeSuccess, 0, false},                   // CNAME, then NODATA
	{"cname-mx.example.", dns.TypeMX, dns.RcodeSuccess, 1, false},               // MX to a CNAME
	{"mail.cname-mx.example.", dns.TypeA, dns.RcodeSuccess, 1, false},           // the CNAME'd exchange
	{"mail.cname-mx.example.", dns.TypeAAAA, dns.RcodeSuccess, 0, false},        //
	{"nullmx.example.", dns.TypeMX, dns.RcodeSuccess, 1, false},                 // Null MX
	{"mixed-null.example.", dns.TypeMX, dns.RcodeSuccess, 2, false},             // Null MX beside another
	{"implicit.example.", dns.TypeMX, dns.RcodeSuccess, 0, false},               // NODATA: implicit MX
	{"implicit.example.", dns.TypeA, dns.RcodeSuccess, 1, false},                //
	{"implicit.example.", dns.TypeAAAA, dns.RcodeSuccess, 1, false},             //
	{"nomail.example.", dns.TypeMX, dns.RcodeSuccess, 0, false},                 // NODATA: only TXT
	{"nomail.example.", dns.TypeA, dns.RcodeSuccess, 0, false},                  //
	{"nomail.example.", dns.TypeTXT, dns.RcodeSuccess, 1, false},                //
	{"sub.nomail.example.", dns.TypeMX, dns.RcodeNameError, 0, false},           //
	{"ip-mx.example.", dns.TypeMX, dns.RcodeSuccess, 1, false},                  // MX written as an IP
	{"dangling.example.", dns.TypeMX, dns.RcodeSuccess, 2, false},               //
	{"gone.dangling.example.", dns.TypeA, dns.RcodeNameError, 0, false},         // dangling exchange
	{"mx.private.example.", dns.TypeA, dns.RcodeSuccess, 1, false},              //
	{"nosuch.example.", dns.TypeMX, dns.RcodeNameError, 0, false},               // NXDOMAIN
	{"xn--bcher-kva.example.", dns.TypeMX, dns.RcodeNameError, 0, false},        // an A-label
	{"broken-alias.example.", dns.TypeMX, dns.RcodeNameError, 0, false},         // CNAME to NXDOMAIN
	{"broken-alias.example.", dns.TypeCNAME, dns.RcodeSuccess, 1, false},        //
	{"big.example.", dns.TypeTXT, dns.RcodeSuccess, 8, false},                   // needs TCP
	{"many.example.", dns.TypeA, dns.RcodeSuccess, 100, false},                  // needs TCP
	{"example.", dns.TypeSOA, dns.RcodeSuccess, 1, false},                       //
	{"example.", dns.TypeNS, dns.RcodeSuccess, 1, false},                        //
	{"_dmarc.tiers.example.", dns.TypeTXT, dns.RcodeNameError, 0, false},        //
	{"signed.example.", dns.TypeMX, dns.RcodeSuccess, 3, true},                  // signed
	{"signed.example.", dns.TypeTXT, dns.RcodeSuccess, 0, true},                 // signed apex NODATA
	{"mx1.signed.example.", dns.TypeAAAA, dns.RcodeSuccess, 1, true},            //
	{"MX1.Signed.Example.", dns.TypeA, dns.RcodeSuccess, 1, true},               // case does not matter
	{"backup.signed.example.", dns.TypeA, dns.RcodeSuccess, 1, true},            //
	{"nosuch.signed.example.", dns.TypeMX, dns.RcodeNameError, 0, true},         // signed NXDOMAIN
	{"a.b.nosuch.signed.example.", dns.TypeA, dns.RcodeNameError, 0, true},      //
	{"info.signed.example.", dns.TypeMX, dns.RcodeSuccess, 0, true},             // signed NODATA
	{"info.signed.example.", dns.TypeTXT, dns.RcodeSuccess, 1, true},            //
	{"_25._tcp.mx1.signed.example.", dns.TypeTLSA, dns.RcodeNameError, 0, true}, // a DANE lookup, no TLSA
}

// digAnswer is what dig printed.
type digAnswer struct {
	rcode int
	ad    bool
	aa    bool
	rrs   []dns.RR
}

var (
	statusRE = regexp.MustCompile(`->>HEADER<<-.*status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`^;; flags:([^;]*);`)
)

// dig asks server with dig and parses its answer. Options are dig's +…
// options added to the defaults.
func (e *env) dig(t *testing.T, server string, name string, qtype uint16, opts ...string) digAnswer {
	t.Helper()
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), lookupTimeout)
	defer cancel()
	args := append([]string{"@" + host, "-p", port, name, dns.TypeToString[qtype],
		"+nocmd", "+noall", "+answer", "+comments", "+time=2", "+tries=2"}, opts...)
	cmd := exec.CommandContext(ctx, e.digPath, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no ~/.digrc
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var d digAnswer
	header := false
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if m := statusRE.FindStringSubmatch(line); m != nil {
			// The last header is the final reply (after a TCP retry).
			code, ok := dns.StringToRcode[m[1]]
			if !ok {
				t.Fatalf("dig: unknown status %q", m[1])
			}
			d = digAnswer{rcode: code}
			header = true
			continue
		}
		if m := flagsRE.FindStringSubmatch(line); m != nil {
			flags := strings.Fields(m[1])
			d.ad, d.aa = slices.Contains(flags, "ad"), slices.Contains(flags, "aa")
			continue
		}
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("dig printed a record miekg/dns cannot parse: %q: %v", line, err)
		}
		d.rrs = append(d.rrs, rr)
	}
	if !header {
		t.Fatalf("dig %s printed no header:\n%s", strings.Join(args, " "), out)
	}
	return d
}

// canonical renders records without TTLs (which a cache counts down), in
// a fixed order (servers rotate RRsets, RFC 1794), so that two answers
// compare equal when they hold the same data.
func canonical(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, strings.ToLower(c.String()))
	}
	slices.Sort(out)
	return out
}

// countType counts the records of qtype.
func countType(rrs []dns.RR, qtype uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype {
			n++
		}
	}
	return n
}

func newStub(t *testing.T, cfg stub.Config) *stub.Stub {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	s, err := stub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lookup(t *testing.T, r resolve.Resolver, name string, qtype uint16) (*resolve.Answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), lookupTimeout)
	defer cancel()
	return r.Lookup(ctx, resolve.Q(name, qtype))
}

// TestIntegration starts Knot and Unbound once and runs every comparison
// against them.
func TestIntegration(t *testing.T) {
	e := start(t)
	t.Run("answers", func(t *testing.T) { answersMatchDig(t, e) })
	t.Run("truncation", func(t *testing.T) { truncationNeedsTCP(t, e) })
	t.Run("bogus", func(t *testing.T) { bogus(t, e) })
	t.Run("route", func(t *testing.T) { routeMatchesDig(t, e) })
	t.Run("multihomed", func(t *testing.T) { multihomedOrder(t, e) })
}

// answersMatchDig asks every question through Unbound (recursive,
// validating) and directly of Knot (authoritative, RD clear), with dig and
// with mxtrace's stub, and compares rcode, records and the AD bit.
func answersMatchDig(t *testing.T, e *env) {
	recursive := newStub(t, stub.Config{Servers: []string{e.unbound.Addr}})
	authoritative := newStub(t, stub.Config{Servers: []string{e.knot.Addr}, NoRecursion: true})
	paths := []struct {
		name    string
		server  string
		stub    *stub.Stub
		digOpts []string
	}{
		{"unbound", e.unbound.Addr, recursive, nil},
		{"knot", e.knot.Addr, authoritative, []string{"+norec"}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			for _, q := range questions {
				label := q.name + " " + dns.TypeToString[q.qtype]
				d := e.dig(t, p.server, q.name, q.qtype, p.digOpts...)
				a, err := lookup(t, p.stub, q.name, q.qtype)
				if err != nil {
					t.Errorf("%s: stub: %v (dig: %s)", label, err, dns.RcodeToString[d.rcode])
					continue
				}
				// Both must agree with what the zone says...
				wantAD := q.ad && p.name == "unbound" // authoritative servers never set AD
				if d.rcode != q.rcode || countType(d.rrs, q.qtype) != q.n || d.ad != wantAD {
					t.Errorf("%s: dig got %s, %d records, ad=%v; want %s, %d, ad=%v", label,
						dns.RcodeToString[d.rcode], countType(d.rrs, q.qtype), d.ad, dns.RcodeToString[q.rcode], q.n, wantAD)
				}
				// ...and with each other.
				if a.Rcode != d.rcode {
					t.Errorf("%s: stub rcode %s, dig %s", label, dns.RcodeToString[a.Rcode], dns.RcodeToString[d.rcode])
				}
				if a.AD != d.ad {
					t.Errorf("%s: stub AD=%v, dig AD=%v", label, a.AD, d.ad)
				}
				if p.name == "knot" && (!a.Authoritative || !d.aa) {
					t.Errorf("%s: knot's answer not authoritative: stub AA=%v, dig AA=%v", label, a.Authoritative, d.aa)
				}
				if diff := cmp.Diff(canonical(d.rrs), canonical(a.Answer)); diff != "" {
					t.Errorf("%s: answer section differs (-dig +stub):\n%s", label, diff)
				}
				if a.Question != resolve.Q(q.name, q.qtype) {
					t.Errorf("%s: answer for %v", label, a.Question)
				}
			}
		})
	}
}

// truncationNeedsTCP checks that the big RRsets really do not fit in a
// 1232-byte UDP reply, so that TestAnswersMatchDig exercises the TCP
// fall-back (RFC 7766 §5) of the stub, of dig and of Unbound.
func truncationNeedsTCP(t *testing.T, e *env) {
	for _, server := range []string{e.unbound.Addr, e.knot.Addr} {
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"big.example.", dns.TypeTXT}, {"many.example.", dns.TypeA}} {
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			m.SetEdns0(stub.DefaultUDPSize, false)
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, UDPSize: stub.DefaultUDPSize}
			ctx, cancel := context.WithTimeout(t.Context(), lookupTimeout)
			r, _, err := c.ExchangeContext(ctx, m, server)
			cancel()
			if err != nil {
				t.Fatalf("%s %s at %s: %v", q.name, dns.TypeToString[q.qtype], server, err)
			}
			if !r.Truncated {
				t.Errorf("%s %s at %s over UDP: not truncated (%d records); the test would not exercise TCP", q.name, dns.TypeToString[q.qtype], server, len(r.Answer))
			}
		}
	}
}

// bogus checks a signed zone whose trust anchor matches none of its
// keys: Unbound refuses to answer (SERVFAIL, RFC 4035 §5.5), which the stub
// reports as a temporary *resolve.Error; with the CD bit (RFC 4035 §3.2.2)
// Unbound answers unvalidated, as dig +cd shows.
func bogus(t *testing.T, e *env) {
	plain := newStub(t, stub.Config{Servers: []string{e.unbound.Addr}})
	cd := newStub(t, stub.Config{Servers: []string{e.unbound.Addr}, CheckingDisabled: true})
	for _, q := range []question{
		{"bogus.example.", dns.TypeMX, dns.RcodeSuccess, 3, false},
		{"mx1.bogus.example.", dns.TypeA, dns.RcodeSuccess, 1, false},
		{"nosuch.bogus.example.", dns.TypeA, dns.RcodeNameError, 0, false},
	} {
		label := q.name + " " + dns.TypeToString[q.qtype]
		if d := e.dig(t, e.unbound.Addr, q.name, q.qtype); d.rcode != dns.RcodeServerFailure {
			t.Errorf("%s: dig got %s, want SERVFAIL", label, dns.RcodeToString[d.rcode])
		}
		a, err := lookup(t, plain, q.name, q.qtype)
		var rerr *resolve.Error
		if !errors.As(err, &rerr) || !errors.Is(err, resolve.ErrServerFailure) || rerr.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: stub got (%v, %v), want a *resolve.Error wrapping ErrServerFailure", label, a, err)
		}

		d := e.dig(t, e.unbound.Addr, q.name, q.qtype, "+cd")
		a, err = lookup(t, cd, q.name, q.qtype)
		if err != nil {
			t.Errorf("%s with CD: stub: %v", label, err)
			continue
		}
		if d.rcode != q.rcode || a.Rcode != q.rcode || a.AD || d.ad || countType(a.Answer, q.qtype) != q.n {
			t.Errorf("%s with CD: dig %s ad=%v, stub %s ad=%v %d records; want %s, ad=false, %d records", label,
				dns.RcodeToString[d.rcode], d.ad, dns.RcodeToString[a.Rcode], a.AD, countType(a.Answer, q.qtype), dns.RcodeToString[q.rcode], q.n)
		}
		if diff := cmp.Diff(canonical(d.rrs), canonical(a.Answer)); diff != "" {
			t.Errorf("%s with CD: answer section differs (-dig +stub):\n%s", label, diff)
		}
	}
}

// routeMatchesDig plans delivery for every example domain through the
// stub and a cache in front of Unbound, and checks the plan against dig:
// the MX records as served, the tiers (RFC 5321 §5.1: sorted by
// preference, equal preferences together), every exchange's addresses, and
// an attempt order that respects the tiers.
func routeMatchesDig(t *testing.T, e *env) {
	rec := newStub(t, stub.Config{Servers: []string{e.unbound.Addr}})
	planner := route.Planner{Resolver: resolve.NewCache(rec, 0)}
	for _, tc := range []struct {
		domain   string
		result   route.Result
		implicit bool
		chain    []string
	}{
		{"tiers.example", route.ResultOK, false, nil},
		{"bigtiers.example", route.ResultOK, false, nil},
		{"multihomed.example", route.ResultOK, false, nil},
		{"alias.example", route.ResultOK, false, []string{"tiers.example"}},
		{"cname-mx.example", route.ResultOK, false, nil},
		{"dangling.example", route.ResultOK, false, nil},
		{"private.example", route.ResultOK, false, nil},
		{"mixed-null.example", route.ResultOK, false, nil},
		{"signed.example", route.ResultOK, false, nil},
		{"implicit.example", route.ResultOK, true, nil},
		{"nullmx.example", route.ResultNullMX, false, nil},
		{"nomail.example", route.ResultNoMail, false, nil},
		{"nosuch.example", route.ResultNXDomain, false, nil},
		{"broken-alias.example", route.ResultNXDomain, false, []string{"nowhere.example"}},
		{"bogus.example", route.ResultError, false, nil}, // SERVFAIL is temporary, never "no MX"
	} {
		t.Run(tc.domain, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), lookupTimeout)
			defer cancel()
			plan, err := planner.Plan(ctx, dnsname.MustParse(tc.domain))
			if (err != nil) != (tc.result == route.ResultError) {
				t.Fatalf("Plan: error %v, want result %s", err, tc.result)
			}
			if plan.Result != tc.result || plan.Implicit != tc.implicit {
				t.Fatalf("result %s implicit %v, want %s implicit %v (error %v)", plan.Result, plan.Implicit, tc.result, tc.implicit, err)
			}
			if diff := cmp.Diff(append([]string{}, tc.chain...), plan.AliasChain); diff != "" {
				t.Errorf("alias chain (-want +got):\n%s", diff)
			}
			if tc.result == route.ResultError {
				return
			}

			// The MX records as served.
			mx := e.dig(t, e.unbound.Addr, tc.domain+".", dns.TypeMX)
			var want []route.Record
			for _, rr := range mx.rrs {
				if m, ok := rr.(*dns.MX); ok {
					want = append(want, route.Record{Preference: m.Preference, Exchange: hostName(m.Mx)})
				}
			}
			if want == nil {
				want = []route.Record{} // the plan's JSON form has no null arrays
			}
			got := make([]route.Record, 0, len(plan.Records))
			for _, r := range plan.Records {
				got = append(got, route.Record{Preference: r.Preference, Exchange: r.Exchange})
			}
			sortRecords(want)
			sortRecords(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records (-dig +plan):\n%s", diff)
			}
			if tc.result != route.ResultOK {
				if len(plan.Tiers) != 0 || len(plan.Order) != 0 {
					t.Errorf("%s plan has tiers %v, order %v", plan.Result, plan.Tiers, plan.Order)
				}
				return
			}

			// The tiers: dig's MX set grouped by preference, lowest
			// first, without the Null MX; or the domain itself at 0.
			wantTiers := map[uint16][]string{}
			var prefs []uint16
			for _, r := range want {
				if r.Exchange == "." { // RFC 7505 §3: the Null MX is no exchange
					continue
				}
				if _, ok := wantTiers[r.Preference]; !ok {
					prefs = append(prefs, r.Preference)
				}
				wantTiers[r.Preference] = append(wantTiers[r.Preference], r.Exchange)
			}
			if tc.implicit {
				prefs, wantTiers[0] = []uint16{0}, []string{tc.domain}
			}
			slices.Sort(prefs)
			if len(plan.Tiers) != len(prefs) {
				t.Fatalf("%d tiers, dig's MX set has %d preferences %v", len(plan.Tiers), len(prefs), prefs)
			}
			var order []string
			for i, tier := range plan.Tiers {
				if tier.Preference != prefs[i] {
					t.Errorf("tier %d has preference %d, want %d", i, tier.Preference, prefs[i])
				}
				var names []string
				for _, h := range tier.Hosts {
					names = append(names, h.Name)
					// Every address dig finds for the exchange, v4 and v6.
					var addrs []string
					for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
						for _, rr := range e.dig(t, e.unbound.Addr, h.Name+".", qt).rrs {
							switch rr := rr.(type) {
							case *dns.A:
								addrs = append(addrs, rr.A.String())
							case *dns.AAAA:
								addrs = append(addrs, rr.AAAA.String())
							}
						}
					}
					gotAddrs := slices.Clone(h.Addresses)
					slices.Sort(addrs)
					slices.Sort(gotAddrs)
					if diff := cmp.Diff(addrs, gotAddrs, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("%s addresses (-dig +plan):\n%s", h.Name, diff)
					}
				}
				order = append(order, names...)
				slices.Sort(names)
				wantNames := slices.Sorted(slices.Values(wantTiers[prefs[i]]))
				if diff := cmp.Diff(wantNames, names); diff != "" {
					t.Errorf("tier %d hosts (-dig +plan):\n%s", tier.Preference, diff)
				}
			}
			// The attempt order: a permutation inside each tier, tiers in
			// order.
			if len(plan.Order) != len(order) {
				t.Fatalf("order %v, want the %d hosts of the tiers", plan.Order, len(order))
			}
			at := 0
			for _, tier := range plan.Tiers {
				var names, got []string
				for _, h := range tier.Hosts {
					names = append(names, h.Name)
				}
				got = append(got, plan.Order[at:at+len(names)]...)
				at += len(names)
				slices.Sort(names)
				slices.Sort(got)
				if !slices.Equal(names, got) {
					t.Errorf("order %v does not try tier %d (%v) before the next", plan.Order, tier.Preference, names)
				}
			}
		})
	}
}

// hostName writes an exchange as plans do: lower case, without the final
// dot, except for the root (the Null MX).
func hostName(mx string) string {
	if mx == "." {
		return mx
	}
	return strings.TrimSuffix(strings.ToLower(mx), ".")
}

func sortRecords(rs []route.Record) {
	slices.SortFunc(rs, func(a, b route.Record) int {
		if a.Preference != b.Preference {
			return int(a.Preference) - int(b.Preference)
		}
		return strings.Compare(a.Exchange, b.Exchange)
	})
}

// multihomedOrder checks docs/routing.md#address-resolution against a
// real server: the planner keeps the addresses of the multihomed exchange,
// all 6 A and 2 AAAA.
func multihomedOrder(t *testing.T, e *env) {
	rec := newStub(t, stub.Config{Servers: []string{e.unbound.Addr}})
	planner := route.Planner{Resolver: resolve.NewCache(rec, 0)}
	ctx, cancel := context.WithTimeout(t.Context(), lookupTimeout)
	defer cancel()
	plan, err := planner.Plan(ctx, dnsname.MustParse("multihomed.example"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := plan.Hosts()
	if len(hosts) != 1 {
		t.Fatalf("hosts %v, want smtp.multihomed.example only", hosts)
	}
	var v4, v6 int
	for _, a := range hosts[0].Addresses {
		if strings.Contains(a, ":") {
			v6++
		} else {
			v4++
		}
	}
	if v4 != 6 || v6 != 2 {
		t.Errorf("addresses %v: %d IPv4 and %d IPv6, want 6 and 2", hosts[0].Addresses, v4, v6)
	}
}

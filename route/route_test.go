package route_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/golden"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// zoneCase is one testdata/route/NAME.zone file: the zone, and in leading
// "; key: value" comments the domain to route and the planner's options.
type zoneCase struct {
	name   string
	domain dnsname.Name
	self   dnsname.Name
	zones  *resolve.Zones
}

func loadCase(t *testing.T, name string) zoneCase {
	t.Helper()
	path := filepath.Join("testdata", "route", name+".zone")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := zoneCase{name: name}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "; "), ": ")
		if !ok || !strings.HasPrefix(sc.Text(), ";") {
			break
		}
		switch key {
		case "domain":
			c.domain = dnsname.MustParse(val)
		case "self":
			c.self = dnsname.MustParse(val)
		}
	}
	if c.domain == "" {
		t.Fatalf("%s: no '; domain:' line", path)
	}
	if c.zones, err = resolve.ParseZones(strings.NewReader(string(text)), path); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c zoneCase) plan(t *testing.T) (*route.Plan, error) {
	t.Helper()
	p := &route.Planner{Resolver: c.zones, Self: c.self, Seed: 1, HasSeed: true}
	return p.Plan(t.Context(), c.domain)
}

func caseNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "route", "*.zone"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test zones: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".zone"))
	}
	return names
}

// TestGolden routes every test zone and compares the JSON plan with
// testdata/route/NAME.json (go test ./route -update rewrites them).
func TestGolden(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, name)
			plan, err := c.plan(t)
			if (err != nil) != (plan.Result == route.ResultError) {
				t.Errorf("err = %v but result = %s: an error must come with result error and only then", err, plan.Result)
			}
			plan.ElapsedMS = 0
			got, err := json.MarshalIndent(plan, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "route", name+".json"), append(got, '\n'))
		})
	}
}

// TestRules checks each routing rule's outcome: one case that must produce
// it and, in the same row, one that must not.
func TestRules(t *testing.T) {
	tests := []struct {
		rule             string
		trigger, absent  string
		wantTrigger      route.Result
		wantAbsentResult route.Result
	}{
		{"1 alias followed", "alias", "tiers", route.ResultOK, route.ResultOK},
		{"2 nxdomain", "nxdomain", "tiers", route.ResultNXDomain, route.ResultOK},
		{"2 nxdomain at the end of an alias", "dangling-alias", "alias", route.ResultNXDomain, route.ResultOK},
		{"1 alias loop is an error", "alias-loop", "alias", route.ResultError, route.ResultOK},
		{"1 alias chain too long is an error", "alias-too-long", "alias", route.ResultError, route.ResultOK},
		{"2 a domain outside the zone files is an error", "not-in-zones", "tiers", route.ResultError, route.ResultOK},
		{"3 null MX", "null-mx", "null-mixed", route.ResultNullMX, route.ResultOK},
		{"4 implicit MX", "implicit", "tiers", route.ResultOK, route.ResultOK},
		{"4 no mail", "no-mail", "implicit", route.ResultNoMail, route.ResultOK},
		{"6 self loop", "self-loop", "self", route.ResultError, route.ResultOK},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got, _ := loadCase(t, tt.trigger).plan(t)
			if got.Result != tt.wantTrigger {
				t.Errorf("%s: result %s, want %s", tt.trigger, got.Result, tt.wantTrigger)
			}
			got, _ = loadCase(t, tt.absent).plan(t)
			if got.Result != tt.wantAbsentResult {
				t.Errorf("%s: result %s, want %s", tt.absent, got.Result, tt.wantAbsentResult)
			}
		})
	}
}

// TestFindings: every routing finding ID has a case that triggers it and
// one, as close as possible, that must not.
func TestFindings(t *testing.T) {
	tests := []struct {
		id              finding.ID
		trigger, absent string
		subject         string // expected subject of the triggered finding
	}{
		{finding.MXNXDomain, "nxdomain", "tiers", "d.test"},
		{finding.MXNXDomain, "dangling-alias", "alias", "gone.test"},
		{finding.MXNotInZones, "target-not-in-zones", "target-nxdomain", "mx.elsewhere.example"},
		{finding.MXNotInZones, "not-in-zones", "tiers", "d.example"},
		{finding.MXAliasLoop, "alias-loop", "alias", "d.test"},
		{finding.MXAliasTooLong, "alias-too-long", "alias", "d.test"},
		{finding.MXTargetAliasLoop, "target-alias-loop", "target-cname", "mx.d.test"},
		{finding.MXTargetAliasTooLong, "target-alias-too-long", "target-cname", "c1.test"},
		{finding.MXImplicit, "implicit", "no-mail", "d.test"},
		{finding.MXImplicit, "implicit-alias", "alias", "host.test"},
		{finding.MXNoMail, "no-mail", "implicit", "d.test"},
		{finding.MXNull, "null-mx", "null-mixed", "d.test"},
		{finding.MXNullMixed, "null-mixed", "null-mx", "d.test"},
		{finding.MXTargetIP, "target-ip", "tiers", "192.0.2.1"},
		{finding.MXTargetCNAME, "target-cname", "alias", "mail.d.test"},
		{finding.MXTargetNXDomain, "target-nxdomain", "target-no-address", "gone.d.test"},
		{finding.MXTargetNoAddress, "target-no-address", "target-nxdomain", "txt.d.test"},
		{finding.MXTargetPrivate, "target-private", "tiers", "rfc1918.d.test"},
		{finding.MXTargetPrivate, "documentation-address", "tiers", "mx.d.internal"},
		{finding.MXDuplicate, "duplicate", "equal-tier", "mx.d.test"},
		{finding.MXDuplicate, "duplicate", "no-ipv6", "192.0.2.2"},
		{finding.MXSinglePoint, "single-point", "no-ipv6", "d.test"},
		{finding.MXNoIPv6, "no-ipv6", "tiers", "d.test"},
		{finding.MXTTL, "ttl-low", "tiers", "d.test"},
		{finding.MXAliasChain, "alias", "tiers", "d.test"},
		{finding.MXSelfLoop, "self-loop", "self", "mx1.d.test"},
	}
	for _, tt := range tests {
		t.Run(string(tt.id)+"/"+tt.trigger, func(t *testing.T) {
			got, _ := loadCase(t, tt.trigger).plan(t)
			if !slices.ContainsFunc(got.Findings, func(f finding.Finding) bool { return f.ID == tt.id && f.Subject == tt.subject }) {
				t.Errorf("%s: no %s finding about %s in %v", tt.trigger, tt.id, tt.subject, ids(got.Findings))
			}
			got, _ = loadCase(t, tt.absent).plan(t)
			if slices.ContainsFunc(got.Findings, func(f finding.Finding) bool { return f.ID == tt.id }) {
				t.Errorf("%s: unexpected %s finding in %v", tt.absent, tt.id, ids(got.Findings))
			}
		})
	}
}

// TestEveryRoutingFindingTested makes sure the table above grows with the
// catalogue: each routing ID must be triggered by some case.
func TestEveryRoutingFindingTested(t *testing.T) {
	seen := map[finding.ID]bool{}
	for _, name := range caseNames(t) {
		got, _ := loadCase(t, name).plan(t)
		for _, f := range got.Findings {
			seen[f.ID] = true
		}
	}
	// The bounds need dozens of records; TestBounds builds those zones in Go.
	seen[finding.MXTooManyExchanges] = true
	seen[finding.MXTooManyAddresses] = true
	// A zone file never fails temporarily; TestTemporaryFailure makes
	// lookups fail and asks for mx-lookup-failed.
	seen[finding.MXLookupFailed] = true
	for _, e := range finding.Catalogue {
		if e.Area == finding.AreaRouting && !seen[e.ID] {
			t.Errorf("no test zone triggers %s", e.ID)
		}
	}
}

func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.ID)+"@"+f.Subject)
	}
	return out
}

func hostNames(p *route.Plan) []string {
	var out []string
	for _, h := range p.Hosts() {
		out = append(out, h.Name)
	}
	return out
}

// TestSelf checks RFC 5321 §5.1: records at the sender's own preference and
// above are dropped; a sender not listed changes nothing.
func TestSelf(t *testing.T) {
	got, err := loadCase(t, "self").plan(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mx1.d.test", "mx1b.d.test"}; !slices.Equal(hostNames(got), want) {
		t.Errorf("hosts with --self mx2 = %v, want %v", hostNames(got), want)
	}
	got, err = loadCase(t, "self-not-listed").plan(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mx1.d.test", "mx2.d.test"}; !slices.Equal(hostNames(got), want) {
		t.Errorf("hosts with an unlisted --self = %v, want %v", hostNames(got), want)
	}
	_, err = loadCase(t, "self-loop").plan(t)
	if !errors.Is(err, route.ErrMailLoop) {
		t.Errorf("self-loop: err = %v, want ErrMailLoop", err)
	}
}

// TestAddressOrder (docs/routing.md#address-resolution): a multihomed
// host keeps the server's order.
func TestAddressOrder(t *testing.T) {
	got, err := loadCase(t, "multihomed").plan(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.7", "192.0.2.3", "192.0.2.5", "2001:db8::9", "2001:db8::1"}
	if a := got.Tiers[0].Hosts[0].Addresses; !slices.Equal(a, want) {
		t.Errorf("addresses = %v, want the served order %v", a, want)
	}
}

// TestFamilies: -4 and -6 ask for one family only.
func TestFamilies(t *testing.T) {
	c := loadCase(t, "multihomed")
	for _, tt := range []struct {
		v4, v6 bool
		want   []string
	}{
		{true, false, []string{"192.0.2.7", "192.0.2.3", "192.0.2.5"}},
		{false, true, []string{"2001:db8::9", "2001:db8::1"}},
	} {
		p := &route.Planner{Resolver: c.zones, IPv4: tt.v4, IPv6: tt.v6}
		got, err := p.Plan(t.Context(), c.domain)
		if err != nil {
			t.Fatal(err)
		}
		if a := got.Tiers[0].Hosts[0].Addresses; !slices.Equal(a, tt.want) {
			t.Errorf("-4=%v -6=%v: addresses = %v, want %v", tt.v4, tt.v6, a, tt.want)
		}
	}
}

// TestBounds (docs/routing.md#bounded-work): at most MaxExchanges
// exchanges and MaxAddresses addresses per exchange, the cut reported; at
// the limit nothing is cut.
func TestBounds(t *testing.T) {
	build := func(exchanges, addrs int) *resolve.Zones {
		t.Helper()
		var b strings.Builder
		b.WriteString("$ORIGIN test.\n@ 3600 SOA ns.test. h.test. 1 2 3 4 300\n")
		for i := range exchanges {
			fmt.Fprintf(&b, "d 3600 MX %d mx%d.d.test.\nmx%d.d 3600 A 192.0.2.%d\n", i, i, i, i%250+1)
		}
		for i := range addrs {
			fmt.Fprintf(&b, "big.d 3600 A 198.51.100.%d\n", i+1)
		}
		b.WriteString("d 3600 MX 999 big.d.test.\n")
		z, err := resolve.ParseZones(strings.NewReader(b.String()), "bounds")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	for _, tt := range []struct {
		exchanges, addrs    int
		wantHosts, wantAddr int
		wantCutX, wantCutA  bool
	}{
		{63, 16, 64, 16, false, false},
		{70, 20, 64, 16, true, true},
	} {
		p := &route.Planner{Resolver: build(tt.exchanges, tt.addrs)}
		got, err := p.Plan(t.Context(), "d.test")
		if err != nil {
			t.Fatal(err)
		}
		hosts := got.Hosts()
		if len(hosts) != tt.wantHosts {
			t.Errorf("%d exchanges: planned %d, want %d", tt.exchanges+1, len(hosts), tt.wantHosts)
		}
		has := func(id finding.ID) bool {
			return slices.ContainsFunc(got.Findings, func(f finding.Finding) bool { return f.ID == id })
		}
		if has(finding.MXTooManyExchanges) != tt.wantCutX {
			t.Errorf("%d exchanges: mx-too-many-exchanges = %v, want %v", tt.exchanges+1, !tt.wantCutX, tt.wantCutX)
		}
		last := hosts[len(hosts)-1]
		if !tt.wantCutX && (last.Name != "big.d.test" || len(last.Addresses) != tt.wantAddr) {
			t.Errorf("big.d.test: %d addresses, want %d", len(last.Addresses), tt.wantAddr)
		}
		if !tt.wantCutX && slices.Contains(last.Problems, finding.MXTooManyAddresses) != tt.wantCutA {
			t.Errorf("mx-too-many-addresses on big.d.test: got %v", last.Problems)
		}
	}
	// The address cut, with few exchanges.
	p := &route.Planner{Resolver: build(1, 20)}
	got, err := p.Plan(t.Context(), "d.test")
	if err != nil {
		t.Fatal(err)
	}
	big := got.Hosts()[1]
	if len(big.Addresses) != route.DefaultMaxAddresses || !slices.Contains(big.Problems, finding.MXTooManyAddresses) {
		t.Errorf("20 addresses: kept %d with problems %v, want %d and mx-too-many-addresses", len(big.Addresses), big.Problems, route.DefaultMaxAddresses)
	}
	// The finding counts every address served, those not kept too.
	if !slices.ContainsFunc(got.Findings, func(f finding.Finding) bool {
		return f.ID == finding.MXTooManyAddresses && strings.Contains(f.Message, "has 20 addresses")
	}) {
		t.Errorf("20 addresses: findings %v, want mx-too-many-addresses counting 20", got.Findings)
	}
}

// failing is a resolver that fails the listed questions with SERVFAIL and
// passes the rest to next.
type failing struct {
	next resolve.Resolver
	fail map[resolve.Question]bool
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if f.fail[q] {
		return nil, &resolve.Error{Question: q, Server: "test", Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.next.Lookup(ctx, q)
}

// TestTemporaryFailure (docs/routing.md#nxdomain-and-temporary-errors): a
// SERVFAIL is never "no MX" or "no mail".
func TestTemporaryFailure(t *testing.T) {
	for _, tt := range []struct {
		zone     string
		fail     resolve.Question
		want     route.Result
		wantHost string // host that must carry mx-lookup-failed
	}{
		{"tiers", resolve.Q("d.test.", dns.TypeMX), route.ResultError, ""},
		// The only address lookup of an implicit MX failed: no verdict.
		{"implicit-alias", resolve.Q("host.test.", dns.TypeA), route.ResultError, ""},
		// One family failed, the other answered: deliverable, but flagged.
		{"implicit", resolve.Q("d.test.", dns.TypeA), route.ResultOK, "d.test"},
		{"tiers", resolve.Q("a.d.test.", dns.TypeA), route.ResultOK, "a.d.test"},
	} {
		c := loadCase(t, tt.zone)
		p := &route.Planner{Resolver: failing{c.zones, map[resolve.Question]bool{tt.fail: true}}}
		got, err := p.Plan(t.Context(), c.domain)
		if got.Result != tt.want {
			t.Errorf("%s with %v failing: result %s, want %s", tt.zone, tt.fail, got.Result, tt.want)
		}
		if tt.want == route.ResultError && (!errors.Is(err, route.ErrTemporary) || got.Error == "") {
			t.Errorf("%s with %v failing: err = %v, error field %q; want ErrTemporary", tt.zone, tt.fail, err, got.Error)
		}
		if tt.want == route.ResultError && !slices.ContainsFunc(got.Findings, func(f finding.Finding) bool { return f.ID == finding.MXLookupFailed }) {
			t.Errorf("%s with %v failing: no mx-lookup-failed in %v", tt.zone, tt.fail, ids(got.Findings))
		}
		if tt.wantHost != "" {
			i := slices.IndexFunc(got.Hosts(), func(h route.Host) bool { return h.Name == tt.wantHost })
			if i < 0 || !slices.Contains(got.Hosts()[i].Problems, finding.MXLookupFailed) {
				t.Errorf("%s: %s lacks mx-lookup-failed: %+v", tt.zone, tt.wantHost, got.Hosts())
			}
			// The AAAA answer still arrived: the host keeps it.
			if i >= 0 && len(got.Hosts()[i].Addresses) != 1 {
				t.Errorf("%s: addresses %v, want the AAAA that did resolve", tt.wantHost, got.Hosts()[i].Addresses)
			}
		}
	}
}

// TestContextCanceled: a canceled plan ends with an error, never a result
// that claims something about the domain.
func TestContextCanceled(t *testing.T) {
	c := loadCase(t, "tiers")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := (&route.Planner{Resolver: c.zones}).Plan(ctx, c.domain)
	if err == nil || got.Result != route.ResultError {
		t.Errorf("canceled: result %s, err %v; want error", got.Result, err)
	}
}

// cancelOnAddress cancels the plan's context when the first address is
// asked, as an interrupted scan does. Ready says whether it claims the
// answers are in memory (the planner then resolves the exchanges one after
// the other) or not (in goroutines).
type cancelOnAddress struct {
	next   resolve.Resolver
	cancel context.CancelFunc
	ready  bool
}

func (r cancelOnAddress) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Type != dns.TypeMX {
		r.cancel()
	}
	return r.next.Lookup(ctx, q)
}

func (r cancelOnAddress) Ready(resolve.Question) bool { return r.ready }

// TestCanceledWhileResolving: a plan canceled while its exchanges are
// resolved ends with an error and says nothing of the exchanges, whether
// they were resolved inline or in goroutines.
func TestCanceledWhileResolving(t *testing.T) {
	c := loadCase(t, "target-no-address")
	for _, ready := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		got, err := (&route.Planner{Resolver: cancelOnAddress{c.zones, cancel, ready}}).Plan(ctx, c.domain)
		if err == nil || got.Result != route.ResultError || len(got.Tiers) != 0 {
			t.Errorf("ready %v: result %s, %d tiers, err %v; want an error", ready, got.Result, len(got.Tiers), err)
		}
		for _, f := range got.Findings {
			if strings.HasSuffix(f.Subject, ".d.test") {
				t.Errorf("ready %v: a finding about an exchange: %+v", ready, f)
			}
		}
	}
}

// TestJSONShape checks the members "route --json" promises (README.md, "JSON"),
// with empty lists as [] rather than null.
func TestJSONShape(t *testing.T) {
	for _, name := range []string{"tiers", "nxdomain", "alias-loop"} {
		got, _ := loadCase(t, name).plan(t)
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"schema", "domain", "result", "implicit", "alias_chain", "records", "tiers", "order", "findings", "elapsed_ms"} {
			v, ok := m[k]
			if !ok || v == nil {
				t.Errorf("%s: member %q missing or null in %s", name, k, b)
			}
		}
	}
}

// TestSeedIgnoresServedOrder: with a seed, the attempt order depends only
// on the seed and the domain, not on the order the resolver served the MX
// records in (recursive resolvers rotate RRsets).
func TestSeedIgnoresServedOrder(t *testing.T) {
	hosts := []string{"a", "b", "c", "d", "e"}
	zone := func(order []string) resolve.Resolver {
		var b strings.Builder
		b.WriteString("seed.test. 300 SOA ns.seed.test. h.seed.test. 1 7200 900 1209600 300\n")
		for _, h := range order {
			fmt.Fprintf(&b, "seed.test. 300 MX 10 %s.seed.test.\n%s.seed.test. 300 A 192.0.2.1\n", h, h)
		}
		z, err := resolve.ParseZones(strings.NewReader(b.String()), "seed")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	reversed := slices.Clone(hosts)
	slices.Reverse(reversed)
	var orders [][]string
	for _, served := range [][]string{hosts, reversed} {
		p := &route.Planner{Resolver: zone(served), Seed: 42, HasSeed: true}
		plan, err := p.Plan(t.Context(), dnsname.MustParse("seed.test"))
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, plan.Order)
	}
	if !slices.Equal(orders[0], orders[1]) {
		t.Errorf("--seed order depends on the served order: %v vs %v", orders[0], orders[1])
	}
}

// TestBrokenIsNotTemporary (docs/routing.md#alias-chain): an alias chain
// that loops or runs too long, for the domain or an exchange, is the
// zone's configuration, broken for good, and a name outside the zone files
// was not looked up: neither is the temporary mx-lookup-failed, and the
// plan's error (if any) is the lookup's own, not ErrTemporary.
func TestBrokenIsNotTemporary(t *testing.T) {
	for _, tt := range []struct {
		zone   string
		result route.Result
		cause  error // what the plan's error wraps; nil when the plan is ok
	}{
		{"alias-loop", route.ResultError, resolve.ErrCNAMELoop},
		{"alias-too-long", route.ResultError, resolve.ErrCNAMEChain},
		{"not-in-zones", route.ResultError, resolve.ErrNotInZone},
		{"target-alias-loop", route.ResultOK, nil},
		{"target-alias-too-long", route.ResultOK, nil},
		{"target-not-in-zones", route.ResultOK, nil},
	} {
		got, err := loadCase(t, tt.zone).plan(t)
		if got.Result != tt.result {
			t.Errorf("%s: result %s, want %s", tt.zone, got.Result, tt.result)
		}
		if tt.cause == nil && err != nil || tt.cause != nil && !errors.Is(err, tt.cause) {
			t.Errorf("%s: err %v, want one wrapping %v", tt.zone, err, tt.cause)
		}
		if errors.Is(err, route.ErrTemporary) || strings.Contains(got.Error, "temporary") {
			t.Errorf("%s: err %v (error field %q) says temporary", tt.zone, err, got.Error)
		}
		if slices.ContainsFunc(got.Findings, func(f finding.Finding) bool { return f.ID == finding.MXLookupFailed || f.ID == finding.MXAliasChain }) {
			t.Errorf("%s: %v has mx-lookup-failed or mx-alias", tt.zone, ids(got.Findings))
		}
	}
}

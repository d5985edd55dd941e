// Command scanworld generates the world the scan benchmark (bench/scan.sh)
// serves from knot: N mail domains under a few TLD-like zones, the zone
// files, the input list, the dnsperf query file and the ground truth.
//
//	go run ./bench/scanworld -n 100000 -out DIR [-seed 1] [-zones 8] [-audit]
//
// Everything is fake and reserved: domains under *.test (RFC 6761 §6.2),
// providers under *.example (RFC 2606 §2), addresses from the documentation
// ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737) and
// 2001:db8::/32 (RFC 3849).
//
// The mix (per mille of N; the exact counts are in world.json):
//
//	provider   500  on one of five shared providers with 2–5 MX each, whose
//	                hosts resolve in the provider's own zone
//	own        333  1–3 MX of their own, in their own zone (some
//	                multihomed, half with IPv6)
//	implicit    50  no MX, an address of their own (RFC 5321 §5.1 implicit MX)
//	no-mail     15  no MX and no address (the name exists: a TXT record)
//	null-mx     30  MX 0 . (RFC 7505)
//	dangling    20  MX to a name that does not exist
//	cname       17  MX to an alias (RFC 2181 §10.3), resolved in one answer
//	ip-literal  15  MX to an IP address written as a name
//	nxdomain    20  in the input, not in any zone
//
// Files written to DIR:
//
//	zones/*.zone  one file per zone (the TLD-like zones, the providers, a root)
//	zones.txt     "ORIGIN FILE" per line, for the server's configuration
//	input.txt     the domains, one per line, shuffled deterministically by seed
//	queries.txt   dnsperf input: the questions a perfect cache needs, in the
//	              order a scan of input.txt asks them (MX per domain, then A
//	              and AAAA of every exchange not asked before)
//	truth.jsonl   per domain: kind, expected result, MX records, and the
//	              address set of every exchange
//	world.json    the counts, and the queries a perfect cache needs per domain
//
// With -audit (audit.go) the zones also carry what "scan --mode check"
// audits (SPF, DMARC, DKIM, MTA-STS, TLS-RPT, TLSA, PTR, nameservers at
// 127.0.0.1), the routing files stay the same, and it also writes:
//
//	findings.jsonl     per domain: the finding IDs the audit must report
//	audit-queries.txt  the audit's recursive questions, each once, in input
//	                   order (what a perfect cache asks the resolver)
//	audit-direct.txt   the nameserver audit's direct questions to the
//	                   zone's servers, each once per server address
//
// The same -n and -seed always give the same files.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mxtrace/mxtrace/bench/internal/truth"
)

// kind is a domain's category in the world.
type kind uint8

const (
	kindProvider kind = iota
	kindOwn
	kindImplicit
	kindNoMail
	kindNullMX
	kindDangling
	kindCNAME
	kindIPLiteral
	kindNXDomain
	numKinds
)

var kindNames = [numKinds]string{"provider", "own", "implicit", "no-mail", "null-mx", "dangling", "cname", "ip-literal", "nxdomain"}

// perMille is the share of each kind; provider takes the rounding rest.
var perMille = [numKinds]int{500, 333, 50, 15, 30, 20, 17, 15, 20}

// ttl of every record; also the negative-caching TTL (RFC 2308 §5).
const ttl = 3600

// tlds are the TLD-like zones the domains live in.
var tlds = []string{"com", "net", "org", "de", "uk", "nl", "fr", "io", "br", "jp", "it", "pl", "au", "ca", "es", "se"}

// words make the domain labels look like names, not counters.
var words = []string{"blue", "fox", "shop", "cloud", "mail", "river", "stone", "north", "quick", "bright",
	"green", "data", "home", "star", "iron", "maple", "pixel", "ocean", "delta", "solar", "amber", "cedar",
	"lumen", "nova", "orbit", "prime", "quartz", "rapid", "summit", "tiger", "urban", "vivid"}

// provider is a shared mail provider: a zone of its own with its MX hosts.
type provider struct {
	zone   string // "bigmail.example."
	weight int    // share of the provider domains, in percent
	hosts  []pHost
}

type pHost struct {
	pref  uint16
	label string
	addrs []string
}

var providers = []provider{
	{"bigmail.example.", 40, []pHost{
		{5, "mx1", []string{"192.0.2.10", "2001:db8:1::10"}},
		{10, "alt1", []string{"192.0.2.11", "2001:db8:1::11"}},
		{20, "alt2", []string{"192.0.2.12", "2001:db8:1::12"}},
		{30, "alt3", []string{"192.0.2.13", "2001:db8:1::13"}},
		{40, "alt4", []string{"192.0.2.14", "2001:db8:1::14"}},
	}},
	{"cloudmx.example.", 25, []pHost{ // one tier of two multihomed hosts
		{10, "in1", []string{"192.0.2.20", "192.0.2.21", "2001:db8:2::20", "2001:db8:2::21"}},
		{10, "in2", []string{"192.0.2.22", "192.0.2.23", "2001:db8:2::22", "2001:db8:2::23"}},
	}},
	{"securegate.example.", 15, []pHost{ // IPv4 only
		{10, "mx-a", []string{"192.0.2.30"}},
		{20, "mx-b", []string{"192.0.2.31"}},
	}},
	{"hostco.example.", 12, []pHost{
		{10, "mail1", []string{"192.0.2.40", "2001:db8:4::40"}},
		{10, "mail2", []string{"192.0.2.41", "2001:db8:4::41"}},
		{20, "backup", []string{"192.0.2.42"}},
	}},
	{"smallisp.example.", 8, []pHost{
		{10, "mx", []string{"192.0.2.50", "2001:db8:5::50"}},
		{20, "mx2", []string{"192.0.2.51", "2001:db8:5::51"}},
	}},
}

// danglingShared is an MX target that no longer exists in a provider's
// zone, shared by the dangling domains that point into it.
const danglingShared = "old-mx.bigmail.example."

// counts is world.json.
type counts struct {
	Domains int            `json:"domains"`
	Seed    uint64         `json:"seed"`
	Kinds   map[string]int `json:"kinds"`
	Zones   int            `json:"zones"`
	// PerfectCache counts the questions a scan with a perfect cache asks:
	// one MX per domain, and A and AAAA once per distinct exchange that is
	// looked up (not an IP literal, not the Null MX root).
	MXQueries        int     `json:"mx_queries"`
	Exchanges        int     `json:"distinct_exchanges"`
	AddressQueries   int     `json:"address_queries"`
	PerfectQueries   int     `json:"perfect_cache_queries"`
	QueriesPerDomain float64 `json:"queries_per_domain"`
	// Audit counts the audit world's perfect-cache questions (-audit).
	Audit *auditCounts `json:"audit,omitempty"`
}

// world holds what is needed to derive every domain on demand.
type world struct {
	seed  uint64
	audit bool     // -audit: the audit world (audit.go)
	zones []string // TLD-like zone origins
	kinds []kind   // per domain index
}

// domain is one generated domain: its zone-file lines, its truth and the
// exchanges a scan looks up.
type domain struct {
	name      string // absolute
	zone      int    // index into world.zones
	rrs       []string
	truth     truth.Domain
	exchanges []string // absolute names whose A and AAAA a scan asks
}

func main() {
	n := flag.Int("n", 100000, "number of domains")
	out := flag.String("out", "", "output `DIR` (created)")
	seed := flag.Uint64("seed", 1, "seed for the world and the input order")
	nz := flag.Int("zones", 8, "number of TLD-like zones (at most 16)")
	audit := flag.Bool("audit", false, "also publish what --mode check audits, and its ground truth (audit.go)")
	flag.Parse()
	if *out == "" || *n < 1 || *nz < 1 || *nz > len(tlds) || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: scanworld -n N -out DIR [-seed S] [-zones 1..16]")
		os.Exit(2)
	}
	if err := generate(*n, *nz, *seed, *out, *audit); err != nil {
		fmt.Fprintln(os.Stderr, "scanworld:", err)
		os.Exit(1)
	}
}

func generate(n, nz int, seed uint64, dir string, audit bool) error {
	w := &world{seed: seed, audit: audit}
	for _, t := range tlds[:nz] {
		w.zones = append(w.zones, t+".test.")
	}
	// Exact shares, spread over the indexes by a seeded shuffle.
	var c [numKinds]int
	rest := n
	for k := kindOwn; k < numKinds; k++ {
		c[k] = n * perMille[k] / 1000
		rest -= c[k]
	}
	c[kindProvider] = rest
	w.kinds = make([]kind, 0, n)
	for k := range numKinds {
		for range c[k] {
			w.kinds = append(w.kinds, k)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	rng.Shuffle(n, func(i, j int) { w.kinds[i], w.kinds[j] = w.kinds[j], w.kinds[i] })

	if err := os.MkdirAll(filepath.Join(dir, "zones"), 0o755); err != nil {
		return err
	}
	files := &fileSet{}
	defer files.closeAll()

	// The TLD-like zones, the providers and a root: the root makes the
	// server answer NXDOMAIN, not REFUSED, for a name outside the world,
	// and lets a resolver's stub for "." point at the same server.
	zoneOut := make([]*bufio.Writer, len(w.zones))
	zlist, err := files.create(filepath.Join(dir, "zones.txt"))
	if err != nil {
		return err
	}
	addZone := func(origin string) (*bufio.Writer, error) {
		base := strings.TrimSuffix(origin, ".")
		if base == "" {
			base = "root"
		}
		path := filepath.Join(dir, "zones", base+".zone")
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(zlist, "%s %s\n", origin, abs)
		zw, err := files.create(path)
		if err != nil {
			return nil, err
		}
		w.writeApex(zw, origin)
		return zw, nil
	}
	for i, z := range w.zones {
		if zoneOut[i], err = addZone(z); err != nil {
			return err
		}
	}
	provZones := map[string]*bufio.Writer{}
	for _, p := range providers {
		zw, err := addZone(p.zone)
		if err != nil {
			return err
		}
		provZones[p.zone] = zw
		for _, h := range p.hosts {
			for _, a := range h.addrs {
				fmt.Fprintf(zw, "%s.%s %d IN %s %s\n", h.label, p.zone, ttl, addrType(a), a)
			}
		}
	}
	if _, err := addZone("."); err != nil {
		return err
	}
	var shared map[string]*bufio.Writer
	var fw *json.Encoder
	if audit {
		if shared, err = sharedAuditZones(addZone, provZones); err != nil {
			return err
		}
		ff, err := files.create(filepath.Join(dir, "findings.jsonl"))
		if err != nil {
			return err
		}
		fw = json.NewEncoder(ff)
	}

	// Pass 1, in index order: zone records and truth.
	tw, err := files.create(filepath.Join(dir, "truth.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(tw)
	kindCount := map[string]int{}
	for i := range n {
		d := w.domain(i)
		kindCount[d.truth.Kind]++
		for _, rr := range d.rrs {
			zoneOut[d.zone].WriteString(rr)
			zoneOut[d.zone].WriteByte('\n')
		}
		if err := enc.Encode(d.truth); err != nil {
			return err
		}
		if audit {
			a := w.auditOf(i, &d)
			for _, rr := range a.rrs {
				zoneOut[d.zone].WriteString(rr)
				zoneOut[d.zone].WriteByte('\n')
			}
			for _, r := range a.other {
				shared[r.zone].WriteString(r.rr)
				shared[r.zone].WriteString("\n")
			}
			if err := fw.Encode(truth.AuditDomain{Domain: d.truth.Domain, Findings: a.findings}); err != nil {
				return err
			}
		}
	}

	// Pass 2, in input order: the input list and the questions a perfect
	// cache asks, in the order a scan asks them.
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	rand.New(rand.NewPCG(seed, 0x0dde4)).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	in, err := files.create(filepath.Join(dir, "input.txt"))
	if err != nil {
		return err
	}
	qf, err := files.create(filepath.Join(dir, "queries.txt"))
	if err != nil {
		return err
	}
	var as *auditStream
	if audit {
		if as, err = newAuditStream(files, dir); err != nil {
			return err
		}
	}
	seen := map[string]struct{}{}
	for _, i := range order {
		d := w.domain(int(i))
		in.WriteString(strings.TrimSuffix(d.name, "."))
		in.WriteByte('\n')
		fmt.Fprintf(qf, "%s MX\n", d.name)
		for _, x := range d.exchanges {
			if _, ok := seen[x]; ok {
				continue
			}
			seen[x] = struct{}{}
			fmt.Fprintf(qf, "%s A\n%s AAAA\n", x, x)
		}
		if audit {
			as.add(&d, w.auditOf(int(i), &d), w.zones[d.zone])
		}
	}

	cnt := counts{Domains: n, Seed: seed, Kinds: kindCount, Zones: len(w.zones) + len(providers) + 1,
		MXQueries: n, Exchanges: len(seen), AddressQueries: 2 * len(seen)}
	cnt.PerfectQueries = cnt.MXQueries + cnt.AddressQueries
	cnt.QueriesPerDomain = float64(cnt.PerfectQueries) / float64(n)
	if audit {
		cnt.Audit = as.counts(n)
	}
	cf, err := files.create(filepath.Join(dir, "world.json"))
	if err != nil {
		return err
	}
	e := json.NewEncoder(cf)
	e.SetIndent("", "  ")
	if err := e.Encode(cnt); err != nil {
		return err
	}
	return files.closeAll()
}

// writeApex writes the SOA and NS records every zone needs. In the audit
// world every zone has two nameservers, both at nsAddress (the rig's
// knot), so that the nameserver audit asks them.
func (wd *world) writeApex(w *bufio.Writer, origin string) {
	ns := "ns1." + origin
	if origin == "." {
		ns = "ns1.root.test."
	}
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL %d\n", origin, ttl)
	// RFC 2308 §4: the SOA minimum is the negative-caching TTL.
	fmt.Fprintf(w, "%s %d IN SOA %s hostmaster.%s 1 3600 900 604800 %d\n", origin, ttl, ns, strings.TrimPrefix(origin, "."), ttl)
	if !wd.audit {
		fmt.Fprintf(w, "%s %d IN NS %s\n", origin, ttl, ns)
		if origin != "." {
			fmt.Fprintf(w, "%s %d IN A 192.0.2.53\n", ns, ttl)
		}
		return
	}
	for _, label := range []string{"ns1.", "ns2."} {
		name := label + origin
		if origin == "." {
			name = label + "root.test."
		}
		fmt.Fprintf(w, "%s %d IN NS %s\n", origin, ttl, name)
		fmt.Fprintf(w, "%s %d IN A %s\n", name, ttl, nsAddress)
	}
}

// domain derives domain i from the seed alone, so both passes agree
// without keeping a million domains in memory.
func (w *world) domain(i int) domain {
	rng := rand.New(rand.NewPCG(w.seed, uint64(i)+1))
	k := w.kinds[i]
	d := domain{zone: rng.IntN(len(w.zones))}
	d.name = words[rng.IntN(len(words))] + strconv.Itoa(i) + "." + w.zones[d.zone]
	show := strings.TrimSuffix(d.name, ".")
	d.truth = truth.Domain{Domain: show, Kind: kindNames[k], Result: "ok", Records: []truth.Record{}, Hosts: map[string][]string{}}
	rr := func(format string, args ...any) { d.rrs = append(d.rrs, fmt.Sprintf(format, args...)) }
	mx := func(pref uint16, target string) {
		rr("%s %d IN MX %d %s", d.name, ttl, pref, target)
		d.truth.Records = append(d.truth.Records, truth.Record{Preference: pref, Exchange: strings.TrimSuffix(target, ".")})
	}
	host := func(name string, addrs []string) {
		for _, a := range addrs {
			rr("%s %d IN %s %s", name, ttl, addrType(a), a)
		}
	}
	expect := func(exchange string, addrs []string) {
		d.truth.Hosts[strings.TrimSuffix(exchange, ".")] = append([]string{}, addrs...)
	}
	switch k {
	case kindProvider:
		p := pickProvider(rng)
		for _, h := range p.hosts {
			x := h.label + "." + p.zone
			mx(h.pref, x)
			expect(x, h.addrs)
			d.exchanges = append(d.exchanges, x)
		}
	case kindOwn:
		nmx := 1
		switch r := rng.IntN(100); {
		case r >= 85:
			nmx = 3
		case r >= 40:
			nmx = 2
		}
		sameTier := rng.IntN(2) == 0 // 10,10[,20] or 10,20[,30]
		v6 := rng.IntN(2) == 0
		for j := range nmx {
			pref := uint16(10 * (j + 1))
			if sameTier && j > 0 {
				pref = uint16(10 * j)
			}
			x := fmt.Sprintf("mx%d.%s", j+1, d.name)
			addrs := []string{ownV4(i, j, 0)}
			if rng.IntN(10) == 0 { // multihomed
				addrs = append(addrs, ownV4(i, j, 1))
			}
			if v6 {
				addrs = append(addrs, ownV6(i, j))
			}
			mx(pref, x)
			host(x, addrs)
			expect(x, addrs)
			d.exchanges = append(d.exchanges, x)
		}
	case kindImplicit:
		// RFC 5321 §5.1: no MX, so the domain itself is the exchange.
		addrs := []string{ownV4(i, 0, 0)}
		if rng.IntN(2) == 0 {
			addrs = append(addrs, ownV6(i, 0))
		}
		host(d.name, addrs)
		d.truth.Implicit = true
		expect(d.name, addrs)
		d.exchanges = append(d.exchanges, d.name)
	case kindNoMail:
		rr(`%s %d IN TXT "v=spf1 -all"`, d.name, ttl)
		d.truth.Result = "no-mail"
		d.exchanges = append(d.exchanges, d.name)
	case kindNullMX:
		// RFC 7505 §3: a single MX 0 . — no exchange is looked up.
		rr("%s %d IN MX 0 .", d.name, ttl)
		d.truth.Records = append(d.truth.Records, truth.Record{Preference: 0, Exchange: "."})
		d.truth.Result = "null-mx"
	case kindDangling:
		x := "gone." + d.name
		if rng.IntN(2) == 0 {
			x = danglingShared
		}
		mx(10, x)
		expect(x, nil)
		d.exchanges = append(d.exchanges, x)
	case kindCNAME:
		// The alias and its target are in one zone, so the server
		// answers the chain in one reply (RFC 1034 §4.3.2).
		x, target := "mail."+d.name, "srv."+d.name
		addrs := []string{ownV4(i, 0, 0)}
		mx(10, x)
		rr("%s %d IN CNAME %s", x, ttl, target)
		host(target, addrs)
		expect(x, addrs)
		d.exchanges = append(d.exchanges, x)
	case kindIPLiteral:
		// RFC 5321 §5.1: the target must be a name; a sender does not
		// look an address up, and neither does route.
		a := fmt.Sprintf("192.0.2.%d", 100+i%100)
		mx(10, a+".")
		expect(a, nil)
	case kindNXDomain:
		d.truth.Result = "nxdomain"
	}
	return d
}

func pickProvider(rng *rand.Rand) *provider {
	r := rng.IntN(100)
	for i := range providers {
		if r < providers[i].weight {
			return &providers[i]
		}
		r -= providers[i].weight
	}
	return &providers[len(providers)-1]
}

// ownV4 is the IPv4 address of host j of domain i (variant v for a second
// address), in 198.51.100.0/24 or 203.0.113.0/24; distinct hosts of one
// domain never share one.
func ownV4(i, j, v int) string {
	k := (i*7 + j*2 + v) % 500
	if k < 250 {
		return fmt.Sprintf("198.51.100.%d", 1+k)
	}
	return fmt.Sprintf("203.0.113.%d", 1+k-250)
}

// ownV6 is the IPv6 address of host j of domain i, unique in 2001:db8::/32.
func ownV6(i, j int) string {
	a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10 | byte(i>>24&0x0f), byte(i >> 16), byte(i >> 8), byte(i), 15: byte(j + 1)})
	return a.String()
}

func addrType(a string) string {
	if strings.Contains(a, ":") {
		return "AAAA"
	}
	return "A"
}

// fileSet creates buffered files and closes them all once.
type fileSet struct {
	files []*os.File
	bufs  []*bufio.Writer
	done  bool
}

func (s *fileSet) create(path string) (*bufio.Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	b := bufio.NewWriterSize(f, 1<<16)
	s.files, s.bufs = append(s.files, f), append(s.bufs, b)
	return b, nil
}

func (s *fileSet) closeAll() error {
	if s.done {
		return nil
	}
	s.done = true
	var errs []error
	for i, f := range s.files {
		errs = append(errs, s.bufs[i].Flush(), f.Close())
	}
	return errors.Join(errs...)
}

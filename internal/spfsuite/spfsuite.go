// Package spfsuite reads the RFC 7208 test suite (openspf.org, release
// 2014.04; the YAML file and its licence are in spf/testdata) and serves
// its zone data as a resolve.Resolver, so that the suite can be run through
// the spf package (spf/suite_test.go) and through the mxtrace command
// (cmd/mxtrace/spfsuite_test.go) with the same data and the same rules.
package spfsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/mxtrace/mxtrace/resolve"
)

// File is the suite, relative to the module's root.
const File = "spf/testdata/rfc7208-tests.yml"

// ExplanationFold lists cases, by Key, whose explanation is compared
// without regard to case, with the reason.
var ExplanationFold = map[string]string{
	"Macro expansion rules/v-macro-ip6": "the suite writes the %{ir} nibbles of an IPv6 address in upper case; " +
		"RFC 7208 §7.4's own example and RFC 3596 §2.5 use lower case, which we follow. DNS names are case-insensitive.",
}

// Scenario is one YAML document of the suite: cases sharing zone data.
type Scenario struct {
	Description string                 `yaml:"description"`
	Tests       map[string]Case        `yaml:"tests"`
	ZoneData    map[string][]yaml.Node `yaml:"zonedata"`
}

// Case is one test: check_host()'s input and the results allowed.
type Case struct {
	Description string     `yaml:"description"`
	Spec        yaml.Node  `yaml:"spec"`
	Helo        string     `yaml:"helo"`
	Host        string     `yaml:"host"`
	MailFrom    string     `yaml:"mailfrom"`
	Result      stringList `yaml:"result"`
	// Explanation is the expected exp= text of a fail; "DEFAULT" means
	// none; "" means it is not compared.
	Explanation string `yaml:"explanation"`
}

// Key names a case of a scenario: "scenario description/test name".
func Key(sc Scenario, name string) string { return sc.Description + "/" + name }

// Names lists the scenario's test names in order.
func (sc Scenario) Names() []string {
	names := make([]string, 0, len(sc.Tests))
	for n := range sc.Tests {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Agrees reports whether a result and explanation are what the case
// allows. key is the case's Key, for ExplanationFold.
func (c Case) Agrees(key, result, explanation string) bool {
	if !slices.Contains(c.Result, result) {
		return false
	}
	if c.Explanation == "" {
		return true
	}
	want := c.Explanation
	if want == "DEFAULT" {
		want = ""
	}
	if _, fold := ExplanationFold[key]; fold {
		return strings.EqualFold(explanation, want)
	}
	return explanation == want
}

// stringList decodes a scalar or a sequence of scalars.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// Load reads the suite's scenarios from path.
func Load(path string) ([]Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []Scenario
	for {
		var s Scenario
		err := dec.Decode(&s)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, s)
	}
}

// Resolver serves a scenario's zone data. It follows the suite driver's
// rules (pyspf's testspf.py): SPF-type entries stand in for TXT records
// when a name has no TXT entry at all; "TXT: NONE" means no TXT records; a
// TIMEOUT entry makes a query time out unless a record of the asked type
// came before it; names not listed do not exist.
type Resolver struct {
	names map[string][]item
}

type item struct {
	timeout bool
	rr      dns.RR
}

// NewResolver builds the Resolver of a scenario's zone data.
func NewResolver(zone map[string][]yaml.Node) (*Resolver, error) {
	f := &Resolver{names: map[string][]item{}}
	for name, entries := range zone {
		// Keyed as questions are (resolve.CanonicalName): a name with a
		// space, as macro-mania-in-domain asks for, is one key however
		// it was spelled on the way.
		owner := resolve.CanonicalName(name)
		hdr := func(rrtype uint16) dns.RR_Header {
			return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: 300}
		}
		var items, spf []item
		hasTXT := false
		for _, e := range entries {
			if e.Kind == yaml.ScalarNode {
				if e.Value != "TIMEOUT" {
					return nil, fmt.Errorf("%s: unknown entry %q", name, e.Value)
				}
				items = append(items, item{timeout: true})
				continue
			}
			var m map[string]yaml.Node
			if err := e.Decode(&m); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			for typ, v := range m {
				switch typ {
				case "A", "AAAA":
					a, err := netip.ParseAddr(v.Value)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", name, err)
					}
					if typ == "A" {
						items = append(items, item{rr: &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()}})
					} else {
						items = append(items, item{rr: &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()}})
					}
				case "MX":
					var mx []yaml.Node
					if err := v.Decode(&mx); err != nil || len(mx) != 2 {
						return nil, fmt.Errorf("%s: bad MX %v", name, err)
					}
					var pref uint16
					if err := mx[0].Decode(&pref); err != nil {
						return nil, fmt.Errorf("%s: %w", name, err)
					}
					items = append(items, item{rr: &dns.MX{Hdr: hdr(dns.TypeMX), Preference: pref, Mx: dns.Fqdn(mx[1].Value)}})
				case "PTR":
					items = append(items, item{rr: &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: dns.Fqdn(v.Value)}})
				case "CNAME":
					items = append(items, item{rr: &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: resolve.CanonicalName(v.Value)}})
				case "TXT", "SPF":
					var strs []string
					if v.Kind == yaml.ScalarNode {
						strs = []string{v.Value}
					} else if err := v.Decode(&strs); err != nil {
						return nil, fmt.Errorf("%s: %w", name, err)
					}
					if typ == "TXT" {
						hasTXT = true
						if len(strs) == 1 && strs[0] == "NONE" {
							continue
						}
						items = append(items, item{rr: &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: strs}})
					} else {
						spf = append(spf, item{rr: &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: strs}})
					}
				default:
					return nil, fmt.Errorf("%s: unknown record type %s", name, typ)
				}
			}
		}
		if !hasTXT {
			// The suite driver's "auto-magic duplication of SPF to TXT".
			items = append(items, spf...)
		}
		f.names[owner] = append(f.names[owner], items...)
	}
	return f, nil
}

// Lookup implements resolve.Resolver like a recursive resolver would: the
// CNAME chain (stopped at a loop), then the records.
func (f *Resolver) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, err)}
	}
	a := &resolve.Answer{Question: q, Server: "fake"}
	name := q.Name
	seen := map[string]bool{}
	for {
		items, ok := f.names[name]
		if !ok {
			a.Rcode = dns.RcodeNameError
			return a, nil
		}
		var cname *dns.CNAME
		found := false
		for _, it := range items {
			if it.timeout {
				if found {
					break
				}
				return nil, &resolve.Error{Question: q, Server: "fake", Rcode: -1, Err: resolve.ErrTimeout}
			}
			if c, ok := it.rr.(*dns.CNAME); ok && q.Type != dns.TypeCNAME {
				cname = c
			}
			if it.rr.Header().Rrtype == q.Type {
				found = true
				a.Answer = append(a.Answer, it.rr)
			}
		}
		if cname == nil || seen[name] {
			if !found {
				// NODATA: an SOA that packs, so the answer can go on the wire.
				a.Authority = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
					Ns: "ns.invalid.", Mbox: "hostmaster.invalid.", Minttl: 300}}
			}
			return a, nil
		}
		seen[name] = true
		a.Answer = append(a.Answer, cname)
		name = cname.Target
	}
}

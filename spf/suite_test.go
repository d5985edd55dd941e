package spf

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/mxtrace/mxtrace/resolve"
)

// The RFC 7208 test suite (openspf.org, release 2014.04), copied from the
// shared test data with its licence: testdata/rfc7208-tests.yml.
const suiteFile = "testdata/rfc7208-tests.yml"

// suiteDiffers lists the suite's cases where we deliberately give another
// answer than the suite expects, with the reason. Keys are "scenario/test".
// Every entry must still differ (the test fails when one starts to pass, so
// the list stays true).
var suiteDiffers = map[string]string{}

// explanationFold lists cases whose explanation is compared without regard
// to case, with the reason.
var explanationFold = map[string]string{
	"Macro expansion rules/v-macro-ip6": "the suite writes the %{ir} nibbles of an IPv6 address in upper case; " +
		"RFC 7208 §7.4's own example and RFC 3596 §2.5 use lower case, which we follow. DNS names are case-insensitive.",
}

// suiteScenario is one YAML document of the suite.
type suiteScenario struct {
	Description string                 `yaml:"description"`
	Tests       map[string]suiteCase   `yaml:"tests"`
	ZoneData    map[string][]yaml.Node `yaml:"zonedata"`
}

type suiteCase struct {
	Description string     `yaml:"description"`
	Spec        yaml.Node  `yaml:"spec"`
	Helo        string     `yaml:"helo"`
	Host        string     `yaml:"host"`
	MailFrom    string     `yaml:"mailfrom"`
	Result      stringList `yaml:"result"`
	Explanation string     `yaml:"explanation"`
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

func loadSuite(t *testing.T) []suiteScenario {
	t.Helper()
	f, err := os.Open(suiteFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []suiteScenario
	for {
		var s suiteScenario
		err := dec.Decode(&s)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", suiteFile, err)
		}
		out = append(out, s)
	}
	return out
}

// fakeDNS is a map-based resolver for the suite's zone data. It follows
// the suite driver's rules (pyspf's testspf.py): SPF-type entries stand in
// for TXT records when a name has no TXT entry at all; "TXT: NONE" means no
// TXT records; a TIMEOUT entry makes a query time out unless a record of
// the asked type came before it; names not listed do not exist.
type fakeDNS struct {
	names map[string][]fakeItem
}

type fakeItem struct {
	timeout bool
	rr      dns.RR
}

func newFakeDNS(t *testing.T, zone map[string][]yaml.Node) *fakeDNS {
	t.Helper()
	f := &fakeDNS{names: map[string][]fakeItem{}}
	for name, entries := range zone {
		owner := dns.CanonicalName(name)
		hdr := func(rrtype uint16) dns.RR_Header {
			return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: 300}
		}
		var items, spf []fakeItem
		hasTXT := false
		for _, e := range entries {
			if e.Kind == yaml.ScalarNode {
				if e.Value != "TIMEOUT" {
					t.Fatalf("%s: unknown entry %q", name, e.Value)
				}
				items = append(items, fakeItem{timeout: true})
				continue
			}
			var m map[string]yaml.Node
			if err := e.Decode(&m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for typ, v := range m {
				switch typ {
				case "A", "AAAA":
					a := netip.MustParseAddr(v.Value)
					if typ == "A" {
						items = append(items, fakeItem{rr: &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()}})
					} else {
						items = append(items, fakeItem{rr: &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()}})
					}
				case "MX":
					var mx []yaml.Node
					if err := v.Decode(&mx); err != nil || len(mx) != 2 {
						t.Fatalf("%s: bad MX %v", name, err)
					}
					var pref uint16
					if err := mx[0].Decode(&pref); err != nil {
						t.Fatal(err)
					}
					items = append(items, fakeItem{rr: &dns.MX{Hdr: hdr(dns.TypeMX), Preference: pref, Mx: dns.Fqdn(mx[1].Value)}})
				case "PTR":
					items = append(items, fakeItem{rr: &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: dns.Fqdn(v.Value)}})
				case "CNAME":
					items = append(items, fakeItem{rr: &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.CanonicalName(v.Value)}})
				case "TXT", "SPF":
					var strs []string
					if v.Kind == yaml.ScalarNode {
						strs = []string{v.Value}
					} else if err := v.Decode(&strs); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if typ == "TXT" {
						hasTXT = true
						if len(strs) == 1 && strs[0] == "NONE" {
							continue
						}
						items = append(items, fakeItem{rr: &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: strs}})
					} else {
						spf = append(spf, fakeItem{rr: &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: strs}})
					}
				default:
					t.Fatalf("%s: unknown record type %s", name, typ)
				}
			}
		}
		if !hasTXT {
			// The suite driver's "auto-magic duplication of SPF to TXT".
			items = append(items, spf...)
		}
		f.names[owner] = append(f.names[owner], items...)
	}
	return f
}

// Lookup implements resolve.Resolver like a recursive resolver would: the
// CNAME chain (stopped at a loop), then the records.
func (f *fakeDNS) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
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
				a.Authority = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300}, Minttl: 300}}
			}
			return a, nil
		}
		seen[name] = true
		a.Answer = append(a.Answer, cname)
		name = cname.Target
	}
}

func TestRFC7208Suite(t *testing.T) {
	stillDiffer := map[string]bool{}
	ran := 0
	for _, sc := range loadSuite(t) {
		r := newFakeDNS(t, sc.ZoneData)
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range sc.Tests {
				if !yield(n) {
					return
				}
			}
		})
		for _, name := range names {
			tc := sc.Tests[name]
			key := sc.Description + "/" + name
			t.Run(key, func(t *testing.T) {
				ran++
				ip, err := netip.ParseAddr(tc.Host)
				if err != nil {
					t.Fatal(err)
				}
				c := &Checker{Resolver: r, Receiver: "receiver.example", Now: func() time.Time { return time.Unix(1700000000, 0) }}
				res := c.CheckHost(t.Context(), Query{IP: ip, Sender: tc.MailFrom, HELO: tc.Helo})
				got := string(res.Status)
				ok := slices.Contains(tc.Result, got)
				if tc.Explanation != "" && ok {
					want := tc.Explanation
					if want == "DEFAULT" {
						want = ""
					}
					if _, fold := explanationFold[key]; fold {
						ok = strings.EqualFold(res.Explanation, want)
					} else {
						ok = res.Explanation == want
					}
				}
				if why, listed := suiteDiffers[key]; listed {
					if ok {
						t.Errorf("listed in suiteDiffers (%s) but now agrees with the suite: remove it", why)
					}
					stillDiffer[key] = true
					return
				}
				if !ok {
					t.Errorf("%s\nresult %s, explanation %q (%v)\nwant %v, explanation %q\npath: %+v",
						tc.Description, got, res.Explanation, res.Err, tc.Result, tc.Explanation, res.Path)
				}
			})
		}
	}
	if ran < 200 {
		t.Errorf("ran %d cases; the suite has more than 200", ran)
	}
	for k := range suiteDiffers {
		if !stillDiffer[k] {
			t.Errorf("suiteDiffers lists %q, which is not in the suite", k)
		}
	}
}

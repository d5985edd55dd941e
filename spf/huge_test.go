package spf_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
)

// hugeSPF is a zone whose d.test has one SPF record of n terms, as long as
// a TXT record can be written in a zone file (255-octet strings), and
// 2,000 more TXT records that are not SPF.
func hugeSPF(t testing.TB, term string, n int) *resolve.Zones {
	t.Helper()
	rec := "v=spf1" + strings.Repeat(" "+term, n) + " -all"
	var b strings.Builder
	b.WriteString("$ORIGIN test.\n$TTL 3600\n@ SOA ns h 1 2 3 4 300\nx.d A 192.0.2.9\nd TXT")
	for s := range slices.Chunk([]byte(rec), 250) {
		b.WriteString(` "` + string(s) + `"`)
	}
	b.WriteString("\n")
	for i := range 2000 {
		b.WriteString("d TXT \"other " + strings.Repeat("x", i%200) + string(rune('a'+i%26)) + "\"\n")
	}
	z, err := resolve.ParseZones(strings.NewReader(b.String()), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestHugeSPFRecord: a record of 5,000 DNS-querying terms (RFC 7208 §4.6.4
// allows 10) among 2,000 other TXT records is analysed and evaluated as
// any other: the count, the finding, permerror after the limit.
func TestHugeSPFRecord(t *testing.T) {
	z := hugeSPF(t, "a:x.d.test", 5000)
	an, err := spf.Lookup(t.Context(), z, dnsname.MustParse("d.test"), spf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if an.Lookups != 5000 || !slices.ContainsFunc(spf.Findings(an), func(f finding.Finding) bool { return f.ID == finding.SPFLookupLimit }) {
		t.Errorf("analysis: %d lookups, findings %v; want 5000 and spf-lookup-limit", an.Lookups, spf.Findings(an))
	}
	res := (&spf.Checker{Resolver: z}).CheckHost(t.Context(), spf.Query{IP: netip.MustParseAddr("203.0.113.1"), Domain: "d.test", HELO: "h.test"})
	if res.Status != spf.PermError {
		t.Errorf("check_host: %s, want permerror (lookup limit)", res.Status)
	}
}

// BenchmarkHugeSPFRecord analyses and evaluates records of n "a" terms:
// the time per op must grow linearly with n.
func BenchmarkHugeSPFRecord(b *testing.B) {
	for _, n := range []int{7500, 15000, 30000} {
		b.Run(fmt.Sprint("terms=", n), func(b *testing.B) {
			z := hugeSPF(b, "a", n)
			c := &spf.Checker{Resolver: z}
			q := spf.Query{IP: netip.MustParseAddr("203.0.113.1"), Domain: "d.test", HELO: "h.test"}
			for b.Loop() {
				if _, err := spf.Lookup(b.Context(), z, dnsname.MustParse("d.test"), spf.Options{}); err != nil {
					b.Fatal(err)
				}
				c.CheckHost(b.Context(), q)
			}
		})
	}
}

// benchZone has a domain with an include, an mx and an a term, two of
// them void, for the benchmarks of what a check scan does per domain.
func benchZone(b *testing.B) resolve.Resolver {
	zones, err := resolve.ParseZones(strings.NewReader(`$ORIGIN example.test.
@ 300 SOA ns hostmaster 1 2 3 4 5
@ TXT "v=spf1 mx a:mail.example.test include:_spf.provider.example.test a:void1.example.test a:void2.example.test ?all"
@ MX 10 mail
mail A 192.0.2.1
_spf.provider TXT "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 ptr -all"
`), "t")
	if err != nil {
		b.Fatal(err)
	}
	return resolve.NewCache(zones, 0)
}

// BenchmarkLookup analyzes benchZone's domain over a cache that holds
// every answer: the walk's own work.
func BenchmarkLookup(b *testing.B) {
	r := benchZone(b)
	domain := dnsname.MustParse("example.test")
	for b.Loop() {
		if _, err := spf.Lookup(b.Context(), r, domain, spf.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindings judges benchZone's analysis (spf-void-lookups,
// spf-ptr in the include, spf-neutral-all).
func BenchmarkFindings(b *testing.B) {
	an, err := spf.Lookup(b.Context(), benchZone(b), dnsname.MustParse("example.test"), spf.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if len(spf.Findings(an)) == 0 {
		b.Fatal("no findings")
	}
	for b.Loop() {
		spf.Findings(an)
	}
}

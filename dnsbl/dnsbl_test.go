package dnsbl

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// lists is a fake resolver: a map of owner → records (zone-file syntax);
// names missing from it are NXDOMAIN, names in fail are SERVFAIL.
type lists struct {
	rrs  map[string][]string
	fail map[string]bool
}

func (l lists) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	if l.fail[q.Name] {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	recs, ok := l.rrs[q.Name]
	a := &resolve.Answer{Question: q, Rcode: dns.RcodeSuccess}
	if !ok {
		a.Rcode = dns.RcodeNameError
	}
	for _, s := range recs {
		rr, err := dns.NewRR(q.Name + " 300 " + s)
		if err != nil {
			panic(err)
		}
		if rr.Header().Rrtype == q.Type {
			a.Answer = append(a.Answer, rr)
		}
	}
	return a, nil
}

// healthy returns a list zone with its RFC 5782 §5 test entries.
func healthy(zone string, extra map[string][]string) map[string][]string {
	m := map[string][]string{
		"2.0.0.127." + zone + ".": {"A 127.0.0.2", `TXT "test entry"`},
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestQueryName(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.99", "99.2.0.192.bl.test."},
		{"::ffff:192.0.2.99", "99.2.0.192.bl.test."},
		// RFC 5782 §2.4 example.
		{"2001:db8:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test."},
	} {
		if got := QueryName(netip.MustParseAddr(tt.addr), "bl.test"); got != tt.want {
			t.Errorf("QueryName(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	listed := netip.MustParseAddr("192.0.2.99")
	clean := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		name    string
		zone    map[string][]string
		fail    map[string]bool
		want    []Status // for listed, clean
		wantIDs []finding.ID
	}{
		{"listing with reason", healthy("bl.test", map[string][]string{
			"99.2.0.192.bl.test.": {"A 127.0.0.4", `TXT "spam trap hit, see https://bl.test/99"`},
		}), nil, []Status{Listed, Clean}, []finding.ID{finding.DNSBLListed}},
		{"nothing listed", healthy("bl.test", nil), nil, []Status{Clean, Clean}, nil},
		{"public resolver refused", healthy("bl.test", map[string][]string{
			"99.2.0.192.bl.test.": {"A 127.255.255.254"},
		}), nil, []Status{Unusable, Clean}, []finding.ID{finding.DNSBLUnusable}},
		{"hijacking resolver", map[string][]string{
			"2.0.0.127.bl.test.":  {"A 198.51.100.7"},
			"99.2.0.192.bl.test.": {"A 198.51.100.7"},
			"1.2.0.192.bl.test.":  {"A 198.51.100.7"},
			"1.0.0.127.bl.test.":  {"A 198.51.100.7"},
		}, nil, []Status{Unusable, Unusable}, []finding.ID{finding.DNSBLUnusable}},
		{"dead list: test entry missing", map[string][]string{
			"99.2.0.192.bl.test.": {"A 127.0.0.2"},
		}, nil, []Status{Unusable, Unusable}, []finding.ID{finding.DNSBLUnusable}},
		{"list answering for everything", healthy("bl.test", map[string][]string{
			"1.0.0.127.bl.test.":  {"A 127.0.0.2"},
			"99.2.0.192.bl.test.": {"A 127.0.0.2"},
			"1.2.0.192.bl.test.":  {"A 127.0.0.2"},
		}), nil, []Status{Unusable, Unusable}, []finding.ID{finding.DNSBLUnusable}},
		{"SERVFAIL is not a listing", healthy("bl.test", nil), map[string]bool{"99.2.0.192.bl.test.": true},
			[]Status{Unusable, Clean}, []finding.ID{finding.DNSBLUnusable}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Lookup(t.Context(), lists{tt.zone, tt.fail}, []netip.Addr{listed, clean}, Options{Lists: []string{"bl.test"}})
			if err != nil {
				t.Fatal(err)
			}
			var got []Status
			for _, r := range res.Entries {
				got = append(got, r.Status)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v (%+v)", got, tt.want, res)
			}
			var ids []finding.ID
			for _, f := range Findings(res) {
				ids = append(ids, f.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("findings = %v, want %v", ids, tt.wantIDs)
			}
			if tt.want[0] == Listed && res.Entries[0].Reason == "" {
				t.Errorf("listing without the TXT reason: %+v", res.Entries[0])
			}
		})
	}
}

// TestLookupSkipsUnlistable: addresses no list can know are not asked about.
func TestLookupSkipsUnlistable(t *testing.T) {
	r, opts := lists{healthy("bl.test", nil), nil}, Options{Lists: []string{"bl.test"}}
	got, err := Lookup(t.Context(), r, []netip.Addr{
		netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1"),
		netip.MustParseAddr("192.0.2.1"),
	}, opts)
	if err != nil || len(got.Entries) != 1 || got.Entries[0].Address != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("results %+v, %v; want only 192.0.2.1", got, err)
	}
	got, err = Lookup(t.Context(), r, []netip.Addr{netip.MustParseAddr("10.1.2.3")}, opts)
	if err != nil || !got.IsZero() {
		t.Errorf("only a private address: %+v, %v; want nothing asked", got, err)
	}
}

// TestLookupResolverDown: when not one query is answered, the blacklist
// check could not be done: one error, not one dnsbl-unusable per list.
func TestLookupResolverDown(t *testing.T) {
	fail := map[string]bool{}
	for _, list := range []string{"a.test", "b.test"} {
		for _, a := range []string{"192.0.2.1", "127.0.0.2", "127.0.0.1"} {
			fail[QueryName(netip.MustParseAddr(a), list)] = true
		}
	}
	res, err := Lookup(t.Context(), lists{nil, fail}, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Options{Lists: []string{"a.test", "b.test"}})
	if err == nil || !errors.Is(err, resolve.ErrServerFailure) || res != nil {
		t.Fatalf("Lookup = %+v, %v; want an error wrapping SERVFAIL", res, err)
	}
	// One list still answering: the other's failure is its finding.
	delete(fail, QueryName(netip.MustParseAddr("127.0.0.2"), "b.test"))
	res, err = Lookup(t.Context(), lists{nil, fail}, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Options{Lists: []string{"a.test", "b.test"}})
	if err != nil {
		t.Fatalf("one list answers: %v, want the entries", err)
	}
	if fs := Findings(res); len(fs) != 2 || fs[0].ID != finding.DNSBLUnusable {
		t.Errorf("findings %+v, want dnsbl-unusable for both lists", fs)
	}
}

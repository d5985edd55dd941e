package spf

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/resolve"
)

const checkZone = `
$ORIGIN example.test.
@        300 SOA ns hostmaster 1 7200 900 1209600 300
@        TXT "v=spf1 ip4:192.0.2.1 include:_spf.example.test " "-include:bad.example.test mx ?all"
@        MX  10 mail
mail     A   192.0.2.25
_spf     TXT "v=spf1 ip4:198.51.100.0/24 include:_spf2.example.test ~all"
_spf2    TXT "v=spf1 ip6:2001:db8::/32 -all"
bad      TXT "v=spf1 ip4:203.0.113.66 -all"
strict   TXT "v=spf1 a:mail.example.test -all exp=why.example.test"
why      TXT "%{i} may not send for %{d} " "(sender %{s}, helo %{h})."
moved    TXT "v=spf1 redirect=_spf.example.test"
broken   TXT "v=spf1 ip4:192.0.2.1 incude:x.example.test"
twice    TXT "v=spf1 -all"
twice    TXT "v=spf1 +all"
away     TXT "v=spf1 include:elsewhere.example ~all"
`

func TestCheckHost(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(checkZone), "check")
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Resolver: zones, Now: func() time.Time { return time.Unix(0, 0) }}
	type step struct{ domain, via, term string }
	tests := []struct {
		ip, domain, sender string
		status             Status
		path               []step
		lookups, voids     int
		explanation        string
		err                error
	}{
		{"192.0.2.1", "example.test", "", Pass,
			[]step{{"example.test", "", "ip4:192.0.2.1"}}, 0, 0, "", nil},
		{"2001:db8::5", "example.test", "", Pass,
			[]step{{"example.test", "", "include:_spf.example.test"}, {"_spf.example.test", "include", "include:_spf2.example.test"}, {"_spf2.example.test", "include", "ip6:2001:db8::/32"}}, 2, 0, "", nil},
		{"198.51.100.7", "example.test", "", Pass,
			[]step{{"example.test", "", "include:_spf.example.test"}, {"_spf.example.test", "include", "ip4:198.51.100.0/24"}}, 1, 0, "", nil},
		// A failing include does not match: the next term decides.
		{"203.0.113.66", "example.test", "", Fail,
			[]step{{"example.test", "", "-include:bad.example.test"}, {"bad.example.test", "include", "ip4:203.0.113.66"}}, 3, 0, "", nil},
		{"192.0.2.25", "example.test", "", Pass,
			[]step{{"example.test", "", "mx"}}, 4, 0, "", nil},
		{"192.0.2.99", "example.test", "", Neutral,
			[]step{{"example.test", "", "?all"}}, 4, 0, "", nil},
		{"192.0.2.99", "strict.example.test", "joe@strict.example.test", Fail,
			[]step{{"strict.example.test", "", "-all"}}, 1, 0, "192.0.2.99 may not send for strict.example.test (sender joe@strict.example.test, helo mail.example.test).", nil},
		{"198.51.100.1", "moved.example.test", "", Pass,
			[]step{{"moved.example.test", "", "redirect=_spf.example.test"}, {"_spf.example.test", "redirect", "ip4:198.51.100.0/24"}}, 1, 0, "", nil},
		{"192.0.2.1", "broken.example.test", "", PermError,
			[]step{{"broken.example.test", "", ""}}, 0, 0, "", ErrSyntax},
		{"192.0.2.1", "twice.example.test", "", PermError,
			[]step{{"twice.example.test", "", ""}}, 0, 0, "", ErrMultipleRecords},
		{"192.0.2.1", "nothing.example.test", "", None,
			[]step{{"nothing.example.test", "", ""}}, 0, 0, "", ErrNoRecord},
		{"192.0.2.1", "single", "", None,
			[]step{{"single", "", ""}}, 0, 0, "", ErrInvalidDomain},
		// elsewhere.example is in no zone: a temporary failure.
		{"192.0.2.1", "away.example.test", "", TempError,
			[]step{{"away.example.test", "", "include:elsewhere.example"}, {"elsewhere.example", "include", ""}}, 1, 0, "", resolve.ErrNotInZone},
		// An IPv4-mapped client is an IPv4 client (RFC 7208 §5).
		{"::ffff:192.0.2.1", "example.test", "", Pass,
			[]step{{"example.test", "", "ip4:192.0.2.1"}}, 0, 0, "", nil},
	}
	for _, tc := range tests {
		sender := tc.sender
		res := c.CheckHost(t.Context(), Query{IP: netip.MustParseAddr(tc.ip), Domain: tc.domain, Sender: sender, HELO: "mail.example.test"})
		name := tc.ip + " " + tc.domain
		if res.Status != tc.status {
			t.Errorf("%s: %s (%v), want %s", name, res.Status, res.Err, tc.status)
		}
		var got []step
		for _, s := range res.Path {
			got = append(got, step{s.Domain, s.Via, s.Term})
			if s.Result == "" {
				t.Errorf("%s: step without result %+v", name, s)
			}
		}
		if d := cmp.Diff(tc.path, got, cmp.AllowUnexported(step{})); d != "" {
			t.Errorf("%s: path (-want +got):\n%s", name, d)
		}
		if res.Lookups != tc.lookups || res.VoidLookups != tc.voids {
			t.Errorf("%s: lookups %d/%d, want %d/%d", name, res.Lookups, res.VoidLookups, tc.lookups, tc.voids)
		}
		if res.Explanation != tc.explanation {
			t.Errorf("%s: explanation %q, want %q", name, res.Explanation, tc.explanation)
		}
		if tc.err == nil && res.Err != nil || tc.err != nil && !errors.Is(res.Err, tc.err) {
			t.Errorf("%s: err %v, want %v", name, res.Err, tc.err)
		}
		if (res.Err == nil) != (res.Reason == "") {
			t.Errorf("%s: reason %q with err %v", name, res.Reason, res.Err)
		}
	}
}

func TestCheckHostSyntaxErrorPosition(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(checkZone), "check")
	if err != nil {
		t.Fatal(err)
	}
	res := (&Checker{Resolver: zones}).CheckHost(t.Context(), Query{IP: netip.MustParseAddr("192.0.2.1"), Domain: "broken.example.test"})
	if len(res.Path) != 1 || res.Path[0].Position != 21 || !strings.Contains(res.Reason, `position 21: unknown mechanism "incude"`) {
		t.Errorf("path %+v, reason %q", res.Path, res.Reason)
	}
}

func TestCheckHostInvalidIP(t *testing.T) {
	res := (&Checker{}).CheckHost(t.Context(), Query{Domain: "example.test"})
	if res.Status != PermError || !errors.Is(res.Err, ErrInvalidIP) {
		t.Errorf("%s %v", res.Status, res.Err)
	}
}

// The limits can be lowered (for tests and cautious receivers).
func TestCheckHostLimits(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(checkZone), "check")
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Resolver: zones, MaxLookups: 1}
	res := c.CheckHost(t.Context(), Query{IP: netip.MustParseAddr("2001:db8::5"), Domain: "example.test"})
	if res.Status != PermError || !errors.Is(res.Err, ErrLookupLimit) || res.Lookups != 2 {
		t.Errorf("%s %v lookups %d", res.Status, res.Err, res.Lookups)
	}
}

// Hostile input stays bounded: a huge local-part expanded many times (a
// 300,000-character name, truncated to its last labels by RFC 7208 §4.8:
// exists:big.example.test, which has no address, so -all decides), an
// include chain far longer than the limit, a record that is a wall of
// DNS-querying terms.
func TestCheckHostHostile(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN example.test.\n@ 300 SOA ns hostmaster 1 2 3 4 5\n")
	b.WriteString("big TXT \"v=spf1 exists:" + strings.Repeat("%{l}", 60) + ".%{d} -all\"\n")
	for i := range 50 {
		b.WriteString("c" + strconv.Itoa(i) + " TXT \"v=spf1 include:c" + strconv.Itoa(i+1) + ".example.test\"\n")
	}
	b.WriteString("wall TXT \"v=spf1" + strings.Repeat(" a:x.example.test", 200) + " -all\"\n")
	b.WriteString("x A 192.0.2.200\n")
	zones, err := resolve.ParseZones(strings.NewReader(b.String()), "hostile")
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Resolver: zones}
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		domain, sender string
		status         Status
		want           error
	}{
		{"big.example.test", strings.Repeat("x", 5000) + "@big.example.test", Fail, nil},
		{"c0.example.test", "", PermError, ErrLookupLimit},
		{"wall.example.test", "", PermError, ErrLookupLimit},
	} {
		res := c.CheckHost(t.Context(), Query{IP: ip, Domain: tc.domain, Sender: tc.sender, HELO: "h.example"})
		if res.Status != tc.status || !errors.Is(res.Err, tc.want) || res.Lookups > MaxLookups+1 {
			t.Errorf("%s: %s %v after %d lookups, want %s %v", tc.domain, res.Status, res.Err, res.Lookups, tc.status, tc.want)
		}
	}
}

// TestQueryIdentity: the sender and domain check_host() works with, derived
// as a receiving server derives them (RFC 7208 §2.3, §2.4, §4.3).
func TestQueryIdentity(t *testing.T) {
	for _, tc := range []struct {
		q              Query
		sender, domain string
	}{
		{Query{Sender: "joe@example.org", HELO: "mail.example.net"}, "joe@example.org", "example.org"},
		{Query{Sender: "<joe@example.org>"}, "joe@example.org", "example.org"},
		{Query{Sender: "", HELO: "mail.example.net"}, "postmaster@mail.example.net", "mail.example.net"},
		{Query{Sender: "<>", HELO: "mail.example.net"}, "postmaster@mail.example.net", "mail.example.net"},
		{Query{Sender: "@example.org"}, "postmaster@example.org", "example.org"},
		{Query{Sender: "a@b@example.org"}, "a@b@example.org", "example.org"},
		{Query{Sender: "", HELO: "[1.2.3.5]"}, "postmaster@[1.2.3.5]", "[1.2.3.5]"},
		{Query{Domain: "example.com", Sender: "joe@example.org"}, "joe@example.org", "example.com"},
		{Query{Sender: "<joe@example.org"}, "<joe@example.org", "example.org"},
	} {
		sender, domain := tc.q.Identity()
		if sender != tc.sender || domain != tc.domain {
			t.Errorf("%+v: sender %q, domain %q; want %q, %q", tc.q, sender, domain, tc.sender, tc.domain)
		}
	}
}

package rdns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
)

const zones = `
$TTL 3600
$ORIGIN 2.0.192.in-addr.arpa.
@   SOA ns.test. h.test. 1 7200 900 1209600 300
1   PTR mx.d.test.
2   PTR elsewhere.d.test.
3   PTR gone.d.test.
4   PTR other.d.test.
4   PTR mx4.d.test.
$ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.
@   SOA ns.test. h.test. 1 7200 900 1209600 300
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mx.d.test.
$ORIGIN test.
@   SOA ns.test. h.test. 1 7200 900 1209600 300
mx.d        A    192.0.2.1
mx.d        AAAA 2001:db8::1
elsewhere.d A    192.0.2.99
other.d     A    192.0.2.98
mx4.d       A    192.0.2.4
`

func TestLookup(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(zones), "rdns")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr      string
		names     []string
		confirmed string
		finding   finding.ID // "" for none
	}{
		{"192.0.2.1", []string{"mx.d.test"}, "mx.d.test", ""},
		{"2001:db8::1", []string{"mx.d.test"}, "mx.d.test", ""},
		{"::ffff:192.0.2.1", []string{"mx.d.test"}, "mx.d.test", ""}, // mapped addresses are unmapped
		{"192.0.2.2", []string{"elsewhere.d.test"}, "", finding.PTRMismatch},
		{"192.0.2.3", []string{"gone.d.test"}, "", finding.PTRMismatch},
		{"192.0.2.4", []string{"other.d.test", "mx4.d.test"}, "mx4.d.test", ""}, // the second name confirms
		{"192.0.2.5", []string{}, "", finding.PTRMissing},
	} {
		r, err := rdns.Lookup(t.Context(), z, netip.MustParseAddr(tt.addr), rdns.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.addr, err)
		}
		if !slices.Equal(r.Names, tt.names) || r.Confirmed != tt.confirmed {
			t.Errorf("%s: names %v confirmed %q, want %v %q", tt.addr, r.Names, r.Confirmed, tt.names, tt.confirmed)
		}
		fs := rdns.Findings(r, "mx.d.test")
		switch {
		case tt.finding == "" && len(fs) > 0:
			t.Errorf("%s: unexpected findings %v", tt.addr, fs)
		case tt.finding != "" && (len(fs) != 1 || fs[0].ID != tt.finding || fs[0].Subject != r.Address.String()):
			t.Errorf("%s: findings %v, want one %s", tt.addr, fs, tt.finding)
		}
	}
}

// TestLookupTemporary: a failed PTR lookup is an error, never "ptr-missing".
func TestLookupTemporary(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(zones), "rdns")
	if err != nil {
		t.Fatal(err)
	}
	// 198.51.100.0/24 is outside the loaded reverse zones.
	if r, err := rdns.Lookup(t.Context(), z, netip.MustParseAddr("198.51.100.1"), rdns.Options{}); err == nil {
		t.Errorf("lookup outside the zones = %+v, want an error", r)
	}
}

// TestLookupAll: LookupAll gives each address what Lookup gives it, in
// order, a failure included, and logs each address once.
func TestLookupAll(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(zones), "rdns")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for _, a := range []string{"192.0.2.4", "198.51.100.1", "2001:db8::1", "192.0.2.2", "192.0.2.5", "::ffff:192.0.2.1"} {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, errs := rdns.LookupAll(t.Context(), z, addrs, rdns.Options{Logger: logger})
	if len(res) != len(addrs) || len(errs) != len(addrs) {
		t.Fatalf("%d results, %d errors for %d addresses", len(res), len(errs), len(addrs))
	}
	for i, a := range addrs {
		want, wantErr := rdns.Lookup(t.Context(), z, a, rdns.Options{})
		if !reflect.DeepEqual(res[i], want) || fmt.Sprint(errs[i]) != fmt.Sprint(wantErr) {
			t.Errorf("%s: %+v, %v; Lookup gives %+v, %v", a, res[i], errs[i], want, wantErr)
		}
	}
	if errs[1] == nil || res[0].Confirmed != "mx4.d.test" {
		t.Errorf("want an error outside the zones and the second name of 192.0.2.4 confirmed: %+v, %v", res, errs)
	}
	if n := strings.Count(log.String(), `msg="rdns lookup"`); n != len(addrs) {
		t.Errorf("%d log lines for %d addresses:\n%s", n, len(addrs), log.String())
	}
}

// TestLookupAllQuietLogger: a logger that drops debug records (a scan's,
// at warning level) costs LookupAll nothing: no record is built for it.
func TestLookupAllQuietLogger(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(zones), "rdns")
	if err != nil {
		t.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	silent := testing.AllocsPerRun(20, func() { rdns.LookupAll(t.Context(), z, addrs, rdns.Options{}) })
	warn := testing.AllocsPerRun(20, func() { rdns.LookupAll(t.Context(), z, addrs, rdns.Options{Logger: quiet}) })
	if warn != silent {
		t.Errorf("%v allocations with a warning-level logger, %v without one", warn, silent)
	}
}

// failing fails the lookups of one name with SERVFAIL (or REFUSED) and
// passes the rest on.
type failing struct {
	next    resolve.Resolver
	name    string
	refused bool
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Name == f.name && f.refused {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeRefused, Err: resolve.ErrRefused}
	}
	if q.Name == f.name {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.next.Lookup(ctx, q)
}

// TestForwardFailure: a PTR name whose forward lookup fails leaves the
// address undecided, an error, not ptr-mismatch; another name that
// confirms the address still does.
func TestForwardFailure(t *testing.T) {
	z, err := resolve.ParseZones(strings.NewReader(zones), "rdns")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr, fails, confirmed string
		refused, wantErr       bool
	}{
		{"192.0.2.1", "mx.d.test.", "", false, true},
		{"192.0.2.4", "other.d.test.", "mx4.d.test", false, false}, // the second name confirms
		{"192.0.2.4", "mx4.d.test.", "", false, true},
		// REFUSED is not temporary: the name does not resolve back.
		{"192.0.2.1", "mx.d.test.", "", true, false},
	} {
		r := failing{z, tt.fails, tt.refused}
		res, err := rdns.Lookup(t.Context(), r, netip.MustParseAddr(tt.addr), rdns.Options{})
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, resolve.ErrServerFailure)) {
			t.Errorf("%s with %s failing: %v, want error %v (SERVFAIL)", tt.addr, tt.fails, err, tt.wantErr)
		}
		if err == nil && res.Confirmed != tt.confirmed {
			t.Errorf("%s with %s failing: confirmed %q, want %q", tt.addr, tt.fails, res.Confirmed, tt.confirmed)
		}
		if fs := rdns.Findings(res, "mx.d.test"); tt.wantErr && len(fs) > 0 {
			t.Errorf("%s with %s failing: findings %v, want none", tt.addr, tt.fails, fs)
		}
	}
}

// TestReverseName: the PTR owner names of RFC 1035 §3.5 and RFC 3596
// §2.5, and the same name as miekg/dns's ReverseAddr builds from the
// address's text, for addresses of every shape.
func TestReverseName(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1", "1.2.0.192.in-addr.arpa."},
		{"10.0.0.255", "255.0.0.10.in-addr.arpa."},
		{"0.0.0.0", "0.0.0.0.in-addr.arpa."},
		{"::ffff:198.51.100.7", "7.100.51.198.in-addr.arpa."}, // mapped: the IPv4 name
		{"2001:db8::567:89ab", "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
		{"::", strings.Repeat("0.", 32) + "ip6.arpa."},
	} {
		if got := rdns.ReverseName(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("ReverseName(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	// Against the library, over a spread of addresses (a fixed walk, so
	// a failure repeats).
	x := uint64(0x9e3779b97f4a7c15)
	for range 2000 {
		var b [16]byte
		for i := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[i] = byte(x)
		}
		for _, a := range []netip.Addr{netip.AddrFrom16(b), netip.AddrFrom4([4]byte(b[:4]))} {
			want, err := dns.ReverseAddr(a.String())
			if err != nil {
				t.Fatal(err)
			}
			if got := rdns.ReverseName(a); got != resolve.CanonicalName(want) {
				t.Fatalf("ReverseName(%s) = %q, ReverseAddr says %q", a, got, want)
			}
		}
	}
}

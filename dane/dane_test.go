package dane

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

var (
	d32 = strings.Repeat("3c", 32)
	d31 = strings.Repeat("3c", 31)
)

var daneZone = strings.NewReplacer("D32", d32, "D31", d31).Replace(`
$ORIGIN signed.test.
@              3600 IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 600 86400 300
mx1            A    192.0.2.1
_25._tcp.mx1   TLSA 3 1 1 D32
mx2            A    192.0.2.2
_25._tcp.mx2   TLSA 1 1 1 D32
_25._tcp.mx2   TLSA 3 1 1 D32
mx3            A    192.0.2.3
_25._tcp.mx3   TLSA 3 1 1 D31
mx4            A    192.0.2.4
_25._tcp.mx4   TLSA 3 4 1 D32
_25._tcp.mx4   TLSA 3 1 7 D32
mx5            A    192.0.2.5
_25._tcp.mx5   TLSA 3 1 0 0001
mx6            A    192.0.2.6
mx7            A    192.0.2.7
_25._tcp.mx7   CNAME _dane.signed.test.
_dane          TLSA 3 1 1 D32
mxa            CNAME real
real           A    192.0.2.10
_25._tcp.real  TLSA 3 1 1 D32
mxb            CNAME real2
real2          A    192.0.2.11
_25._tcp.mxb   TLSA 3 1 1 D32
mxc            CNAME host.plain.test.
_25._tcp.mxc   TLSA 3 1 1 D32
mxf            A    192.0.2.15

$ORIGIN plain.test.
@              3600 IN SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 300
mx             A    192.0.2.20
_25._tcp.mx    TLSA 3 1 1 D32
host           A    192.0.2.21
_25._tcp.host  TLSA 3 1 1 D32
`)

// validating stands in for a validating resolver: answers about names in
// signed zones carry the AD bit, as long as every record of the answer is
// in one; some names fail with SERVFAIL.
type validating struct {
	resolve.Resolver
	signed []string
	fail   map[string]bool
}

func (v validating) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if v.fail[q.Name] {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	a, err := v.Resolver.Lookup(ctx, q)
	if err != nil {
		return nil, err
	}
	c := *a
	c.AD = v.isSigned(q.Name)
	for _, rr := range c.Answer {
		c.AD = c.AD && v.isSigned(rr.Header().Name)
	}
	return &c, nil
}

func (v validating) isSigned(name string) bool {
	for _, s := range v.signed {
		if dns.IsSubDomain(s, name) {
			return true
		}
	}
	return false
}

func newResolver(t *testing.T) resolve.Resolver {
	t.Helper()
	zones, err := resolve.ParseZones(strings.NewReader(daneZone), "dane")
	if err != nil {
		t.Fatal(err)
	}
	return validating{zones, []string{"signed.test."}, map[string]bool{"_25._tcp.mxf.signed.test.": true}}
}

func TestLookupFindings(t *testing.T) {
	r := newResolver(t)
	for _, tt := range []struct {
		host       string
		wantBase   string
		wantN      int // records found
		wantSecure bool
		want       []finding.ID
		wantMsg    string
	}{
		{"mx1.signed.test", "mx1.signed.test", 1, true, nil, ""},
		{"MX1.signed.test.", "mx1.signed.test", 1, true, nil, ""},
		{"mx6.signed.test", "", 0, false, nil, ""},
		{"nxdomain.signed.test", "", 0, false, nil, ""},
		{"mx7.signed.test", "mx7.signed.test", 1, true, nil, ""},
		// RFC 7672 §2.2.3: a secure alias moves the TLSA base domain to
		// its target, with the original name as the fallback.
		{"mxa.signed.test", "real.signed.test", 1, true, nil, ""},
		{"mxb.signed.test", "mxb.signed.test", 1, true, nil, ""},
		{"mx2.signed.test", "mx2.signed.test", 2, true, []finding.ID{finding.DANEInvalid}, "has 1 TLSA record senders cannot use (TLSA 1 1 1"},
		{"mx3.signed.test", "mx3.signed.test", 1, true, []finding.ID{finding.DANEInvalid}, "no usable record is left"},
		{"mx4.signed.test", "mx4.signed.test", 2, true, []finding.ID{finding.DANEInvalid}, "has 2 TLSA records senders cannot use"},
		{"mx5.signed.test", "mx5.signed.test", 1, true, []finding.ID{finding.DANEInvalid}, "not a certificate or public key"},
		{"mx.plain.test", "mx.plain.test", 1, false, []finding.ID{finding.DANEInsecure}, "not DNSSEC-validated"},
		{"mxc.signed.test", "mxc.signed.test", 1, true, []finding.ID{finding.DANEInsecure}, "address records are not DNSSEC-validated"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			res, err := Lookup(t.Context(), r, tt.host, Options{})
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if res.Base != tt.wantBase || len(res.Records) != tt.wantN || len(res.RRs) != tt.wantN || res.Secure != tt.wantSecure {
				t.Errorf("Lookup = base %q, %d records, secure %v; want %q, %d, %v", res.Base, len(res.Records), res.Secure, tt.wantBase, tt.wantN, tt.wantSecure)
			}
			if tt.wantBase != "" && res.Name != "_25._tcp."+tt.wantBase {
				t.Errorf("Name = %q, want _25._tcp.%s", res.Name, tt.wantBase)
			}
			fs := Findings(res)
			var ids []finding.ID
			for _, f := range fs {
				ids = append(ids, f.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("findings = %v, want %v\n%+v", ids, tt.want, fs)
			}
			if tt.wantMsg != "" && !strings.Contains(fs[0].Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", fs[0].Message, tt.wantMsg)
			}
		})
	}
}

func TestLookupUsable(t *testing.T) {
	res, err := Lookup(t.Context(), newResolver(t), "mx2.signed.test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Usable()
	if len(u) != 1 || u[0].Usage != 3 {
		t.Errorf("Usable = %v, want the 3 1 1 record only", u)
	}
}

func TestLookupFailure(t *testing.T) {
	res, err := Lookup(t.Context(), newResolver(t), "mxf.signed.test", Options{})
	if err == nil || !errors.Is(err, resolve.ErrServerFailure) || res != nil {
		t.Errorf("Lookup = %v, %v; want the SERVFAIL of mxf (never reported as no TLSA)", res, err)
	}
	if fs := Findings(res); fs != nil {
		t.Errorf("Findings(nil) = %+v, want none", fs)
	}
}

func TestPort(t *testing.T) {
	if got := (Options{Port: 2525}).tlsaName("mx.example.test"); got != "_2525._tcp.mx.example.test" {
		t.Errorf("tlsaName = %q", got)
	}
}

// TestLookupAll: LookupAll gives each exchange what Lookup gives it, in
// order: a secure alias, a failure, no TLSA, names in any spelling.
func TestLookupAll(t *testing.T) {
	r := newResolver(t)
	hosts := []string{"mxa.signed.test", "mxf.signed.test", "MX1.signed.test.", "nxdomain.signed.test", "mx2.signed.test", "mx.plain.test"}
	res, errs := LookupAll(t.Context(), r, hosts, Options{})
	if len(res) != len(hosts) || len(errs) != len(hosts) {
		t.Fatalf("%d results, %d errors for %d hosts", len(res), len(errs), len(hosts))
	}
	for i, h := range hosts {
		want, wantErr := Lookup(t.Context(), r, h, Options{})
		if !reflect.DeepEqual(res[i], want) || fmt.Sprint(errs[i]) != fmt.Sprint(wantErr) {
			t.Errorf("%s: %+v, %v; Lookup gives %+v, %v", h, res[i], errs[i], want, wantErr)
		}
	}
	if res[0] == nil || res[0].Base != "real.signed.test" || errs[1] == nil {
		t.Errorf("want the secure alias's target as base and mxf's failure: %+v, %v", res, errs)
	}
}

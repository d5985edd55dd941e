package dmarc_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
)

// zoneCase loads testdata/NAME.zone: the zone text, and in a leading
// "; domain: NAME" comment the domain to check.
func zoneCase(t *testing.T, name string) (*resolve.Zones, dnsname.Name) {
	t.Helper()
	return dnstest.ZoneCase(t, filepath.Join("testdata", name+".zone"))
}

func lookup(t *testing.T, name string) (*dmarc.Result, error) {
	t.Helper()
	z, domain := zoneCase(t, name)
	return dmarc.Lookup(t.Context(), z, domain, dmarc.Options{})
}

func ids(fs []finding.Finding) []finding.ID {
	var out []finding.ID
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// TestFindings: every DMARC finding ID has a zone that triggers it (about
// the expected subject) and one, as close as possible, that must not.
func TestFindings(t *testing.T) {
	tests := []struct {
		id              finding.ID
		trigger, absent string
		subject         string
	}{
		{finding.DMARCMissing, "missing", "good", "_dmarc.d.test"},
		{finding.DMARCMissing, "missing", "inherited", "_dmarc.d.test"},
		{finding.DMARCMultiple, "multiple", "good", "_dmarc.sub.d.test"},
		{finding.DMARCSyntax, "syntax", "good", "_dmarc.d.test"},
		{finding.DMARCSyntax, "syntax-pct", "no-rua", "_dmarc.d.test"},
		{finding.DMARCSyntax, "no-p", "policy-none", "_dmarc.d.test"},
		{finding.DMARCPolicyNone, "policy-none", "good", "_dmarc.d.test"},
		{finding.DMARCPolicyNone, "no-p", "good", "_dmarc.d.test"},
		{finding.DMARCPolicyNone, "inherited-sp-none", "inherited", "_dmarc.d.test"},
		{finding.DMARCPolicyNone, "sp-none", "good", "_dmarc.d.test"},
		{finding.DMARCPolicyNone, "pct-zero", "good", "_dmarc.d.test"},
		{finding.DMARCNoRUA, "no-rua", "good", "_dmarc.d.test"},
		{finding.DMARCRUAUnauth, "rua-unauthorized", "rua-authorized", "d.test._report._dmarc.reports.example"},
		{finding.DMARCRUAUnauth, "rua-unauthorized", "rua-unknown", "d.test._report._dmarc.reports.example"},
	}
	for _, tt := range tests {
		t.Run(string(tt.id)+"/"+tt.trigger, func(t *testing.T) {
			res, _ := lookup(t, tt.trigger)
			got := dmarc.Findings(res)
			if !slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == tt.id && f.Subject == tt.subject }) {
				t.Errorf("%s: no %s finding about %s in %v", tt.trigger, tt.id, tt.subject, got)
			}
			res, _ = lookup(t, tt.absent)
			if got := dmarc.Findings(res); slices.ContainsFunc(got, func(f finding.Finding) bool { return f.ID == tt.id }) {
				t.Errorf("%s: unexpected %s finding in %v", tt.absent, tt.id, got)
			}
		})
	}
	// The table must cover the whole DMARC area of the catalogue.
	for _, e := range finding.Catalogue {
		if e.Area == finding.AreaDMARC && !slices.ContainsFunc(tests, func(tt struct {
			id              finding.ID
			trigger, absent string
			subject         string
		}) bool {
			return tt.id == e.ID
		}) {
			t.Errorf("no test case triggers %s", e.ID)
		}
	}
}

// TestExactFindings pins the whole finding list of some cases, so a case
// that should be clean stays clean and nothing is reported twice.
func TestExactFindings(t *testing.T) {
	for _, tt := range []struct {
		name string
		want []finding.ID
	}{
		{"good", nil},
		{"inherited", nil},
		{"cname", nil},
		{"rua-authorized", nil},
		{"rua-unknown", nil},
		{"missing", []finding.ID{finding.DMARCMissing}},
		{"multiple", []finding.ID{finding.DMARCMultiple}},
		{"syntax", []finding.ID{finding.DMARCSyntax}},
		{"syntax-pct", []finding.ID{finding.DMARCSyntax}},
		{"no-p", []finding.ID{finding.DMARCSyntax, finding.DMARCPolicyNone}},
		{"no-rua", []finding.ID{finding.DMARCNoRUA}},
		// rua and ruf to the same unauthorized domain: one finding each.
		{"rua-unauthorized", []finding.ID{finding.DMARCRUAUnauth, finding.DMARCRUAUnauth}},
	} {
		res, _ := lookup(t, tt.name)
		if d := cmp.Diff(tt.want, ids(dmarc.Findings(res))); d != "" {
			t.Errorf("%s: findings (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Run("own record", func(t *testing.T) {
		res, err := lookup(t, "good")
		if err != nil {
			t.Fatal(err)
		}
		if res.PolicyDomain != "d.test" || res.Policy != dmarc.Reject || res.Inherited() || len(res.Records) != 1 {
			t.Errorf("got policy domain %q, policy %q, records %q", res.PolicyDomain, res.Policy, res.Records)
		}
		want := []dmarc.Destination{
			{Tag: "rua", URI: "mailto:dmarc@d.test", Domain: "d.test", Consent: dmarc.SameOrganization},
			{Tag: "ruf", URI: "mailto:forensic@mail.d.test", Domain: "mail.d.test", Consent: dmarc.SameOrganization},
		}
		if d := cmp.Diff(want, res.Destinations); d != "" {
			t.Errorf("destinations (-want +got):\n%s", d)
		}
	})
	t.Run("inherited from the organizational domain", func(t *testing.T) {
		res, err := lookup(t, "inherited")
		if err != nil {
			t.Fatal(err)
		}
		if res.Domain != "sub.d.test" || res.OrgDomain != "d.test" || res.PolicyDomain != "d.test" || !res.Inherited() || res.Policy != dmarc.Reject {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("inherited sp", func(t *testing.T) {
		res, _ := lookup(t, "inherited-sp-none")
		if res.Policy != dmarc.None || res.Record.Policy != dmarc.Reject {
			t.Errorf("policy %q (record p=%q): sp must apply to the subdomain", res.Policy, res.Record.Policy)
		}
	})
	t.Run("multiple records stop discovery", func(t *testing.T) {
		res, _ := lookup(t, "multiple")
		if res.PolicyDomain != "sub.d.test" || len(res.Records) != 2 || res.Record != nil || res.Policy != "" {
			t.Errorf("got %+v: two records at the domain mean no policy, not the organizational domain's", res)
		}
	})
	t.Run("discarded record", func(t *testing.T) {
		res, _ := lookup(t, "syntax")
		if res.Record != nil || res.Policy != "" || len(res.Problems) == 0 {
			t.Errorf("got %+v: p=block without rua must be discarded with problems", res)
		}
	})
	t.Run("split strings and CNAME", func(t *testing.T) {
		res, _ := lookup(t, "policy-none")
		if res.Records[0] != "v=DMARC1; p=none; rua=mailto:dmarc@d.test" {
			t.Errorf("strings not joined: %q", res.Records[0])
		}
		res, err := lookup(t, "cname")
		if err != nil || res.Policy != dmarc.Quarantine {
			t.Errorf("CNAME not followed: %+v, %v", res, err)
		}
	})
	t.Run("consent", func(t *testing.T) {
		res, err := lookup(t, "rua-authorized")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Destinations {
			if d.Consent != dmarc.Authorized {
				t.Errorf("%s: consent %s, want authorized (query %s)", d.URI, d.Consent, d.Query)
			}
		}
		res, err = lookup(t, "rua-unauthorized")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]dmarc.Consent{}
		for _, d := range res.Destinations {
			got[d.Tag+" "+d.URI] = d.Consent
		}
		want := map[string]dmarc.Consent{
			"rua mailto:agg@reports.example":  dmarc.Unauthorized,
			"rua mailto:dmarc@d.test":         dmarc.SameOrganization,
			"ruf mailto:fail@reports.example": dmarc.Unauthorized,
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("consent (-want +got):\n%s", d)
		}
	})
	t.Run("consent query fails", func(t *testing.T) {
		res, err := lookup(t, "rua-unknown")
		if err == nil || !errors.Is(err, resolve.ErrNotInZone) {
			t.Errorf("error %v, want the failed consent query", err)
		}
		if res == nil || res.Record == nil || len(res.Destinations) != 1 || res.Destinations[0].Consent != dmarc.Unknown {
			t.Fatalf("got %+v: the result must come back with the consent unknown", res)
		}
	})
	t.Run("policy query fails", func(t *testing.T) {
		z, _ := zoneCase(t, "good")
		res, err := dmarc.Lookup(t.Context(), z, "elsewhere.example", dmarc.Options{})
		if res != nil || !errors.Is(err, resolve.ErrNotInZone) {
			t.Errorf("got %+v, %v; want nil and the lookup error, never 'missing'", res, err)
		}
	})
	t.Run("organizational domain query fails", func(t *testing.T) {
		// The domain has no record, so the organizational domain's
		// answer matters, and it failed.
		z, _ := zoneCase(t, "missing")
		r := failing{Resolver: z, fail: "_dmarc.d.test."}
		res, err := dmarc.Lookup(t.Context(), r, "sub.d.test", dmarc.Options{})
		if res != nil || err == nil {
			t.Errorf("got %+v, %v; want an error", res, err)
		}
		// But a failure there does not matter when the domain has its own.
		z, _ = zoneCase(t, "multiple")
		r = failing{Resolver: z, fail: "_dmarc.d.test."}
		if _, err := dmarc.Lookup(t.Context(), r, "sub.d.test", dmarc.Options{}); err != nil {
			t.Errorf("the organizational domain's failure leaked: %v", err)
		}
	})
}

// failing is a Resolver that fails (SERVFAIL) for one name.
type failing struct {
	resolve.Resolver
	fail string
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Name == f.fail {
		return nil, &resolve.Error{Question: q, Rcode: 2, Err: resolve.ErrServerFailure}
	}
	return f.Resolver.Lookup(ctx, q)
}

// counting counts the queries it passes on, at most limit at a time.
type counting struct {
	resolve.Resolver
	n atomic.Int32
}

func (c *counting) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	c.n.Add(1)
	return c.Resolver.Lookup(ctx, q)
}

// TestConsentBounded: a record listing many external domains asks for at
// most MaxReportDomains consent records.
func TestConsentBounded(t *testing.T) {
	var uris []string
	for i := range 40 {
		uris = append(uris, "mailto:r@r"+strings.Repeat("x", i)+".example")
	}
	zone := `$TTL 300
d.test. SOA ns.d.test. h.d.test. 1 2 3 4 5
_dmarc.d.test. TXT "v=DMARC1; p=reject; rua=` + strings.Join(uris, ",") + `"
`
	z, err := resolve.ParseZones(strings.NewReader(zone), "bounded")
	if err != nil {
		t.Fatal(err)
	}
	c := &counting{Resolver: z}
	res, _ := dmarc.Lookup(t.Context(), c, "d.test", dmarc.Options{})
	// _dmarc.d.test, then the consent queries.
	if got := int(c.n.Load()); got != 1+dmarc.MaxReportDomains {
		t.Errorf("%d queries, want %d", got, 1+dmarc.MaxReportDomains)
	}
	notChecked := 0
	for _, d := range res.Destinations {
		if d.Consent == dmarc.NotChecked {
			notChecked++
		}
	}
	if notChecked != 40-dmarc.MaxReportDomains {
		t.Errorf("%d destinations not checked, want %d", notChecked, 40-dmarc.MaxReportDomains)
	}
}

func TestOrganizationalDomain(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"mail.example.com", "example.com"},
		{"a.b.example.co.uk", "example.co.uk"},
		{"co.uk", "co.uk"}, // a public suffix is its own
		{"sub.d.test", "d.test"},
	} {
		if got := dmarc.OrganizationalDomain(dnsname.MustParse(tt.in)); got.String() != tt.want {
			t.Errorf("OrganizationalDomain(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestMissingMessage pins dmarc-missing's words, for a domain that is its
// own organizational domain and for one below it: Findings builds them
// without fmt, the most common finding of a scan.
func TestMissingMessage(t *testing.T) {
	for _, tc := range []struct {
		res  dmarc.Result
		want string
	}{
		{dmarc.Result{Domain: "d.test", OrgDomain: "d.test"},
			"No DMARC record at _dmarc.d.test; receivers apply no DMARC policy to mail from d.test."},
		{dmarc.Result{Domain: "mail.d.test", OrgDomain: "d.test"},
			"No DMARC record at _dmarc.mail.d.test nor at _dmarc.d.test, its organizational domain; receivers apply no DMARC policy to mail from mail.d.test."},
	} {
		fs := dmarc.Findings(&tc.res)
		if len(fs) != 1 || fs[0].ID != finding.DMARCMissing || fs[0].Subject != "_dmarc."+tc.res.Domain || fs[0].Message != tc.want {
			t.Errorf("Findings(%s) = %+v, want one %s on _dmarc.%s: %q", tc.res.Domain, fs, finding.DMARCMissing, tc.res.Domain, tc.want)
		}
	}
}

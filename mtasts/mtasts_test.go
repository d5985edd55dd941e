package mtasts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// lookupZone holds one domain per case; every policy host resolves to
// 127.0.0.1 (one server, routing on the Host header) except badcert's.
const lookupZone = `
$ORIGIN test.
@                   3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
_mta-sts.good       TXT "v=STSv1; id=20260101T000000Z"
mta-sts.good        A 127.0.0.1
_mta-sts.split      TXT "v=STSv1; " "id=1"
mta-sts.split       A 127.0.0.1
_mta-sts.alias      CNAME _mta-sts.good.test.
mta-sts.alias       A 127.0.0.1
_mta-sts.spfonly    TXT "v=spf1 -all"
_mta-sts.badtxt     TXT "v=STSv1; id=2026-01-01"
mta-sts.badtxt      A 127.0.0.1
_mta-sts.two        TXT "v=STSv1; id=1"
_mta-sts.two        TXT "v=STSv1; id=2"
_mta-sts.two        TXT "v=spf1 -all"
mta-sts.two         A 127.0.0.1
_mta-sts.redirect   TXT "v=STSv1; id=1"
mta-sts.redirect    A 127.0.0.1
_mta-sts.nohost     TXT "v=STSv1; id=1"
_mta-sts.badcert    TXT "v=STSv1; id=1"
mta-sts.badcert     A 127.0.0.2
_mta-sts.badpolicy  TXT "v=STSv1; id=1"
mta-sts.badpolicy   A 127.0.0.1
_mta-sts.testing    TXT "v=STSv1; id=1"
mta-sts.testing     A 127.0.0.1
_mta-sts.none       TXT "v=STSv1; id=1"
mta-sts.none        A 127.0.0.1
_mta-sts.servfail   TXT "v=STSv1; id=1"
`

// failing wraps a Resolver and answers SERVFAIL for some names.
type failing struct {
	resolve.Resolver
	names map[string]bool
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if f.names[q.Name] {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.Resolver.Lookup(ctx, q)
}

// newSetup returns the test resolver and the Options that fetch from the
// test's HTTPS servers.
func newSetup(t *testing.T) (resolve.Resolver, Options) {
	t.Helper()
	zones, err := resolve.ParseZones(strings.NewReader(lookupZone), "lookup")
	if err != nil {
		t.Fatal(err)
	}
	r := failing{zones, map[string]bool{"_mta-sts.servfail.test.": true}}
	ca := newTestCA(t)
	policy := func(mode, mx string) http.HandlerFunc {
		return serve("text/plain", "version: STSv1\nmode: "+mode+"\n"+mx+"max_age: 86400\n")
	}
	routes := map[string]http.HandlerFunc{
		"good.test":  policy("enforce", "mx: mx1.good.test\nmx: *.backup.test\n"),
		"split.test": policy("enforce", "mx: mx1.split.test\n"),
		"alias.test": policy("enforce", "mx: mx1.alias.test\n"),
		// The policy is fine; only the record is wrong.
		"badtxt.test": policy("enforce", "mx: mx1.badtxt.test\n"),
		"two.test":    policy("enforce", "mx: mx1.two.test\n"),
		"redirect.test": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://www.redirect.test/mta-sts.txt", http.StatusFound)
		},
		"badpolicy.test": serve("text/plain", "version: STSv1\nmode: enforce\nmx: mx1.badpolicy.test\n"),
		"testing.test":   policy("testing", "mx: mx1.testing.test\n"),
		"none.test":      policy("none", ""),
	}
	var names []string
	for d := range routes {
		names = append(names, "mta-sts."+d)
	}
	good := startTLS(t, ca.leaf(t, names...), policyServer(t, routes))
	bad := startTLS(t, (*testCA)(nil).leaf(t, "mta-sts.badcert.test"), policyServer(t, routes))
	return r, Options{
		Fetcher: &Fetcher{Resolver: r, RootCAs: ca.pool, Timeout: 20 * time.Second,
			Dialer: loopDialer{"127.0.0.1": good, "127.0.0.2": bad}},
	}
}

func TestLookupFindings(t *testing.T) {
	r, opts := newSetup(t)
	for _, tt := range []struct {
		domain    string
		exchanges []string
		want      []finding.ID
		wantMsg   string // a fragment of the first finding's message
	}{
		{"good.test", []string{"mx1.good.test", "b1.backup.test"}, nil, ""},
		{"split.test", []string{"mx1.split.test"}, nil, ""},
		{"alias.test", []string{"mx1.alias.test"}, nil, ""},
		{"missing.test", []string{"mx1.missing.test"}, []finding.ID{finding.MTASTSMissing}, "no MTA-STS record"},
		{"spfonly.test", nil, []finding.ID{finding.MTASTSMissing}, ""},
		{"badtxt.test", []string{"mx1.badtxt.test"}, []finding.ID{finding.MTASTSTXTInvalid}, "only letters and digits"},
		{"two.test", []string{"mx1.two.test"}, []finding.ID{finding.MTASTSTXTInvalid}, "2 records"},
		{"redirect.test", []string{"mx1.redirect.test"}, []finding.ID{finding.MTASTSUnreachable}, "(redirect)"},
		{"nohost.test", nil, []finding.ID{finding.MTASTSUnreachable}, "does not resolve"},
		{"badcert.test", nil, []finding.ID{finding.MTASTSUnreachable}, "TLS or certificate"},
		{"badpolicy.test", []string{"mx1.badpolicy.test"}, []finding.ID{finding.MTASTSInvalid}, "no max_age"},
		{"good.test", []string{"mx1.good.test", "mx2.good.test", "backup.test"},
			[]finding.ID{finding.MTASTSNotCovered, finding.MTASTSNotCovered}, "mx2.good.test matches no mx pattern"},
		{"testing.test", []string{"mx1.testing.test"}, []finding.ID{finding.MTASTSTesting}, "testing mode"},
		{"testing.test", []string{"mx2.testing.test"}, []finding.ID{finding.MTASTSTesting, finding.MTASTSNotCovered}, ""},
		// Mode none withdraws the policy: nothing must match.
		{"none.test", []string{"mx1.none.test"}, nil, ""},
	} {
		t.Run(tt.domain, func(t *testing.T) {
			res, err := Lookup(t.Context(), r, dnsname.MustParse(tt.domain), opts)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			fs := Findings(res, tt.exchanges)
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
			for _, f := range fs {
				if f.Subject == "" || !strings.HasSuffix(f.Message, ".") || strings.Contains(f.Message, "..") {
					t.Errorf("badly formed finding %+v", f)
				}
			}
		})
	}
}

func TestLookupServfailIsAnError(t *testing.T) {
	r, opts := newSetup(t)
	res, err := Lookup(t.Context(), r, "servfail.test", opts)
	if err == nil || !errors.Is(err, resolve.ErrServerFailure) {
		t.Fatalf("Lookup = %+v, %v; want an error wrapping SERVFAIL, never mta-sts-missing", res, err)
	}
}

func TestResultJSON(t *testing.T) {
	r, opts := newSetup(t)
	res, err := Lookup(t.Context(), r, "redirect.test", opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["fetch_stage"] != string(StageRedirect) || got["domain"] != "redirect.test" || got["record"] == nil {
		t.Errorf("JSON = %s", b)
	}
	if _, ok := got["policy_error"]; ok {
		t.Errorf("JSON has policy_error without one: %s", b)
	}
}

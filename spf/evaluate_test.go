package spf_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
)

// TestRequestQuery: a Request becomes check_host()'s input as a receiving
// server derives it (RFC 7208 §2.3, §2.4, §4.3), and the name whose tree
// is walked; bad input is a *RequestError naming the parameter, which
// wraps ErrRequest (and the *dnsname.Error of an invalid domain).
func TestRequestQuery(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		name string
		req  spf.Request
		want spf.Query
		tree dnsname.Name
	}{
		{"domain", spf.Request{Domain: "Shop.Example.", IP: "192.0.2.1"},
			spf.Query{IP: ip, Domain: "shop.example", Sender: "postmaster@shop.example", HELO: "shop.example"}, "shop.example"},
		{"address", spf.Request{Domain: "joe@shop.example", IP: "192.0.2.1"},
			spf.Query{IP: ip, Domain: "shop.example", Sender: "joe@shop.example", HELO: "shop.example"}, "shop.example"},
		{"domain, null sender, helo", spf.Request{Domain: "shop.example", IP: "192.0.2.1", Sender: "<>", HELO: "mx.example.net"},
			spf.Query{IP: ip, Domain: "shop.example", Sender: "<>", HELO: "mx.example.net"}, "shop.example"},
		{"session sender", spf.Request{IP: "192.0.2.1", Sender: "joe@shop.example"},
			spf.Query{IP: ip, Sender: "joe@shop.example", HELO: "shop.example"}, "shop.example"},
		{"session null sender", spf.Request{IP: "192.0.2.1", Sender: "<>", HELO: "mx.example.net"},
			spf.Query{IP: ip, Sender: "<>", HELO: "mx.example.net"}, "mx.example.net"},
		// RFC 7208 §4.3: check_host() says none for these; no tree.
		{"session single label", spf.Request{IP: "192.0.2.1", HELO: "hosed"},
			spf.Query{IP: ip, HELO: "hosed"}, ""},
		{"session address literal", spf.Request{IP: "192.0.2.1", Sender: "<>", HELO: "[1.2.3.5]"},
			spf.Query{IP: ip, Sender: "<>", HELO: "[1.2.3.5]"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, tree, err := tt.req.Query()
			if err != nil || q != tt.want || tree != tt.tree {
				t.Errorf("got %+v, %q, %v; want %+v, %q", q, tree, err, tt.want, tt.tree)
			}
		})
	}

	for _, tt := range []struct {
		req         spf.Request
		param, want string
	}{
		{spf.Request{Domain: "shop.example"}, spf.ParamIP, "ip is required"},
		{spf.Request{Domain: "shop.example", IP: "192.0.2.300"}, spf.ParamIP, `ip: "192.0.2.300" is not an IP address`},
		{spf.Request{Domain: "shop.example", IP: "fe80::1%eth0"}, spf.ParamIP, "is not an IP address"},
		{spf.Request{Domain: "shop.example", IP: "192.0.2.1", Sender: "nobody"}, spf.ParamSender, `sender: "nobody" is not an e-mail address`},
		{spf.Request{Domain: "bad..example", IP: "192.0.2.1"}, spf.ParamDomain, "empty label"},
		{spf.Request{Domain: "192.0.2.1", IP: "192.0.2.1"}, spf.ParamDomain, "is an IP address"},
		{spf.Request{IP: "192.0.2.1"}, "", "give a DOMAIN, or the session"},
		{spf.Request{IP: "192.0.2.1", Sender: "<>"}, "", "give a DOMAIN, or the session"},
	} {
		_, _, err := tt.req.Query()
		re, ok := errors.AsType[*spf.RequestError](err)
		if !ok || re.Param != tt.param || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, spf.ErrRequest) {
			t.Errorf("%+v: error %v, want a RequestError about %q saying %q", tt.req, err, tt.param, tt.want)
			continue
		}
		if _, isName := errors.AsType[*dnsname.Error](err); isName != (tt.param == spf.ParamDomain) {
			t.Errorf("%+v: %v wraps a *dnsname.Error: %v", tt.req, err, isName)
		}
	}
}

// TestEvaluate: the evaluation carries check_host()'s result and the
// record tree with its findings; a failed tree walk is AnalysisErr and
// its text, and check_host()'s temperror stays a result.
func TestEvaluate(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
$TTL 300
@         SOA ns.example. h.example. 1 7200 900 1209600 300
shop      TXT "v=spf1 include:_spf.shop.example ~all"
_spf.shop TXT "v=spf1 ip4:198.51.100.0/24 +all"
`), "evaluate")
	if err != nil {
		t.Fatal(err)
	}
	c := &spf.Checker{Resolver: resolve.NewCache(zones, 0)}
	eval := func(req spf.Request) *spf.Evaluation {
		t.Helper()
		q, tree, err := req.Query()
		if err != nil {
			t.Fatal(err)
		}
		return spf.Evaluate(t.Context(), c, q, tree, spf.Options{})
	}

	e := eval(spf.Request{Domain: "shop.example", IP: "198.51.100.7"})
	if e.Schema != 1 || e.Status != spf.Pass || e.Tree == nil || len(e.Tree.Children) != 1 || e.TreeLookups != 1 || e.AnalysisErr != nil {
		t.Errorf("shop.example: %+v", e)
	}
	if len(e.Findings) != 1 || e.Findings[0].ID != finding.SPFPlusAll {
		t.Errorf("findings %v, want spf-plus-all", e.Findings)
	}

	e = eval(spf.Request{IP: "192.0.2.1", HELO: "hosed"})
	if e.Status != spf.None || e.Tree != nil || e.Findings == nil {
		t.Errorf("single label: %+v (findings %#v)", e, e.Findings)
	}

	c.Resolver = down{}
	e = eval(spf.Request{Domain: "shop.example", IP: "192.0.2.1"})
	if e.Status != spf.TempError || !errors.Is(e.AnalysisErr, resolve.ErrServerFailure) || e.Error != e.AnalysisErr.Error() {
		t.Errorf("DNS down: %+v", e)
	}
}

// down answers every question with SERVFAIL.
type down struct{}

func (down) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	return nil, &resolve.Error{Question: q, Rcode: 2, Err: resolve.ErrServerFailure}
}

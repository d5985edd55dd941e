package spf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	blitiri "blitiri.com.ar/go/spf"
	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/spfsuite"
	"github.com/mxtrace/mxtrace/resolve"
)

// blitiriResolver adapts a resolve.Resolver to blitiri.com.ar/go/spf's
// DNSResolver (the shape of *net.Resolver): NXDOMAIN and NODATA become a
// *net.DNSError with IsNotFound, which blitiri counts as void lookups;
// a *resolve.Error becomes a temporary *net.DNSError, which blitiri turns
// into temperror.
type blitiriResolver struct{ r resolve.Resolver }

func (b blitiriResolver) follow(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	res, err := resolve.Follow(ctx, b.r, resolve.Q(dns.Fqdn(name), qtype))
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true, IsTimeout: errors.Is(err, resolve.ErrTimeout)}
	}
	if len(res.Records) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return res.Records, nil
}

func (b blitiriResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := b.follow(ctx, name, dns.TypeTXT)
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, err
}

func (b blitiriResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := b.follow(ctx, name, dns.TypeMX)
	var out []*net.MX
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	return out, err
}

func (b blitiriResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	var firstErr error
	found := false
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := b.follow(ctx, host, qtype)
		if err != nil {
			if de, ok := errors.AsType[*net.DNSError](err); ok && de.IsNotFound {
				continue
			}
			firstErr = err
			continue
		}
		found = true
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, net.IPAddr{IP: v.A})
			case *dns.AAAA:
				out = append(out, net.IPAddr{IP: v.AAAA})
			}
		}
	}
	if !found && firstErr != nil {
		return nil, firstErr
	}
	if !found {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func (b blitiriResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, err
	}
	rrs, err := b.follow(ctx, rev, dns.TypePTR)
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, err
}

// blitiriDiffers lists the suite cases blitiri.com.ar/go/spf v1.6.0 gets
// wrong (or answers without the explanation the suite checks), with the
// reason. It is why CheckHost is our own evaluator: blitiri also ignores
// exp= and does not say which term decided. The test fails when the list
// stops being true.
var blitiriDiffers = map[string]string{
	"A mechanism syntax/a-bad-domain":                              "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-bad-toplabel":                            "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-null":                                    "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-numeric":                                 "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-numeric-toplabel":                        "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-only-toplabel":                           "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-only-toplabel-trailing-dot":              "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"MX mechanism syntax/mx-bad-domain":                            "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"MX mechanism syntax/mx-bad-toplab":                            "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"MX mechanism syntax/mx-null":                                  "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"MX mechanism syntax/mx-numeric-top-label":                     "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"Record evaluation/invalid-domain":                             "does not check the domain-spec grammar (RFC 7208 §7.1: the last label must be a valid top-level label)",
	"A mechanism syntax/a-colon-domain":                            "reads the \"/\" inside the domain-spec foo:bar/baz.example.com as a prefix length (permerror)",
	"A mechanism syntax/a-colon-domain-ip4mapped":                  "reads the \"/\" inside the domain-spec foo:bar/baz.example.com as a prefix length (permerror)",
	"MX mechanism syntax/mx-colon-domain":                          "reads the \"/\" inside the domain-spec foo:bar/baz.example.com as a prefix length (permerror)",
	"MX mechanism syntax/mx-colon-domain-ip4mapped":                "reads the \"/\" inside the domain-spec foo:bar/baz.example.com as a prefix length (permerror)",
	"IP4 mechanism syntax/cidr4-032":                               "accepts a prefix length with a leading zero",
	"IP6 mechanism syntax/bare-ip6":                                "checks a term's syntax only when it evaluates it, so an earlier match hides the error (RFC 7208 §4.6: the whole record is checked first)",
	"Record evaluation/detect-errors-anywhere":                     "checks a term's syntax only when it evaluates it, so an earlier match hides the error (RFC 7208 §4.6: the whole record is checked first)",
	"Record evaluation/redirect-is-modifier":                       "checks a term's syntax only when it evaluates it, so an earlier match hides the error (RFC 7208 §4.6: the whole record is checked first)",
	"Semantics of exp and other modifiers/exp-empty-domain":        "ignores exp=, so an empty exp= is not a permerror",
	"Semantics of exp and other modifiers/exp-syntax-error":        "ignores exp=, so exp=-all is not a permerror",
	"Semantics of exp and other modifiers/exp-twice":               "ignores exp=, so a second exp= is not a permerror",
	"Macro expansion rules/exp-only-macro-char":                    "ignores exp=, so %{r} in its domain is not a permerror",
	"Semantics of exp and other modifiers/redirect-empty-domain":   "checks a term's syntax only when it evaluates it, so an earlier match hides the error (RFC 7208 §4.6: the whole record is checked first)",
	"Semantics of exp and other modifiers/redirect-syntax-error":   "checks a term's syntax only when it evaluates it, so an earlier match hides the error (RFC 7208 §4.6: the whole record is checked first)",
	"Semantics of exp and other modifiers/unknown-modifier-syntax": "does not check the macro syntax of unknown modifiers",
	"Initial processing/control-char-policy":                       "does not require terms to be separated by spaces only (RFC 7208 §4.6.1): CR inside a term is accepted",
	"Initial processing/non-ascii-policy":                          "does not enforce 7-bit ASCII records (RFC 7208 §3.1)",
	"Macro expansion rules/p-macro-multiple":                       "does not implement the %{p} macro",
}

// TestBlitiriOracle runs the RFC 7208 suite through blitiri as a second
// opinion. Where blitiri agrees with the suite, CheckHost must give the
// same result; where it does not, the case must be listed above.
func TestBlitiriOracle(t *testing.T) {
	scenarios, err := spfsuite.Load(suiteFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		r, err := spfsuite.NewResolver(sc.ZoneData)
		if err != nil {
			t.Fatal(err)
		}
		for name, tc := range sc.Tests {
			key := spfsuite.Key(sc, name)
			ip := netip.MustParseAddr(tc.Host)
			got, berr := blitiri.CheckHostWithSender(net.IP(ip.AsSlice()), tc.Helo, tc.MailFrom,
				blitiri.WithResolver(blitiriResolver{r}), blitiri.WithContext(t.Context()))
			agrees := slices.Contains(tc.Result, string(got))
			why, listed := blitiriDiffers[key]
			switch {
			case agrees && listed:
				t.Errorf("%s: listed (%s) but blitiri now agrees with the suite", key, why)
			case !agrees && !listed:
				t.Errorf("%s: blitiri says %s (%v), the suite %v; list it with a reason", key, got, berr, tc.Result)
			case agrees:
				ours := (&Checker{Resolver: r}).CheckHost(t.Context(), Query{IP: ip, Sender: tc.MailFrom, HELO: tc.Helo})
				if string(ours.Status) != string(got) && len(tc.Result) == 1 {
					t.Errorf("%s: we say %s, blitiri and the suite %s", key, ours.Status, got)
				}
			}
		}
	}
}

package dmarc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// MaxReportDomains bounds how many distinct external report domains are
// asked for consent (RFC 7489 §7.1) for one record; a hostile record could
// list thousands. Receivers need only honour two URIs per tag (§6.2).
const MaxReportDomains = 16

// Consent says whether a report destination may receive reports for the
// policy domain (RFC 7489 §7.1).
type Consent string

// Consents.
const (
	SameOrganization Consent = "same-organization" // no consent needed
	Authorized       Consent = "authorized"        // the _report._dmarc record is published
	Unauthorized     Consent = "unauthorized"      // it is not: receivers drop the URI
	Unknown          Consent = "unknown"           // the query failed; see Lookup's error
	NotChecked       Consent = "not-checked"       // not a mailto: URI, or over MaxReportDomains
)

// Destination is one report URI and whether its domain agreed to receive
// reports.
type Destination struct {
	Tag     string  `json:"tag"` // "rua" or "ruf"
	URI     string  `json:"uri"`
	Domain  string  `json:"domain,omitempty"` // the mailto: domain
	Query   string  `json:"query,omitempty"`  // the consent record asked for, without the final dot
	Consent Consent `json:"consent"`
}

// Result is what Lookup found for one domain.
type Result struct {
	Domain    string `json:"domain"`
	OrgDomain string `json:"org_domain"` // RFC 7489 §3.2
	// PolicyDomain is where the records were found: Domain, or OrgDomain
	// when Domain has none (RFC 7489 §6.6.3 step 3); "" when neither has.
	PolicyDomain string `json:"policy_domain,omitempty"`
	// Records are the DMARC TXT records at PolicyDomain (IsDMARC), as
	// published. More than one means no policy (RFC 7489 §6.6.3 step 5).
	Records []string `json:"records"`
	// Record is the parsed record when there is exactly one and a receiver
	// would use it; Problems are Parse's syntax problems.
	Record   *Record  `json:"record,omitempty"`
	Problems []string `json:"problems,omitempty"`
	// Policy is the policy that applies to mail from Domain: p, or sp when
	// the record was inherited from the organizational domain. "" when no
	// record applies.
	Policy       Policy        `json:"policy,omitempty"`
	Destinations []Destination `json:"destinations,omitempty"`
}

// Inherited reports whether the policy comes from the organizational
// domain's record rather than the domain's own.
func (r *Result) Inherited() bool {
	return r.PolicyDomain != "" && r.PolicyDomain != r.Domain
}

// OrganizationalDomain returns the organizational domain of d (RFC 7489
// §3.2): the public suffix plus one label, using the public suffix list in
// golang.org/x/net/publicsuffix. A name that is itself a public suffix is
// its own organizational domain.
func OrganizationalDomain(d dnsname.Name) dnsname.Name {
	org, err := publicsuffix.EffectiveTLDPlusOne(string(d))
	if err != nil {
		return d
	}
	return dnsname.Name(org)
}

// Lookup discovers the DMARC policy of domain as a receiver does (RFC 7489
// §6.6.3) and asks every external report domain for consent (§7.1). The
// domain's and the organizational domain's records are asked for at once,
// then the consent records all at once.
//
// A failure of the policy lookup is an error with a nil Result: a temporary
// failure is never "no DMARC record". A failure of a consent query does not
// lose the rest: the Result comes back with that destination's Consent
// Unknown, together with an error naming the failed queries.
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "dmarc lookup", []any{"domain", domain},
		func() (*Result, error) { return lookup(ctx, r, domain) },
		func(res *Result) []any { return []any{"policy_domain", res.PolicyDomain, "policy", res.Policy} })
}

// Options configure Lookup; the zero value is ready to use.
type Options struct {
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

func lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name) (*Result, error) {
	org := OrganizationalDomain(domain)
	res := &Result{Domain: domain.String(), OrgDomain: org.String(), Records: []string{}}
	var own, inherited []string
	var ownErr, orgErr error
	var wg sync.WaitGroup
	wg.Go(func() { own, ownErr = records(ctx, r, domain) })
	if org != domain {
		// Asked speculatively beside the domain's own record, so that the
		// fallback costs no extra round trip.
		wg.Go(func() { inherited, orgErr = records(ctx, r, org) })
	}
	wg.Wait()
	if ownErr != nil {
		return nil, ownErr
	}
	switch {
	case len(own) > 0:
		res.PolicyDomain, res.Records = domain.String(), own
	case org != domain:
		// RFC 7489 §6.6.3 step 3: nothing at the domain, so the
		// organizational domain's record applies.
		if orgErr != nil {
			return nil, orgErr
		}
		if len(inherited) > 0 {
			res.PolicyDomain, res.Records = org.String(), inherited
		}
	}
	if len(res.Records) != 1 {
		return res, nil
	}
	rec, err := Parse(res.Records[0])
	if se, ok := errors.AsType[*SyntaxError](err); ok {
		res.Problems = se.Problems
	}
	if rec == nil {
		return res, nil
	}
	res.Record = rec
	res.Policy = rec.PolicyFor(res.Inherited())
	return res, consent(ctx, r, res)
}

// RecordQuestion is the question for d's own DMARC record: the TXT
// records at _dmarc.d (RFC 7489 §6.1), which Lookup asks first; the
// organizational domain's only when d has none (§6.6.3).
func RecordQuestion(d dnsname.Name) resolve.Question {
	return resolve.Q("_dmarc."+d.FQDN(), dns.TypeTXT)
}

// records returns the DMARC candidates at _dmarc.d.
func records(ctx context.Context, r resolve.Resolver, d dnsname.Name) ([]string, error) {
	ans, err := resolve.Follow(ctx, r, RecordQuestion(d))
	if err != nil {
		return nil, fmt.Errorf("dmarc: %w", err)
	}
	var out []string
	for _, rr := range ans.Records {
		// RFC 7489 §6.6.3 step 2: records not starting with v=DMARC1 are
		// discarded.
		if t := resolve.TXTData(rr.(*dns.TXT)); IsDMARC(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// consent fills res.Destinations, asking each external mailto: domain for
// its _report._dmarc record (RFC 7489 §7.1), all at once.
func consent(ctx context.Context, r resolve.Resolver, res *Result) error {
	policyOrg := OrganizationalDomain(dnsname.Name(res.PolicyDomain))
	type ask struct {
		consent Consent
		err     error
	}
	asks := map[string]*ask{} // by consent query name
	add := func(tag string, u URI) {
		d := Destination{Tag: tag, URI: u.URI, Consent: NotChecked}
		if dest, ok := u.MailtoDomain(); ok {
			d.Domain = dest.String()
			// RFC 7489 §7.1: consent is needed only when the
			// organizational domains differ.
			if OrganizationalDomain(dest) == policyOrg {
				d.Consent = SameOrganization
			} else {
				// RFC 7489 §7.1 steps 1–3: the policy domain (an
				// A-label), "_report._dmarc", the destination host.
				d.Query = res.PolicyDomain + "._report._dmarc." + d.Domain
				if asks[d.Query] == nil && len(asks) < MaxReportDomains {
					asks[d.Query] = &ask{}
				}
			}
		}
		res.Destinations = append(res.Destinations, d)
	}
	for _, u := range res.Record.AggregateURIs {
		add("rua", u)
	}
	for _, u := range res.Record.FailureURIs {
		add("ruf", u)
	}
	var wg sync.WaitGroup
	for name, a := range asks {
		wg.Go(func() { a.consent, a.err = askConsent(ctx, r, name) })
	}
	wg.Wait()
	var errs []error
	for i := range res.Destinations {
		d := &res.Destinations[i]
		if a := asks[d.Query]; d.Query != "" && a != nil {
			d.Consent = a.consent
			if a.err != nil {
				errs = append(errs, a.err)
				a.err = nil // report each failed query once
			}
		}
	}
	return errors.Join(errs...)
}

// askConsent asks for the consent record at name (RFC 7489 §7.1 steps 4–6).
func askConsent(ctx context.Context, r resolve.Resolver, name string) (Consent, error) {
	fqdn := name + "."
	if _, ok := dns.IsDomainName(fqdn); !ok {
		// The name cannot be asked for, so no receiver can confirm it.
		return Unauthorized, nil
	}
	ans, err := resolve.Follow(ctx, r, resolve.Q(fqdn, dns.TypeTXT))
	if err != nil {
		// RFC 7489 §7.1 step 4: a temporary error is not a refusal.
		return Unknown, fmt.Errorf("dmarc: report consent: %w", err)
	}
	for _, rr := range ans.Records {
		// RFC 7489 §7.1 step 5: a record counts when its first tag is
		// v=DMARC1.
		if v, ok := versionTag(resolve.TXTData(rr.(*dns.TXT))); ok && v == Version {
			return Authorized, nil
		}
	}
	// Step 6: no record passes: no positive determination.
	return Unauthorized, nil
}

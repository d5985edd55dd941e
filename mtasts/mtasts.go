// Package mtasts audits a domain's SMTP MTA Strict Transport Security
// (MTA-STS, RFC 8461): the TXT record at _mta-sts.DOMAIN that announces a
// policy (§3.1), the policy file fetched over HTTPS from
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.2, §3.3), and whether
// every exchange of the delivery plan matches one of the policy's mx
// patterns (§4.1).
//
// MTA-STS lets a domain without DNSSEC tell senders to deliver only over
// TLS with a certificate valid for the exchange. A mistake in it either
// does nothing (senders ignore a malformed record) or stops mail (in
// enforce mode, senders refuse exchanges the policy does not list), so the
// audit reports both.
//
// The policy fetch is strict where senders are strict: HTTPS only, the
// certificate must be valid for mta-sts.DOMAIN, redirects are not followed,
// only status 200 counts, the body is capped at MaxPolicySize and the whole
// fetch at DefaultTimeout. Failures are a *FetchError naming the step.
package mtasts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// Options configure Lookup; the zero value fetches the policy with a
// Fetcher that resolves through Lookup's resolver and trusts the system's
// roots.
type Options struct {
	// Fetcher fetches the policy. Nil: a Fetcher resolving through
	// Lookup's resolver, with the system's roots.
	Fetcher *Fetcher
	// NoFetch checks the TXT record only, for runs without the network
	// (check --zone): the policy is neither fetched nor judged.
	NoFetch bool
	Logger  *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

// Result is what Lookup found. TXT empty means the domain has no MTA-STS.
type Result struct {
	Domain string `json:"domain"`
	// TXT are the TXT records starting with v=STSv1, strings joined, as
	// served.
	TXT []string `json:"txt"`
	// Record is the parsed record when exactly one valid record is served.
	Record *Record `json:"record,omitempty"`
	// TXTErr says why the records are unusable (ErrMultipleRecords or a
	// parse error wrapping ErrRecordSyntax).
	TXTErr error `json:"-"`
	// PolicyURL is where the policy was fetched from; empty when it was
	// not fetched (no record).
	PolicyURL string  `json:"policy_url,omitempty"`
	Policy    *Policy `json:"policy,omitempty"`
	// FetchErr is why the policy could not be fetched (a *FetchError).
	FetchErr error `json:"-"`
	// PolicyErr is why the fetched policy does not parse (wraps
	// ErrPolicySyntax).
	PolicyErr error `json:"-"`
}

// MarshalJSON adds the errors as text: txt_error, fetch_error (with the
// step that failed as fetch_stage) and policy_error.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	out := struct {
		*plain
		TXTError    string `json:"txt_error,omitempty"`
		FetchStage  Stage  `json:"fetch_stage,omitempty"`
		FetchError  string `json:"fetch_error,omitempty"`
		PolicyError string `json:"policy_error,omitempty"`
	}{plain: (*plain)(r)}
	if r.TXTErr != nil {
		out.TXTError = r.TXTErr.Error()
	}
	if r.FetchErr != nil {
		out.FetchError = r.FetchErr.Error()
		if fe, ok := errors.AsType[*FetchError](r.FetchErr); ok {
			out.FetchStage = fe.Stage
		}
	}
	if r.PolicyErr != nil {
		out.PolicyError = r.PolicyErr.Error()
	}
	return json.Marshal(out)
}

// Lookup finds the _mta-sts TXT record of domain and, when one claims to be
// an MTA-STS record, fetches the policy, as a sender does (RFC 8461 §3.3:
// the policy is fetched only when the TXT record says there is one). The
// policy is fetched even when the record is malformed, so one run reports
// every problem. A temporary failure of the TXT lookup is the error; every
// other problem is in the Result.
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "mta-sts lookup", []any{"domain", domain},
		func() (*Result, error) { return lookup(ctx, r, domain, opts) },
		func(res *Result) []any { return []any{"records", len(res.TXT), "policy", res.Policy != nil} })
}

// RecordQuestion is the question for domain's MTA-STS record: the TXT
// records at _mta-sts.DOMAIN (RFC 8461 §3.1), which Lookup asks first.
func RecordQuestion(domain dnsname.Name) resolve.Question {
	return resolve.Q("_mta-sts."+domain.FQDN(), dns.TypeTXT)
}

func lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (*Result, error) {
	res := &Result{Domain: string(domain), TXT: []string{}}
	// RFC 8461 §3.1: the record is a TXT record at _mta-sts.DOMAIN; a
	// CNAME there is followed like any other.
	txt, err := resolve.Follow(ctx, r, RecordQuestion(domain))
	if err != nil {
		return nil, fmt.Errorf("mta-sts: %w", err)
	}
	for _, rr := range txt.Records {
		s := resolve.TXTData(rr.(*dns.TXT))
		// RFC 8461 §3.1: records not beginning with v=STSv1 are discarded.
		if IsRecord(s) {
			res.TXT = append(res.TXT, s)
		}
	}
	switch len(res.TXT) {
	case 0:
		return res, nil
	case 1:
		res.Record, res.TXTErr = Parse(res.TXT[0])
	default:
		// RFC 8461 §3.1: if the number of records is not one, senders
		// assume the domain has no MTA-STS policy.
		res.TXTErr = fmt.Errorf("%w (%d records)", ErrMultipleRecords, len(res.TXT))
	}
	if opts.NoFetch {
		return res, nil
	}
	f := opts.Fetcher
	if f == nil {
		f = &Fetcher{Resolver: r, Logger: opts.Logger}
	}
	res.PolicyURL = PolicyURL(domain)
	p, _, err := f.Fetch(ctx, domain)
	switch {
	case err == nil:
		res.Policy = p
	case errors.Is(err, ErrPolicySyntax):
		res.PolicyErr = err
	default:
		res.FetchErr = err
	}
	return res, nil
}

// Findings turns a Result into findings. exchanges are the exchange names
// of the delivery plan (route.Plan hosts); each must match an mx pattern of
// the policy unless its mode is none.
func Findings(res *Result, exchanges []string) []finding.Finding {
	if res == nil {
		return nil
	}
	var fs []finding.Finding
	d := res.Domain
	if len(res.TXT) == 0 {
		// Most domains of a scan: worded without fmt.
		return []finding.Finding{finding.New(finding.MTASTSMissing, d,
			d+" publishes no MTA-STS record at _mta-sts."+d+", so senders use TLS only opportunistically.")}
	}
	if res.TXTErr != nil {
		fs = append(fs, finding.Newf(finding.MTASTSTXTInvalid, "_mta-sts."+d,
			"The MTA-STS record of %s is unusable, so senders ignore the policy: %s.", d, trimErr(res.TXTErr)))
	}
	if res.FetchErr != nil {
		stage := StageHTTP
		if fe, ok := errors.AsType[*FetchError](res.FetchErr); ok {
			stage = fe.Stage
		}
		if stage == StageForbidden {
			// Not fetched: the Dialer refuses non-public addresses
			// (docs/security.md#what-serve-refuses), which says nothing
			// of the policy host.
			return append(fs, finding.Newf(finding.MTASTSRefused, res.PolicyURL,
				"The MTA-STS policy of %s was not fetched: %s, and this server connects to public addresses only.", d, refusedText(res.FetchErr)))
		}
		fs = append(fs, finding.Newf(finding.MTASTSUnreachable, res.PolicyURL,
			"The MTA-STS policy of %s could not be fetched (%s): %s.", d, stageText(stage), trimErr(unwrapFetch(res.FetchErr))))
	}
	if res.PolicyErr != nil {
		fs = append(fs, finding.Newf(finding.MTASTSInvalid, res.PolicyURL,
			"The MTA-STS policy of %s does not parse: %s.", d, trimErr(res.PolicyErr)))
	}
	p := res.Policy
	if p == nil {
		return fs
	}
	if p.Mode == ModeTesting {
		fs = append(fs, finding.Newf(finding.MTASTSTesting, res.PolicyURL,
			"The MTA-STS policy of %s is in testing mode: TLS failures are reported, not enforced.", d))
	}
	if p.Mode == ModeNone {
		return fs
	}
	for _, h := range p.NotCovered(exchanges) {
		effect := "senders will refuse to deliver to it"
		if p.Mode == ModeTesting {
			effect = "senders report it as a failure, and will refuse it once the mode is enforce"
		}
		fs = append(fs, finding.Newf(finding.MTASTSNotCovered, h,
			"Exchange %s matches no mx pattern of the MTA-STS policy of %s (%s); %s.",
			h, d, strings.Join(p.MX, ", "), effect))
	}
	return fs
}

// stageText describes a fetch stage for a person.
func stageText(s Stage) string {
	switch s {
	case StageDNS:
		return "the policy host name does not resolve"
	case StageConnect:
		return "no connection to port 443"
	case StageForbidden:
		return "not a public address"
	case StageTLS:
		return "TLS or certificate failure"
	case StageRedirect:
		return "redirect"
	case StageStatus:
		return "HTTP status"
	case StageContentType:
		return "wrong content type"
	case StageSize:
		return "too large"
	case StageTimeout:
		return "time-out"
	}
	return "HTTP failure"
}

// refusedText names the addresses a Dialer's policy refused and what each
// is: "127.0.0.1 is not a public address (loopback, RFC 1122)".
func refusedText(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*dial.ForbiddenError); ok {
			parts = append(parts, fe.Reason())
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	if len(parts) == 0 {
		return "its address is not a public one"
	}
	return strings.Join(parts, "; ")
}

// unwrapFetch drops the FetchError wrapper, whose URL and stage the finding
// already shows.
func unwrapFetch(err error) error {
	if fe, ok := errors.AsType[*FetchError](err); ok {
		return fe.Err
	}
	return err
}

// trimErr turns an error into a message fragment: no package prefix, no
// final period.
func trimErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "mta-sts: ")
	return strings.TrimSuffix(s, ".")
}

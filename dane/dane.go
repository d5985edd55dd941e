// Package dane audits DANE for SMTP (RFC 7672), the use of DNSSEC-signed
// TLSA records (RFC 6698, RFC 7671) to authenticate the TLS certificates of
// a domain's exchanges.
//
// A sender that validates DNSSEC looks up TLSA records at
// _25._tcp.EXCHANGE (RFC 7672 §2.2.3) and, when it finds usable ones,
// delivers only over TLS with a certificate that matches one of them;
// otherwise it uses TLS opportunistically. So a TLSA record helps only when
// it is DNSSEC-validated (the AD bit of the answer), well-formed and of a
// usage SMTP accepts, and it stops mail when the server's certificate stops
// matching. Lookup gathers the records and their security; Findings
// reports dane-tlsa-insecure and dane-tlsa-invalid; Match is the
// certificate check the SMTP probe runs against a live server.
package dane

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/resolve"
)

// Options configure Lookup; the zero value looks up the records SMTP
// senders use.
type Options struct {
	Port   int          // the port of the TLSA name; 0: dial.SMTPPort (RFC 7672 §2.2.3: "_25._tcp")
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

// Result is the DANE state of one exchange.
type Result struct {
	// Host is the exchange as given (the MX target).
	Host string `json:"host"`
	// Base is the TLSA base domain the records were found at: Host, or
	// its CNAME target when Host is a securely resolved alias (RFC 7672
	// §2.2.3). Empty when no TLSA records were found.
	Base string `json:"base,omitempty"`
	// Name is the TLSA owner name that was asked, e.g. "_25._tcp.mx.example.com".
	Name string `json:"name"`
	// Records are the TLSA records found, as served; RRs the same records
	// for Match.
	Records []Record    `json:"records"`
	RRs     []*dns.TLSA `json:"-"`
	// Secure is true when the TLSA answer was DNSSEC-validated (AD bit).
	Secure bool `json:"secure"`
	// AddressSecure is true when the exchange's address records were
	// DNSSEC-validated; senders look up TLSA only then (RFC 7672 §2.2).
	AddressSecure bool `json:"address_secure"`
}

// Usable returns the records an SMTP sender would use (Record.Check).
func (r *Result) Usable() []*dns.TLSA {
	var out []*dns.TLSA
	for i, rec := range r.Records {
		if rec.Check() == nil {
			out = append(out, r.RRs[i])
		}
	}
	return out
}

// Lookup finds the TLSA records of one exchange, host (the MX target). The exchange's address
// lookup and the TLSA lookup run at once; when the exchange is a CNAME
// alias whose expansion is DNSSEC-validated, the TLSA records of the alias
// target are asked for too and preferred (RFC 7672 §2.2.3, RFC 7671 §7):
// the TLSA base domain follows the CNAME. A TLSA owner that is itself an
// alias is followed. A lookup that does not settle (SERVFAIL, time-out) is
// the error: a validating sender defers mail then, and it must not be
// reported as "no TLSA".
func Lookup(ctx context.Context, r resolve.Resolver, host string, opts Options) (*Result, error) {
	host = strings.TrimSuffix(dns.CanonicalName(host), ".")
	return lookuplog.Run(opts.Logger, "dane lookup", []any{"host", host},
		func() (*Result, error) {
			res, errs := lookupAll(ctx, r, []string{host}, opts)
			return res[0], errs[0]
		},
		logged)
}

// LookupAll is Lookup for several exchanges at once: the address and
// TLSA questions of every host go as one batch (resolve.FollowAll), and
// the TLSA questions of secure alias targets, which need the first
// answers, after it. Results and errors are in the order of hosts: a
// result is nil where that host's lookup failed, and its error says why.
// With a Logger, each host is logged as Lookup logs it, the duration
// being the whole batch's.
func LookupAll(ctx context.Context, r resolve.Resolver, hosts []string, opts Options) ([]*Result, []error) {
	canonical := make([]string, len(hosts))
	for i, h := range hosts {
		canonical[i] = strings.TrimSuffix(dns.CanonicalName(h), ".")
	}
	// As lookuplog.Run: nothing is built for a logger that drops it (a
	// scan's, at warning level).
	if opts.Logger == nil || !opts.Logger.Enabled(ctx, slog.LevelDebug) {
		return lookupAll(ctx, r, canonical, opts)
	}
	start := time.Now()
	res, errs := lookupAll(ctx, r, canonical, opts)
	d := time.Since(start)
	for i, h := range canonical {
		args := []any{"host", h, "duration", d}
		if res[i] != nil {
			args = append(args, logged(res[i])...)
		}
		if errs[i] != nil {
			args = append(args, "err", errs[i])
		}
		opts.Logger.Debug("dane lookup", args...)
	}
	return res, errs
}

// logged is what a lookup's log line says about its Result.
func logged(res *Result) []any {
	return []any{"records", len(res.Records), "secure", res.Secure, "base", res.Base}
}

// lookupAll looks up hosts, already canonical and without the final dot.
func lookupAll(ctx context.Context, r resolve.Resolver, hosts []string, opts Options) ([]*Result, []error) {
	out := make([]*Result, len(hosts))
	errs := make([]error, len(hosts))
	results := make([]Result, len(hosts)) // one allocation, not one per host
	// Each host's address question, then its TLSA question.
	qs := make([]resolve.Question, 0, 2*len(hosts))
	for i, host := range hosts {
		results[i] = Result{Host: host, Name: opts.tlsaName(host), Records: []Record{}}
		out[i] = &results[i]
		qs = append(qs, resolve.Q(host+".", dns.TypeA), resolve.Q(out[i].Name+".", dns.TypeTLSA))
	}
	// Each host's two outcomes are read once, together, into two scratch
	// Results (resolve.Batch.FollowedInto: no Result kept per question).
	answers := resolve.AskFollow(ctx, r, qs, 0)
	var addr, direct resolve.Result
	for i := range hosts {
		errs[i] = finish(ctx, r, out[i], answers.FollowedInto(2*i, &addr), answers.FollowedInto(2*i+1, &direct), opts)
		if errs[i] != nil {
			out[i] = nil
		}
	}
	return out, errs
}

// finish completes res from its host's address answer and TLSA answer.
func finish(ctx context.Context, r resolve.Resolver, res *Result, addr, direct resolve.Followed, opts Options) error {
	if addr.Err != nil {
		return fmt.Errorf("dane: address of %s: %w", res.Host, addr.Err)
	}
	if direct.Err != nil {
		return fmt.Errorf("dane: %w", direct.Err)
	}
	res.AddressSecure = addr.Result.AD
	found, base := direct.Result, res.Host
	// RFC 7672 §2.2.3: with a secure CNAME expansion the expanded name is
	// the TLSA base domain, and the original name is the fallback; an
	// insecure expansion is not trusted to pick the name.
	if len(addr.Result.Chain) > 0 && addr.Result.AD {
		target := strings.TrimSuffix(addr.Result.Name, ".")
		expanded, err := resolve.Follow(ctx, r, resolve.Q(opts.tlsaName(target)+".", dns.TypeTLSA))
		if err != nil {
			return fmt.Errorf("dane: %w", err)
		}
		if len(expanded.Records) > 0 {
			found, base = expanded, target
			res.Name = opts.tlsaName(target)
		}
	}
	if len(found.Records) == 0 {
		return nil
	}
	res.Base, res.Secure = base, found.AD
	for _, rr := range found.Records {
		t := rr.(*dns.TLSA)
		rec, err := FromRR(t)
		if err != nil {
			// Hex from the wire always decodes; keep the record anyway.
			rec = &Record{Usage: Usage(t.Usage), Selector: Selector(t.Selector), MatchingType: MatchingType(t.MatchingType)}
		}
		res.Records = append(res.Records, *rec)
		res.RRs = append(res.RRs, t)
	}
	return nil
}

func (o Options) tlsaName(host string) string {
	port := o.Port
	if port == 0 {
		port = dial.SMTPPort
	}
	return "_" + strconv.Itoa(port) + "._tcp." + host
}

// Findings reports, for an exchange with TLSA records: dane-tlsa-insecure
// when senders will not trust them (TLSA answer or address records not
// validated), and dane-tlsa-invalid for records they cannot use. A nil
// Result (a failed lookup) gives none.
func Findings(r *Result) []finding.Finding {
	if r == nil || len(r.Records) == 0 {
		return nil
	}
	var fs []finding.Finding
	switch {
	case !r.Secure:
		// RFC 7672 §2.2: only DNSSEC-validated TLSA records count.
		fs = append(fs, finding.Newf(finding.DANEInsecure, r.Name,
			"%s has TLSA records, but the answer is not DNSSEC-validated, so senders ignore them.", r.Host))
	case !r.AddressSecure:
		// RFC 7672 §2.2: senders look up TLSA records only for an
		// exchange whose address records are validated.
		fs = append(fs, finding.Newf(finding.DANEInsecure, r.Name,
			"%s has validated TLSA records, but its address records are not DNSSEC-validated, so senders never look the TLSA records up.", r.Host))
	}
	var bad []string
	for _, rec := range r.Records {
		if err := rec.Check(); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", rec.brief(), err))
		}
	}
	if len(bad) == 0 {
		return fs
	}
	msg := fmt.Sprintf("%s has %s senders cannot use (%s)", r.Host, prose.Count(len(bad), "TLSA record"), strings.Join(bad, "; "))
	if len(bad) == len(r.Records) {
		// RFC 7672 §2.2: with no usable record left, senders use TLS
		// without authenticating the server.
		msg += "; no usable record is left, so DANE gives no protection"
	}
	return append(fs, finding.New(finding.DANEInvalid, r.Name, msg+"."))
}

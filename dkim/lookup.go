package dkim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// DefaultSelectors are probed for every domain: names that mail providers
// and signing software use by default, so a key found there is likely in
// use. docs/auth.md lists who uses which.
var DefaultSelectors = []string{
	"default",    // cPanel, Plesk, rspamd and OpenDKIM examples
	"dkim",       // generic
	"mail",       // generic
	"email",      // generic
	"smtp",       // generic
	"selector1",  // Microsoft 365
	"selector2",  // Microsoft 365 (the rotation partner)
	"google",     // Google Workspace
	"k1",         // Mailchimp / Mandrill
	"k2",         // Mailchimp / Mandrill
	"k3",         // Mailchimp / Mandrill
	"mandrill",   // Mandrill (older setups)
	"s1",         // SendGrid
	"s2",         // SendGrid
	"smtpapi",    // SendGrid (legacy)
	"mxvault",    // MXroute
	"fm1",        // Fastmail
	"fm2",        // Fastmail
	"fm3",        // Fastmail
	"protonmail", // Proton Mail
	"protonmail2",
	"protonmail3",
	"sig1",     // iCloud+ custom domains
	"zendesk1", // Zendesk
	"zendesk2", // Zendesk
	"ctct1",    // Constant Contact
	"ctct2",    // Constant Contact
}

// Bounds on the work one Lookup does.
const (
	// MaxSelectors bounds caller-supplied selectors.
	MaxSelectors = 64
	// MaxParallel bounds queries in flight at once. It is above the length
	// of DefaultSelectors so the whole list is one round trip: DKIM probing
	// then never lengthens an audit's critical path (check's benchmark).
	MaxParallel = 32
	// MaxKeysPerSelector bounds the key records read at one selector; a
	// verifier uses one (RFC 6376 §3.6.2.2), a hostile zone may hold
	// thousands.
	MaxKeysPerSelector = 8
)

// ErrBadSelector is returned for a caller-supplied selector that cannot
// form a domain name.
var ErrBadSelector = errors.New("dkim: invalid selector")

// Key is one key record found at a selector.
type Key struct {
	Selector string `json:"selector"`
	Name     string `json:"name"` // SELECTOR._domainkey.DOMAIN, without the final dot
	Text     string `json:"text"` // the record as published
	// Record is the parsed record, nil when it has Problems.
	Record   *Record  `json:"record,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Usable reports whether a verifier can check signatures with the key:
// it parsed and is not revoked.
func (k Key) Usable() bool { return k.Record != nil && !k.Record.Revoked() }

// Result is what Lookup found for one domain.
type Result struct {
	Domain string `json:"domain"`
	// Probed are the selectors asked for, the caller's first.
	Probed []string `json:"probed"`
	// NoKeyTree reports that _domainkey.DOMAIN does not exist (NXDOMAIN),
	// so no name below it exists either (RFC 8020 §2) and DefaultSelectors
	// were not asked.
	NoKeyTree bool `json:"no_key_tree,omitempty"`
	// Keys are the key records found, in Probed order.
	Keys []Key `json:"keys"`
	// Failed are the selectors whose query failed; Lookup's error says why.
	Failed []string `json:"failed,omitempty"`
}

// KeyTreeQuestion is the question Lookup asks before the selectors:
// _domainkey.DOMAIN, whose NXDOMAIN proves that no selector exists below
// it (RFC 8020 §2; RFC 6376 §3.6.2.1 puts the keys there).
func KeyTreeQuestion(domain dnsname.Name) resolve.Question {
	return resolve.Q("_domainkey."+domain.FQDN(), dns.TypeTXT)
}

// Lookup probes domain for DKIM keys at the caller's selectors and at
// DefaultSelectors, at most MaxParallel queries at a time.
//
// DefaultSelectors are skipped when _domainkey.DOMAIN is NXDOMAIN (RFC 8020
// §2: nothing exists below a name that does not exist), which spares ~27
// queries for the many domains without DKIM. That costs one round trip
// before them; the caller's selectors are asked at once, beside it, and
// always — a server that wrongly answers NXDOMAIN for the empty
// non-terminal must not hide a selector the user named.
//
// A selector whose query fails is listed in Result.Failed and its error is
// returned joined with the others, next to the Result; a failure is never
// read as "no key". Invalid caller selectors (Options.Selectors) are an
// error wrapping ErrBadSelector, with a nil Result.
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "dkim lookup", []any{"domain", domain},
		func() (*Result, error) { return lookup(ctx, r, domain, opts.Selectors) },
		func(res *Result) []any {
			return []any{"probed", len(res.Probed), "keys", len(res.Keys), "failed", len(res.Failed)}
		})
}

// Options configure Lookup; the zero value probes DefaultSelectors only.
type Options struct {
	// Selectors are probed first and always, in addition to
	// DefaultSelectors; at most MaxSelectors.
	Selectors []string
	Logger    *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

func lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, selectors []string) (*Result, error) {
	if len(selectors) > MaxSelectors {
		return nil, fmt.Errorf("%w: %d selectors given, at most %d", ErrBadSelector, len(selectors), MaxSelectors)
	}
	probed := make([]string, 0, len(selectors)+len(DefaultSelectors))
	for _, s := range selectors {
		s = strings.Trim(s, ".")
		if _, ok := dns.IsDomainName(s + "._domainkey." + domain.FQDN()); !ok || !ValidSelector(s) {
			return nil, fmt.Errorf("%w: %q", ErrBadSelector, s)
		}
		s = strings.ToLower(s) // ASCII only, checked above
		if !slices.Contains(probed, s) {
			probed = append(probed, s)
		}
	}
	// The lists are short (MaxSelectors, DefaultSelectors): a scan of the
	// caller's selectors costs less than a set, which was the largest
	// allocation of a scan's DKIM gathering.
	nCaller := len(probed)
	for _, s := range DefaultSelectors {
		if !slices.Contains(probed[:nCaller], s) {
			probed = append(probed, s)
		}
	}
	tree := "._domainkey." + domain.FQDN()
	// The caller's selectors at once, beside the test of the key tree;
	// the defaults after it, within what is left of MaxParallel (or once
	// the caller's are answered, when they take it all).
	var callers *resolve.Batch // nil without caller selectors, as in a scan
	if nCaller > 0 {
		callers = resolve.AskFollow(ctx, r, questions(probed[:nCaller], tree), MaxParallel)
	}
	res := &Result{Domain: domain.String(), Probed: probed, Keys: []Key{}}
	// RFC 8020 §2: an NXDOMAIN for _domainkey.DOMAIN itself (not for the
	// target of an alias) means no selector exists below it. A failed query
	// proves nothing, so the defaults are then probed.
	var mine, defaults outcomes
	waited := false
	a, err := r.Lookup(ctx, KeyTreeQuestion(domain))
	if err == nil && a.NXDomain() && !hasCNAME(a.Answer) {
		res.NoKeyTree = true
		res.Probed = probed[:nCaller:nCaller]
	} else {
		room := MaxParallel - nCaller
		if room <= 0 {
			mine, waited, room = outcomes{list: callers.WaitFollow()}, true, MaxParallel
		}
		defaults = outcomes{batch: resolve.AskFollow(ctx, r, questions(probed[nCaller:], tree), room)}
	}
	if callers != nil && !waited {
		mine = outcomes{batch: callers}
	}
	return collect(res, tree, nCaller, mine, defaults)
}

// questions are the TXT questions of selectors (RFC 6376 §3.6.2.1:
// SELECTOR._domainkey.DOMAIN; tree is "._domainkey.DOMAIN.").
func questions(selectors []string, tree string) []resolve.Question {
	qs := make([]resolve.Question, len(selectors))
	for i, s := range selectors {
		qs[i] = resolve.Q(s+tree, dns.TypeTXT)
	}
	return qs
}

// outcomes are the outcomes of a batch of selector queries: those
// WaitFollow returned, or the batch's, read one at a time
// (resolve.Batch.FollowedInto: no Result kept per selector, 27 a domain in
// a scan). The zero value is a batch not asked.
type outcomes struct {
	list  []resolve.Followed
	batch *resolve.Batch
}

// at is the outcome of question i; its Result may be res, overwritten.
func (o outcomes) at(i int, res *resolve.Result) resolve.Followed {
	if o.batch != nil {
		return o.batch.FollowedInto(i, res)
	}
	return o.list[i]
}

// collect fills res with the keys found at the selectors of res.Probed,
// the caller's (mine, the first nMine) and the defaults, from the outcomes
// of their queries (in the same order), and the failures.
func collect(res *Result, tree string, nMine int, mine, defaults outcomes) (*Result, error) {
	var errs []error
	var scratch resolve.Result
	for i := range res.Probed {
		var f resolve.Followed
		if i < nMine {
			f = mine.at(i, &scratch)
		} else {
			f = defaults.at(i-nMine, &scratch)
		}
		keys, err := keysAt(res.Probed[i], tree, f)
		if err != nil {
			res.Failed = append(res.Failed, res.Probed[i])
			errs = append(errs, err)
		}
		res.Keys = append(res.Keys, keys...)
	}
	if len(errs) == 0 {
		return res, nil
	}
	return res, &SelectorError{Failed: res.Failed, Probed: len(res.Probed), Errs: errs}
}

// SelectorError is Lookup's error when selector queries failed: one line
// however many failed (a resolver that is down fails them all), naming
// them with the first failure. It wraps every failure, for errors.Is.
type SelectorError struct {
	Failed []string // the selectors whose query failed, in probe order
	Probed int      // how many selectors were asked
	Errs   []error  // one per failed selector
}

func (e *SelectorError) Error() string {
	if len(e.Errs) == 1 {
		return e.Errs[0].Error()
	}
	names := e.Failed
	if len(names) > 3 {
		names = append(names[:3:3], "…")
	}
	first := e.Errs[0]
	if inner := errors.Unwrap(first); inner != nil {
		first = inner // without the "dkim: selector S:" prefix: the line names the selectors
	}
	return fmt.Sprintf("dkim: %d of %d selectors could not be looked up (%s); the first: %v",
		len(e.Failed), e.Probed, strings.Join(names, ", "), first)
}

// Unwrap returns every failure.
func (e *SelectorError) Unwrap() []error { return e.Errs }

// keysAt reads the key records at one selector from the outcome of its
// query (RFC 6376 §3.6.2.1).
func keysAt(selector, tree string, f resolve.Followed) ([]Key, error) {
	if f.Err != nil {
		return nil, fmt.Errorf("dkim: selector %s: %w", selector, f.Err)
	}
	var keys []Key
	for _, rr := range f.Result.Records {
		text := resolve.TXTData(rr.(*dns.TXT))
		if !IsKeyRecord(text) {
			continue
		}
		if len(keys) == MaxKeysPerSelector {
			break
		}
		k := Key{Selector: selector, Name: strings.TrimSuffix(selector+tree, "."), Text: text}
		var err error
		k.Record, err = Parse(text)
		if se, ok := errors.AsType[*SyntaxError](err); ok {
			k.Problems = se.Problems
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func hasCNAME(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeCNAME {
			return true
		}
	}
	return false
}

// ValidSelector reports whether s is a selector: selector = sub-domain
// *( "." sub-domain ) (RFC 6376 §3.1), sub-domain being letters, digits
// and hyphens (RFC 5321 §4.1.2). Underscores are accepted too: some
// signers use them and DNS carries them.
func ValidSelector(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

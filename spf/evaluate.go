package spf

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
)

// Request is an evaluation as a person asks for it, on the command line
// ("mxtrace spf") or over HTTP (GET /api/v1/spf/{domain}): text, checked
// by Query.
type Request struct {
	// Domain is the domain whose policy is checked, or an e-mail address
	// (its domain is checked, and it is the sender). Empty: the domain
	// comes from the session, as a receiving server takes it (Sender's
	// domain part, or HELO's with a null sender; RFC 7208 §2.3, §2.4).
	Domain string
	// IP is the SMTP client's address (required).
	IP string
	// Sender is the MAIL FROM address; "<>" is the null sender, and empty
	// means none given: postmaster@Domain with a Domain, else the null
	// sender.
	Sender string
	// HELO is the client's HELO/EHLO name; empty: Domain, or the domain
	// the session gives.
	HELO string
}

// The parameters a RequestError is about, named as the HTTP API names
// them (the command line adds its "--").
const (
	ParamDomain = "domain"
	ParamIP     = "ip"
	ParamSender = "sender"
)

// ErrRequest is wrapped by every error of Request.Query: the request
// cannot be evaluated as given (bad usage, not a lookup failure).
var ErrRequest = errors.New("spf: bad request")

// RequestError is a Request that cannot be evaluated: the parameter at
// fault (ParamDomain, ParamIP, ParamSender; "" when no parameter names
// the domain to check) and why. For ParamDomain, Err is the
// *dnsname.Error. Error is the message to show the person who asked.
type RequestError struct {
	Param string
	Err   error
}

func (e *RequestError) Error() string { return e.Err.Error() }

// Unwrap returns ErrRequest and the cause (the *dnsname.Error of an
// invalid domain).
func (e *RequestError) Unwrap() []error { return []error{ErrRequest, e.Err} }

// Query checks r and builds check_host()'s input from it, and the name
// whose record tree Evaluate walks. A Domain given in r must be a valid
// name (an error otherwise); a domain taken from the session is judged
// by check_host() itself, which gives none for one that is not usable
// (RFC 7208 §4.3), and then tree is "" (there is no tree to walk).
func (r Request) Query() (q Query, tree dnsname.Name, err error) {
	if r.IP == "" {
		return q, "", &RequestError{ParamIP, errors.New("ip is required: the client address to evaluate the policy for")}
	}
	ip, err := netip.ParseAddr(r.IP)
	if err != nil || ip.Zone() != "" {
		return q, "", &RequestError{ParamIP, fmt.Errorf("ip: %q is not an IP address", r.IP)}
	}
	sender, null := r.Sender, r.Sender == "<>"
	if !null && sender != "" && !strings.Contains(sender, "@") {
		return q, "", &RequestError{ParamSender, fmt.Errorf("sender: %q is not an e-mail address ('<>' is the null sender)", sender)}
	}
	if r.Domain != "" {
		if tree, err = dnsname.Parse(r.Domain); err != nil {
			return q, "", &RequestError{ParamDomain, err}
		}
		switch {
		case sender == "" && strings.Contains(r.Domain, "@"):
			sender = strings.TrimSpace(r.Domain)
		case sender == "":
			sender = "postmaster@" + tree.String()
		}
		return Query{IP: ip, Domain: tree.String(), Sender: sender, HELO: cmp.Or(r.HELO, tree.String())}, tree, nil
	}
	if sender == "" && r.HELO == "" || null && r.HELO == "" {
		return q, "", &RequestError{"", errors.New("give a DOMAIN, or the session it comes from: a sender address, or a HELO name (with a null sender, or none)")}
	}
	q = Query{IP: ip, Sender: sender, HELO: r.HELO}
	_, domain := q.Identity()
	if q.HELO == "" {
		q.HELO = domain
	}
	// RFC 7208 §4.3: a single-label domain gives none; no tree to walk.
	if n, err := dnsname.Parse(domain); err == nil && strings.Contains(n.String(), ".") {
		tree = n
	}
	return q, tree, nil
}

// Evaluation is check_host()'s result for one client with the domain's
// whole record tree and its findings: what "mxtrace spf --json" prints
// and GET /api/v1/spf/{domain} answers.
type Evaluation struct {
	Schema int `json:"schema"`
	*Result
	Tree            *Node             `json:"tree"`
	TreeLookups     int               `json:"tree_lookups"`
	TreeVoidLookups int               `json:"tree_void_lookups"`
	Incomplete      bool              `json:"incomplete,omitempty"`
	Findings        []finding.Finding `json:"findings"`
	Error           string            `json:"error,omitempty"`
	ElapsedMS       int64             `json:"elapsed_ms"`

	// AnalysisErr is the tree walk's error (Error holds its text).
	AnalysisErr error `json:"-"`
}

// Evaluate runs check_host() for q and walks tree's records (Lookup) at
// once: the two read the same records, and a shared cache in c's
// Resolver answers the second asker. Without a tree (a domain from the
// session that is not a name, see Request.Query) only check_host() runs.
// A lookup failure is in the Evaluation: temperror in the Result, or
// AnalysisErr.
func Evaluate(ctx context.Context, c *Checker, q Query, tree dnsname.Name, opts Options) *Evaluation {
	start := time.Now()
	out := &Evaluation{Schema: 1}
	var an *Analysis
	var wg sync.WaitGroup
	wg.Go(func() { out.Result = c.CheckHost(ctx, q) })
	if tree != "" {
		wg.Go(func() { an, out.AnalysisErr = Lookup(ctx, c.Resolver, tree, opts) })
	}
	wg.Wait()
	out.Findings = []finding.Finding{}
	if an != nil {
		out.Tree, out.TreeLookups, out.TreeVoidLookups = an.Tree, an.Lookups, an.VoidLookups
		out.Incomplete, out.Findings = an.Incomplete, Findings(an)
	}
	if out.AnalysisErr != nil {
		out.Error = out.AnalysisErr.Error()
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	return out
}

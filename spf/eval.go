package spf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/resolve"
)

// Status is an SPF result (RFC 7208 §2.6, §8).
type Status string

// Results.
const (
	None      Status = "none"      // no SPF record, or no usable domain (§8.1)
	Neutral   Status = "neutral"   // the domain makes no assertion (§8.2)
	Pass      Status = "pass"      // the client is authorised (§8.3)
	Fail      Status = "fail"      // the client is not authorised (§8.4)
	SoftFail  Status = "softfail"  // probably not authorised (§8.5)
	TempError Status = "temperror" // a transient (DNS) error (§8.6)
	PermError Status = "permerror" // the record cannot be interpreted (§8.7)
)

// Limits of RFC 7208 §4.6.4.
const (
	MaxLookups     = 10 // DNS-querying terms per check_host()
	MaxVoidLookups = 2  // lookups answering NXDOMAIN or no records
	MaxMXNames     = 10 // MX records an "mx" mechanism may look at
	MaxPTRNames    = 10 // PTR names a "ptr" mechanism (or %{p}) looks at
)

// DefaultTimeout bounds one evaluation (RFC 7208 §4.6.4: "at least 20
// seconds").
const DefaultTimeout = 20 * time.Second

// maxDepth bounds include/redirect nesting whatever MaxLookups is set to.
const maxDepth = 32

// Checker evaluates SPF policies (check_host(), RFC 7208 §4) through a
// Resolver. The zero limits mean the RFC's values.
type Checker struct {
	Resolver resolve.Resolver
	Logger   *slog.Logger // nil: silent

	// Receiver is the %{r} macro, the name of the checking host; "unknown"
	// when empty (RFC 7208 §7.2).
	Receiver string
	// Now gives %{t}; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the whole evaluation; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxLookups and MaxVoidLookups override the RFC 7208 §4.6.4 limits
	// (10 and 2) when positive.
	MaxLookups, MaxVoidLookups int
}

// Query is the input of check_host() (RFC 7208 §4.1).
type Query struct {
	IP netip.Addr // the SMTP client's address
	// Domain is the domain whose policy is checked; empty means the
	// domain of Sender, or HELO when Sender is empty.
	Domain string
	// Sender is the MAIL FROM address; empty or "<>" (the null sender)
	// means postmaster@HELO (RFC 7208 §2.4). See Identity.
	Sender string
	HELO   string
}

// Identity returns the sender check_host() works with and the domain
// whose policy it checks, as a receiving server derives them from the SMTP
// session. RFC 7208 §2.4: a null MAIL FROM (empty, or "<>") is replaced by
// postmaster@HELO. RFC 7208 §4.3: a sender without a local-part gets
// "postmaster". The domain is q.Domain, or else the sender's domain part
// (RFC 7208 §2.3, §2.4). Neither is checked here: a malformed domain makes
// check_host() return none (RFC 7208 §4.3).
func (q Query) Identity() (sender, domain string) {
	sender = q.Sender
	if len(sender) >= 2 && sender[0] == '<' && sender[len(sender)-1] == '>' {
		sender = sender[1 : len(sender)-1] // the path as written in MAIL FROM:<...>
	}
	if sender == "" {
		sender = "postmaster@" + q.HELO
	}
	local, domainOf := "", sender
	if at := strings.LastIndexByte(sender, '@'); at >= 0 {
		local, domainOf = sender[:at], sender[at+1:]
	}
	if local == "" {
		sender = "postmaster@" + domainOf
	}
	domain = q.Domain
	if domain == "" {
		domain = domainOf
	}
	return sender, domain
}

// Step is one record on the way to the result: the domain whose record was
// evaluated, how it was reached, and the term that decided its result.
type Step struct {
	Domain   string `json:"domain"`
	Via      string `json:"via,omitempty"`    // "include" or "redirect"; "" for the first domain
	Record   string `json:"record,omitempty"` // the record text
	Term     string `json:"term,omitempty"`   // the deciding term as written; "" when none matched
	Position int    `json:"position"`         // the term's byte offset in the record (-1 without a term)
	Result   Status `json:"result"`           // what this record evaluated to
	Detail   string `json:"detail,omitempty"` // why, in words
}

// Result is the outcome of check_host().
type Result struct {
	Status Status     `json:"result"`
	Domain string     `json:"domain"`
	IP     netip.Addr `json:"ip"`
	Sender string     `json:"sender"`
	HELO   string     `json:"helo"`
	// Explanation is the text of the exp= modifier for a fail, with macros
	// expanded (RFC 7208 §6.2); "" when there is none.
	Explanation string `json:"explanation"`
	// Path lists the records from Domain's to the one whose term decided
	// the result, through includes and redirects.
	Path []Step `json:"path"`
	// Lookups counts DNS-querying terms evaluated, VoidLookups the lookups
	// that found nothing (RFC 7208 §4.6.4).
	Lookups     int `json:"lookups"`
	VoidLookups int `json:"void_lookups"`
	// Err explains none, permerror and temperror (nil otherwise).
	Err error `json:"-"`
	// Reason is Err as text, for JSON.
	Reason string `json:"reason,omitempty"`
}

// CheckHost evaluates the SPF policy of q.Domain for q.IP (RFC 7208 §4).
// Every SPF result, temperror and permerror included, is an outcome: the
// returned Result always has a Status, and Err says why for none,
// temperror and permerror.
func (c *Checker) CheckHost(ctx context.Context, q Query) (res *Result) {
	start := time.Now()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	e := &evaluation{
		c: c, ctx: ctx, ip: q.IP.Unmap(),
		maxLookups: positiveOr(c.MaxLookups, MaxLookups), maxVoids: positiveOr(c.MaxVoidLookups, MaxVoidLookups),
		validated: map[string]bool{},
	}
	sender, domain := q.Identity()
	at := strings.LastIndexByte(sender, '@')
	local, domainOf := sender[:at], sender[at+1:]
	e.env = macroEnv{sender: sender, local: local, domainOf: domainOf, helo: q.HELO, ip: e.ip, receiver: c.Receiver}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	e.env.now = now().Unix()
	e.env.ptr = e.ptrMacro

	res = &Result{Domain: domain, IP: q.IP, Sender: sender, HELO: q.HELO}
	defer func() {
		if c.Logger != nil {
			c.Logger.Debug("spf check_host", "domain", domain, "ip", q.IP, "result", res.Status,
				"lookups", res.Lookups, "void_lookups", res.VoidLookups, "error", res.Err, "duration", time.Since(start))
		}
	}()
	var o outcome
	if !q.IP.IsValid() {
		o = outcome{status: PermError, err: fmt.Errorf("%w: %q", ErrInvalidIP, q.IP)}
	} else {
		o = e.checkHost(domain, "", 0)
	}
	res.Status, res.Path, res.Err = o.status, o.path, o.err
	if res.Path == nil {
		res.Path = []Step{}
	}
	if o.err != nil {
		res.Reason = o.err.Error()
	}
	if o.status == Fail && o.exp != nil {
		// RFC 7208 §6.2: the explanation is looked up once, after the
		// result is known, and only for fail.
		res.Explanation = e.explain(o.exp)
	}
	res.Lookups, res.VoidLookups = e.lookups, e.voids
	return res
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// evaluation is the state of one check_host() run: the limits are counted
// across every include and redirect (RFC 7208 §4.6.4).
type evaluation struct {
	c                    *Checker
	ctx                  context.Context
	ip                   netip.Addr
	env                  macroEnv
	lookups, voids       int
	maxLookups, maxVoids int

	ptrDone   bool
	ptrList   []string
	ptrVoid   bool
	ptrErr    error
	validated map[string]bool
	pMacro    map[string]string
}

// pendingExp is an exp= modifier to look up if the result stays fail.
type pendingExp struct {
	spec   MacroString
	domain string
}

// outcome is the result of one record's evaluation.
type outcome struct {
	status Status
	path   []Step
	exp    *pendingExp
	err    error
	void   bool // none because the record lookup found nothing
}

// checkHost evaluates the record of domain (RFC 7208 §4). via is how the
// domain was reached ("", "include", "redirect").
func (e *evaluation) checkHost(domain, via string, depth int) outcome {
	step := Step{Domain: domain, Via: via, Position: -1}
	fail := func(s Status, err error) outcome {
		step.Result, step.Detail = s, err.Error()
		if nr, ok := errors.AsType[*noRecordError](err); ok {
			// The step's domain is said already: what was there instead.
			step.Detail = nr.reason
		}
		return outcome{status: s, path: []Step{step}, err: err}
	}
	if depth > maxDepth {
		return fail(PermError, fmt.Errorf("%w (more than %d levels)", ErrDepth, maxDepth))
	}
	// RFC 7208 §4.3: a malformed or single-label domain gives "none".
	qname, ok := queryName(domain)
	if !ok || !multiLabel(qname) || strings.HasPrefix(domain, "[") {
		return fail(None, fmt.Errorf("%w: %s %s (RFC 7208 §4.3)", ErrInvalidDomain, quoteName(domain), whyUnusable(domain)))
	}
	step.Domain = strings.TrimSuffix(domain, ".")
	f, err := fetchRecord(e.ctx, e.c.Resolver, qname)
	switch {
	case errors.Is(err, ErrDNS):
		return fail(TempError, err)
	case errors.Is(err, ErrNoRecord):
		o := fail(None, err)
		o.void = f.void
		return o
	case err != nil:
		return fail(PermError, err)
	}
	step.Record = f.text
	rec, err := Parse(f.text)
	if err != nil {
		// RFC 7208 §4.6: any syntax error makes the result permerror.
		if se, ok := errors.AsType[*SyntaxError](err); ok {
			step.Position = se.Pos
		}
		return fail(PermError, fmt.Errorf("record at %s: %w", step.Domain, err))
	}
	env := e.env
	env.domain = domain

	for _, t := range rec.Terms {
		if t.Modifier {
			continue
		}
		step.Term, step.Position = t.Raw, t.Pos
		if t.QueriesDNS() {
			if err := e.countLookup(); err != nil {
				return fail(PermError, err)
			}
		}
		m := e.match(t, &env, depth)
		if m.err != nil {
			step.Result, step.Detail = m.status, m.err.Error()
			switch {
			case errors.Is(m.err, ErrIncludeNone):
				step.Detail = "RFC 7208 §5.2: an include of a domain without an SPF record is permerror"
			case len(m.inner) > 0:
				step.Detail = fmt.Sprintf("the included domain's evaluation ended in %s", m.status)
			}
			return outcome{status: m.status, path: append([]Step{step}, m.inner...), err: m.err}
		}
		if !m.matched {
			continue
		}
		// RFC 7208 §4.6.2: the first matching mechanism gives the result
		// of its qualifier.
		step.Result = t.Qualifier.Status()
		step.Detail = m.detail
		o := outcome{status: step.Result, path: append([]Step{step}, m.inner...)}
		if o.status == Fail {
			if x, ok := rec.Exp(); ok {
				o.exp = &pendingExp{spec: x.Domain, domain: domain}
			}
		}
		return o
	}
	step.Term, step.Position = "", -1

	// RFC 7208 §6.1: redirect applies when no mechanism matched, and is
	// ignored when the record has an "all" mechanism.
	if r, ok := rec.Redirect(); ok && !rec.HasAll() {
		step.Term, step.Position = r.Raw, r.Pos
		if err := e.countLookup(); err != nil {
			return fail(PermError, err)
		}
		target, err := r.Domain.expand(&env, domainLetters, false)
		if err != nil {
			return fail(PermError, err)
		}
		inner := e.checkHost(target, "redirect", depth+1)
		step.Result = inner.status
		if inner.status == None {
			if inner.void {
				if err := e.countVoid(); err != nil {
					step.Result, step.Detail = PermError, err.Error()
					return outcome{status: PermError, path: append([]Step{step}, inner.path...), err: err}
				}
			}
			// RFC 7208 §6.1: no record (or a malformed target) at the
			// redirect target is permerror, not none.
			err := &targetNoneError{kind: ErrRedirectNone, target: target, inner: inner.err}
			step.Result, step.Detail = PermError, "RFC 7208 §6.1: a redirect to a domain without an SPF record is permerror"
			return outcome{status: PermError, path: append([]Step{step}, inner.path...), err: err}
		}
		step.Detail = "no mechanism matched; the result is the redirect target's"
		inner.path = append([]Step{step}, inner.path...)
		return inner
	}
	// RFC 7208 §4.7: no match and no redirect gives neutral.
	step.Result, step.Detail = Neutral, "RFC 7208 §4.7: no mechanism matched, so the result is neutral"
	return outcome{status: Neutral, path: []Step{step}}
}

// countLookup counts a DNS-querying term (RFC 7208 §4.6.4).
func (e *evaluation) countLookup() error {
	e.lookups++
	if e.lookups > e.maxLookups {
		return fmt.Errorf("%w (limit %d)", ErrLookupLimit, e.maxLookups)
	}
	return nil
}

// countVoid counts a lookup that found nothing (RFC 7208 §4.6.4).
func (e *evaluation) countVoid() error {
	e.voids++
	if e.voids > e.maxVoids {
		return fmt.Errorf("%w (limit %d)", ErrVoidLookupLimit, e.maxVoids)
	}
	return nil
}

// matched is the outcome of one mechanism.
type matched struct {
	matched bool
	detail  string
	status  Status // with err: temperror or permerror
	err     error
	inner   []Step // an include's path
}

func permErr(err error) matched { return matched{status: PermError, err: err} }
func tempErr(err error) matched { return matched{status: TempError, err: err} }

// target expands a mechanism's domain-spec, or returns the current domain
// when there is none (RFC 7208 §4.8).
func (e *evaluation) target(t Term, env *macroEnv) (string, error) {
	if t.Domain == "" {
		return env.domain, nil
	}
	return t.Domain.expand(env, domainLetters, false)
}

// match evaluates one mechanism (RFC 7208 §5).
func (e *evaluation) match(t Term, env *macroEnv, depth int) matched {
	switch t.Name {
	case MechAll:
		// RFC 7208 §5.1: all always matches.
		return matched{matched: true, detail: "all matches every address"}
	case MechIP4, MechIP6:
		// RFC 7208 §5.6: ip4 matches IPv4 clients only, ip6 IPv6 clients
		// only; an IPv4-mapped IPv6 address is an IPv4 client (RFC 7208
		// §5: the address was unmapped on entry).
		if t.Network.Addr().Is4() == e.ip.Is4() && t.Network.Masked().Contains(e.ip) {
			return matched{matched: true, detail: fmt.Sprintf("%s is in %s", e.ip, t.Network.Masked())}
		}
		return matched{}
	}
	target, err := e.target(t, env)
	if err != nil {
		return permErr(err)
	}
	switch t.Name {
	case MechInclude:
		return e.include(target, depth)
	case MechA:
		// RFC 7208 §5.3.
		return e.addressMatch(target, t, "")
	case MechMX:
		return e.mx(target, t)
	case MechPTR:
		return e.ptr(target)
	case MechExists:
		return e.exists(target)
	}
	return permErr(fmt.Errorf("%w: unknown mechanism %q", ErrSyntax, t.Name))
}

// include evaluates include (RFC 7208 §5.2).
func (e *evaluation) include(target string, depth int) matched {
	inner := e.checkHost(target, "include", depth+1)
	switch inner.status {
	case Pass:
		return matched{matched: true, detail: "the included record passes", inner: inner.path}
	case Fail, SoftFail, Neutral:
		// RFC 7208 §5.2: these do not match; the path below is dropped.
		return matched{}
	case TempError:
		return matched{status: TempError, err: inner.err, inner: inner.path}
	case None:
		if inner.void {
			if err := e.countVoid(); err != nil {
				return matched{status: PermError, err: err, inner: inner.path}
			}
		}
		// RFC 7208 §5.2: none at the included domain is permerror.
		return matched{status: PermError, err: &targetNoneError{kind: ErrIncludeNone, target: target, inner: inner.err}, inner: inner.path}
	}
	return matched{status: PermError, err: inner.err, inner: inner.path}
}

// lookupAddrs returns the addresses of name of the client's family
// (RFC 7208 §5.3: A for IPv4, AAAA for IPv6).
func (e *evaluation) lookupAddrs(qname string) ([]netip.Addr, bool, error) {
	qtype := dns.TypeA
	if !e.ip.Is4() {
		qtype = dns.TypeAAAA
	}
	res, err := resolve.Follow(e.ctx, e.c.Resolver, resolve.Q(qname, qtype))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrDNS, err)
	}
	var out []netip.Addr
	for _, rr := range res.Records {
		var ip []byte
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, len(res.Records) == 0, nil
}

// addressMatch is the a mechanism, and the per-exchange part of mx (RFC 7208
// §5.3, §5.4): does any address of target lie in the prefix around it?
func (e *evaluation) addressMatch(target string, t Term, exchangeOf string) matched {
	qname, ok := queryName(target)
	if !ok {
		// RFC 7208 §4.8, and the test suite's reading of §4.3: a name no
		// query can be made for does not exist, so it does not match.
		return matched{}
	}
	addrs, void, err := e.lookupAddrs(qname)
	if err != nil {
		return tempErr(err)
	}
	if void && exchangeOf == "" {
		if err := e.countVoid(); err != nil {
			return permErr(err)
		}
	}
	bits := t.CIDR4
	if !e.ip.Is4() {
		bits = t.CIDR6
	}
	if bits < 0 {
		bits = e.ip.BitLen()
	}
	for _, a := range addrs {
		if a.Is4() != e.ip.Is4() {
			continue
		}
		p, _ := a.Prefix(bits)
		if p.Contains(e.ip) {
			name := strings.TrimSuffix(qname, ".")
			if exchangeOf != "" {
				return matched{matched: true, detail: fmt.Sprintf("%s is an address of %s (MX of %s)", matchText(a, p), name, exchangeOf)}
			}
			return matched{matched: true, detail: fmt.Sprintf("%s is an address of %s", matchText(a, p), name)}
		}
	}
	return matched{}
}

func matchText(a netip.Addr, p netip.Prefix) string {
	if p.Bits() == a.BitLen() {
		return a.String()
	}
	return p.String()
}

// mx evaluates mx (RFC 7208 §5.4).
func (e *evaluation) mx(target string, t Term) matched {
	qname, ok := queryName(target)
	if !ok {
		return matched{}
	}
	res, err := resolve.Follow(e.ctx, e.c.Resolver, resolve.Q(qname, dns.TypeMX))
	if err != nil {
		return tempErr(fmt.Errorf("%w: %w", ErrDNS, err))
	}
	if len(res.Records) == 0 {
		// RFC 7208 §5.4: no MX records means no match; the domain is not
		// its own implicit MX here.
		return e.voidMatch()
	}
	if len(res.Records) > MaxMXNames {
		// RFC 7208 §4.6.4: more than 10 MX records is permerror.
		return permErr(fmt.Errorf("%w at %s (%d)", ErrTooManyMX, strings.TrimSuffix(qname, "."), len(res.Records)))
	}
	for _, rr := range res.Records {
		host := rr.(*dns.MX).Mx
		if host == "." || host == "" {
			continue // RFC 7505 null MX: no exchange to look up
		}
		m := e.addressMatch(host, t, strings.TrimSuffix(qname, "."))
		if m.err != nil || m.matched {
			return m
		}
	}
	return matched{}
}

// voidMatch counts a void lookup (RFC 7208 §4.6.4) for a term that
// matched nothing: no match, or permerror past the limit.
func (e *evaluation) voidMatch() matched {
	if err := e.countVoid(); err != nil {
		return permErr(err)
	}
	return matched{}
}

// exists evaluates exists (RFC 7208 §5.7): any A record matches, whatever
// the client's address family.
func (e *evaluation) exists(target string) matched {
	qname, ok := queryName(target)
	if !ok {
		return matched{}
	}
	res, err := resolve.Follow(e.ctx, e.c.Resolver, resolve.Q(qname, dns.TypeA))
	if err != nil {
		return tempErr(fmt.Errorf("%w: %w", ErrDNS, err))
	}
	if len(res.Records) == 0 {
		return e.voidMatch()
	}
	return matched{matched: true, detail: strings.TrimSuffix(qname, ".") + " has an A record"}
}

// ptr evaluates ptr (RFC 7208 §5.5): does a validated name of the client
// equal target or lie below it?
func (e *evaluation) ptr(target string) matched {
	names, void, err := e.ptrNames()
	if err != nil {
		// RFC 7208 §5.5: a DNS error on the PTR lookup makes the mechanism
		// not match.
		return matched{}
	}
	if void {
		return e.voidMatch()
	}
	t := strings.ToLower(strings.TrimSuffix(target, "."))
	for _, n := range names {
		ln := strings.ToLower(n)
		if (ln == t || strings.HasSuffix(ln, "."+t)) && e.isValidated(n) {
			return matched{matched: true, detail: fmt.Sprintf("%s is a validated name of %s", n, e.ip)}
		}
	}
	return matched{}
}

// ptrNames looks up the client's PTR names once per evaluation, keeping the
// first 10 (RFC 7208 §4.6.4).
func (e *evaluation) ptrNames() ([]string, bool, error) {
	if e.ptrDone {
		return e.ptrList, e.ptrVoid, e.ptrErr
	}
	e.ptrDone = true
	if !e.ip.IsValid() {
		e.ptrErr = errors.New("spf: no client address to look up")
		return nil, false, e.ptrErr
	}
	res, err := resolve.Follow(e.ctx, e.c.Resolver, resolve.Question{Name: rdns.ReverseName(e.ip), Type: dns.TypePTR})
	if err != nil {
		e.ptrErr = fmt.Errorf("%w: %w", ErrDNS, err)
		return nil, false, e.ptrErr
	}
	for _, rr := range res.Records {
		if len(e.ptrList) == MaxPTRNames {
			break // RFC 7208 §4.6.4: records after the first 10 are ignored
		}
		e.ptrList = append(e.ptrList, strings.TrimSuffix(rr.(*dns.PTR).Ptr, "."))
	}
	e.ptrVoid = len(res.Records) == 0
	return e.ptrList, e.ptrVoid, nil
}

// isValidated reports whether name has an address equal to the client's
// (RFC 7208 §5.5); a DNS error skips the name.
func (e *evaluation) isValidated(name string) bool {
	if v, ok := e.validated[name]; ok {
		return v
	}
	ok := false
	if qname, valid := queryName(name); valid {
		addrs, _, err := e.lookupAddrs(qname)
		if err == nil {
			for _, a := range addrs {
				if a == e.ip {
					ok = true
					break
				}
			}
		}
	}
	e.validated[name] = ok
	return ok
}

// ptrMacro is %{p} (RFC 7208 §7.3): a validated name of the client,
// preferring the current domain or one below it; "unknown" when none.
func (e *evaluation) ptrMacro(domain string) string {
	names, _, err := e.ptrNames()
	if err != nil {
		return "unknown"
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	first := ""
	for _, n := range names {
		if !e.isValidated(n) {
			continue
		}
		ln := strings.ToLower(n)
		if ln == domain || strings.HasSuffix(ln, "."+domain) {
			return n
		}
		if first == "" {
			first = n
		}
	}
	if first == "" {
		return "unknown"
	}
	return first
}

// explain looks up and expands an explanation (RFC 7208 §6.2). Any problem
// means no explanation, as if there were no exp= modifier.
func (e *evaluation) explain(p *pendingExp) string {
	env := e.env
	env.domain = p.domain
	target, err := p.spec.expand(&env, domainLetters, false)
	if err != nil {
		return ""
	}
	qname, ok := queryName(target)
	if !ok {
		return ""
	}
	res, err := resolve.Follow(e.ctx, e.c.Resolver, resolve.Q(qname, dns.TypeTXT))
	if err != nil || len(res.Records) != 1 {
		// RFC 7208 §6.2: a DNS error, no record or more than one record
		// means no explanation.
		return ""
	}
	text := resolve.TXTData(res.Records[0].(*dns.TXT))
	out, err := MacroString(text).expand(&env, allLetters, true)
	if err != nil {
		return ""
	}
	return out
}

// Package nameserver audits the authoritative nameservers of a mail
// domain's zone, the way a postmaster would with dig: it finds the zone cut
// that holds the domain's records (RFC 1034 §4.2, RFC 2181 §6), the zone's
// NS set and the servers' addresses, then asks every address of every
// server directly, without recursion (RFC 1034 §4.3.1), for the domain's MX
// set and the zone's SOA, and compares the answers. It also decides whether
// the zone is DNSSEC-signed and whether it validates (RFC 4033, RFC 4035).
//
// Two resolvers do the work. The recursive side (Lookup's resolver, normally
// a resolve.Cache over a stub.Stub) finds the zone cut, the NS set and
// the servers' addresses; a temporary failure there is an error returned to
// the caller, never a finding about the zone. The direct side
// (Options.Direct) asks one authoritative server at a time, over UDP with
// TCP fallback; what each server says, or fails to say, becomes the
// findings ns-inconsistent, ns-serial-mismatch, ns-unreachable and ns-lame.
// An optional second recursive resolver with the CD bit set
// (Options.CDResolver) tells a DNSSEC-bogus zone (dnssec-bogus) apart from
// a broken one; dnssec-unsigned comes from the DS lookup at the parent.
//
// docs/nameservers.md describes the questions, their order and how each
// finding is decided.
package nameserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// Bounds on the work one audit may cause. A zone's NS set and a server's
// addresses come from the zone's owner, who may be hostile: every list is
// capped and anything cut is reported in the Result.
const (
	DefaultMaxServers   = 16 // NS names asked, after sorting
	DefaultMaxAddresses = 4  // addresses asked per NS name
	// DefaultPort is where authoritative servers listen (RFC 1035 §4.2).
	DefaultPort = 53
	// maxWalk bounds how many labels the zone-cut search walks up when the
	// resolver's answers carry no SOA.
	maxWalk = 32
	// maxNotes bounds Result.Notes, which may carry one line per server.
	maxNotes = 64
)

// Errors returned (wrapped) by Lookup.
var (
	// ErrNoZoneCut is returned when no SOA record was found at or above
	// the domain: the resolver's answers do not say which zone holds it.
	ErrNoZoneCut = errors.New("nameserver: no zone cut found (no SOA at or above the name)")
	// ErrNoAddresses is returned when the address lookups of every NS name
	// failed temporarily, so no server could be asked.
	ErrNoAddresses = errors.New("nameserver: the address lookups of every nameserver failed")
)

// Options configure Lookup; the zero value asks every server directly
// over UDP with TCP fallback on port 53, with the default bounds.
type Options struct {
	// CDResolver is the same recursive resolver asked with the CD bit set
	// (stub.Config{CheckingDisabled: true}). When Resolver answers
	// SERVFAIL and CDResolver answers, the zone is DNSSEC-bogus. nil: a
	// SERVFAIL is a temporary failure and bogus zones go undetected.
	CDResolver resolve.Resolver
	// Direct asks one authoritative server directly; nil means
	// StubDirect{} (UDP with EDNS0 and TCP fallback, RD=0).
	Direct Direct
	// Port is the port the servers are asked on; 0 means DefaultPort.
	Port uint16
	// MaxServers and MaxAddresses default to DefaultMaxServers and
	// DefaultMaxAddresses when zero.
	MaxServers, MaxAddresses int
	// IPv4 and IPv6 select the address families asked; both false means
	// both. Set one of them on a host without the other family, or every
	// server's other addresses are reported unreachable.
	IPv4, IPv6 bool
	// Policy, when set, is checked on every server address before it is
	// asked: an address it refuses is not asked (no packet is sent to it)
	// and is kept with the status not-allowed, which is the finding
	// ns-target-refused. serve passes its dialer's policy, which refuses
	// non-public addresses, since an NS record, like an MX record, is a
	// pointer any domain owner controls (docs/security.md#what-serve-refuses).
	// The address is asked as it is, with no name resolution between the
	// check and the socket, so checking it here is as sure as in
	// net.Dialer.Control. Nil: every address is asked.
	Policy *dial.Policy
	// Logger receives one debug line per audit; nil is silent.
	Logger *slog.Logger
}

// Result is the outcome of one audit.
type Result struct {
	Domain string `json:"domain"` // as asked
	// Name is the canonical name whose MX set was asked: Domain, or the
	// end of its alias chain.
	Name       string   `json:"name"`
	AliasChain []string `json:"alias_chain"`
	// NXDomain: the recursive resolver says Name does not exist. The
	// servers of the zone that would hold it are audited all the same.
	NXDomain bool `json:"nxdomain"`
	// Apex is the zone cut: the owner of the SOA of the zone holding Name.
	Apex string `json:"apex"`
	// Servers are the NS names of the apex, sorted, at most MaxServers.
	Servers []Server `json:"servers"`
	// ServersOmitted counts the NS names beyond MaxServers, not asked.
	ServersOmitted int    `json:"servers_omitted,omitempty"`
	DNSSEC         DNSSEC `json:"dnssec"`
	// Notes are facts worth telling that are not findings: cuts, lookups
	// that failed temporarily, resolvers that do not validate.
	Notes []string `json:"notes"`

	port   uint16 // the servers' port, for the findings' subjects
	judged bool   // the audit ran to the end, so Findings may judge it
	// findings is the judgement, made once when Lookup ends: a check
	// judges the area and then writes the Result with its findings, and
	// judging it twice was 8 % of a check scan's allocations (65 of 777
	// MB per 20,000 domains, --memprofile).
	findings []finding.Finding
}

// MarshalJSON adds the findings (Findings) after the facts.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		*plain
		Findings []finding.Finding `json:"findings"`
	}{(*plain)(r), Findings(r)})
}

// Findings judges a Lookup result: ns-unreachable and ns-lame per server,
// ns-inconsistent (the MX sets differ), ns-serial-mismatch, dnssec-bogus
// and dnssec-unsigned, sorted. A Result whose Lookup failed gives none: the
// error is what to report, not a partial picture. The judgement is of the
// Result as Lookup returned it, and the slice the caller's own.
func Findings(res *Result) []finding.Finding {
	if res == nil || !res.judged {
		return []finding.Finding{}
	}
	return slices.Clone(res.findings)
}

// judge works out the findings of a Result whose audit ran to the end.
func judge(res *Result) []finding.Finding {
	fs := []finding.Finding{}
	fs = append(fs, serverFindings(res)...)
	fs = append(fs, compareMX(res)...)
	fs = append(fs, compareSerials(res)...)
	fs = append(fs, dnssecFindings(res)...)
	finding.Sort(fs)
	return fs
}

// Server is one NS name and what its addresses answered.
type Server struct {
	Name      string    `json:"name"`
	Addresses []Address `json:"addresses"`
	// AddressesOmitted counts addresses beyond MaxAddresses, not asked.
	AddressesOmitted int `json:"addresses_omitted,omitempty"`
	// Problem says why the server has no address asked, or what went
	// wrong resolving it; empty when all is well.
	Problem string `json:"problem,omitempty"`

	// unresolved says how the name resolved to no address at all
	// ("does not exist (NXDOMAIN)"), which is a finding; empty otherwise.
	unresolved string
}

// Address is one address of a server and its replies to the two questions.
type Address struct {
	Address netip.Addr `json:"address"`
	MX      Reply      `json:"mx"`  // Result.Name MX
	SOA     Reply      `json:"soa"` // Result.Apex SOA
}

// Status classifies one server's reply to one question.
type Status string

// Statuses.
const (
	// StatusOK: an authoritative answer (AA set): records, NODATA or
	// NXDOMAIN.
	StatusOK Status = "ok"
	// StatusReferral: a referral to a zone cut below the apex (RFC 1034
	// §4.3.2 step 3b). The server sees a delegation the recursive view
	// did not; it is compared like an answer, not counted as lame.
	StatusReferral Status = "referral"
	// StatusUnreachable: no reply (time-out, connection refused).
	StatusUnreachable Status = "unreachable"
	// StatusLame: a reply that is not an authoritative answer for the
	// zone: REFUSED, SERVFAIL or another error rcode, no AA bit, a
	// referral to the apex or above, a negative answer from another zone,
	// or a malformed reply (RFC 1912 §2.8, RFC 8499 §7 "lame delegation").
	StatusLame Status = "lame"
	// StatusNotAllowed: the address was not asked, because Options.Policy
	// refuses it (not public); Reason says what it is.
	StatusNotAllowed Status = "not-allowed"
)

// Reply is one server's reply to one question.
type Reply struct {
	Status Status `json:"status"`
	Rcode  string `json:"rcode,omitempty"` // NOERROR, NXDOMAIN, REFUSED, …; empty without a reply
	// Records are the answer's data in presentation form, sorted: for the
	// MX question "MX 10 mx1.example.com" (or "CNAME target" where a
	// server aliases the name); for a referral "NS ns.child.example.com".
	Records []string `json:"records,omitempty"`
	// Serial is the SOA serial (SOA question, status ok).
	Serial *uint32 `json:"serial,omitempty"`
	// Reason says what was wrong, for statuses other than ok.
	Reason string `json:"reason,omitempty"`
	// Referral is the delegated name of a referral.
	Referral string `json:"referral,omitempty"`
}

// FirstQuestions are the questions Lookup asks the recursive resolver
// before any other, both at once: the NS set of domain (most mail domains
// are zone apexes) and its SOA, the first step of the search for the zone
// cut (RFC 2181 §6).
func FirstQuestions(domain dnsname.Name) [2]resolve.Question {
	fqdn := domain.FQDN()
	return [2]resolve.Question{resolve.Q(fqdn, dns.TypeNS), resolve.Q(fqdn, dns.TypeSOA)}
}

// Lookup audits the nameservers of domain through r, a recursive
// resolver: it finds the zone cut, the NS set, the servers' addresses and
// the DS record at the parent (for the DNSSEC verdicts it should validate
// and report the AD bit); the servers themselves are asked through
// Options.Direct. It always returns a Result; on error the Result holds
// what was learnt before the failure, and the error says which recursive
// lookup failed (temporarily: nothing is claimed about the zone then).
// Errors wrap the *resolve.Error of the failed lookup.
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (rep *Result, err error) {
	start := time.Now()
	rep = &Result{
		Domain:     domain.String(),
		Name:       domain.String(),
		AliasChain: []string{},
		Servers:    []Server{},
		Notes:      []string{},
		port:       cmp.Or(opts.Port, DefaultPort),
	}
	a := &opts
	au := &audit{Options: a, resolver: r, rep: rep}
	defer func() {
		// Notes come from concurrent lookups: sorted so that output is
		// deterministic.
		slices.Sort(rep.Notes)
		// Judged last, when the deferred DNSSEC state is in too.
		if rep.judged {
			rep.findings = judge(rep)
		}
		if a.Logger != nil && a.Logger.Enabled(ctx, slog.LevelDebug) {
			a.Logger.Debug("nameserver audit", "domain", domain, "apex", rep.Apex, "servers", len(rep.Servers),
				"dnssec", rep.DNSSEC.State, "findings", len(Findings(rep)), "elapsed", time.Since(start), "error", err)
		}
	}()

	// The NS set of the name asked is fetched while the zone cut is
	// searched: most mail domains are zone apexes, which saves a round
	// trip. Its lookup (and the one with CD after a SERVFAIL, noted)
	// always ends before Lookup returns.
	specQ := FirstQuestions(domain)[0]
	spec := resolve.Ask(ctx, au.resolver, []resolve.Question{specQ}, 0)
	specUsed := false
	defer func() {
		if !specUsed {
			r := spec.Wait()[0]
			au.recursiveFrom(ctx, specQ, r.Answer, r.Err)
		}
	}()

	c, err := au.zoneCut(ctx, domain.FQDN())
	rep.Name = display(c.name)
	for _, n := range c.chain {
		rep.AliasChain = append(rep.AliasChain, display(n))
	}
	rep.NXDomain = c.nx
	if err != nil {
		return rep, err
	}
	rep.Apex = display(c.apex)

	// The DNSSEC state needs only the apex and the name: its questions
	// are asked while the servers are, and it is decided after them, or
	// on the way out when the servers cannot be asked.
	dnssecQs := dnssecQuestions(c.apex, c.name)
	dnssec := resolve.Ask(ctx, au.resolver, dnssecQs, 0)
	defer func() { rep.DNSSEC = au.dnssecFrom(ctx, c.apex, dnssecQs, dnssec.Wait()) }()

	var ns nsSet
	if c.apex == dns.CanonicalName(domain.FQDN()) {
		r := spec.Wait()[0]
		specUsed = true
		ns = au.nsSetFrom(specQ, au.recursiveFrom(ctx, specQ, r.Answer, r.Err))
	} else {
		ns = au.nsSet(ctx, c.apex)
	}
	if ns.err != nil {
		return rep, fmt.Errorf("nameserver: NS set of %s: %w", display(c.apex), ns.err)
	}
	if len(ns.names) == 0 {
		au.note("%s has no NS records: there is no server to ask.", display(c.apex))
	}
	names := ns.names
	if maxN := cmp.Or(a.MaxServers, DefaultMaxServers); len(names) > maxN {
		rep.ServersOmitted = len(names) - maxN
		au.note("%s has %d NS names; only the first %d (sorted) were asked.", display(c.apex), len(names), maxN)
		names = names[:maxN]
	}

	// Every server at once: the addresses of all in one batch, then each
	// address both questions, all at once.
	rep.Servers = make([]Server, len(names))
	failed := au.servers(ctx, names, c.apex, c.name, rep.Servers)
	if err := expired(ctx); err != nil {
		// Silence after the caller gave up says nothing about the servers.
		return rep, fmt.Errorf("nameserver: audit of %s cut short: %w", domain, err)
	}
	var failures []error
	for _, e := range failed {
		if e != nil {
			failures = append(failures, e)
		}
	}
	if len(names) > 0 && len(failures) == len(names) {
		return rep, fmt.Errorf("%w: %w", ErrNoAddresses, errors.Join(failures...))
	}

	rep.judged = true
	return rep, nil
}

// audit is the state of one Lookup call.
type audit struct {
	*Options
	resolver resolve.Resolver
	rep      *Result

	mu sync.Mutex // guards rep.Notes
}

// note adds a line to the report's notes (bounded).
func (au *audit) note(format string, args ...any) {
	au.mu.Lock()
	defer au.mu.Unlock()
	if len(au.rep.Notes) < maxNotes {
		au.rep.Notes = append(au.rep.Notes, fmt.Sprintf(format, args...))
	}
}

// lookup asks the recursive resolver. When it answers SERVFAIL and a CD
// resolver is configured, the question is asked again with the CD bit
// (RFC 4035 §3.2.2); if that answers, cdOnly is set: the data exists but
// does not validate.
func (au *audit) lookup(ctx context.Context, q resolve.Question) (a *resolve.Answer, cdOnly bool, err error) {
	a, err = au.resolver.Lookup(ctx, q)
	return au.fallback(ctx, q, a, err)
}

// fallback is lookup given the recursive resolver's answer to q.
func (au *audit) fallback(ctx context.Context, q resolve.Question, a *resolve.Answer, err error) (*resolve.Answer, bool, error) {
	if err == nil || au.CDResolver == nil || !errors.Is(err, resolve.ErrServerFailure) {
		return a, false, err
	}
	cd, cdErr := au.CDResolver.Lookup(ctx, q)
	if cdErr != nil {
		// Broken with and without validation: a real server failure.
		return nil, false, err
	}
	return cd, true, nil
}

// recursiveFrom is recursive's lookup given the recursive resolver's
// answer to q.
func (au *audit) recursiveFrom(ctx context.Context, q resolve.Question, a *resolve.Answer, err error) looked {
	a, cdOnly, err := au.fallback(ctx, q, a, err)
	if cdOnly {
		au.note("%s fails DNSSEC validation (answered only with checking disabled).", q)
	}
	return looked{a: a, cdOnly: cdOnly, err: err}
}

// recursive is the Resolver view of lookup, for resolve.Follow; answers
// obtained only with CD are noted.
type recursive struct{ au *audit }

func (r recursive) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	a, err := r.au.resolver.Lookup(ctx, q)
	l := r.au.recursiveFrom(ctx, q, a, err)
	return l.a, l.err
}

// nsSet is the NS set of a name, or why it could not be had.
type nsSet struct {
	names []string // sorted, de-duplicated, absolute
	err   error
}

// nsSet asks the recursive resolver for the NS records owned by name.
func (au *audit) nsSet(ctx context.Context, name string) nsSet {
	q := resolve.Q(name, dns.TypeNS)
	a, err := au.resolver.Lookup(ctx, q)
	return au.nsSetFrom(q, au.recursiveFrom(ctx, q, a, err))
}

// nsSetFrom is the NS set of q.Name from recursive's answer to q.
func (au *audit) nsSetFrom(q resolve.Question, l looked) nsSet {
	if l.err != nil {
		return nsSet{err: l.err}
	}
	var out []string
	for _, rr := range l.a.Answer {
		if ns, ok := rr.(*dns.NS); ok && resolve.EqualNames(ns.Hdr.Name, q.Name) {
			out = append(out, dns.CanonicalName(ns.Ns))
		}
	}
	slices.Sort(out)
	return nsSet{names: slices.Compact(out)}
}

// distinctAddrs returns the addresses of rrs once each, in the order
// served, with a set, so that the thousands a hostile server can send cost
// time in proportion (docs/security.md, "Hostile answers become findings
// or errors"). An audit asks this once per NS name and family, beside a
// round trip: the set is not worth avoiding for the few of a normal name.
func distinctAddrs(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	seen := make(map[netip.Addr]bool, len(rrs))
	for _, rr := range rrs {
		if ip, ok := resolve.AddrOf(rr); ok && !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	return out
}

// servers resolves every NS name of names, in one batch, and asks each of
// their addresses both questions, all at once, each question once per
// address however many NS names share the address (vanity names for one
// anycast service, or ns1 and ns2 on one host: the names that share it get
// the same reply, which is what the server would have said). It fills out,
// one Server per name, and returns per name the error of an address lookup
// that failed temporarily when nothing was asked.
func (au *audit) servers(ctx context.Context, names []string, apex, qname string, out []Server) []error {
	failed := make([]error, len(names))
	v4, v6 := au.IPv4 || !au.IPv6, au.IPv6 || !au.IPv4
	qs := make([]resolve.Question, 0, 2*len(names))
	for _, n := range names {
		if v4 {
			qs = append(qs, resolve.Q(n, dns.TypeA))
		}
		if v6 {
			qs = append(qs, resolve.Q(n, dns.TypeAAAA))
		}
	}
	found := au.followAll(ctx, qs)

	// target is where the reply of calls[call] goes: the MX or the SOA
	// reply of address addr of out[server].
	type target struct {
		server, addr, call int
		mx                 bool
	}
	var targets []target
	var calls []directCall
	port := cmp.Or(au.Port, DefaultPort)
	for i, n := range names {
		var res [2]*resolve.Result
		var errs [2]error
		for f, on := range [2]bool{v4, v6} {
			if on {
				res[f], errs[f] = found[0].Result, found[0].Err
				found = found[1:]
			}
		}
		var addrs []netip.Addr
		var ask bool
		out[i], addrs, ask, failed[i] = au.server(n, v4, v6, res, errs)
		if !ask {
			continue
		}
		s := &out[i]
		s.Addresses = make([]Address, len(addrs))
		for j, ip := range addrs {
			s.Addresses[j].Address = ip
			if err := au.Policy.Check(ip); err != nil {
				// Not asked: the policy refuses the address.
				r := Reply{Status: StatusNotAllowed, Reason: notAllowed(err)}
				s.Addresses[j].MX, s.Addresses[j].SOA = r, r
				continue
			}
			server := netip.AddrPortFrom(ip, port)
			var c int
			calls, c = callFor(calls, server, resolve.Q(qname, dns.TypeMX))
			targets = append(targets, target{server: i, addr: j, call: c, mx: true})
			calls, c = callFor(calls, server, resolve.Q(apex, dns.TypeSOA))
			targets = append(targets, target{server: i, addr: j, call: c})
		}
	}
	au.askAll(ctx, calls)
	for _, t := range targets {
		c, a := &calls[t.call], &out[t.server].Addresses[t.addr]
		if t.mx {
			a.MX = classify(c.a, c.err, apex, qname, dns.TypeMX)
		} else {
			a.SOA = classify(c.a, c.err, apex, apex, dns.TypeSOA)
		}
	}
	return failed
}

// callFor returns calls with the call of q to server, added when it is
// not there yet, and its index.
func callFor(calls []directCall, server netip.AddrPort, q resolve.Question) ([]directCall, int) {
	for i, c := range calls {
		if c.server == server && c.q == q {
			return calls, i
		}
	}
	return append(calls, directCall{server: server, q: q}), len(calls)
}

// server makes the Server of one NS name from its A and AAAA lookups
// (res and errs, by family; those of a family not asked are zero): the
// addresses to ask, and ask set when they are to be asked. The error is
// set when an address lookup failed temporarily and nothing is asked.
func (au *audit) server(name string, v4, v6 bool, res [2]*resolve.Result, errs [2]error) (s Server, addrs []netip.Addr, ask bool, err error) {
	s = Server{Name: display(name), Addresses: []Address{}}
	var fams [2][]netip.Addr
	var problems []string
	nx := false
	for i, r := range res {
		if errs[i] != nil {
			problems = append(problems, fmt.Sprintf("the %s lookup failed: %v", [2]string{"A", "AAAA"}[i], errs[i]))
			continue
		}
		if r == nil {
			continue
		}
		nx = nx || r.NXDomain
		fams[i] = distinctAddrs(r.Records)
	}
	// Interleave the families so that a cut keeps both.
	for j := range max(len(fams[0]), len(fams[1])) {
		for _, f := range fams {
			if j < len(f) {
				addrs = append(addrs, f[j])
			}
		}
	}
	total := len(addrs)
	if maxA := cmp.Or(au.MaxAddresses, DefaultMaxAddresses); len(addrs) > maxA {
		problems = append(problems, fmt.Sprintf("%d addresses; only the first %d were asked", len(addrs), maxA))
		addrs = addrs[:maxA]
	}
	s.AddressesOmitted = total - len(addrs)

	if total == 0 && len(problems) == 0 {
		// The name resolved, to nothing: nobody can reach this server.
		switch {
		case nx:
			s.unresolved = "does not exist (NXDOMAIN)"
		case v4 && v6:
			s.unresolved = "has no address"
		default:
			// Only one family was asked: the other may exist, so this
			// is no finding.
			family := "IPv6"
			if v4 {
				family = "IPv4"
			}
			s.Problem = fmt.Sprintf("%s has no %s address (the other family was not asked)", s.Name, family)
			au.note("%s.", s.Problem)
			return s, nil, false, nil
		}
		s.Problem = s.Name + " " + s.unresolved
		return s, nil, false, nil
	}
	s.Problem = strings.Join(problems, "; ")
	if total == 0 && (errs[0] != nil || errs[1] != nil) {
		// A temporary failure says nothing about the server: it is not
		// asked, and not reported unreachable.
		au.note("%s: %s; it was not asked.", s.Name, s.Problem)
		return s, nil, false, fmt.Errorf("%s: %w", s.Name, errors.Join(errs[0], errs[1]))
	}
	if s.Problem != "" {
		au.note("%s: %s.", s.Name, s.Problem)
	}
	return s, addrs, true, nil
}

// notAllowed says why the policy refused an address: "127.0.0.1 is not a
// public address (loopback, RFC 1122)".
func notAllowed(err error) string {
	if fe, ok := errors.AsType[*dial.ForbiddenError](err); ok {
		return fe.Reason()
	}
	return err.Error()
}

// expired is ctx.Err(), or context.DeadlineExceeded once the deadline has
// passed: a socket deadline set to the context's fires at the same moment,
// possibly before the context's own timer, and a time-out then is the
// caller's, not the server's.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// display is a name as reports show it: without the final dot, except for
// the root.
func display(name string) string {
	if name == "." || name == "" {
		return name
	}
	return strings.TrimSuffix(name, ".")
}

// Package send delivers one test message to a mail domain exactly as an
// SMTP sender does (RFC 5321 §5.1): along the domain's delivery plan, tier
// by tier, hosts shuffled inside a tier, every address of a host in turn.
// A refused connection or a 4xx reply moves on to the next address; a 5xx
// reply to MAIL, RCPT or DATA stops delivery as a permanent failure (RFC
// 5321 §4.2.1, §4.5.4.1). Every attempt is recorded: the step it reached,
// the reply, the TLS session, and the transcript.
//
// TLS follows what a careful MTA does: STARTTLS (RFC 3207) whenever the
// server offers it, falling back to clear text after a failed handshake
// only when no requirement applies (opportunistic TLS, RFC 7435); DANE
// (RFC 7672) when an exchange has DNSSEC-validated TLSA records; MTA-STS
// (RFC 8461) when the domain publishes a policy; and --require-tls, which
// asks every exchange for a certificate valid for its name. Retry handles
// greylisting: after a round in which every exchange deferred, the sender
// waits with exponential backoff and tries the whole route again.
//
// Deliver is the relay's entry point: raw message bytes from any reverse
// path (the null sender too) to several recipients of one domain in one
// transaction, each with its own outcome (RFC 5321 §3.3).
//
// The SMTP dialogue runs on github.com/emersion/go-smtp's client over a
// connection the sender dials itself, with a deadline on every step and a
// cap on what the server may send.
package send

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// DefaultTimeouts are the time-outs of the Sender's zero Timeouts fields:
// those RFC 5321 §4.5.3.2 asks of a sender, with no Session bound.
func DefaultTimeouts() dial.SMTPTimeouts { return dial.RFC5321Timeouts() }

// Sender delivers messages. Planner is required; every other field is
// optional. A Sender is safe for concurrent use when its Observer is.
type Sender struct {
	// Planner computes the delivery plan: tiers in order, hosts shuffled
	// inside each (its Seed makes that reproducible), addresses resolved.
	Planner *route.Planner
	// Resolver answers the MTA-STS, DANE and MX-security lookups. Nil:
	// the Planner's.
	Resolver resolve.Resolver
	// Port is the exchanges' SMTP port; 0 means dial.SMTPPort. TLSA records are
	// looked up at _25._tcp whatever the port (RFC 7672 §2.2.3).
	Port int
	// HelloName is the name given in EHLO. Empty: the host name when it
	// is a domain name (it has a dot), else the address literal of the
	// local end of each connection (RFC 5321 §4.1.1.1, §4.1.4).
	HelloName string
	// RootCAs verify certificates under the rules that require it. Nil:
	// the system's roots.
	RootCAs *x509.CertPool
	// Dialer opens connections. Nil: a *dial.Net with no address policy.
	Dialer dial.Dialer
	// RequireTLS asks every exchange for STARTTLS and a certificate valid
	// for its name (RuleRequireTLS), unless DANE applies.
	RequireTLS bool
	// MTASTS configures the lookup and fetch of the domain's MTA-STS
	// policy (through Resolver). Nil: MTA-STS is not consulted.
	MTASTS *mtasts.Options
	// DANE configures the TLSA lookups (through Resolver). Nil: DANE is
	// not consulted.
	DANE *dane.Options
	// Timeouts bound each attempt (Session: one SMTP session, from the
	// connection to the end of the message data) and each stage inside
	// it. The reply to the final dot waits DataTerm even past the Session
	// bound: giving up there can deliver the message twice (RFC 5321
	// §4.5.3.2.6, §6.1). Zero fields take DefaultTimeouts.
	Timeouts dial.SMTPTimeouts
	// MaxAddresses is the most addresses tried in one round; 0 means
	// DefaultMaxAddresses. RFC 5321 §5.1 allows such a limit and asks
	// for at least two.
	MaxAddresses int
	// Retry, when set, repeats the route after a round in which every
	// exchange deferred. Nil: one round.
	Retry *Retry
	// Transcript keeps each attempt's SMTP dialogue in the Result (the
	// Observer sees it line by line either way).
	Transcript bool
	Logger     *slog.Logger // nil: no logging
	// Observer, when set, is called as delivery proceeds, from the
	// goroutine running Send.
	Observer func(Event)
	// Sleep waits between rounds. Nil: a timer that ctx interrupts.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand draws the retry jitter. Nil: the process's random source.
	Rand *rand.Rand
	// Now is the clock for the retry budget and elapsed times. Nil:
	// time.Now. A test that stubs Sleep advances it there.
	Now func() time.Time
}

// DefaultMaxAddresses is the most addresses a round tries unless
// Sender.MaxAddresses says otherwise: as many as one exchange may have
// (route.DefaultMaxAddresses), and far below the 1,024 of 64 exchanges with 16
// addresses each, which at a 10 s connect time-out each kept a round
// going for three hours. Postfix tries 5 (smtp_mx_address_limit), Exim 5
// (hosts_max_try).
const DefaultMaxAddresses = 16

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventPlan    EventKind = "plan"    // a round starts with this plan (Plan)
	EventMTASTS  EventKind = "mta-sts" // the MTA-STS state is known (MTASTS)
	EventConnect EventKind = "connect" // connecting to Host at Address
	EventLine    EventKind = "line"    // a transcript line (Line) of the current attempt
	EventAttempt EventKind = "attempt" // an attempt ended (Attempt)
	EventWait    EventKind = "wait"    // waiting Wait before round Round+1 (Schedule: the waits planned from here)
)

// Event is one step of Send, for live output.
type Event struct {
	Kind     EventKind
	Round    int
	Plan     *route.Plan
	MTASTS   *MTASTSState
	Host     string
	Address  string
	Line     string
	Attempt  *Attempt
	Wait     time.Duration
	Schedule []time.Duration
}

// Send delivers m to m.To along the route of its domain (the part after
// the last @), from m.From, filling m's Date and MessageID in the copy it
// sends when they are empty. It always returns a Result; the error is nil
// exactly when the message was accepted. Otherwise it wraps ErrPermanent,
// ErrNoRoute, ErrTemporary, ErrPolicy or ErrDNS (KindOf names it),
// ErrMessage for a message that cannot be built, or ctx's error.
func (s *Sender) Send(ctx context.Context, m *Message) (res *Result, err error) {
	start := s.now()
	res = &Result{Schema: SchemaVersion, From: m.From, To: m.To, Attempts: []Attempt{}}
	defer func() { s.finish(res, start, err) }()

	domain, err := dnsname.Parse(m.To)
	if err != nil {
		return res, fmt.Errorf("%w: recipient %q: %w", ErrMessage, m.To, err)
	}
	res.Domain = domain.String()
	msg := *m
	if msg.Date.IsZero() {
		msg.Date = start
	}
	if msg.MessageID == "" {
		msg.MessageID = NewMessageID(cmp.Or(domainOf(m.From), s.HelloName))
	}
	res.MessageID = strings.TrimSuffix(strings.TrimPrefix(msg.MessageID, "<"), ">")
	data, err := msg.Bytes()
	if err != nil {
		return res, err
	}
	return res, s.run(ctx, start, domain, newEnvelope(msg.From, []string{msg.To}), data, res)
}

// retryable reports the errors after which a queueing sender tries again.
func retryable(err error) bool {
	return errors.Is(err, ErrTemporary) || errors.Is(err, ErrPolicy)
}

// round tries the whole route once.
func (s *Sender) round(ctx context.Context, round int, domain dnsname.Name, sts *stsPolicy, res *Result, env *envelope, data []byte) error {
	plan, err := s.Planner.Plan(ctx, domain)
	res.Route = plan
	s.emit(Event{Kind: EventPlan, Round: round, Plan: plan})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// RFC 5321 §5.1: a temporary failure queues the message; here the
		// job could not be done.
		return fmt.Errorf("%w: %w", ErrDNS, err)
	}
	switch plan.Result {
	case route.ResultNXDomain:
		// RFC 5321 §5.1: a non-existent domain "MUST be reported as an error".
		return fmt.Errorf("%w: %w: %s does not exist (NXDOMAIN)", ErrPermanent, ErrNoRoute, domain)
	case route.ResultNullMX:
		// RFC 7505 §3: a sender must not attempt delivery to a Null MX domain.
		return fmt.Errorf("%w: %w: %s publishes a Null MX: it accepts no mail", ErrPermanent, ErrNoRoute, domain)
	case route.ResultNoMail:
		return fmt.Errorf("%w: %w: %s has no MX and no address", ErrPermanent, ErrNoRoute, domain)
	}

	hosts := map[string]hostEntry{}
	for _, t := range plan.Tiers {
		for _, h := range t.Hosts {
			hosts[h.Name] = hostEntry{pref: t.Preference, host: h}
		}
	}
	danes := s.daneLookups(ctx, domain, plan)

	var tried, temporary, policy bool
	var reasons []string
	record := func(a *Attempt) {
		a.Round = round
		if a.Err != nil {
			a.Error = a.Err.Error()
		}
		res.Attempts = append(res.Attempts, *a)
		s.emit(Event{Kind: EventAttempt, Round: round, Host: a.Host, Address: a.Address, Attempt: a})
		if s.Logger != nil {
			s.Logger.Debug("send attempt", "host", a.Host, "address", a.Address, "stage", a.Stage, "outcome", a.Outcome, "code", a.Code, "err", a.Err)
		}
		switch a.Outcome {
		case OutcomeDeferred:
			temporary = true
		case OutcomePolicy:
			policy = true
		}
		if a.Outcome != OutcomeAccepted {
			reasons = append(reasons, a.Host+reasonAddr(a.Address)+": "+a.Error)
		}
	}

	// RFC 5321 §5.1: the plan's order: tiers by preference, hosts
	// shuffled inside a tier; every address of a host in the order served,
	// up to the limit of a round.
	limit := cmp.Or(s.MaxAddresses, DefaultMaxAddresses)
	addresses := 0
route:
	for _, name := range plan.Order {
		e, ok := hosts[name]
		if !ok {
			continue
		}
		hp := s.hostPolicy(ctx, e, sts, danes[name])
		if hp.skip != nil {
			hp.skip.Host, hp.skip.Preference, hp.skip.Rule = name, e.pref, hp.rule
			record(hp.skip)
			continue
		}
		if len(e.host.Addresses) == 0 {
			a := &Attempt{Host: name, Preference: e.pref, Rule: hp.rule, Stage: StageDNS, Outcome: OutcomeSkipped,
				Err: fmt.Errorf("%s has no address (%s)", name, problems(e.host))}
			if slices.Contains(e.host.Problems, finding.MXLookupFailed) {
				// A temporary failure: a later round may resolve it.
				a.Outcome = OutcomeDeferred
			}
			record(a)
			continue
		}
		for _, addr := range e.host.Addresses {
			if err := ctx.Err(); err != nil {
				return err
			}
			if addresses == limit {
				reasons = append(reasons, fmt.Sprintf("no more addresses tried after %d (the limit of a round, RFC 5321 §5.1)", limit))
				break route
			}
			addresses++
			tried = true
			a := s.attempt(ctx, e, addr, hp, env, data, false)
			record(a)
			env.settle(a)
			if a.Outcome == OutcomeDeferred && a.Stage == StageTLS && !hp.rule.Required() {
				// RFC 7435 §1.3: opportunistic TLS falls back to clear text
				// when the handshake fails; Postfix's "may" level reconnects.
				a = s.attempt(ctx, e, addr, hp, env, data, true)
				record(a)
				env.settle(a)
			}
			if a.Outcome == OutcomeAccepted {
				res.Accepted = true
				res.Host, res.Address, res.Preference = name, addr, e.pref
				res.Reply = a.Reply
				res.QueueID = cmp.Or(QueueID(a.Reply), a.Reply)
				res.TLS = a.TLS
			}
			// RFC 5321 §4.2.1, §4.5.4.1: a recipient refused with a 5xx
			// reply is not tried at other exchanges; one deferred is.
			if len(env.pending()) == 0 {
				return env.err()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	why := strings.Join(reasons, "; ")
	switch {
	case policy:
		return fmt.Errorf("%w: %s", ErrPolicy, why)
	case !tried && !temporary:
		// RFC 5321 §5.1: MX records present, none usable: an error.
		return fmt.Errorf("%w: %w: no exchange of %s has an address: %s", ErrPermanent, ErrNoRoute, domain, why)
	}
	return fmt.Errorf("%w: %s", ErrTemporary, why)
}

// stageCommand names the command a reply at a stage answered.
func stageCommand(s Stage) string {
	if s == StageMessage {
		return "the message data"
	}
	return strings.ToUpper(string(s))
}

func reasonAddr(a string) string {
	if a == "" {
		return ""
	}
	return " [" + a + "]"
}

func problems(h route.Host) string {
	if len(h.Problems) == 0 {
		return "no A or AAAA record"
	}
	ps := make([]string, len(h.Problems))
	for i, p := range h.Problems {
		ps[i] = string(p)
	}
	return strings.Join(ps, ", ")
}

type hostEntry struct {
	pref uint16
	host route.Host
}

// stsPolicy is the MTA-STS policy in force, if any.
type stsPolicy struct {
	state  *MTASTSState
	policy *mtasts.Policy // nil: none in force
}

// mtaSTS finds the domain's MTA-STS policy. RFC 8461 §3.3 and §5: a policy
// is fetched when the TXT record announces one; when it cannot be fetched
// (and none is cached, which mxtrace never has), the sender delivers as if
// the domain had none, and so does a failed TXT lookup here.
func (s *Sender) mtaSTS(ctx context.Context, domain dnsname.Name) *stsPolicy {
	if s.MTASTS == nil {
		return nil
	}
	r, err := mtasts.Lookup(ctx, s.resolver(), domain, *s.MTASTS)
	switch {
	case err != nil:
		return &stsPolicy{state: &MTASTSState{Error: "the _mta-sts record could not be looked up: " + err.Error()}}
	case len(r.TXT) == 0:
		return nil
	case r.TXTErr != nil:
		// RFC 8461 §3.1: an unusable record means no policy.
		return &stsPolicy{state: &MTASTSState{Error: r.TXTErr.Error()}}
	case r.FetchErr != nil:
		return &stsPolicy{state: &MTASTSState{Error: r.FetchErr.Error()}}
	case r.PolicyErr != nil:
		return &stsPolicy{state: &MTASTSState{Error: r.PolicyErr.Error()}}
	case r.Policy == nil:
		return &stsPolicy{state: &MTASTSState{Error: "no policy was fetched"}}
	}
	st := &stsPolicy{state: &MTASTSState{Mode: r.Policy.Mode, MX: r.Policy.MX}}
	if r.Policy.Mode != mtasts.ModeNone {
		// RFC 8461 §5: mode none means no policy applies.
		st.policy = r.Policy
	}
	return st
}

// daneResult is one exchange's TLSA lookup.
type daneResult struct {
	res *dane.Result
	err error
	// addrSecure: the exchange's address records validated, which makes a
	// failed TLSA lookup a reason to defer (RFC 7672 §2.2).
	addrSecure bool
}

// daneLookups looks up the TLSA records of every exchange at once, when the
// MX records are DNSSEC-validated: RFC 7672 §2.2.1, with an insecure MX
// RRset the exchange names could be forged, so DANE does not apply.
func (s *Sender) daneLookups(ctx context.Context, domain dnsname.Name, plan *route.Plan) map[string]daneResult {
	if s.DANE == nil {
		return nil
	}
	mx, err := resolve.Follow(ctx, s.resolver(), resolve.Q(domain.FQDN(), dns.TypeMX))
	if err != nil || !mx.AD {
		return nil
	}
	var names []string
	for _, t := range plan.Tiers {
		for _, h := range t.Hosts {
			if len(h.Addresses) > 0 {
				names = append(names, h.Name)
			}
		}
	}
	out := make([]daneResult, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			r, err := dane.Lookup(ctx, s.resolver(), n, *s.DANE)
			out[i] = daneResult{res: r, err: err}
			if err != nil {
				a, aerr := resolve.Follow(ctx, s.resolver(), resolve.Q(n+".", dns.TypeA))
				if aerr != nil || len(a.Records) == 0 {
					a, aerr = resolve.Follow(ctx, s.resolver(), resolve.Q(n+".", dns.TypeAAAA))
				}
				out[i].addrSecure = aerr == nil && a.AD
			}
		})
	}
	wg.Wait()
	m := make(map[string]daneResult, len(names))
	for i, n := range names {
		m[n] = out[i]
	}
	return m
}

// hostPolicy is the TLS rule for one exchange, or why it is passed over.
type hostPolicy struct {
	rule     Rule
	tlsa     []*dns.TLSA // usable records, under RuleDANE
	names    []string    // DANE reference names: TLSA base domain, then the MX name
	note     string      // under mode testing: what enforce would refuse
	skip     *Attempt
	stsCheck bool // under mode testing: check the certificate as enforce would
}

func (s *Sender) hostPolicy(ctx context.Context, e hostEntry, sts *stsPolicy, d daneResult) hostPolicy {
	name := e.host.Name
	if d.err != nil && d.addrSecure {
		// RFC 7672 §2.2: a TLSA lookup that fails for an exchange whose
		// address records are secure defers delivery to that exchange.
		return hostPolicy{rule: RuleDANE, skip: &Attempt{Stage: StageDNS, Outcome: OutcomeDeferred,
			Err: fmt.Errorf("TLSA lookup failed in a signed zone: %w", d.err)}}
	}
	if r := d.res; d.err == nil && r != nil && r.Secure && r.AddressSecure && len(r.Records) > 0 {
		if usable := r.Usable(); len(usable) > 0 {
			// RFC 8461 §2: DANE takes precedence over MTA-STS.
			names := []string{r.Base}
			if r.Base != name {
				names = append(names, name)
			}
			return hostPolicy{rule: RuleDANE, tlsa: usable, names: names}
		}
		if !s.RequireTLS && (sts == nil || sts.policy == nil || sts.policy.Mode != mtasts.ModeEnforce) {
			// RFC 7672 §2.2: validated TLSA records, none usable: TLS is
			// still mandatory, without authentication.
			return hostPolicy{rule: RuleEncrypt}
		}
	}
	var p *mtasts.Policy
	if sts != nil {
		p = sts.policy
	}
	if p != nil && p.Mode == mtasts.ModeEnforce && !p.Matches(name) {
		// RFC 8461 §4.1, §5: in enforce mode an exchange that matches no mx
		// pattern is not used.
		return hostPolicy{rule: RuleMTASTS, skip: &Attempt{Stage: StagePolicy, Outcome: OutcomePolicy,
			Err: fmt.Errorf("%w (%s)", ErrNotInPolicy, strings.Join(p.MX, ", "))}}
	}
	switch {
	case s.RequireTLS:
		return hostPolicy{rule: RuleRequireTLS}
	case p != nil && p.Mode == mtasts.ModeEnforce:
		return hostPolicy{rule: RuleMTASTS}
	case p != nil && p.Mode == mtasts.ModeTesting:
		hp := hostPolicy{rule: RuleMTASTSTesting, stsCheck: true}
		if !p.Matches(name) {
			hp.note = fmt.Sprintf("%s matches no mx pattern of the MTA-STS policy (%s)", name, strings.Join(p.MX, ", "))
		}
		return hp
	}
	return hostPolicy{rule: RuleOpportunistic}
}

// ErrNotInPolicy: under MTA-STS enforce, the exchange matches no mx pattern.
var ErrNotInPolicy = errors.New("send: the exchange matches no mx pattern of the MTA-STS policy in enforce mode")

func (s *Sender) resolver() resolve.Resolver {
	if s.Resolver != nil {
		return s.Resolver
	}
	return s.Planner.Resolver
}

func (s *Sender) emit(e Event) {
	if s.Observer != nil {
		s.Observer(e)
	}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
}

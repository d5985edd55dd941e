package send

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// Envelope is a message as a relay forwards it: the SMTP envelope (RFC
// 5321 §2.3.1) and the message bytes as they are, never rebuilt.
type Envelope struct {
	// From is the reverse path (MAIL FROM) without angle brackets; "" is
	// the null sender (RFC 5321 §4.5.5), which a delivery status
	// notification uses.
	From string
	// To are the forward paths (RCPT TO), all at one domain: the route is
	// the domain's.
	To []string
	// Data is the whole message, header and body, with CRLF line endings
	// (RFC 5322 §2.1); it is sent dot-stuffed (RFC 5321 §4.5.2).
	Data []byte
}

// RecipientStatus is where one recipient of a Deliver stands.
type RecipientStatus string

// Recipient statuses.
const (
	// RecipientAccepted: an exchange answered 250 to the message data
	// after accepting the recipient's RCPT (RFC 5321 §3.3).
	RecipientAccepted RecipientStatus = "accepted"
	// RecipientRejected: a 5xx reply to RCPT, or to MAIL or the data of a
	// transaction that included the recipient (RFC 5321 §4.2.1), or the
	// domain has no mail route: the message will never reach it as sent.
	RecipientRejected RecipientStatus = "rejected"
	// RecipientDeferred: not delivered yet for a reason that may pass
	// (4xx replies, no connection, an unmet TLS requirement, a DNS
	// failure, a mail loop): a queueing sender tries again.
	RecipientDeferred RecipientStatus = "deferred"
)

// RecipientResult is the outcome of one recipient of a Deliver.
type RecipientResult struct {
	Recipient string          `json:"recipient"`
	Status    RecipientStatus `json:"status"`
	// Host and Address name the exchange of the last answer about the
	// recipient, when there was one.
	Host    string `json:"host,omitempty"`
	Address string `json:"address,omitempty"`
	// Stage is the step the answer came at (rcpt, mail, data, message).
	Stage Stage `json:"stage,omitempty"`
	// Code, Enhanced and Reply are that answer (RFC 5321 §4.2, RFC 3463).
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced_code,omitempty"`
	Reply    string `json:"reply,omitempty"`
	// QueueID is the accepting server's identifier for the message.
	QueueID string `json:"queue_id,omitempty"`
	// Error says why a recipient is not delivered, in words.
	Error string `json:"error,omitempty"`
}

// Deliver sends e.Data as it is to every recipient of e.To along the route
// of their domain, as Send does: the same plan, tiers and failover, TLS
// rules, MTA-STS, DANE and Retry. One transaction carries every recipient
// still pending; a recipient refused with a 4xx reply is tried again at the
// next address, one refused with a 5xx reply is not (RFC 5321 §4.2.1), and
// DATA is sent when at least one RCPT was accepted (RFC 5321 §3.3).
//
// It always returns a Result whose Recipients hold each recipient's
// outcome. The error is nil exactly when every recipient was accepted;
// otherwise it wraps the kinds Send's does, ErrPermanent when the only
// failures are permanent. ErrMessage reports an envelope with no
// recipient, recipients at several domains, or no data.
func (s *Sender) Deliver(ctx context.Context, e Envelope) (res *Result, err error) {
	start := s.now()
	res = &Result{Schema: SchemaVersion, From: e.From, Attempts: []Attempt{}}
	env := newEnvelope(e.From, e.To)
	defer func() {
		res.Recipients = env.results(err)
		s.finish(res, start, err)
	}()
	domain, err := envelopeDomain(e)
	if err != nil {
		return res, err
	}
	res.Domain = domain.String()
	return res, s.run(ctx, start, domain, env, e.Data, res)
}

// envelopeDomain checks an Envelope and returns its recipients' domain.
func envelopeDomain(e Envelope) (dnsname.Name, error) {
	if len(e.To) == 0 {
		return "", fmt.Errorf("%w: no recipient", ErrMessage)
	}
	if len(e.Data) == 0 {
		return "", fmt.Errorf("%w: no message data", ErrMessage)
	}
	var domain dnsname.Name
	for _, to := range e.To {
		if !strings.Contains(to, "@") {
			return "", fmt.Errorf("%w: recipient %q has no domain", ErrMessage, to)
		}
		d, err := dnsname.Parse(to)
		if err != nil {
			return "", fmt.Errorf("%w: recipient %q: %w", ErrMessage, to, err)
		}
		if domain != "" && d != domain {
			return "", fmt.Errorf("%w: recipients at %s and %s: one delivery goes to one domain", ErrMessage, domain, d)
		}
		domain = d
	}
	return domain, nil
}

// finish fills the Result's error fields and logs the delivery.
func (s *Sender) finish(res *Result, start time.Time, err error) {
	res.ElapsedMS = ms(s.now().Sub(start))
	if err != nil {
		res.Kind = KindOf(err)
		res.Error = err.Error()
		res.Permanent = errors.Is(err, ErrPermanent)
	}
	if s.Logger != nil {
		to := res.To
		if to == "" {
			to = res.Domain
		}
		s.Logger.Debug("send", "to", to, "accepted", res.Accepted, "host", res.Host, "queue_id", res.QueueID,
			"attempts", len(res.Attempts), "rounds", res.Rounds, "duration", s.now().Sub(start), "err", err)
	}
}

// run delivers data to env's pending recipients at domain: the MTA-STS
// policy, then rounds over the route until no recipient is pending, or a
// round fails in a way not worth repeating, or Retry gives up.
func (s *Sender) run(ctx context.Context, start time.Time, domain dnsname.Name, env *envelope, data []byte, res *Result) error {
	// RFC 8461 §5: the policy is found before delivery and applies to
	// every round.
	sts := s.mtaSTS(ctx, domain)
	if sts != nil {
		res.MTASTS = sts.state
		s.emit(Event{Kind: EventMTASTS, MTASTS: sts.state})
	}
	for round := 1; ; round++ {
		res.Rounds = round
		err := s.round(ctx, round, domain, sts, res, env, data)
		if err == nil || s.Retry == nil || !retryable(err) || round >= maxRounds {
			return err
		}
		// RFC 5321 §4.5.4.1: retry after a delay, giving up after a
		// bounded time.
		n := round - 1
		wait := s.Retry.Backoff(n)
		wait += Jitter(wait, s.Rand)
		if s.now().Sub(start)+wait > s.Retry.Budget() {
			return fmt.Errorf("%w; gave up after %s: the next wait (%v) would pass the retry time limit of %v",
				err, prose.Count(round, "round"), wait.Round(time.Second), s.Retry.Budget())
		}
		s.emit(Event{Kind: EventWait, Round: round, Wait: wait, Schedule: s.Retry.remaining(n, s.now().Sub(start))})
		if err := s.sleep(ctx, wait); err != nil {
			return fmt.Errorf("waiting to retry: %w", err)
		}
	}
}

// envelope is the state of a delivery: each recipient's outcome so far.
type envelope struct {
	from  string
	rcpts []*rcpt
}

// rcpt is one recipient during a delivery.
type rcpt struct {
	res  RecipientResult
	done bool   // accepted or rejected: never tried again
	inTx bool   // accepted at RCPT in the current transaction
	own  bool   // the current attempt gave this recipient its own reply
	why  string // a rejection, in the words of the error
}

func newEnvelope(from string, to []string) *envelope {
	env := &envelope{from: from}
	for _, t := range to {
		env.rcpts = append(env.rcpts, &rcpt{res: RecipientResult{Recipient: t, Status: RecipientDeferred}})
	}
	return env
}

// pending lists the recipients not yet accepted or rejected.
func (env *envelope) pending() []*rcpt {
	var out []*rcpt
	for _, r := range env.rcpts {
		if !r.done {
			out = append(out, r)
		}
	}
	return out
}

// utf8 reports whether the envelope needs SMTPUTF8 (RFC 6531 §3.4).
func (env *envelope) utf8() bool {
	if !isASCII(env.from) {
		return true
	}
	for _, r := range env.rcpts {
		if !isASCII(r.res.Recipient) {
			return true
		}
	}
	return false
}

// refused records a reply refusing one RCPT: a 5xx rejects the recipient
// for good (RFC 5321 §4.2.1), a 4xx leaves it pending.
func (r *rcpt) refused(a *Attempt, re *ReplyError) {
	r.res.Host, r.res.Address, r.res.Stage = a.Host, a.Address, StageRcpt
	r.res.Code, r.res.Enhanced, r.res.Reply, r.res.Error = re.Code, re.Enhanced, re.Text, re.Error()
	r.own = true
	if re.Permanent() {
		r.res.Status, r.done = RecipientRejected, true
		r.why = fmt.Sprintf("%s [%s] answered %d to %s: %s", a.Host, a.Address, re.Code, stageCommand(StageRcpt), re.Text)
	}
}

// settle applies the end of an attempt to the recipients it concerned: the
// ones in its transaction are accepted when the data was, rejected with a
// 5xx to MAIL (every pending one) or to the data; the others stay pending
// with the attempt's reason unless they got their own reply.
func (env *envelope) settle(a *Attempt) {
	for _, r := range env.rcpts {
		if r.done {
			continue
		}
		inTx := r.inTx
		r.inTx = false
		switch {
		case inTx && a.Outcome == OutcomeAccepted:
			r.from(a, RecipientAccepted)
			r.res.QueueID, r.res.Error, r.done = cmp.Or(QueueID(a.Reply), a.Reply), "", true
		case a.Outcome == OutcomeRejected && (inTx || a.Stage == StageMail):
			r.from(a, RecipientRejected)
			r.done = true
			r.why = fmt.Sprintf("%s [%s] answered %d to %s: %s", a.Host, a.Address, a.Code, stageCommand(a.Stage), a.Reply)
		case r.own:
		default:
			r.from(a, RecipientDeferred)
		}
		r.own = false
	}
}

// from takes an attempt's last reply as the recipient's.
func (r *rcpt) from(a *Attempt, st RecipientStatus) {
	r.res = RecipientResult{Recipient: r.res.Recipient, Status: st, Host: a.Host, Address: a.Address, Stage: a.Stage,
		Code: a.Code, Enhanced: a.Enhanced, Reply: a.Reply, Error: a.Error}
}

// err is the error of a delivery with no recipient pending: nil when none
// was rejected.
func (env *envelope) err() error {
	var whys []string
	for _, r := range env.rcpts {
		if r.res.Status == RecipientRejected && !slices.Contains(whys, r.why) {
			whys = append(whys, r.why)
		}
	}
	if len(whys) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPermanent, strings.Join(whys, "; "))
}

// results are the recipients' outcomes once delivery ends with err: a
// recipient still pending is rejected when the domain has no mail route
// (RFC 5321 §5.1), deferred otherwise.
func (env *envelope) results(err error) []RecipientResult {
	out := make([]RecipientResult, len(env.rcpts))
	for i, r := range env.rcpts {
		if !r.done && err != nil {
			if errors.Is(err, ErrNoRoute) || errors.Is(err, ErrMessage) {
				r.res.Status = RecipientRejected
				r.res.Error = err.Error()
			} else if r.res.Error == "" {
				r.res.Error = err.Error()
			}
		}
		out[i] = r.res
	}
	return out
}

// rcptAll says RCPT for every pending recipient of the session's envelope.
// It returns the number accepted and, when none was, the reply to end the
// attempt on: a 4xx when any recipient got one (something is left to try
// elsewhere), else the last 5xx.
func (ss *session) rcptAll() (int, error) {
	n := 0
	var refused error
	refusedTemp := false
	pending := ss.env.pending()
	if len(pending) == 0 {
		return 0, errors.New("no recipient is pending")
	}
	for _, r := range pending {
		err := ss.check(ss.c.Rcpt(r.res.Recipient, nil))
		if err == nil {
			r.inTx = true
			n++
			continue
		}
		se, ok := errors.AsType[*smtp.SMTPError](err)
		if !ok {
			return 0, err
		}
		re := &ReplyError{Code: se.Code, Enhanced: enhanced(se.EnhancedCode), Text: clip(strings.ReplaceAll(se.Message, "\n", " "))}
		r.refused(ss.a, re)
		if !refusedTemp {
			refused, refusedTemp = err, !re.Permanent()
		}
	}
	return n, refused
}

package send

import (
	"errors"
	"time"

	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/route"
)

// SchemaVersion is the "schema" member of the JSON form of a Result.
const SchemaVersion = 1

// Error kinds: Send's error wraps exactly one of them when the message was
// not accepted (besides ErrMessage and context errors).
var (
	// ErrPermanent: an exchange answered 5xx to MAIL, RCPT or DATA (RFC
	// 5321 §4.2.1: the same request will not succeed later), or the
	// domain has no mail route (ErrNoRoute wraps it).
	ErrPermanent = errors.New("permanent failure")
	// ErrNoRoute: the domain does not exist, publishes a Null MX (RFC
	// 7505), has no MX and no address, or no exchange has an address
	// (RFC 5321 §5.1: "this situation MUST be reported as an error").
	ErrNoRoute = errors.New("no mail route")
	// ErrTemporary: every exchange deferred: 4xx replies, refused or
	// timed-out connections, 5xx greetings. A queueing sender retries.
	ErrTemporary = errors.New("temporary failure: every exchange deferred")
	// ErrPolicy: no exchange took the message and at least one was
	// passed over because a TLS requirement (--require-tls, MTA-STS
	// enforce, DANE) could not be met. A queueing sender retries too.
	ErrPolicy = errors.New("TLS requirement not met")
	// ErrDNS: the route could not be computed (SERVFAIL, time-out): the
	// job could not be done at all.
	ErrDNS = errors.New("DNS lookup failed")
)

// Kind is the error kind of a Result, in the JSON vocabulary.
type Kind string

// Kinds.
const (
	KindNone      Kind = ""
	KindPermanent Kind = "permanent"
	KindNoRoute   Kind = "no-route"
	KindTemporary Kind = "temporary"
	KindPolicy    Kind = "policy"
	KindDNS       Kind = "dns"
)

// KindOf names the kind of an error of Send.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return KindNone
	case errors.Is(err, ErrNoRoute):
		return KindNoRoute
	case errors.Is(err, ErrPermanent):
		return KindPermanent
	case errors.Is(err, ErrPolicy):
		return KindPolicy
	case errors.Is(err, ErrTemporary):
		return KindTemporary
	case errors.Is(err, ErrDNS):
		return KindDNS
	}
	return KindTemporary
}

// Result is what Send did. Its JSON form is the output of send --json.
type Result struct {
	Schema    int    `json:"schema"`
	From      string `json:"from"`
	To        string `json:"to"`
	Domain    string `json:"domain"`
	MessageID string `json:"message_id"`
	// Route is the delivery plan of the last round.
	Route *route.Plan `json:"route"`
	// MTASTS is the domain's MTA-STS state; nil when it publishes no
	// record or MTA-STS is not consulted.
	MTASTS *MTASTSState `json:"mta_sts,omitempty"`

	// Accepted is set when an exchange accepted the message (for Deliver:
	// for at least one recipient, Recipients say which).
	Accepted bool `json:"accepted"`
	// Host, Address and Preference name the exchange that accepted (the
	// last one, when Deliver's recipients went to several).
	Host       string `json:"host,omitempty"`
	Address    string `json:"address,omitempty"`
	Preference uint16 `json:"preference,omitempty"`
	// QueueID is the identifier the server gave (QueueID), or its whole
	// reply text when it has none that mxtrace knows.
	QueueID string `json:"queue_id,omitempty"`
	// Reply is the text of the final reply to the message data.
	Reply string    `json:"reply,omitempty"`
	TLS   *TLSState `json:"tls,omitempty"`

	// Recipients are the outcome of each recipient of Deliver, in the
	// envelope's order; Send leaves it empty (To is its one recipient).
	Recipients []RecipientResult `json:"recipients,omitempty"`

	// Attempts are every attempt of every round, in order.
	Attempts []Attempt `json:"attempts"`
	Rounds   int       `json:"rounds"`
	// Permanent is set when the message will never be accepted as sent.
	Permanent bool   `json:"permanent"`
	Kind      Kind   `json:"error_kind,omitempty"`
	Error     string `json:"error,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

// MTASTSState is what the sender made of the domain's MTA-STS (RFC 8461).
type MTASTSState struct {
	// Mode and MX are the policy's, when one was fetched.
	Mode mtasts.Mode `json:"mode,omitempty"`
	MX   []string    `json:"mx,omitempty"`
	// Error says why a domain that announces a policy has none in force
	// (RFC 8461 §5: the sender then delivers as if there were none).
	Error string `json:"error,omitempty"`
}

// Stage is the step of an attempt at which it ended.
type Stage string

// Stages, in the order of a session.
const (
	StageDNS      Stage = "dns"      // before connecting: no address, or the TLSA lookup failed
	StagePolicy   Stage = "policy"   // not tried: the MTA-STS policy does not list the exchange
	StageConnect  Stage = "connect"  // TCP connection
	StageBanner   Stage = "banner"   // the 220 greeting (RFC 5321 §4.3.1)
	StageEHLO     Stage = "ehlo"     // EHLO, or HELO when EHLO is not known
	StageSTARTTLS Stage = "starttls" // the STARTTLS command (RFC 3207)
	StageTLS      Stage = "tls"      // handshake and certificate check
	StageMail     Stage = "mail"     // MAIL FROM
	StageRcpt     Stage = "rcpt"     // RCPT TO
	StageData     Stage = "data"     // DATA, until the 354
	StageMessage  Stage = "message"  // the message and the reply to its final dot
)

// Outcome is how an attempt ended.
type Outcome string

// Outcomes.
const (
	OutcomeAccepted Outcome = "accepted" // the server took the message
	OutcomeDeferred Outcome = "deferred" // temporary: the next address or host is tried
	OutcomeRejected Outcome = "rejected" // 5xx to MAIL, RCPT or DATA: delivery stops
	OutcomePolicy   Outcome = "policy"   // a TLS requirement was not met: the next address or host is tried
	OutcomeSkipped  Outcome = "skipped"  // the exchange has no address
)

// Rule is the TLS rule an attempt ran under.
type Rule string

// Rules, from the weakest.
const (
	// RuleOpportunistic: STARTTLS when offered, certificate not required
	// to verify; a failed handshake is retried in clear text (RFC 7435
	// §1.3, as Postfix's "may" level does).
	RuleOpportunistic Rule = "opportunistic"
	// RuleMTASTSTesting: like opportunistic, but what enforce mode would
	// have refused is noted (RFC 8461 §5: mode testing).
	RuleMTASTSTesting Rule = "mta-sts-testing"
	// RuleEncrypt: STARTTLS mandatory, certificate not authenticated: the
	// exchange has DNSSEC-validated TLSA records, none usable (RFC 7672
	// §2.2; Postfix's "encrypt").
	RuleEncrypt Rule = "encrypt"
	// RuleRequireTLS: --require-tls: STARTTLS with a certificate valid for
	// the exchange name under the trusted roots.
	RuleRequireTLS Rule = "require-tls"
	// RuleMTASTS: the policy is in enforce mode: the exchange must match
	// an mx pattern and present a certificate valid for its name (RFC
	// 8461 §4.1, §4.2, §5).
	RuleMTASTS Rule = "mta-sts"
	// RuleDANE: usable, DNSSEC-validated TLSA records: STARTTLS mandatory
	// and the chain must match one (RFC 7672 §2.2, §3).
	RuleDANE Rule = "dane"
)

// Required reports whether the rule forbids delivery without TLS.
func (r Rule) Required() bool {
	switch r {
	case RuleEncrypt, RuleRequireTLS, RuleMTASTS, RuleDANE:
		return true
	}
	return false
}

// Attempt is one try at one address of one exchange (or an exchange passed
// over without connecting, with no Address).
type Attempt struct {
	Round      int     `json:"round"`
	Preference uint16  `json:"preference"`
	Host       string  `json:"host"`
	Address    string  `json:"address,omitempty"`
	Rule       Rule    `json:"tls_rule"`
	Stage      Stage   `json:"stage"`
	Outcome    Outcome `json:"outcome"`
	// Code, Enhanced and Reply are the last SMTP reply (RFC 5321 §4.2,
	// RFC 3463), when the attempt ended on one.
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced_code,omitempty"`
	Reply    string `json:"reply,omitempty"`
	// TLS is set when a TLS session was established.
	TLS *TLSState `json:"tls,omitempty"`
	// Plaintext marks an attempt in clear text after a failed handshake
	// at the same address (opportunistic TLS only).
	Plaintext bool `json:"plaintext,omitempty"`
	// PolicyNote is what MTA-STS enforce mode would have refused, under
	// mode testing.
	PolicyNote string `json:"policy_note,omitempty"`
	ElapsedMS  int64  `json:"elapsed_ms"`
	// Err is why the attempt did not deliver; Error is its text.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
	// Transcript is the SMTP dialogue ("C: ", "S: " lines), kept when
	// Sender.Transcript is set.
	Transcript []string `json:"transcript,omitempty"`
}

// TLSState describes a TLS session.
type TLSState struct {
	Version string `json:"version"`
	Cipher  string `json:"cipher"`
	// Verified is set when the certificate was authenticated: by DANE
	// under RuleDANE, by the trusted roots and the exchange name otherwise
	// (checked under every rule, required only by some).
	Verified bool   `json:"verified"`
	Method   string `json:"method"` // "dane" or "pkix"
	// VerifyError says why the certificate was not authenticated.
	VerifyError string `json:"verify_error,omitempty"`
	// DANERecord is the TLSA record that matched, under RuleDANE.
	DANERecord string `json:"dane_record,omitempty"`
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Package probe talks SMTP (RFC 5321) to a domain's exchanges the way a
// careful sender does, without ever sending a message: it connects, reads
// the greeting, says EHLO (RFC 5321 §4.1.1.1), upgrades the session with
// STARTTLS (RFC 3207) when offered, records the TLS version, cipher and
// certificate chain, verifies the chain (RFC 5280, RFC 6125 names), says
// EHLO again and QUIT. DATA is never sent; an open-relay test
// (MAIL FROM:<> and RCPT TO:<…> to a domain the user names, then RSET)
// runs only when Prober.RelayTo is set.
//
// The server is hostile until proven otherwise: every step has a deadline,
// every reply line, reply and session has a size cap, and whatever the
// server does (nothing, an endless reply, garbage, a broken handshake)
// becomes a Result with the failed step, never a hang or a panic.
//
// Findings turns results into the SMTP findings of the catalogue
// (smtp-unreachable … smtp-open-relay); MatchDANE checks a live chain
// against an exchange's TLSA records (RFC 7672 §3). The probe keeps the
// greeting and runs STARTTLS on the same session, which go-smtp's client
// does not expose, so it has its own small client.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/route"
)

// DefaultTimeouts are the deadlines of the Prober's zero Timeouts fields.
// RFC 5321 §4.5.3.2 asks a sender to wait 5 minutes for the greeting and
// each reply; a diagnostic tool waits less, and reports anything close to
// its limit as slow. No Session bound: the caller's context is one.
func DefaultTimeouts() dial.SMTPTimeouts {
	return dial.SMTPTimeouts{
		Connect:      10 * time.Second,
		Greeting:     30 * time.Second,
		Command:      30 * time.Second,
		TLSHandshake: 15 * time.Second,
	}
}

// Defaults of the Prober's other zero fields.
const (
	DefaultSlowBanner  = 5 * time.Second
	DefaultMaxParallel = 32
	// DefaultHelloName is the EHLO name used when the machine's own
	// name is not a fully qualified domain name (RFC 2606 reserves
	// .invalid).
	DefaultHelloName = "mxtrace.invalid"
)

// Transcript bounds: the lines kept, and the bytes kept of each.
const (
	MaxTranscriptLines = 400
	maxTranscriptText  = 1024
	maxBannerText      = 512
	maxExtensions      = 64
)

// Prober probes SMTP servers. The zero value works: port 25, the system's
// roots, the default deadlines. A Prober is safe for concurrent use; do not
// change its fields while it runs.
type Prober struct {
	// Port is the TCP port to connect to; 0 means dial.SMTPPort.
	Port int
	// HelloName is the name sent with EHLO; empty means the machine's
	// host name when it is fully qualified, else DefaultHelloName.
	HelloName string
	// RootCAs verify the servers' chains; nil means the system's roots.
	RootCAs *x509.CertPool
	// Dialer opens the TCP connections; nil means a *dial.Net with no
	// address policy. serve passes one that refuses private addresses.
	Dialer dial.Dialer
	// Timeouts bound the session and each stage (connect, greeting, each
	// command, TLS handshake); zero fields take DefaultTimeouts. A Session
	// bound applies to each address probed.
	Timeouts dial.SMTPTimeouts
	// SlowBanner is the time to greeting above which it counts as slow
	// (smtp-banner-slow); zero means DefaultSlowBanner.
	SlowBanner time.Duration
	// MaxParallel bounds the addresses ProbePlan probes at once; zero
	// means DefaultMaxParallel.
	MaxParallel int
	// Now is the clock certificates are judged by; nil means time.Now.
	Now func() time.Time
	// Logger logs one debug line per probe; nil is silent.
	Logger *slog.Logger
	// RelayTo, when set, is the domain of the open-relay test recipient
	// (mxtrace-relay-test@RelayTo). Empty: no relay test.
	RelayTo string
}

// RelayLocalPart is the local part of the relay test's recipient.
const RelayLocalPart = "mxtrace-relay-test"

// Step names the stage of a session.
type Step string

// Steps, in session order.
const (
	StepConnect  Step = "connect"
	StepBanner   Step = "banner"
	StepEHLO     Step = "ehlo"
	StepStartTLS Step = "starttls"
	StepTLS      Step = "tls"
	StepRelay    Step = "relay"
	StepQuit     Step = "quit"
)

// Kind says what went wrong at a step.
type Kind string

// Kinds of failure.
const (
	KindRefused   Kind = "refused"   // the connection was refused (nothing listens)
	KindTimeout   Kind = "timeout"   // the deadline of the step passed
	KindClosed    Kind = "closed"    // the server closed or reset the connection
	KindMalformed Kind = "malformed" // the server sent something that is not an SMTP reply
	KindTooLong   Kind = "too-long"  // a line, reply or session over its cap
	KindReply     Kind = "reply"     // a well-formed reply with a code that stops the session
	KindTLS       Kind = "tls"       // the TLS handshake failed
	KindNoRoute   Kind = "no-route"  // no route to the host or its network
	KindNetwork   Kind = "network"   // any other network error
	KindCanceled  Kind = "canceled"  // the caller's context ended
	// KindForbidden is an address the Dialer's policy refused to connect
	// to (dial.ErrForbidden: not public, and the Dialer is serve's): it
	// was not probed, which is the finding smtp-target-refused, not
	// smtp-unreachable.
	KindForbidden Kind = "forbidden"
	// KindOutOfTime is our own deadline (the session's limit or the
	// caller's) passing before the session could connect or finish:
	// nothing is known about the server, which yields no finding
	// (OutOfTime is the error to report instead).
	KindOutOfTime Kind = "out-of-time"
)

// OutOfTimeError names the endpoints whose probe our own deadline cut
// short (KindOutOfTime): they were not probed, which is a failure to do
// the job, not a finding about the servers. It unwraps to
// context.DeadlineExceeded.
type OutOfTimeError struct {
	Subjects []string // Result.Subject of each
}

func (e *OutOfTimeError) Error() string {
	return prose.List(e.Subjects) + " not probed: the time allowed ran out"
}

func (e *OutOfTimeError) Unwrap() error { return context.DeadlineExceeded }

// OutOfTime returns an *OutOfTimeError for the results whose probe our
// own deadline cut short, or nil when there are none.
func OutOfTime(results []*Result) error {
	var subjects []string
	for _, r := range results {
		if r != nil && r.Err != nil && r.Err.Kind == KindOutOfTime {
			subjects = append(subjects, r.Subject())
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	return &OutOfTimeError{Subjects: subjects}
}

// StepError is why a session ended early (or, for StepQuit and
// StepRelay, what went wrong after the probe had its answers).
type StepError struct {
	Step    Step   `json:"step"`
	Kind    Kind   `json:"kind"`
	Code    int    `json:"code,omitempty"` // the reply code, for KindReply
	Message string `json:"message"`
	// Partial is the start of a reply that the deadline or the end of
	// the connection cut short (escaped), when one came: a partial
	// greeting is no greeting.
	Partial string `json:"partial,omitempty"`
	Err     error  `json:"-"`
}

func (e *StepError) Error() string { return string(e.Step) + ": " + e.Message }
func (e *StepError) Unwrap() error { return e.Err }

// Result is what one probe of one address found. Its JSON form is part of
// "probe --json".
type Result struct {
	// Host is the exchange's name (the MX target) without the final dot;
	// empty when an address was probed by itself.
	Host string `json:"host"`
	// Preference is the MX preference of the host's tier, when the probe
	// came from a plan.
	Preference *uint16    `json:"preference,omitempty"`
	Address    netip.Addr `json:"address"`
	Port       int        `json:"port"`

	Connected bool  `json:"connected"`
	ConnectMS int64 `json:"connect_ms"`
	// Banner is the greeting; nil when none was read.
	Banner *Banner `json:"banner,omitempty"`
	// EHLO is the answer to the first EHLO (or HELO); EHLOTLS the answer
	// to the EHLO inside TLS.
	EHLO    *EHLO `json:"ehlo,omitempty"`
	EHLOTLS *EHLO `json:"ehlo_tls,omitempty"`
	// StartTLS reports whether the server offered STARTTLS.
	StartTLS bool `json:"starttls"`
	// TLS describes the session after a completed handshake.
	TLS *TLS `json:"tls,omitempty"`
	// Chain is the certificate chain the server presented, leaf first,
	// for DANE matching.
	Chain []*x509.Certificate `json:"-"`
	// Relay is the open-relay test, when asked for.
	Relay *Relay `json:"relay,omitempty"`

	Transcript []TranscriptLine `json:"transcript"`
	// TranscriptCut is set when lines past MaxTranscriptLines were
	// dropped.
	TranscriptCut bool `json:"transcript_cut,omitempty"`
	// Err is why the session ended early; nil when it ran to QUIT.
	Err       *StepError `json:"error,omitempty"`
	ElapsedMS int64      `json:"elapsed_ms"`
}

// Greeted reports whether the server sent a 220 greeting (RFC 5321
// §4.3.1): it is ready to take mail.
func (r *Result) Greeted() bool { return r.Banner != nil && r.Banner.Code == 220 }

// Subject names the probed endpoint in findings and output, the way
// Postfix logs it: "host[address]:port", or "[address]:port" without a
// host name.
func (r *Result) Subject() string {
	return r.Host + "[" + r.Address.String() + "]:" + strconv.Itoa(r.Port)
}

// Banner is the server's greeting (RFC 5321 §4.2, §4.3.1).
type Banner struct {
	Code int `json:"code"`
	// Text is the greeting's text, lines joined, cut to 512 bytes.
	Text string `json:"text"`
	// Host is the first word of the greeting, the name the server gives
	// itself (RFC 5321 §4.3.1: "220 domain SP text").
	Host string `json:"host"`
	// MS is the time from connection to the end of the greeting.
	MS int64 `json:"ms"`
	// Slow is set when MS is over the Prober's SlowBanner threshold.
	Slow bool `json:"slow"`
}

// EHLO is a server's answer to EHLO (RFC 5321 §4.1.1.1) or HELO.
type EHLO struct {
	Command string `json:"command"` // "EHLO" or "HELO"
	Code    int    `json:"code"`
	// Domain is the name the server gives in the first line.
	Domain string `json:"domain"`
	// Extensions are the keywords with their parameters, as served
	// (keyword upper-cased), at most 64.
	Extensions []string `json:"extensions"`
	// Size is the SIZE limit (RFC 1870), 0 when none is declared.
	Size                int64    `json:"size,omitempty"`
	Pipelining          bool     `json:"pipelining"`          // RFC 2920
	EightBitMIME        bool     `json:"8bitmime"`            // RFC 6152
	SMTPUTF8            bool     `json:"smtputf8"`            // RFC 6531
	StartTLS            bool     `json:"starttls"`            // RFC 3207
	Chunking            bool     `json:"chunking"`            // RFC 3030
	EnhancedStatusCodes bool     `json:"enhancedstatuscodes"` // RFC 2034
	DSN                 bool     `json:"dsn"`                 // RFC 3461
	RequireTLS          bool     `json:"requiretls"`          // RFC 8689
	Auth                []string `json:"auth,omitempty"`      // RFC 4954 mechanisms
	MS                  int64    `json:"ms"`
}

// TLS is a completed STARTTLS handshake and the verdict on the chain.
type TLS struct {
	Version string `json:"version"` // "TLS1.3"
	// VersionID is the protocol version number (tls.VersionTLS13).
	VersionID   uint16 `json:"-"`
	Cipher      string `json:"cipher"`
	ServerName  string `json:"server_name,omitempty"` // SNI sent
	HandshakeMS int64  `json:"handshake_ms"`
	// Chain summarises the presented certificates, leaf first (at most
	// 10).
	Chain []Certificate `json:"chain"`
	// Verified: the chain verifies against the roots, now, for the MX
	// host name (RFC 5280 §6, RFC 6125 §6).
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
	// Trusted: the chain leads to a trusted root, whatever the dates and
	// the name.
	Trusted bool `json:"trusted"`
	// NameOK: the leaf is valid for the MX host name (true when there is
	// no name to check, for a bare address).
	NameOK bool `json:"name_ok"`
	// Expired: now is outside the validity of a certificate of the chain.
	Expired bool `json:"expired"`
	// ExpiresInDays is the time left on the leaf, in whole days
	// (negative once expired).
	ExpiresInDays int `json:"expires_in_days"`
}

// Certificate summarises one certificate of a chain.
type Certificate struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// SPKISHA256 is the hex SHA-256 of the SubjectPublicKeyInfo, the
	// digest a "TLSA 3 1 1" record holds.
	SPKISHA256 string `json:"spki_sha256"`
}

// Relay is the outcome of the open-relay test.
type Relay struct {
	Recipient string `json:"recipient"`
	MailCode  int    `json:"mail_code"`
	RcptCode  int    `json:"rcpt_code,omitempty"`
	RcptText  string `json:"rcpt_text,omitempty"`
	// Open is set when the server accepted the recipient (2xx).
	Open bool `json:"open"`
}

// TranscriptLine is one line of the session: "C" sent by the probe, "S"
// received from the server, "*" a note by the probe (connection, TLS, the
// reason a session ended).
type TranscriptLine struct {
	Dir  string `json:"dir"`
	Text string `json:"text"`
	MS   int64  `json:"ms"`
}

// settings are a Prober's fields with the defaults filled in.
type settings struct {
	port    int
	hello   string
	roots   *x509.CertPool
	dialer  dial.Dialer
	t       dial.SMTPTimeouts
	slow    time.Duration
	now     func() time.Time
	logger  *slog.Logger
	relayTo string
}

func (p *Prober) settings() *settings {
	s := &settings{
		port: p.Port, hello: p.HelloName, roots: p.RootCAs, dialer: p.Dialer,
		t: p.Timeouts.Or(DefaultTimeouts()), slow: p.SlowBanner, now: p.Now, logger: p.Logger,
		relayTo: strings.TrimSuffix(p.RelayTo, "."),
	}
	if s.port == 0 {
		s.port = dial.SMTPPort
	}
	if s.hello == "" {
		s.hello = defaultHelloName()
	}
	if s.dialer == nil {
		s.dialer = &dial.Net{Timeout: s.t.Connect}
	}
	if s.slow <= 0 {
		s.slow = DefaultSlowBanner
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// defaultHelloName is the machine's name when it is fully qualified
// (RFC 5321 §4.1.1.1: the EHLO argument is the client's FQDN), else
// DefaultHelloName.
func defaultHelloName() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(strings.Trim(h, "."), ".") {
		return DefaultHelloName
	}
	h = strings.TrimSuffix(h, ".")
	if _, ok := dns.IsDomainName(h); !ok || !isHostname(h) {
		return DefaultHelloName
	}
	return strings.ToLower(h)
}

// isHostname reports whether s is letters, digits, hyphens and dots only.
func isHostname(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Probe runs one session with the server at addr, which is host's address
// (host may be empty for a bare address). It always returns a Result;
// what went wrong is in Result.Err.
func (p *Prober) Probe(ctx context.Context, host string, addr netip.Addr) *Result {
	return p.settings().probe(ctx, host, addr)
}

// ProbePlan probes every address of every exchange of plan, tiers in
// order, at most MaxParallel at once. The results are in plan order
// (tier, host, address) whatever order they finished in.
func (p *Prober) ProbePlan(ctx context.Context, plan *route.Plan) []*Result {
	return p.run(ctx, planJobs(plan))
}

// tlsConfig is the client configuration of the handshake. Verification
// is done afterwards (judgeTLS), so that a chain that does not verify is
// still recorded and judged; old versions and ciphers are allowed so the
// probe sees what an opportunistic sender (RFC 7435) would get.
func tlsConfig(host string) *tls.Config {
	suites := []uint16{}
	for _, c := range tls.CipherSuites() {
		suites = append(suites, c.ID)
	}
	for _, c := range tls.InsecureCipherSuites() {
		suites = append(suites, c.ID)
	}
	return &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // judgeTLS verifies, and records why a chain fails
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       suites,
	}
}

package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AlertKind says why an alert was raised; the store keeps it as text and
// webhook receivers switch on it.
type AlertKind string

// The alert kinds (docs/watch.md#alerts).
const (
	// AlertChange is one change between two checks.
	AlertChange AlertKind = "change"
	// AlertReminder repeats an error that is still there after the
	// reminder period.
	AlertReminder AlertKind = "reminder"
	// AlertRecovery says that the error alerted before has ended.
	AlertRecovery AlertKind = "recovery"
	// AlertConfirmedFailure says the domain could not be checked twice in
	// a row: one failed check alone is never alerted.
	AlertConfirmedFailure AlertKind = "confirmed-failure"
)

// NoticeSchema is the version of the Notice JSON object; it changes only
// when a field changes meaning or goes away.
const NoticeSchema = 1

// Notice is an alert's body: what a webhook receives as JSON, what the
// e-mail and the log line say. The store keeps it as the alert's Body
// (JSON) from the moment the check is recorded; ID is filled in at
// delivery, when the store has numbered the alert.
type Notice struct {
	Schema int `json:"schema"`
	// ID is the store's alert ID. Delivery is at least once (a crash
	// between the receiver's 2xx and the store's mark sends it again), so
	// a receiver drops an ID it has already seen.
	ID     int64     `json:"id"`
	Kind   AlertKind `json:"kind"`
	Domain string    `json:"domain"`
	// At is the time of the check that raised the alert.
	At time.Time `json:"at"`
	// Status is that check's status: ok, problems or error.
	Status string `json:"status"`
	// Since is when the error a reminder or a recovery is about began.
	Since time.Time `json:"since,omitzero"`
	// Changes are what changed; one for a change alert, the open errors
	// for a reminder, the resolved ones for a recovery, the failure for a
	// confirmed failure.
	Changes []NoticeChange `json:"changes"`
	// Link is the domain's page on a mxtrace serve site, when one is
	// configured (Config.BaseURL).
	Link string `json:"link,omitempty"`
}

// NoticeChange is one change as an alert carries it: watch's typed Change
// in plain fields, with the catalogue's fix when the change is about a
// finding.
type NoticeChange struct {
	Kind     string `json:"kind"`
	Subject  string `json:"subject"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// Summary is the notice in one line: the e-mail's subject, the log line's
// message. Remote text in it (record contents) is the caller's to escape.
func (n *Notice) Summary() string {
	var what string
	switch {
	case n.Kind == AlertRecovery:
		what = "recovered"
	case len(n.Changes) == 0:
		what = string(n.Kind)
	default:
		what = n.Changes[0].Message
		if len(n.Changes) > 1 {
			what += fmt.Sprintf(" (and %d more)", len(n.Changes)-1)
		}
	}
	switch n.Kind {
	case AlertReminder:
		what = "still failing: " + what
	case AlertConfirmedFailure:
		what = "could not be checked: " + what
	}
	return n.Domain + ": " + what
}

// withID returns body (a Notice as JSON) with its ID set.
func withID(body []byte, id int64) ([]byte, *Notice, error) {
	var n Notice
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, nil, fmt.Errorf("watch: alert %d: body: %w", id, err)
	}
	n.ID = id
	b, err := json.Marshal(&n)
	if err != nil {
		return nil, nil, fmt.Errorf("watch: alert %d: body: %w", id, err)
	}
	return b, &n, nil
}

// TargetKind is the way an alert is delivered.
type TargetKind string

// The target kinds.
const (
	TargetWebhook TargetKind = "webhook" // https://… or http://…
	TargetMail    TargetKind = "mail"    // mailto:ADDR
	TargetLog     TargetKind = "log"     // log
)

// Target is a parsed alert target.
type Target struct {
	Kind TargetKind
	// URL is a webhook's URL.
	URL *url.URL
	// Addr is an e-mail target's address (addr-spec, RFC 5322 §3.4.1).
	Addr string
}

// ErrTarget is the error of an alert target that cannot be used.
var ErrTarget = errors.New("watch: bad alert target")

// maxTargetLen bounds a target string: a URL longer than this is a
// mistake, and the store keeps every target with every alert.
const maxTargetLen = 2000

// ParseTarget parses an alert target as `watch add --alert` takes it:
//
//   - https://host/path (or http://): a webhook. Plain http is accepted,
//     for receivers on loopback or a private network: the signature
//     protects the body's integrity and origin whatever the transport,
//     but not its confidentiality. The URL may not carry a user name or
//     password (they would be stored and logged with every alert) nor a
//     fragment.
//   - mailto:user@example.org: an e-mail, one address (RFC 6068 §2, without
//     header fields).
//   - log: a log line at warning level.
//
// The bound holds for the printed form too, which is what the store keeps:
// printing escapes what the input had raw (one octet becomes three as
// %XX), so a target that parsed from 2,000 characters could print as more
// and fail to parse again.
func ParseTarget(s string) (Target, error) {
	if len(s) > maxTargetLen {
		return Target{}, fmt.Errorf("%w: longer than %d characters", ErrTarget, maxTargetLen)
	}
	t, err := parseTarget(s)
	if err == nil && len(t.String()) > maxTargetLen {
		return Target{}, fmt.Errorf("%w: longer than %d characters once escaped", ErrTarget, maxTargetLen)
	}
	return t, err
}

func parseTarget(s string) (Target, error) {
	if s == "log" {
		return Target{Kind: TargetLog}, nil
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Target{}, fmt.Errorf("%w: %q is not https://…, http://…, mailto:ADDR or log", ErrTarget, s)
	}
	switch strings.ToLower(scheme) {
	case "https", "http":
		return parseWebhook(s)
	case "mailto":
		return parseMailto(rest)
	}
	return Target{}, fmt.Errorf("%w: %q: scheme %q is not https, http or mailto", ErrTarget, s, scheme)
}

func parseWebhook(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Host == "" || u.Hostname() == "":
		return Target{}, fmt.Errorf("%w: %q has no host", ErrTarget, s)
	case u.User != nil:
		return Target{}, fmt.Errorf("%w: %q: a webhook URL may not carry a user name or password; the body is signed instead", ErrTarget, s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Target{}, fmt.Errorf("%w: %q: a webhook URL has no fragment", ErrTarget, s)
	}
	if p := u.Port(); p != "" {
		if _, err := parsePort(p); err != nil {
			return Target{}, fmt.Errorf("%w: %q: %w", ErrTarget, s, err)
		}
	}
	return Target{Kind: TargetWebhook, URL: u}, nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}

func parseMailto(rest string) (Target, error) {
	// RFC 6068 §2: hfields after "?" (subject, cc, body...) would let a
	// target add recipients or text; one plain address only.
	if strings.ContainsAny(rest, "?,") {
		return Target{}, fmt.Errorf("%w: mailto:%s: one address, without ?header fields", ErrTarget, rest)
	}
	addr, err := url.PathUnescape(rest)
	if err != nil {
		return Target{}, fmt.Errorf("%w: mailto:%s: %w", ErrTarget, rest, err)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return Target{}, fmt.Errorf("%w: mailto:%s: not one e-mail address (user@example.org)", ErrTarget, rest)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 || strings.ContainsAny(a.Address, "\r\n<> ") {
		return Target{}, fmt.Errorf("%w: mailto:%s: not one e-mail address (user@example.org)", ErrTarget, rest)
	}
	return Target{Kind: TargetMail, Addr: a.Address}, nil
}

// String returns the target as ParseTarget reads it.
func (t Target) String() string {
	switch t.Kind {
	case TargetWebhook:
		return t.URL.String()
	case TargetMail:
		return "mailto:" + t.Addr
	}
	return string(t.Kind)
}

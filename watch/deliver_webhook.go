package watch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/internal/printable"
)

// The webhook's headers (docs/watch.md#verifying-a-webhook).
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// configured secret, of the timestamp header's value, a ".", and the
	// body exactly as sent.
	HeaderSignature = "X-Mxtrace-Signature"
	// HeaderTimestamp is the time of sending in Unix seconds; it is inside
	// the MAC, so a receiver that refuses old timestamps refuses a replay.
	HeaderTimestamp = "X-Mxtrace-Timestamp"
	// HeaderAlertID is the alert's ID, also the body's "id": the key a
	// receiver deduplicates on (delivery is at least once).
	HeaderAlertID = "X-Mxtrace-Alert-Id"
)

// Webhook bounds.
const (
	// DefaultWebhookTimeout bounds one POST, connection to response
	// headers, when Webhook.Timeout is zero.
	DefaultWebhookTimeout = 30 * time.Second
	// DefaultTolerance is how far a timestamp may be from the receiver's
	// clock in Verify when the tolerance given is zero.
	DefaultTolerance = 5 * time.Minute
	// maxResponseRead caps what is read of a receiver's response; the
	// first maxErrorText octets of an error response go into the log.
	maxResponseRead = 64 << 10
	maxErrorText    = 200
)

// ErrSignature is the error of Verify for a request that is not signed by
// the secret, or not recently.
var ErrSignature = errors.New("watch: webhook signature not valid")

// Sign returns the X-Mxtrace-Signature value of body sent at ts:
// "sha256=" + hex(HMAC-SHA256(secret, "<unix seconds>." + body)) (RFC 2104;
// SHA-256 as FIPS 180-4).
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a webhook request as a receiver does: the signature header
// must be the HMAC of the timestamp header and body under secret (compared
// in constant time), and the timestamp within tolerance of now (zero:
// DefaultTolerance), so a captured request cannot be replayed later. A
// receiver also drops alert IDs it has seen: a resend after a crash carries
// the same ID, under a fresh timestamp and signature.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrSignature, HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)).Abs(); d > tolerance {
		return fmt.Errorf("%w: timestamp %s is %s away from now", ErrSignature, ts, d.Round(time.Second))
	}
	got, ok := strings.CutPrefix(h.Get(HeaderSignature), "sha256=")
	sum, err := hex.DecodeString(got)
	if !ok || err != nil {
		return fmt.Errorf("%w: %s is not sha256=<hex>", ErrSignature, HeaderSignature)
	}
	if !hmac.Equal(sum, mac(secret, ts, body)) {
		return fmt.Errorf("%w: the MAC does not match", ErrSignature)
	}
	return nil
}

// Webhook posts alerts to HTTP receivers.
type Webhook struct {
	// Secret keys the signature. Required: an unsigned alert cannot be
	// told from a forged one, so without it every webhook alert fails.
	Secret []byte
	// Dialer connects; nil is a dial.Net with the timeout below. It is
	// dial.Net's address policy that decides whether private addresses
	// may receive alerts.
	Dialer dial.Dialer
	// RootCAs verifies https receivers; nil: the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds one POST; zero: DefaultWebhookTimeout.
	Timeout time.Duration
	// UserAgent is sent as User-Agent; "" is "mxtrace".
	UserAgent string

	once   sync.Once
	client *http.Client
}

// Error is a delivery failure. Permanent means a retry would fail the same
// way (the receiver refused the alert: a 4xx other than 408 and 429, a
// redirect, a bad target); otherwise the Deliverer tries again later,
// not before RetryAfter when the receiver said so.
type Error struct {
	Permanent  bool
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func permanent(err error) error { return &Error{Permanent: true, Err: err} }

// httpClient is built once: one pool of connections to the receivers,
// redirects never followed (a receiver that moved says so with a 3xx,
// which fails the alert instead of sending it somewhere else).
func (w *Webhook) httpClient() *http.Client {
	w.once.Do(w.newClient)
	return w.client
}

func (w *Webhook) newClient() {
	d := w.Dialer
	if d == nil {
		d = &dial.Net{Timeout: w.timeout()}
	}
	t := &http.Transport{
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: w.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    w.timeout(),
		ResponseHeaderTimeout:  w.timeout(),
		MaxResponseHeaderBytes: 16 << 10,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    4,
		ForceAttemptHTTP2:      true,
	}
	w.client = &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (w *Webhook) timeout() time.Duration { return positiveOr(w.Timeout, DefaultWebhookTimeout) }

// Send posts body (a Notice with its ID) to the target. It returns nil
// only for a 2xx; the error is an *Error saying whether to retry.
func (w *Webhook) Send(ctx context.Context, t Target, id int64, body []byte, now time.Time) error {
	if len(w.Secret) == 0 {
		return permanent(errors.New("watch: no webhook secret configured, so alerts cannot be signed"))
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL.String(), bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("watch: webhook %s: %w", t, err))
	}
	ua := w.UserAgent
	if ua == "" {
		ua = "mxtrace"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.Secret, now, body))
	req.Header.Set(HeaderAlertID, strconv.FormatInt(id, 10))
	resp, err := w.httpClient().Do(req)
	if err != nil {
		err = fmt.Errorf("watch: webhook %s: %w", t, err)
		if errors.Is(err, dial.ErrForbidden) {
			// The dialer's address policy will refuse it next time too.
			return permanent(err)
		}
		// Connection refused, time-outs, TLS failures: the receiver may be
		// back later.
		return &Error{Err: err}
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	return statusError(t, resp, text, now)
}

// statusError judges a receiver's response: 2xx delivered; 408 and 429
// (RFC 9110 §15.5.9, RFC 6585 §4) and 5xx retried, after Retry-After when
// given (RFC 9110 §10.2.3); every other status (3xx not followed, 4xx) is
// the receiver refusing this alert for good.
func statusError(t Target, resp *http.Response, text []byte, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err := fmt.Errorf("watch: webhook %s: %s: %s", t, resp.Status, printable.String(printable.Cut(strings.TrimSpace(string(text)), maxErrorText)))
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		return &Error{Err: err, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now)}
	}
	return permanent(err)
}

// retryAfter reads Retry-After: delay-seconds or an HTTP-date (RFC 9110
// §10.2.3); anything else is no advice.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

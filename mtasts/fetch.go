package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/resolve"
)

// WellKnownPath is where the policy lives on the policy host (RFC 8461 §3.3).
const WellKnownPath = "/.well-known/mta-sts.txt"

// DefaultTimeout bounds one policy fetch: DNS, connection, TLS, request and
// body together. RFC 8461 §3.3 lets senders put a time-out on the HTTPS
// GET; a minute is what deployed senders use, and a policy host slower than
// that is broken for them too.
const DefaultTimeout = time.Minute

// maxHeaderBytes bounds the response header a policy host may send.
const maxHeaderBytes = 16 << 10

// Stage says which step of a policy fetch failed, so the finding can tell
// the domain owner what to fix.
type Stage string

// Stages, in the order a fetch goes through them.
const (
	StageDNS         Stage = "dns"          // the policy host name does not resolve
	StageConnect     Stage = "connect"      // no TCP connection to port 443
	StageForbidden   Stage = "forbidden"    // every address is one the Dialer's policy refuses (not public)
	StageTLS         Stage = "tls"          // handshake or certificate failure
	StageHTTP        Stage = "http"         // the HTTP exchange itself failed
	StageRedirect    Stage = "redirect"     // a 3xx answer (RFC 8461 §3.3: not followed)
	StageStatus      Stage = "status"       // any other status than 200
	StageContentType Stage = "content-type" // not text/plain
	StageSize        Stage = "size"         // body over MaxPolicySize
	StageTimeout     Stage = "timeout"      // the deadline passed
)

// Errors wrapped by *FetchError, for errors.Is.
var (
	ErrNoAddress   = errors.New("mta-sts: the policy host has no address")
	ErrRedirect    = errors.New("mta-sts: the policy host answered with a redirect, which senders must not follow")
	ErrHTTPStatus  = errors.New("mta-sts: the policy host did not answer 200 OK")
	ErrContentType = errors.New("mta-sts: the policy is not served as text/plain")
	ErrTooLarge    = errors.New("mta-sts: the policy is larger than the size limit")
)

// FetchError is a policy fetch that failed; Stage says where.
type FetchError struct {
	URL   string
	Stage Stage
	Err   error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetching %s failed at the %s step: %v", e.URL, e.Stage, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Fetcher fetches policies over HTTPS. The zero value fetches with the
// system's resolver and root certificates.
type Fetcher struct {
	// Client, when set, does the HTTP requests, and the fields below are
	// not used. Fetch never follows its redirects whatever its
	// CheckRedirect says.
	Client *http.Client
	// Resolver resolves the policy host. Nil: the system's resolver.
	Resolver resolve.Resolver
	// Dialer opens the TCP connections: the policy host's addresses,
	// found through Resolver, are dialed through it, so its address
	// policy applies. Nil: a *dial.Net with no address policy.
	Dialer dial.Dialer
	// RootCAs are the trusted roots. Nil: the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds one fetch. Zero: DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger // nil: no logging
}

// PolicyURL is where the policy of domain is served (RFC 8461 §3.3).
func PolicyURL(domain dnsname.Name) string {
	return "https://mta-sts." + string(domain) + WellKnownPath
}

// Fetch gets and parses the policy of domain. A failure to get it is a
// *FetchError; a policy that was served but does not parse is an error
// wrapping ErrPolicySyntax (then text holds what was served).
func (f *Fetcher) Fetch(ctx context.Context, domain dnsname.Name) (p *Policy, text string, err error) {
	u := PolicyURL(domain)
	if f.Logger != nil {
		start := time.Now()
		defer func() {
			f.Logger.Debug("mta-sts policy fetch", "url", u, "ok", err == nil, "err", err, "duration", time.Since(start))
		}()
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d).Round(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	text, err = f.get(ctx, u)
	if fe, ok := errors.AsType[*FetchError](err); ok && fe.Stage == StageTimeout {
		fe.Err = fmt.Errorf("no complete answer within %v: %w", timeout, fe.Err)
	}
	if err != nil {
		return nil, "", err
	}
	p, err = ParsePolicy(text)
	if err != nil {
		return nil, text, err
	}
	return p, text, nil
}

// get does the HTTPS GET and the checks of RFC 8461 §3.3 on the response.
func (f *Fetcher) get(ctx context.Context, u string) (string, error) {
	fail := func(stage Stage, err error) error { return &FetchError{URL: u, Stage: stage, Err: err} }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fail(StageHTTP, err)
	}
	// RFC 8461 §3.3: HTTP caching must not be used.
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := f.client().Do(req)
	if err != nil {
		stage := classify(ctx, err)
		// The *url.Error wrapper repeats the method and URL.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", fail(stage, err)
	}
	defer resp.Body.Close()
	if err := ctx.Err(); err != nil {
		// The answer raced the deadline; past it, nothing counts.
		return "", fail(StageTimeout, err)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed".
		where := resp.Header.Get("Location")
		if where == "" {
			where = "no Location"
		}
		return "", fail(StageRedirect, fmt.Errorf("%w (%s to %s)", ErrRedirect, resp.Status, printable.Cut(where, 200)))
	case resp.StatusCode != http.StatusOK:
		// RFC 8461 §3.3: a policy is only valid with status 200 (OK).
		return "", fail(StageStatus, fmt.Errorf("%w: %s", ErrHTTPStatus, resp.Status))
	}
	// RFC 8461 §3.2: the media type must be text/plain; parameters such as
	// charset do not matter.
	if ct := resp.Header.Get("Content-Type"); mediaType(ct) != "text/plain" {
		if ct == "" {
			ct = "none"
		}
		return "", fail(StageContentType, fmt.Errorf("%w (Content-Type: %s)", ErrContentType, printable.Cut(ct, 100)))
	}
	if resp.ContentLength > MaxPolicySize {
		return "", fail(StageSize, fmt.Errorf("%w (Content-Length %d, limit %d bytes)", ErrTooLarge, resp.ContentLength, MaxPolicySize))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err == nil && ctx.Err() != nil {
		// The deadline cut the body short; what was read is not the policy.
		err = ctx.Err()
	}
	if err != nil {
		return "", fail(classify(ctx, err), fmt.Errorf("reading the body: %w", err))
	}
	if len(body) > MaxPolicySize {
		return "", fail(StageSize, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxPolicySize))
	}
	return string(body), nil
}

// client returns the HTTP client for one fetch, never following redirects.
func (f *Fetcher) client() *http.Client {
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if f.Client != nil {
		c := *f.Client
		c.CheckRedirect = noRedirect
		return &c
	}
	// One transport per fetch, without keep-alives: a policy is fetched
	// once per domain, and nothing is left open afterwards.
	t := &http.Transport{
		DialContext:            f.dial,
		TLSClientConfig:        &tls.Config{RootCAs: f.RootCAs, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:      true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	return &http.Client{Transport: t, CheckRedirect: noRedirect}
}

// stageError marks an error of the dial step with its stage.
type stageError struct {
	stage Stage
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// dial resolves the host through f.Resolver (when set) and connects to its
// addresses in the order served, IPv6 and IPv4 alike.
func (f *Fetcher) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d dial.Dialer = &dial.Net{}
	if f.Dialer != nil {
		d = f.Dialer
	}
	if f.Resolver == nil {
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			if _, ok := errors.AsType[*net.DNSError](err); ok {
				return nil, &stageError{StageDNS, err}
			}
			if errors.Is(err, dial.ErrForbidden) {
				return nil, &stageError{StageForbidden, err}
			}
			return nil, &stageError{StageConnect, err}
		}
		return c, nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &stageError{StageConnect, err}
	}
	addrs, err := f.lookup(ctx, host)
	if err != nil {
		return nil, &stageError{StageDNS, err}
	}
	var errs []error
	forbidden := 0
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if errors.Is(err, dial.ErrForbidden) {
			forbidden++
		}
		if ctx.Err() != nil {
			break
		}
	}
	if forbidden == len(addrs) {
		// Not one address was allowed: nothing is known of the host
		// (docs/security.md#what-serve-refuses), which is no failure of it.
		return nil, &stageError{StageForbidden, errors.Join(errs...)}
	}
	return nil, &stageError{StageConnect, errors.Join(errs...)}
}

// maxAddresses bounds how many addresses of the policy host are tried.
const maxAddresses = 8

// lookup finds the A and AAAA records of host at once. It fails only when
// neither gives an address.
func (f *Fetcher) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	qtypes := []uint16{dns.TypeAAAA, dns.TypeA}
	res := make([]*resolve.Result, len(qtypes))
	errs := make([]error, len(qtypes))
	var wg sync.WaitGroup
	for i, qt := range qtypes {
		wg.Go(func() { res[i], errs[i] = resolve.Follow(ctx, f.Resolver, resolve.Q(dns.Fqdn(host), qt)) })
	}
	wg.Wait()
	var addrs []netip.Addr
	nx := false
	for _, r := range res {
		if r == nil {
			continue
		}
		nx = nx || r.NXDomain
		for _, rr := range r.Records {
			if a, ok := resolve.AddrOf(rr); ok && len(addrs) < maxAddresses {
				addrs = append(addrs, a)
			}
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case errs[0] != nil || errs[1] != nil:
		return nil, errors.Join(errs...)
	case nx:
		return nil, fmt.Errorf("%w: %s does not exist (NXDOMAIN)", ErrNoAddress, host)
	}
	return nil, fmt.Errorf("%w: %s has no A or AAAA record", ErrNoAddress, host)
}

// classify names the stage an error of client.Do or of the body read
// belongs to.
func classify(ctx context.Context, err error) Stage {
	if se, ok := errors.AsType[*stageError](err); ok {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return StageTimeout
		}
		return se.stage
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return StageTimeout
	}
	if isTLSError(err) {
		return StageTLS
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return StageTimeout
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return StageDNS
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return StageConnect
	}
	return StageHTTP
}

func isTLSError(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.ECHRejectionError](err); ok {
		return true
	}
	// The handshake's other failures, and alerts from the server ("remote
	// error: tls: ..."), are plain errors.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return strings.Contains(ue.Err.Error(), "tls: ")
	}
	return false
}

// mediaType returns the lower-case type/subtype of a Content-Type value,
// or "" when there is none. A malformed parameter list does not hide a
// correct type (RFC 8461 §3.2: parameters are ignored).
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/send"
	"github.com/mxtrace/mxtrace/serve"
	"github.com/mxtrace/mxtrace/spf"
)

// relayGrace is how long a stopping relay lets SMTP sessions in progress
// finish (a client in the middle of DATA gets its 250 or its error), and
// lets the deliverer end its sessions, before it cuts them.
const relayGrace = 30 * time.Second

// relayOptions are relay's own flags (docs/relay.md#usage).
type relayOptions struct {
	domains            []string
	listen, queue      string
	hostname, self     string
	recipients         string
	callout            bool
	acceptAny          bool
	downPolicy         string
	tlsCert, tlsKey    string
	maxSize            int64
	maxConns, perConns int
	rate               float64
	burst              int
	lifetime, delay    time.Duration
	retryBase          time.Duration
	retryFactor        float64
	retryMax           time.Duration
	perDestination     int
	probeEvery         time.Duration
	http               string
	allowPrivate       bool
	httpsPort          int
	cpuProfile         string
	blockProfile       string
}

func relayCommand(g *globals) *cobra.Command {
	o := &relayOptions{}
	cmd := &cobra.Command{
		Use:   "relay --domain DOMAIN... [--listen ADDR] [--queue PATH|postgres://...]",
		Short: "Run a backup MX: take mail for your domains while the primary is down, deliver it when it is back",
		Long: `relay is a backup MX (a lower-preference exchange, RFC 5321 §5.1) for the
--domain domains, without the usual weaknesses of one (docs/relay.md):

  - It accepts mail for those domains only: anything else, and every classic
    open-relay trick (user%other@D, source routes, quoted "@", IP literals),
    gets 550 5.7.1 at RCPT.
  - It refuses at RCPT what the primary would refuse, so it never bounces
    mail later (backscatter): recipients come from --recipients FILE (one
    address or @domain per line, reloaded on SIGHUP), or --callout asks the
    primary tier (RCPT, then RSET) and caches the answer. --down-policy says
    what a callout does while the primary is down: tempfail (451 for every
    recipient not known) or known (accept the recipients the primary
    accepted before, 451 for the others). One of the two is required:
    --accept-any-recipient instead takes every local part of the domains,
    and brings backscatter back (mail the primary refuses is bounced
    later, usually to a forged sender).
  - It applies the primary's sender policy: SPF, recorded in Received-SPF,
    DMARC p=reject failures refused, the --max-size limit, per-client
    connection and rate limits, STARTTLS with --tls-cert and --tls-key.
  - Every message is on disk (fsynced) before its 250: SQLite by default,
    or PostgreSQL (--queue postgres://...) for several relays sharing one
    queue.
  - It delivers to the primary tier only (never to itself or to an exchange
    of its own preference or worse: --self), with the destination's MTA-STS
    and DANE, retrying with backoff B(n) = min(--retry-max,
    --retry-base × --retry-factor^n) plus jitter; while it holds mail for a
    domain it probes the primary every --probe-every, so the queue is
    flushed within seconds of its return. After --lifetime a delivery status
    notification (RFC 3464) goes to the sender, never to the null sender.

With --http ADDR it also serves the web site of mxtrace serve, with the
queue at /queue and /api/v1/queue and the relay's metrics on /metrics. The
queue page shows envelope addresses: keep ADDR on loopback, or behind a
proxy that authenticates.

The relay's outbound connections (deliveries, callouts, probes) refuse
loopback, private and other non-public addresses unless --allow-private:
the primary on a private network needs it.

Signals: SIGHUP reloads --recipients (a file with a bad line keeps the
list in use); SIGINT or SIGTERM stops taking connections, lets the sessions
in progress finish (up to 30s), stops the deliveries and closes the queue.
mxtrace relay queue looks at and operates the queue.

Exit status: 0 stopped by a signal; 2 bad usage; 3 it could not listen or
open the queue.`,
		Example: `  mxtrace relay --domain example.com --hostname mx2.example.com --recipients /etc/mxtrace/recipients
  mxtrace relay --domain example.com --domain example.org --callout --down-policy known \
      --tls-cert /etc/ssl/mx2.pem --tls-key /etc/ssl/mx2.key --http 127.0.0.1:8025
  mxtrace relay --domain example.com --queue postgres://relay@db.example.com/mail --callout
  mxtrace relay queue list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.relay(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.domains, "domain", nil, "a `DOMAIN` this relay is a backup MX for (repeatable; required)")
	f.StringVar(&o.listen, "listen", ":25", "the `ADDR`ess (HOST:PORT) to take SMTP connections on")
	addQueueFlag(f, &o.queue)
	f.StringVar(&o.hostname, "hostname", "", "this relay's `NAME`: banner, EHLO, Received, DSNs (default: this machine's name, when fully qualified)")
	f.StringVar(&o.self, "self", "", "this relay's MX `NAME` in the domains' MX records: it never delivers to that exchange's tier or a worse one (default: --hostname)")
	f.StringVar(&o.recipients, "recipients", "", "accept only the recipients listed in `FILE` (one address, or @domain for all of a domain, per line; reloaded on SIGHUP)")
	f.BoolVar(&o.callout, "callout", false, "verify each recipient with the primary tier (RCPT, then RSET), caching the answers")
	f.BoolVar(&o.acceptAny, "accept-any-recipient", false, "verify no recipient: accept every local part of the domains, and bounce later what the primary refuses (backscatter, usually to forged senders); without it --recipients or --callout is required")
	f.StringVar(&o.downPolicy, "down-policy", string(relay.DownTempfail), "with --callout, while the primary is down: tempfail (451 for every recipient not in the callout cache) or known (also accept recipients the primary accepted within 30 days)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "offer STARTTLS with the certificate chain in PEM `FILE` (with --tls-key)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key of --tls-cert, in PEM `FILE`")
	f.Int64Var(&o.maxSize, "max-size", relay.DefaultMaxSize, "the largest message taken, in octets (SIZE, RFC 1870)")
	f.IntVar(&o.maxConns, "max-conns", 200, "SMTP connections open at once, at most")
	f.IntVar(&o.perConns, "max-conns-per-client", 10, "connections open at once from one client (IPv4 address, IPv6 /64), at most")
	f.Float64Var(&o.rate, "rate", 2, "messages a second one client may send, on average (0: no limit)")
	f.IntVar(&o.burst, "burst", 20, "messages a client may send at once before --rate applies")
	f.DurationVar(&o.lifetime, "lifetime", relay.DefaultLifetime, "how long a message is tried before it is returned to its sender")
	f.DurationVar(&o.delay, "delay-notice", 0, "send the sender one delay notice when a message has waited this long (0: none)")
	f.DurationVar(&o.retryBase, "retry-base", send.DefaultRetryBase, "first wait after a failed delivery (Tbase)")
	f.Float64Var(&o.retryFactor, "retry-factor", send.DefaultRetryFactor, "growth of each wait (k, at least 1)")
	f.DurationVar(&o.retryMax, "retry-max", send.DefaultRetryMax, "longest wait between two attempts (Tmax)")
	f.IntVar(&o.perDestination, "per-destination", relay.DefaultPerDestination, "delivery sessions open at once to one destination domain, at most")
	f.DurationVar(&o.probeEvery, "probe-every", relay.DefaultProbeEvery, "while mail waits for a domain, look at its primary tier this often (connect and EHLO)")
	f.StringVar(&o.http, "http", "", "also serve the web site, the queue page and the metrics on `ADDR` (HOST:PORT; keep it on loopback)")
	f.BoolVar(&o.allowPrivate, "allow-private", false, "let deliveries, callouts and probes connect to loopback, private and other non-public addresses")
	// As send's: the deliveries' MTA-STS policy fetches on another port,
	// so a test can serve a policy without port 443.
	f.IntVar(&o.httpsPort, "mta-sts-port", 443, "TCP `PORT` of the MTA-STS policy hosts (for tests)")
	_ = f.MarkHidden("mta-sts-port")
	// Profiling the relay under load (bench/relay.sh, docs/performance.md);
	// hidden: not for running a backup MX.
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (for go tool pprof)")
	f.StringVar(&o.blockProfile, "blockprofile", "", "write the block and mutex profiles of the run to `FILE` and FILE.mutex (for go tool pprof)")
	_ = f.MarkHidden("cpuprofile")
	_ = f.MarkHidden("blockprofile")
	cmd.AddCommand(relayQueueCommand(g))
	return cmd
}

// relaySetup is what the flags make, checked before anything starts.
type relaySetup struct {
	domains        []dnsname.Name
	hostname, self dnsname.Name
	tls            *tls.Config
	down           relay.DownPolicy
}

// check validates the flags: every mistake is bad usage, found before
// the queue is opened or a port taken.
func (o *relayOptions) check() (*relaySetup, error) {
	if len(o.domains) == 0 {
		return nil, usageError("--domain is required: the domains this relay is a backup MX for")
	}
	s := &relaySetup{}
	for _, d := range o.domains {
		n, err := dnsname.Parse(d)
		if err != nil {
			return nil, usageError("--domain: %w", err)
		}
		if strings.Contains(d, "@") {
			return nil, usageError("--domain %s: a domain, not an address", d)
		}
		s.domains = append(s.domains, n)
	}
	switch {
	case o.recipients != "" && o.callout:
		return nil, usageError("--recipients and --callout exclude each other: one way of verifying recipients")
	case o.downPolicy != string(relay.DownTempfail) && o.downPolicy != string(relay.DownKnown):
		return nil, usageError("--down-policy %q: want tempfail or known", o.downPolicy)
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return nil, usageError("--tls-cert and --tls-key go together")
	case o.maxSize < 1:
		return nil, usageError("--max-size %d: want a positive number of octets", o.maxSize)
	case o.maxConns < 1 || o.perConns < 1:
		return nil, usageError("--max-conns and --max-conns-per-client: want at least 1")
	case o.perConns > o.maxConns:
		return nil, usageError("--max-conns-per-client %d is more than --max-conns %d", o.perConns, o.maxConns)
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return nil, usageError("--rate %v: want 0 (no limit) or a positive number of messages a second", o.rate)
	case o.rate > 0 && o.burst < 1:
		return nil, usageError("--burst %d: want at least 1", o.burst)
	case o.lifetime <= 0:
		return nil, usageError("--lifetime %v: want a positive duration, such as 120h", o.lifetime)
	case o.delay < 0 || (o.delay > 0 && o.delay >= o.lifetime):
		return nil, usageError("--delay-notice %v: want 0 (none) or less than --lifetime", o.delay)
	// !(x >= 1) refuses NaN too; +Inf is no growth factor either.
	case !(o.retryFactor >= 1) || math.IsInf(o.retryFactor, 1) || o.retryBase <= 0 || o.retryMax <= 0:
		return nil, usageError("--retry-base and --retry-max must be positive and --retry-factor a number at least 1")
	case o.perDestination < 1:
		return nil, usageError("--per-destination %d: want at least 1", o.perDestination)
	case o.probeEvery <= 0:
		return nil, usageError("--probe-every %v: want a positive duration, such as 2s", o.probeEvery)
	case o.httpsPort < 1 || o.httpsPort > 65535:
		return nil, usageError("--mta-sts-port %d: not a TCP port", o.httpsPort)
	}
	s.down = relay.DownPolicy(o.downPolicy)
	if err := o.names(s); err != nil {
		return nil, err
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, usageError("--tls-cert, --tls-key: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, o.verification()
}

// verification checks that recipients are verified, or that the operator
// chose not to in so many words: a backup MX that takes every local part
// bounces what the primary refuses, days later and usually to a forged
// sender (backscatter, the weakness the relay exists to remove; issue 19
// item 2), so accepting everything is never the default.
func (o *relayOptions) verification() error {
	switch {
	case o.acceptAny && (o.recipients != "" || o.callout):
		return usageError("--accept-any-recipient excludes --recipients and --callout: one way of verifying recipients")
	case !o.acceptAny && o.recipients == "" && !o.callout:
		return usageError("no recipient verification: give --recipients FILE or --callout (or --accept-any-recipient, which brings backscatter back: mail the primary refuses is bounced later)")
	}
	return nil
}

// names sets the relay's host name and its MX name (--self): both fully
// qualified, since they go in the banner, Received fields and DSNs, and
// the planner prunes by the MX name.
func (o *relayOptions) names(s *relaySetup) error {
	host := o.hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil || !strings.Contains(strings.Trim(h, "."), ".") {
			return usageError("this machine's name %q is not fully qualified: give --hostname (the relay's name in the domains' MX records)", h)
		}
		host = h
	}
	n, err := dnsname.Parse(host)
	if err != nil {
		return usageError("--hostname: %w", err)
	}
	s.hostname, s.self = n, n
	if o.self != "" {
		if s.self, err = dnsname.Parse(o.self); err != nil {
			return usageError("--self: %w", err)
		}
	}
	return nil
}

// relay runs the relay until SIGINT or SIGTERM.
func (g *globals) relay(cmd *cobra.Command, o *relayOptions) error {
	setup, err := o.check()
	if err != nil {
		return err
	}
	roots, err := g.rootCAs()
	if err != nil {
		return err
	}
	var list *relay.StaticList
	if o.recipients != "" {
		if list, err = relay.LoadStaticList(o.recipients); err != nil {
			return usageError("--recipients: %w", err)
		}
	}
	// A daemon's log: what it does is worth a line at info; -v adds
	// every DNS lookup.
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	core, err := g.dnsWith(func(cfg stub.Config) (resolve.Resolver, error) { return stub.New(cfg) }, false, resolve.CacheLimits{Entries: serveCacheEntries})
	if err != nil {
		return err
	}
	// A domain's MX and MTA-STS records are pointers whoever controls its
	// DNS sets: deliveries, callouts and probes connect to public
	// addresses only unless --allow-private (docs/security.md).
	g.policy = &dial.Policy{AllowPrivate: o.allowPrivate}

	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.blockProfile != "" {
		stop := startBlockProfile(o.blockProfile, g.logger)
		defer stop()
	}
	ctx := cmd.Context()
	q, err := openQueue(ctx, o.queue)
	if err != nil {
		return err
	}
	defer q.Close()

	reg := prometheus.NewRegistry()
	metrics := relay.NewMetrics(reg, q.Stats)
	// The planner of deliveries and callouts prunes the relay's own tier
	// and every worse one (RFC 5321 §5.1, --self).
	planner := g.planner(cmd, core.resolver, 0)
	planner.Self = setup.self
	hostname := setup.hostname.String()

	var verifier relay.RecipientVerifier
	switch {
	case list != nil:
		verifier = list
	case o.callout:
		c := &relay.Callout{
			Planner: planner, Dialer: g.dialer(), Port: g.smtpPort, HelloName: hostname,
			Down: setup.down, Timeouts: dial.SMTPTimeouts{Session: g.timeout}, Logger: g.logger,
		}
		relay.RegisterCallout(reg, c)
		verifier = c
	default: // --accept-any-recipient: check() allows nothing else here
		g.logger.Warn("relay: --accept-any-recipient: every recipient of the domains is accepted, and mail for those the primary refuses will bounce later (backscatter)")
	}

	// The destination's MTA-STS (RFC 8461) and DANE (RFC 7672) always
	// apply to deliveries: a relay that delivered in plaintext what the
	// destination requires over authenticated TLS would be the weak path
	// around its policy (docs/relay.md#delivery).
	fetcher := &mtasts.Fetcher{Resolver: core.resolver, RootCAs: roots, Timeout: g.timeout, Logger: g.logger, Dialer: g.dialer()}
	if o.httpsPort != 443 {
		fetcher.Dialer = portDialer{d: g.dialer(), port: strconv.Itoa(o.httpsPort)}
	}
	timeouts := dial.RFC5321Timeouts()
	timeouts.Connect = min(timeouts.Connect, g.timeout)
	deliverer := &relay.Deliverer{
		Queue: q,
		Sender: &send.Sender{
			Planner: planner, Resolver: core.resolver, Port: g.smtpPort, HelloName: hostname, RootCAs: roots,
			Dialer: g.dialer(), Timeouts: timeouts, Logger: g.logger,
			MTASTS: &mtasts.Options{Fetcher: fetcher, Logger: g.logger}, DANE: &dane.Options{Logger: g.logger},
		},
		Retry:          send.Retry{Base: o.retryBase, Factor: o.retryFactor, Max: o.retryMax},
		Lifetime:       o.lifetime,
		DelayNotice:    o.delay,
		PerDestination: o.perDestination,
		ProbeEvery:     o.probeEvery,
		Hostname:       hostname,
		Domains:        setup.domains,
		Metrics:        metrics,
		Logger:         g.logger,
	}
	srv, err := relay.NewServer(relay.Config{
		Domains:    setup.domains,
		Hostname:   hostname,
		Queue:      q,
		Recipients: verifier,
		Auth: &relay.Authenticator{
			// Receiver is %{r} (RFC 7208 §7.3): the checking host, this relay.
			SPF:      &spf.Checker{Resolver: core.resolver, Logger: g.logger, Timeout: g.timeout, Receiver: hostname},
			Resolver: core.resolver, Hostname: hostname, Logger: g.logger,
		},
		MaxSize:           o.maxSize,
		TLS:               setup.tls,
		MaxConns:          o.maxConns,
		MaxConnsPerClient: o.perConns,
		Rate:              o.rate,
		Burst:             o.burst,
		Lifetime:          o.lifetime,
		Metrics:           metrics,
		Logger:            g.logger,
		Accepted:          func(queue.ID) { deliverer.Wake() },
	})
	if err != nil {
		return usageError("%w", err)
	}
	var site *serve.Server
	if o.http != "" {
		if site, err = g.relaySite(cmd, core, roots, q, reg); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return &exitError{exitFailed, fmt.Errorf("--listen: %w", err)}
	}
	var hln net.Listener
	if site != nil {
		if hln, err = net.Listen("tcp", o.http); err != nil {
			ln.Close()
			return &exitError{exitFailed, fmt.Errorf("--http: %w", err)}
		}
	}
	return g.runRelay(ctx, relayParts{smtp: srv, ln: ln, deliverer: deliverer, site: site, hln: hln, list: list}, setup, o)
}

// relayParts are the running relay's pieces.
type relayParts struct {
	smtp      *relay.Server
	ln        net.Listener
	deliverer *relay.Deliverer
	site      *serve.Server // nil without --http
	hln       net.Listener
	list      *relay.StaticList // nil without --recipients
}

// runRelay runs the parts until ctx ends or SIGTERM, then stops them in
// order: no new connection, the sessions in progress finish (their
// messages are queued), the deliveries end, the site ends. The caller
// closes the queue after.
func (g *globals) runRelay(ctx context.Context, p relayParts, setup *relaySetup, o *relayOptions) error {
	// SIGINT comes through main's context; a service manager stops a
	// daemon with SIGTERM.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	if p.list != nil {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}

	failed := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.smtp.Serve(p.ln); err != nil {
			failed <- fmt.Errorf("smtp: %w", err)
		}
	})
	dctx, stopDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDeliveries()
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		if err := p.deliverer.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
			failed <- fmt.Errorf("deliveries: %w", err)
		}
	}()
	sctx, stopSite := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSite()
	if p.site != nil {
		wg.Go(func() {
			if err := p.site.Serve(sctx, p.hln, serveGrace); err != nil {
				failed <- fmt.Errorf("http: %w", err)
			}
		})
	}
	attrs := []any{"smtp", p.ln.Addr().String(), "domains", domainList(setup.domains), "hostname", setup.hostname.String(),
		"self", setup.self.String(), "recipients", recipientsMode(o)}
	if p.hln != nil {
		attrs = append(attrs, "http", "http://"+p.hln.Addr().String()+"/")
	}
	g.logger.Info("relay: listening", attrs...)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-failed:
			runErr = err
			break loop
		case <-hup:
			if err := p.list.Reload(); err != nil {
				g.logger.Error("relay: reloading --recipients failed; the list in use stays", "error", err)
				continue
			}
			g.logger.Info("relay: --recipients reloaded", "entries", p.list.Len())
		}
	}

	g.logger.Info("relay: stopping", "grace", relayGrace)
	gctx, cancel := context.WithTimeout(context.Background(), relayGrace)
	defer cancel()
	if err := p.smtp.Shutdown(gctx); err != nil {
		g.logger.Warn("relay: sessions cut at the end of the grace period", "error", err)
	}
	stopDeliveries()
	<-delivered
	stopSite()
	wg.Wait()
	if runErr != nil {
		return &exitError{exitFailed, runErr}
	}
	g.logger.Info("relay: stopped")
	return nil
}

// relaySite is the web site of serve for --http, with the queue and the
// relay's metrics. Its planner is a plain one (the site answers for any
// domain, so without --self).
func (g *globals) relaySite(cmd *cobra.Command, core *dnsCore, roots *x509.CertPool, q *queue.Queue, reg *prometheus.Registry) (*serve.Server, error) {
	planner := g.planner(cmd, core.resolver, 0)
	a := g.auditor(core, planner, nil, nil, false)
	prober := g.checkProber(roots, "", "")
	if !core.offline {
		a.Probe = prober
	}
	site, err := serve.New(serve.Config{
		Resolver: core.resolver,
		Planner:  planner,
		Auditor:  a,
		Prober: &probe.Auditor{Prober: prober, Resolver: core.resolver, Planner: planner, DANE: &dane.Options{Logger: g.logger},
			IPv4: g.ipv4, IPv6: g.ipv6},
		SPF:       &spf.Checker{Resolver: core.resolver, Logger: g.logger, Timeout: g.timeout},
		Timeout:   g.timeout,
		MaxChecks: 4,
		Rate:      1,
		Burst:     20,
		Queue:     q,
		Metrics:   reg,
		Logger:    g.logger,
	})
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	return site, nil
}

// domainList is the domains for the log.
func domainList(ds []dnsname.Name) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}

// recipientsMode says how recipients are verified, for the log.
func recipientsMode(o *relayOptions) string {
	switch {
	case o.recipients != "":
		return "list " + o.recipients
	case o.callout:
		return "callout, down-policy " + o.downPolicy
	}
	return "any (--accept-any-recipient: backscatter risk)"
}

// startBlockProfile records where goroutines wait (channels, locks:
// runtime/pprof "block" and "mutex") until the returned function writes
// them to path and path+".mutex".
func startBlockProfile(path string, log *slog.Logger) (stop func()) {
	runtime.SetBlockProfileRate(int(time.Millisecond / 10))
	runtime.SetMutexProfileFraction(10)
	return func() {
		for name, file := range map[string]string{"block": path, "mutex": path + ".mutex"} {
			if err := writeProfile(name, file); err != nil {
				log.Error("relay: --blockprofile", "profile", name, "error", err)
			}
		}
	}
}

// writeProfile writes the runtime/pprof profile name to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

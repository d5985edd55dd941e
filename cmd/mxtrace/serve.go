package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/serve"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// serveCacheEntries bounds the DNS cache a server shares between all its
// requests (and the same again for the CD-bit cache). A check asks some
// fifty questions, so this keeps the answers of the last few thousand
// domains asked about, each for its TTL; at a few hundred bytes an answer
// that is some tens of megabytes at most, however long the server runs
// and whatever strangers ask (resolve.Cache drops the least recently used
// answers, and holds at most resolve.DefaultCacheBytes).
const serveCacheEntries = 100_000

// serveGrace is how long a stopping server lets requests in flight (a
// check, a scan stream) finish before it exits.
const serveGrace = 10 * time.Second

// serveOptions are serve's own flags.
type serveOptions struct {
	listen         string
	allowPrivate   bool
	helo           string
	maxChecks      int
	rate           float64
	burst          int
	trustProxy     []string
	maxScanDomains int
	maxScanBytes   int64
	db             string
	adminToken     string
	adminTokenFile string
}

// adminTokenEnv is the environment variable serve reads the admin token
// from when neither --admin-token-file nor --admin-token is given.
const adminTokenEnv = "MXTRACE_ADMIN_TOKEN"

// minAdminToken is the shortest admin token serve takes: the token is the
// one credential of a server open to strangers (who may guess at it within
// the rate limit).
const minAdminToken = 16

func serveCommand(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Serve the JSON API and the web page over HTTP",
		Long: `serve answers over HTTP with the same engine as the other commands: a JSON API
whose bodies are the objects route, check, probe, spf and scan print with
--json, a stream of a check's progress (server-sent events), and a web page
at / (docs/serve.md).

It is meant to be exposed to strangers, who may name any domain and so make
it connect to any host an MX record points to: every outbound connection
(SMTP probes, the MTA-STS policy fetch) refuses loopback, private,
link-local, multicast, documentation and reserved addresses at connect time,
unless --allow-private. It never sends mail and never runs the relay test.
Clients are rate-limited, concurrent checks are bounded, and every request
has the --timeout deadline.

One DNS cache, respecting TTLs and bounded in size, is shared by every
request. With --zone and no --resolver it runs offline on the zone files.

SIGINT or SIGTERM stops it: it stops accepting connections and lets the
requests in flight finish (for up to 10s).

With --db (the database of mxtrace watch, the same DSN: a SQLite file, ""
for the default one, or postgres://...) it also serves each watched domain's
history: GET /api/v1/history/{domain}, a timeline on the report page, and
/watches, the watched domains. Reading needs nothing; adding and removing a
watch (POST /api/v1/watches, DELETE /api/v1/watches/{domain}, the forms on
/watches) needs the admin token: --admin-token-file FILE, else the
environment variable MXTRACE_ADMIN_TOKEN, else --admin-token (which shows in
the process list). Without one, the list cannot be changed over HTTP.

Exit status: 0 stopped by a signal; 2 bad usage; 3 it could not listen or
open the database.`,
		Example: `  mxtrace serve --zone examples/example.zone --zone examples/reverse.zone
  mxtrace serve --listen [::]:8025 --trust-proxy 127.0.0.1/32
  mxtrace serve --resolver 127.0.0.1 --max-checks 8 --rate 0.5 --burst 5
  mxtrace serve --db "" --admin-token-file /etc/mxtrace/admin-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.serve(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8025", "the `ADDR`ess (HOST:PORT) to listen on")
	f.BoolVar(&o.allowPrivate, "allow-private", false, "let probes and fetches connect to loopback, private and other non-public addresses (a server on a private network)")
	f.StringVar(&o.helo, "helo", "", "the `NAME` to send with EHLO (default: this machine's name if fully qualified, else mxtrace.invalid)")
	f.IntVar(&o.maxChecks, "max-checks", 16, "checks, probes and scans running at once, at most; more get 503")
	f.Float64Var(&o.rate, "rate", 1, "requests a second each client may make, on average (per IPv4 address, per IPv6 /64)")
	f.IntVar(&o.burst, "burst", 20, "requests a client may make at once before --rate applies")
	f.StringSliceVar(&o.trustProxy, "trust-proxy", nil, "believe X-Forwarded-For from a reverse proxy in `CIDR` (repeatable)")
	f.IntVar(&o.maxScanDomains, "max-scan-domains", 1000, "domains in one POST /api/v1/scan body, at most")
	f.Int64Var(&o.maxScanBytes, "max-scan-bytes", 256<<10, "octets in one POST /api/v1/scan body, at most")
	f.StringVar(&o.db, "db", "", "serve the history of mxtrace watch from this database: a SQLite `FILE` (\"\": "+store.DefaultPath()+"), or postgres://…")
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "read the token that adding and removing watches needs from `FILE` (else $"+adminTokenEnv+")")
	f.StringVar(&o.adminToken, "admin-token", "", "the `TOKEN` that adding and removing watches needs (shows in the process list: prefer --admin-token-file)")
	return cmd
}

// serve checks the flags, wires the engine exactly as route, check, probe
// and spf wire it (with the address policy on the dialer), listens, and
// serves until SIGINT or SIGTERM.
func (g *globals) serve(cmd *cobra.Command, o *serveOptions) error {
	switch {
	case o.maxChecks < 1:
		return usageError("--max-checks %d: want at least 1", o.maxChecks)
	case o.rate <= 0 || o.rate != o.rate:
		return usageError("--rate %v: want a positive number of requests a second", o.rate)
	case o.burst < 1:
		return usageError("--burst %d: want at least 1", o.burst)
	case o.maxScanDomains < 1:
		return usageError("--max-scan-domains %d: want at least 1", o.maxScanDomains)
	case o.maxScanBytes < 1:
		return usageError("--max-scan-bytes %d: want at least 1", o.maxScanBytes)
	}
	useDB := cmd.Flags().Changed("db")
	token, err := adminToken(o, useDB)
	if err != nil {
		return err
	}
	proxies, err := parsePrefixes(o.trustProxy)
	if err != nil {
		return err
	}
	helo, err := parseOptionalName("--helo", o.helo)
	if err != nil {
		return err
	}
	roots, err := g.rootCAs()
	if err != nil {
		return err
	}
	// The server's own logger: what it does (listening, each request)
	// is worth a line at info; -v adds every DNS lookup.
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))

	core, err := g.dnsWith(func(cfg stub.Config) (resolve.Resolver, error) { return stub.New(cfg) }, true, resolve.CacheLimits{Entries: serveCacheEntries})
	if err != nil {
		return err
	}
	// An MX record, an MTA-STS host, an NS record and the addresses they
	// name are pointers their owner controls: every connection the
	// server opens for a stranger (g.dialer: the SMTP probes, the
	// MTA-STS fetch; the nameserver audit's direct questions) is checked
	// against the policy at connect time (docs/security.md).
	g.policy = &dial.Policy{AllowPrivate: o.allowPrivate}
	planner := g.planner(cmd, core.resolver, 0)
	a := g.auditor(core, planner, nil, nil, false)
	if !core.offline {
		// As check: offline, the SMTP areas are skipped with the
		// other network areas. Never a relay test (no RelayTo).
		a.Probe = g.checkProber(roots, helo, "")
	}
	prober := g.checkProber(roots, helo, "")
	var db store.Store
	if useDB {
		if db, err = openDB(cmd.Context(), o.db); err != nil {
			return err
		}
		defer db.Close()
	}
	srv, err := serve.New(serve.Config{
		Resolver: core.resolver,
		Planner:  planner,
		Auditor:  a,
		Prober: &probe.Auditor{
			Prober:   prober,
			Resolver: core.resolver,
			Planner:  planner,
			DANE:     &dane.Options{Logger: g.logger},
			IPv4:     g.ipv4,
			IPv6:     g.ipv6,
		},
		SPF:            &spf.Checker{Resolver: core.resolver, Logger: g.logger, Timeout: g.timeout},
		Timeout:        g.timeout,
		MaxChecks:      o.maxChecks,
		Rate:           o.rate,
		Burst:          o.burst,
		TrustProxy:     proxies,
		MaxScanDomains: o.maxScanDomains,
		MaxScanBytes:   o.maxScanBytes,
		Store:          db,
		AdminToken:     token,
		Logger:         g.logger,
	})
	if err != nil {
		return &exitError{exitFailed, err}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return &exitError{exitFailed, fmt.Errorf("--listen: %w", err)}
	}
	// SIGINT comes through main's context; a service manager (systemd,
	// Kubernetes) stops a server with SIGTERM.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
	defer stop()
	g.logger.Info("serve: listening", "addr", "http://"+ln.Addr().String()+"/", "offline", core.offline, "allow_private", o.allowPrivate,
		"history", useDB, "admin", token != "")
	if err := srv.Serve(ctx, ln, serveGrace); err != nil {
		return &exitError{exitFailed, err}
	}
	g.logger.Info("serve: stopped")
	return nil
}

// parsePrefixes reads --trust-proxy: CIDR prefixes, or single addresses.
func parsePrefixes(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		if !strings.Contains(v, "/") {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, usageError("--trust-proxy %q: not an address or a CIDR prefix", v)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, usageError("--trust-proxy %q: not an address or a CIDR prefix", v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// adminToken is the token --admin-token-file, $MXTRACE_ADMIN_TOKEN or
// --admin-token gives (in that order; a file and the flag at once is bad
// usage), "" when none does. It needs --db, and is at least minAdminToken
// characters long.
func adminToken(o *serveOptions, useDB bool) (string, error) {
	if o.adminTokenFile != "" && o.adminToken != "" {
		return "", usageError("--admin-token-file and --admin-token: give one")
	}
	token := o.adminToken
	if token == "" {
		t, err := watch.LoadSecret(adminTokenEnv, o.adminTokenFile)
		if err != nil {
			return "", usageError("--admin-token-file: %v", err)
		}
		token = strings.TrimSpace(t)
	}
	switch {
	case token == "":
		return "", nil
	case !useDB && o.adminToken == "" && o.adminTokenFile == "":
		return "", nil // the environment's token, for a server without watches
	case !useDB:
		return "", usageError("an admin token without --db: there are no watches to change")
	case len(token) < minAdminToken:
		return "", usageError("the admin token has %d characters: want at least %d (such as: openssl rand -hex 16)", len(token), minAdminToken)
	}
	return token, nil
}

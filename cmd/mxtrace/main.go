// Command mxtrace answers, for any mail domain: where does its mail go, in
// what order, and is it set up right?
//
// This file only parses flags, wires the packages together and maps results
// to exit statuses; the logic lives in the library packages.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command shares.
type globals struct {
	resolvers []string
	zones     []string
	timeout   time.Duration
	json      bool
	ipv4      bool
	ipv6      bool
	failOn    string
	verbose   bool
	smtpPort  int
	// nsPort is where the nameserver audit asks the zone's servers
	// (hidden --ns-port, for tests and benchmarks: bench/audit.sh's
	// servers answer on one loopback port, not on 53).
	nsPort  int
	caFiles []string
	// policy is the address policy of every outbound connection
	// (dialer) and of the nameserver audit's direct questions: nil for
	// the commands, set by serve.
	policy *dial.Policy

	stdin          io.Reader
	stdout, stderr io.Writer
	logger         *slog.Logger
}

// run executes one command line and returns its exit status. It is main
// without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "mxtrace",
		Short: "Where does a domain's mail go, in what order, and is it set up right?",
		Long: `mxtrace computes a mail domain's delivery plan exactly as an RFC 5321 sender
does (MX preference tiers, randomised equal preferences, implicit MX, Null MX)
and reports what is wrong with it.

Names are taken as domains or e-mail addresses (the part after the last @);
internationalised names are converted to A-labels.

Exit status (the same for every command): 0 the job was done and nothing is
at or above --fail-on; 1 a finding is at or above it; 2 bad usage or input;
3 the job could not be done (no usable answer for the domain's MX records,
or for check an area that could not be checked).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.ipv4 && g.ipv6 {
				return usageError("-4 and -6 exclude each other")
			}
			if g.smtpPort < 1 || g.smtpPort > 65535 {
				return usageError("--smtp-port %d: not a TCP port", g.smtpPort)
			}
			if g.nsPort < 1 || g.nsPort > 65535 {
				return usageError("--ns-port %d: not a port", g.nsPort)
			}
			if _, err := g.failSeverity(); err != nil {
				return usageError("--fail-on %q: want error, warning, info or never", g.failOn)
			}
			// An empty value (--zone "$UNSET") would silently mean no
			// zone file, and so the network.
			for _, name := range []string{"zone", "resolver", "ca", "dkim-selector", "dnsbl"} {
				f := cmd.Flags().Lookup(name)
				vals, _ := cmd.Flags().GetStringSlice(name)
				if f != nil && f.Changed && (len(vals) == 0 || slices.Contains(vals, "")) {
					return usageError("--%s: an empty value", name)
				}
			}
			if g.timeout <= 0 {
				return usageError("--timeout %v: want a positive duration, such as 20s or 1m", g.timeout)
			}
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			g.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.Version = readVersion(debug.ReadBuildInfo()).String()
	root.SetVersionTemplate("{{.Version}}\n")
	// Declared here so that --help describes it in the tool's words;
	// cobra only adds its own ("version for mxtrace") when none exists.
	root.Flags().Bool("version", false, "print mxtrace's version, the commit it was built from, and the Go that built it")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, flagError(err)} })

	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.resolvers, "resolver", nil, "DNS resolver `HOST[:PORT]` to ask (repeatable; default: the system's, from /etc/resolv.conf)")
	pf.StringSliceVar(&g.zones, "zone", nil, "answer from zone `FILE` instead of the network (repeatable); with --resolver, names outside the files are looked up on the network")
	pf.DurationVar(&g.timeout, "timeout", 20*time.Second, "time allowed for each domain")
	pf.BoolVar(&g.json, "json", false, "print JSON, one object per domain")
	pf.BoolVarP(&g.ipv4, "ipv4", "4", false, "IPv4 only")
	pf.BoolVarP(&g.ipv6, "ipv6", "6", false, "IPv6 only")
	pf.StringVar(&g.failOn, "fail-on", "error", "exit 1 when a finding has at least this `severity` (error, warning, info or never)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log every DNS lookup to stderr")
	pf.IntVar(&g.smtpPort, "smtp-port", 25, "TCP `PORT` of the exchanges' SMTP service (for tests; TLSA records are still looked up at _25._tcp)")
	pf.IntVar(&g.nsPort, "ns-port", 53, "UDP and TCP `PORT` the nameserver audit asks the zone's servers on (for tests and benchmarks)")
	_ = pf.MarkHidden("ns-port")
	pf.StringSliceVar(&g.caFiles, "ca", nil, "also trust the CA certificates in PEM `FILE` when verifying SMTP servers (repeatable)")

	root.AddCommand(routeCommand(g))
	root.AddCommand(spfCommand(g))
	root.AddCommand(checkCommand(g))
	root.AddCommand(scanCommand(g))
	root.AddCommand(probeCommand(g))
	root.AddCommand(sendCommand(g))
	root.AddCommand(serveCommand(g))
	root.AddCommand(watchCommand(g))
	root.AddCommand(historyCommand(g))
	root.AddCommand(diffCommand(g))
	root.AddCommand(relayCommand(g))
	root.AddCommand(versionCommand(g))

	err := root.Execute()
	code := exitStatus(err)
	if code != exitOK && code != exitFindings {
		fmt.Fprintf(stderr, "mxtrace: %s\n", errorLine(err))
	}
	return code
}

// failSeverity parses --fail-on; 0 means never.
func (g *globals) failSeverity() (finding.Severity, error) {
	if g.failOn == "never" {
		return 0, nil
	}
	return finding.ParseSeverity(g.failOn)
}

// isTerminal reports whether r is a terminal (so not a pipe or a file).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// color reports whether stdout is a terminal and NO_COLOR is unset
// (https://no-color.org).
func (g *globals) color() bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	return isTerminal(g.stdout)
}

// parseNames validates every input before any query is sent, so a typo in
// the fifth name does not leave four half-printed results behind. An IP
// address gets a hint: route and check look up a mail domain's MX records,
// and probe is the command that talks to one address.
func parseNames(args []string) ([]dnsname.Name, error) {
	names := make([]dnsname.Name, 0, len(args))
	for _, a := range args {
		n, err := parseName(a)
		if err != nil {
			return nil, hintIP(err, func(addr string) string {
				return "give a mail domain instead, or talk to that server with mxtrace probe " + literalAddress(addr)
			})
		}
		names = append(names, n)
	}
	return names, nil
}

// parseName validates a domain (or e-mail address) typed as an argument:
// bad input is a usage error.
func parseName(arg string) (dnsname.Name, error) {
	n, err := dnsname.Parse(arg)
	if err != nil {
		return "", &exitError{exitUsage, err}
	}
	return n, nil
}

// hintIP adds what to do instead (hint, given the address as written) to
// the error of an IP address or an address literal typed where a domain
// is expected.
func hintIP(err error, hint func(addr string) string) error {
	if e, ok := errors.AsType[*dnsname.Error](err); ok && e.Address {
		return usageError("%w; %s", err, hint(e.Label))
	}
	return err
}

// dnsCore is the DNS core the flags ask for.
type dnsCore struct {
	// resolver is the run's one cache, shared by every lookup.
	resolver resolve.Resolver
	// checkingDisabled asks the same servers with the CD bit (for telling
	// DNSSEC-bogus zones apart); nil when offline.
	checkingDisabled resolve.Resolver
	// offline: only --zone files, no network at all.
	offline bool
	// direct asks the nameserver audit's direct questions (scan --mode
	// check); nil: nameserver.StubDirect, a socket per question.
	direct *muxDirect
}

// resolver returns the shared cache the flags ask for.
func (g *globals) resolver() (resolve.Resolver, error) {
	d, err := g.dns()
	if err != nil {
		return nil, err
	}
	return d.resolver, nil
}

// dns builds the DNS core of the interactive commands, asking the network
// through stub resolvers.
func (g *globals) dns() (*dnsCore, error) {
	return g.dnsWith(func(cfg stub.Config) (resolve.Resolver, error) { return stub.New(cfg) }, true, resolve.CacheLimits{})
}

// dnsWith builds the DNS core: zone files, resolvers made by transport
// for the --resolver servers (or the system's), or both (names outside
// the files go to the network), behind one cache within limits (zero
// fields: resolve's defaults). withCD adds the same servers asked with the
// CD bit, for telling DNSSEC-bogus zones apart, behind a cache of its own
// within the same limits.
func (g *globals) dnsWith(transport func(stub.Config) (resolve.Resolver, error), withCD bool, limits resolve.CacheLimits) (*dnsCore, error) {
	var zones resolve.Resolver
	if len(g.zones) > 0 {
		z, err := resolve.LoadZones(g.zones...)
		if err != nil {
			return nil, usageError("--zone: %w", err)
		}
		zones = z
	}
	if zones != nil && len(g.resolvers) == 0 {
		return &dnsCore{resolver: resolve.NewCacheLimits(zones, limits), offline: true}, nil
	}
	servers := g.resolvers
	if len(servers) == 0 {
		var err error
		if servers, err = stub.SystemServers("/etc/resolv.conf"); err != nil {
			return nil, &exitError{exitFailed, fmt.Errorf("no --resolver given and the system's resolvers are unknown: %w", err)}
		}
	}
	network := func(cd bool) (resolve.Resolver, error) {
		r, err := transport(stub.Config{
			Servers:          servers,
			Timeout:          min(2*time.Second, g.timeout/4),
			CheckingDisabled: cd,
			Logger:           g.logger,
		})
		if err != nil {
			return nil, usageError("--resolver: %w", err)
		}
		if zones != nil {
			return resolve.Fallback{Primary: zones, Secondary: r}, nil
		}
		return r, nil
	}
	r, err := network(false)
	if err != nil {
		return nil, err
	}
	core := &dnsCore{resolver: resolve.NewCacheLimits(r, limits)}
	if withCD {
		cd, err := network(true)
		if err != nil {
			return nil, err
		}
		core.checkingDisabled = resolve.NewCacheLimits(cd, limits)
	}
	return core, nil
}

// planner is the route planner the commands share: the run's resolver,
// the -4/-6 filters, and the command's --seed when it was given.
func (g *globals) planner(cmd *cobra.Command, r resolve.Resolver, seed uint64) *route.Planner {
	p := &route.Planner{Resolver: r, Logger: g.logger, IPv4: g.ipv4, IPv6: g.ipv6}
	if f := cmd.Flags().Lookup("seed"); f != nil && f.Changed {
		p.Seed, p.HasSeed = seed, true
	}
	return p
}

// smtpCore is what the commands that talk SMTP (check, probe, send) start
// from: the DNS core and the roots that verify the servers' certificates.
func (g *globals) smtpCore() (*dnsCore, *x509.CertPool, error) {
	roots, err := g.rootCAs()
	if err != nil {
		return nil, nil, err
	}
	core, err := g.dns()
	if err != nil {
		return nil, nil, err
	}
	return core, roots, nil
}

// rootCAs is the system's trusted roots plus the --ca files; nil (meaning
// the system's roots) when no --ca is given.
func (g *globals) rootCAs() (*x509.CertPool, error) {
	if len(g.caFiles) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range g.caFiles {
		pem, err := readFile(f, maxCAFile)
		if err != nil {
			return nil, usageError("--ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--ca %s: no PEM certificate in the file", f)
		}
	}
	return pool, nil
}

// maxCAFile bounds a --ca file: a system's whole bundle of roots is a few
// hundred KiB.
const maxCAFile = 10 << 20

// readFile reads the file a flag names, refusing one over limit octets
// (--ca /dev/zero, a wrong file): the read stops there.
func readFile(name string, limit int) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is larger than %d octets", name, limit)
	}
	return b, nil
}

// flagError words a flag value that does not parse for a person: pflag
// says 'invalid argument "1" for "--timeout" flag: time: missing unit in
// duration "1"', naming Go's parser.
func flagError(err error) error {
	e, ok := errors.AsType[*pflag.InvalidValueError](err)
	if !ok {
		return err
	}
	want := map[string]string{
		"duration": "a duration with its unit, such as 20s or 1m",
		"int":      "a whole number",
		"uint":     "a whole number, 0 or more",
		"uint64":   "a whole number, 0 or more",
		"float64":  "a number",
		"bool":     "true or false",
	}[e.GetFlag().Value.Type()]
	if want == "" {
		return err
	}
	return fmt.Errorf("--%s %q: want %s", e.GetFlag().Name, e.GetValue(), want)
}

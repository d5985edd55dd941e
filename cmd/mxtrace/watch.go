package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// minEvery is the shortest period of a watch: a domain's DNS and its
// exchanges are not asked more often than once a minute.
const minEvery = time.Minute

// addDBFlag declares --db on a command that opens the store.
func addDBFlag(f *pflag.FlagSet, db *string) {
	f.StringVar(db, "db", "", "the database: a SQLite `FILE`, or postgres://… for PostgreSQL (default "+store.DefaultPath()+")")
}

// openDB opens the store --db names: a PostgreSQL URL, or a SQLite file
// (store.DefaultPath() when none is given). A database that cannot be
// opened is a job that could not be done.
func openDB(ctx context.Context, dsn string) (store.Store, error) {
	if dsn == "" {
		dsn = store.DefaultPath()
	}
	s, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("--db: %w", err)}
	}
	return s, nil
}

// storeFailed is the exit error of a store that failed after it opened.
func storeFailed(err error) error {
	return &exitError{exitFailed, err}
}

func watchCommand(g *globals) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Watch domains: check them on a schedule, keep every result, alert on change",
		Long: `watch keeps a list of domains in a database (SQLite by default, PostgreSQL
with --db postgres://...), checks each one on its own schedule exactly as
check does, and stores every result whole with the typed facts a diff needs.
Each change between two results (an exchange removed, a DMARC policy
weakened, a certificate renewed, a blacklist listing...) is kept, and sent
to the watch's alert targets: a webhook, an e-mail address, or a log line.

  watch add DOMAIN...     start watching (or change a watch's period and alerts)
  watch remove DOMAIN...  stop watching (the history stays)
  watch list              every watch, its last status and its next run
  watch run               the daemon (with --once: check what is due, and exit)

See also mxtrace history and mxtrace diff, which read the same database.`,
		Example: `  mxtrace watch add example.com --every 30m
  mxtrace watch list
  mxtrace watch run --once --all
  mxtrace watch run --concurrency 32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("watch needs a command: add, remove, list or run (mxtrace watch --help)")
		},
	}
	addDBFlag(cmd.PersistentFlags(), &db)
	cmd.AddCommand(watchAddCommand(g, &db), watchRemoveCommand(g, &db), watchListCommand(g, &db), watchRunCommand(g, &db))
	return cmd
}

func watchAddCommand(g *globals, db *string) *cobra.Command {
	var (
		every  time.Duration
		alerts []string
		from   string
	)
	cmd := &cobra.Command{
		Use:   "add [--from FILE] DOMAIN|ADDRESS...",
		Short: "Watch domains: check each every --every, alerting --alert on change",
		Long: `add starts watching each domain, or changes the period and alert targets of
a domain already watched (its history stays). A new watch is due at once:
the next watch run checks it.

--alert takes a webhook URL (https://..., the JSON body signed with
HMAC-SHA256), mailto:ADDRESS (an e-mail through the submission server watch
run is given), or log (a line in watch run's log); repeat it for several.
Changing a watch replaces its targets with those given.

--from FILE adds the domains listed in FILE (- for standard input) too: one
a line, blank lines and # comments skipped. Every name is checked before the
database is touched, and all of them are added in one transaction.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			if from != "" {
				listed, err := readNameList(from, g.stdin)
				if err != nil {
					return err
				}
				names = append(names, listed...)
			}
			if len(names) == 0 {
				return usageError("watch add needs a domain, or --from FILE with one")
			}
			if every < minEvery {
				return usageError("--every %v: want at least %v", every, minEvery)
			}
			targets, err := alertTargets(alerts)
			if err != nil {
				return err
			}
			s, err := openDB(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer s.Close()
			return g.watchAdd(cmd.Context(), s, names, every, targets)
		},
	}
	cmd.Flags().DurationVar(&every, "every", time.Hour, "check each domain this often (at least 1m)")
	cmd.Flags().StringArrayVar(&alerts, "alert", nil, "send alerts to this `TARGET`: https://URL, mailto:ADDRESS or log (repeatable)")
	cmd.Flags().StringVar(&from, "from", "", "also add the domains listed in `FILE`, one a line (- for standard input)")
	return cmd
}

// readNameList reads a list of domains from the file path ("-" is stdin):
// one a line, blank lines and # comments skipped. A bad name is a usage
// error naming its line.
func readNameList(path string, stdin io.Reader) ([]dnsname.Name, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("--from: %v", err)
		}
		defer f.Close()
		r = f
	}
	var names []dnsname.Name
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		n, err := parseName(text)
		if err != nil {
			return nil, usageError("--from %s, line %d: %w", path, line, err)
		}
		names = append(names, n)
	}
	if err := sc.Err(); err != nil {
		return nil, usageError("--from %s: %v", path, err)
	}
	return names, nil
}

// alertTargets validates --alert values, and returns them as the store
// keeps them, each once.
func alertTargets(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		t, err := watch.ParseTarget(v)
		if err != nil {
			return nil, usageError("--alert: %w", err)
		}
		if s := t.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (g *globals) watchAdd(ctx context.Context, s store.Store, names []dnsname.Name, every time.Duration, targets []string) error {
	existing, err := existingWatches(ctx, s, names)
	if err != nil {
		return storeFailed(err)
	}
	// As the store keeps times: UTC, to the microsecond.
	now := time.Now().UTC().Truncate(time.Microsecond)
	var (
		added   []store.WatchStatus
		watches []store.Watch
		seen    = make(map[string]bool, len(names))
	)
	for _, n := range names {
		d := n.String()
		if seen[d] {
			continue
		}
		seen[d] = true
		ws := watch.Update(existing[d], store.Watch{Domain: d, Every: every, Alerts: targets}, now)
		added = append(added, ws)
		watches = append(watches, ws.Watch)
	}
	if err := s.AddWatches(ctx, watches); err != nil {
		return storeFailed(err)
	}
	if g.json {
		return writeWatchesJSON(g.stdout, added)
	}
	var b strings.Builder
	for _, w := range added {
		alerts := "a log line"
		if len(w.Alerts) > 0 {
			alerts = prose.List(w.Alerts)
		}
		verb := "watching"
		if !w.LastRun.IsZero() {
			verb = "still watching"
		}
		fmt.Fprintf(&b, "%s %s every %s, alerts to %s; next check %s\n", verb, w.Domain, watch.ShortEvery(w.Every), alerts, whenText(w.NextRun, now))
	}
	_, err = io.WriteString(g.stdout, b.String())
	return err
}

func watchRemoveCommand(g *globals, db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove DOMAIN|ADDRESS...",
		Short: "Stop watching domains (their history stays)",
		Long: `remove stops watching each domain. Its stored results, changes and alerts
stay, so history and diff still show them. A domain that is not watched is
bad input: nothing is removed, and the exit status is 2.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			s, err := openDB(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			ws, err := s.Watches(ctx)
			if err != nil {
				return storeFailed(err)
			}
			// Every name is checked before any is removed: a typo in the
			// fifth does not leave four removed.
			for _, n := range names {
				if !slices.ContainsFunc(ws, func(w store.WatchStatus) bool { return w.Domain == n.String() }) {
					return usageError("%s is not watched (mxtrace watch list shows what is)", n)
				}
			}
			for _, n := range names {
				if _, err := s.RemoveWatch(ctx, n.String()); err != nil {
					return storeFailed(err)
				}
				if !g.json {
					fmt.Fprintf(g.stdout, "stopped watching %s; its history stays\n", n)
				}
			}
			if g.json {
				for _, n := range names {
					if err := report.WriteJSON(g.stdout, map[string]any{"domain": n.String(), "removed": true}); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

func watchListCommand(g *globals, db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List watched domains with their last status and next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openDB(cmd.Context(), *db)
			if err != nil {
				return err
			}
			defer s.Close()
			ws, err := s.Watches(cmd.Context())
			if err != nil {
				return storeFailed(err)
			}
			if g.json {
				return writeWatchesJSON(g.stdout, ws)
			}
			return writeWatches(g.stdout, ws, time.Now(), report.Style{Color: g.color()})
		},
	}
}

// watchJSON is a watch in --json output.
type watchJSON struct {
	Domain     string    `json:"domain"`
	Every      string    `json:"every"`
	EverySec   int64     `json:"every_seconds"`
	Alerts     []string  `json:"alerts"`
	Added      time.Time `json:"added"`
	NextRun    time.Time `json:"next_run"`
	LastRun    time.Time `json:"last_run,omitzero"`
	LastStatus string    `json:"last_status,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// writeWatchesJSON writes one object per watch.
func writeWatchesJSON(w io.Writer, ws []store.WatchStatus) error {
	var b []byte
	for _, x := range ws {
		alerts := x.Alerts
		if alerts == nil {
			alerts = []string{}
		}
		var err error
		b, err = report.AppendJSON(b, watchJSON{
			Domain: x.Domain, Every: watch.ShortEvery(x.Every), EverySec: int64(x.Every / time.Second), Alerts: alerts,
			Added: x.Added.UTC(), NextRun: x.NextRun.UTC(), LastRun: x.LastRun.UTC(), LastStatus: x.LastStatus,
			Worker: x.Worker, LeaseUntil: x.LeaseUntil.UTC(),
		})
		if err != nil {
			return err
		}
	}
	_, err := w.Write(b)
	return err
}

// writeWatches writes the watches as a table.
func writeWatches(w io.Writer, ws []store.WatchStatus, now time.Time, st report.Style) error {
	if len(ws) == 0 {
		_, err := io.WriteString(w, "no domain is watched; start with mxtrace watch add DOMAIN\n")
		return err
	}
	table, err := aligned(func(tw io.Writer) {
		fmt.Fprintf(tw, "DOMAIN\tEVERY\tLAST CHECK\tSTATUS\tNEXT CHECK\tALERTS\n")
		for _, x := range ws {
			last, status := "never", "-"
			if !x.LastRun.IsZero() {
				last, status = timeText(x.LastRun), x.LastStatus
			}
			next := whenText(x.NextRun, now)
			if x.Worker != "" && x.LeaseUntil.After(now) {
				next = "checking now"
			}
			alerts := "log"
			if len(x.Alerts) > 0 {
				alerts = strings.Join(x.Alerts, " ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.Domain, watch.ShortEvery(x.Every), last, status, next, alerts)
		}
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, table)
	return err
}

func watchRunCommand(g *globals, db *string) *cobra.Command {
	var (
		once, all   bool
		mode        string
		concurrency int
		grace       time.Duration
		lease       time.Duration
		ao          alertOptions
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Check watched domains when they are due: the daemon, or --once for cron",
		Long: `run is the daemon: it checks each watched domain when it is due (every
--every of its watch, spread by a random ±10% so that domains added together
do not stay in step), --concurrency at a time, and stores each result with its
changes and alerts in one transaction; it delivers the alerts beside it.
Several run processes, on several machines, can share one PostgreSQL
database: they split the work with leases, so no domain is checked twice in a
period, and the domains of a process that dies are taken over once their
leases run out.

A domain that could not be checked (a DNS time-out) is stored as such and not
compared, so a hiccup is never reported as every record removed.

--mode route only routes each domain, as scan --mode route: the stored result
is the plan of route --json, and only routing changes (MX records, exchanges,
their addresses) are found. It asks a few queries per domain where a check
asks many and connects to every exchange: for watching a great many domains.

SIGINT or SIGTERM stops it: it claims nothing more, lets the checks in flight
finish within --grace, and exits 0; a check cut by the grace is not stored
(its lease runs out and another run takes it).

Alerts (docs/watch.md#alerts) go to each watch's targets: webhooks signed
with the secret of --webhook-secret-file (or $MXTRACE_WEBHOOK_SECRET), e-mail
through --mail-server with STARTTLS (--mail-user, and the password in
--mail-password-file or $MXTRACE_MAIL_PASSWORD), and log lines on standard
error. An alert that cannot be sent is retried with backoff, and kept.

With --once it checks what is due (everything with --all), delivers the
alerts that are due, and exits: for cron. The exit status is 0 when every
result was stored, whatever was found (the findings are in the results and
their alerts), and 3 when the database failed.`,
		Example: `  MXTRACE_WEBHOOK_SECRET=... mxtrace watch run --mail-server smtp.example.org:587 --mail-from mxtrace@example.org
  mxtrace watch run --once
  mxtrace --zone examples/example.zone watch run --once --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case all && !once:
				return usageError("--all needs --once (the daemon checks each domain when it is due)")
			case mode != "check" && mode != "route":
				return usageError("--mode %q: want check or route", mode)
			case concurrency < 1:
				return usageError("--concurrency %d: want at least 1", concurrency)
			case grace <= 0:
				return usageError("--grace %v: want a positive duration", grace)
			case lease != 0 && lease <= g.timeout:
				return usageError("--lease %v: want longer than --timeout %v (a check must end within its lease)", lease, g.timeout)
			}
			return g.watchRun(cmd, *db, once, all, mode, concurrency, grace, lease, &ao)
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "check what is due, deliver the due alerts, and exit")
	cmd.Flags().BoolVar(&all, "all", false, "with --once: check every watched domain, due or not")
	cmd.Flags().StringVar(&mode, "mode", "check", "`MODE`: check (the whole audit, as check) or route (the delivery plan alone, as scan --mode route: routing changes only)")
	cmd.Flags().IntVar(&concurrency, "concurrency", watch.DefaultConcurrency, "domains checked at once")
	cmd.Flags().DurationVar(&grace, "grace", watch.DefaultGrace, "on SIGTERM, time the checks in flight have to finish")
	cmd.Flags().DurationVar(&lease, "lease", 0, "how long a worker holds a domain it checks; past it, another worker takes the domain over (default twice --timeout plus a minute)")
	ao.flags(cmd.Flags())
	return cmd
}

// watchRun wires the runner exactly as check wires its audit (the same
// flags give the same audit), and runs it.
func (g *globals) watchRun(cmd *cobra.Command, db string, once, all bool, mode string, concurrency int, grace, lease time.Duration, ao *alertOptions) error {
	// Every flag is checked before the DNS core or the database is set up.
	roots, err := g.rootCAs()
	if err != nil {
		return err
	}
	deliverer, err := g.deliverer(ao, roots)
	if err != nil {
		return err
	}
	core, err := g.dns()
	if err != nil {
		return err
	}
	// --mode route routes each domain alone, as scan --mode route: no
	// auditor, so no other area is asked.
	var (
		a         *check.Auditor
		routeOnly *route.Planner
	)
	if p := g.planner(cmd, core.resolver, 0); mode == "route" {
		routeOnly = p
	} else {
		a = g.auditor(core, p, nil, nil, false)
		if !core.offline {
			a.Probe = g.checkProber(roots, "", "")
		}
	}
	if !once {
		// The daemon's log says what it does, as serve's does.
		level := slog.LevelInfo
		if g.verbose {
			level = slog.LevelDebug
		}
		g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
		if a != nil {
			a.Logger = g.logger
		} else {
			routeOnly.Logger = g.logger
		}
	}
	// SIGINT comes through main's context; a service manager stops a
	// daemon with SIGTERM.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
	defer stop()
	s, err := openDB(ctx, db)
	if err != nil {
		return err
	}
	defer s.Close()
	deliverer.Store, deliverer.Log = s, g.logger
	r := &watch.Runner{
		Store:       s,
		Auditor:     a,
		Planner:     routeOnly,
		Policy:      (&watch.AlertPolicy{Store: s, Remind: ao.remind, BaseURL: ao.baseURL}).Alerts,
		Deliverer:   deliverer,
		Logger:      g.logger,
		Concurrency: concurrency,
		Timeout:     g.timeout,
		Grace:       grace,
		Lease:       lease,
		Jitter:      0.1,
	}
	if !once {
		g.logger.Info("watch: running", "worker", r.WorkerName(), "concurrency", concurrency, "offline", core.offline)
		if err := r.Run(ctx); err != nil {
			return storeFailed(err)
		}
		g.logger.Info("watch: stopped")
		return nil
	}
	checked, err := r.RunOnce(ctx, all)
	if werr := writeChecked(g, checked); werr != nil {
		return werr
	}
	if err != nil {
		return storeFailed(err)
	}
	// The alerts due now, these checks' among them: a batch at a time,
	// until a batch is not full.
	for ctx.Err() == nil {
		n, err := deliverer.Drain(ctx)
		if err != nil {
			return storeFailed(err)
		}
		if n < watch.DefaultDeliverBatch {
			break
		}
	}
	for _, c := range checked {
		if c.Err != nil && !errors.Is(c.Err, store.ErrLeaseLost) && !errors.Is(c.Err, watch.ErrAbandoned) {
			return storeFailed(c.Err)
		}
	}
	return nil
}

// alertOptions are watch run's flags for sending alerts.
type alertOptions struct {
	webhookSecretFile string
	mailServer        string
	mailFrom          string
	mailUser          string
	mailPasswordFile  string
	mailPlaintext     bool
	remind            time.Duration
	baseURL           string
}

// Environment variables holding the alert secrets when no file is given:
// a secret on the command line would show in every process list.
const (
	envWebhookSecret = "MXTRACE_WEBHOOK_SECRET"
	envMailPassword  = "MXTRACE_MAIL_PASSWORD"
)

func (o *alertOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "sign webhook alerts with the secret in `FILE` (default: $"+envWebhookSecret+"; without a secret, webhook alerts fail)")
	f.StringVar(&o.mailServer, "mail-server", "", "send e-mail alerts through the submission server `HOST:PORT` (STARTTLS required; usually port 587)")
	f.StringVar(&o.mailFrom, "mail-from", "", "the sender `ADDRESS` of e-mail alerts")
	f.StringVar(&o.mailUser, "mail-user", "", "log in to the submission server as `USER` (AUTH PLAIN, inside TLS)")
	f.StringVar(&o.mailPasswordFile, "mail-password-file", "", "the submission password is in `FILE` (default: $"+envMailPassword+")")
	f.BoolVar(&o.mailPlaintext, "mail-plaintext", false, "no STARTTLS: only for a submission server on loopback, without --mail-user (a test sink)")
	f.DurationVar(&o.remind, "remind", watch.DefaultRemind, "alert again about an error that lasts this long")
	f.StringVar(&o.baseURL, "base-url", "", "link each alert to the domain's page on the mxtrace serve site at `URL`")
}

// deliverer is the alert Deliverer the flags ask for: a webhook sender
// when a secret is given, an e-mail sender when a server is; alerts to a
// target with no sender fail and are kept with that error.
func (g *globals) deliverer(o *alertOptions, roots *x509.CertPool) (*watch.Deliverer, error) {
	d := &watch.Deliverer{Grace: watch.DefaultDeliverGrace}
	secret, err := watch.LoadSecret(envWebhookSecret, o.webhookSecretFile)
	if err != nil {
		return nil, usageError("--webhook-secret-file: %w", err)
	}
	if secret != "" {
		d.Webhook = &watch.Webhook{Secret: []byte(secret), Dialer: g.dialer(), RootCAs: roots}
	}
	if o.remind == 0 {
		return nil, usageError("--remind 0: want a period (a negative one: never remind)")
	}
	if o.baseURL != "" {
		if u, err := url.Parse(o.baseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usageError("--base-url %q: want an http:// or https:// URL", o.baseURL)
		}
	}
	if o.mailServer == "" {
		if o.mailFrom != "" || o.mailUser != "" || o.mailPasswordFile != "" || o.mailPlaintext {
			return nil, usageError("--mail-from, --mail-user, --mail-password-file and --mail-plaintext need --mail-server")
		}
		return d, nil
	}
	if _, _, err := net.SplitHostPort(o.mailServer); err != nil {
		return nil, usageError("--mail-server %q: want HOST:PORT, such as smtp.example.org:587", o.mailServer)
	}
	if _, err := watch.ParseTarget("mailto:" + o.mailFrom); err != nil {
		return nil, usageError("--mail-from %q: want one e-mail address", o.mailFrom)
	}
	password, err := watch.LoadSecret(envMailPassword, o.mailPasswordFile)
	if err != nil {
		return nil, usageError("--mail-password-file: %w", err)
	}
	if o.mailPlaintext && o.mailUser != "" {
		return nil, usageError("--mail-plaintext with --mail-user would send the password in clear")
	}
	d.Mailer = &watch.Mailer{Server: o.mailServer, From: o.mailFrom, Username: o.mailUser, Password: password,
		RootCAs: roots, Plaintext: o.mailPlaintext, Dialer: g.dialer()}
	return d, nil
}

// checkedJSON is one checked watch in watch run --once --json.
type checkedJSON struct {
	Domain    string             `json:"domain"`
	ResultID  int64              `json:"result_id,omitempty"`
	Status    string             `json:"status,omitempty"`
	Temporary bool               `json:"temporary"`
	Changes   []watch.ChangeJSON `json:"changes"`
	Alerts    int                `json:"alerts"`
	Error     string             `json:"error,omitempty"`
}

// writeChecked writes what watch run --once did, by domain.
func writeChecked(g *globals, checked []watch.Checked) error {
	slices.SortFunc(checked, func(a, b watch.Checked) int { return strings.Compare(a.Domain, b.Domain) })
	var b strings.Builder
	var js []byte
	st := report.Style{Color: g.color()}
	width := 0
	for _, c := range checked {
		width = max(width, len(c.Domain))
	}
	for _, c := range checked {
		changes := make([]store.Change, len(c.Changes))
		for i, ch := range c.Changes {
			changes[i] = watch.StoreChange(ch)
		}
		if g.json {
			o := checkedJSON{Domain: c.Domain, ResultID: c.ResultID, Status: c.Status, Temporary: c.Temporary, Changes: watch.ChangesJSON(changes), Alerts: c.Alerts}
			if c.Err != nil {
				o.Error = c.Err.Error()
			}
			var err error
			if js, err = report.AppendJSON(js, o); err != nil {
				return err
			}
			continue
		}
		switch {
		case c.Err != nil:
			fmt.Fprintf(&b, "%-*s  not stored: %s\n", width, c.Domain, report.Plain(c.Err.Error()))
		case c.Temporary:
			fmt.Fprintf(&b, "%-*s  %-8s  could not be checked: stored, not compared\n", width, c.Domain, c.Status)
		default:
			fmt.Fprintf(&b, "%-*s  %-8s  %s, %s\n", width, c.Domain, c.Status, prose.Count(len(c.Changes), "change"), prose.Count(c.Alerts, "alert"))
		}
		writeChanges(&b, "  ", changes, st)
	}
	if g.json {
		_, err := g.stdout.Write(js)
		return err
	}
	if len(checked) == 0 {
		b.WriteString("nothing was due\n")
	}
	_, err := io.WriteString(g.stdout, b.String())
	return err
}

// writeChanges writes changes one a line, aligned, the severity coloured
// on a terminal; remote text (record contents) is escaped.
func writeChanges(b *strings.Builder, indent string, cs []store.Change, st report.Style) {
	if len(cs) == 0 {
		return
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	for _, c := range cs {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, c.Severity, c.Kind, printable.String(c.Subject), printable.String(c.Message))
	}
	_ = tw.Flush()
	for l := range strings.Lines(table.String()) {
		l = strings.TrimRight(l, " \n")
		sev, rest, _ := strings.Cut(strings.TrimPrefix(l, indent), " ")
		b.WriteString(indent + paint(st, severityColor(sev))(sev) + " " + rest + "\n")
	}
}

func historyCommand(g *globals) *cobra.Command {
	var (
		db    string
		since string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "history DOMAIN|ADDRESS",
		Short: "The timeline of a watched domain: what changed, and when (newest first)",
		Long: `history reads the results watch run stored for a domain and prints its
timeline, newest first: each check that found a change (with the changes),
each check whose status differed from the one before (ok, problems, error:
could not be checked), and the first check.`,
		Example: `  mxtrace history example.com
  mxtrace history --since 7d --json example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			if limit < 1 {
				return usageError("--limit %d: want at least 1", limit)
			}
			s, err := openDB(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer s.Close()
			return g.history(cmd.Context(), s, names[0].String(), from, limit)
		},
	}
	addDBFlag(cmd.Flags(), &db)
	cmd.Flags().StringVar(&since, "since", "", "only what happened from `TIME` on: 2026-01-31, 2026-01-31T12:00:00Z, or a while ago such as 36h or 7d")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many events")
	return cmd
}

func (g *globals) history(ctx context.Context, s store.Store, domain string, since time.Time, limit int) error {
	results, err := s.Summaries(ctx, domain, since, 0)
	if err != nil {
		return storeFailed(err)
	}
	if len(results) == 0 {
		return noResults(domain, since)
	}
	changes, err := s.Changes(ctx, domain, since, 0)
	if err != nil {
		return storeFailed(err)
	}
	events := watch.Timeline(results, changes, since.IsZero())
	events = events[:min(len(events), limit)]
	if g.json {
		out := make([]watch.EventJSON, len(events))
		for i, e := range events {
			out[i] = e.JSON()
		}
		return report.WriteJSON(g.stdout, struct {
			Domain string            `json:"domain"`
			Checks int               `json:"checks"`
			Events []watch.EventJSON `json:"events"`
		}{domain, len(results), out})
	}
	st := report.Style{Color: g.color()}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s, last %s (%s)\n", paint(st, color.Bold)(domain), prose.Count(len(results), "check"), timeText(results[0].At), results[0].Status)
	for _, e := range events {
		what := prose.Count(len(e.Changes), "change")
		switch {
		case e.Result.Temporary:
			what = "could not be checked"
		case e.First && len(e.Changes) == 0:
			what = "first check"
		case len(e.Changes) == 0 && e.Result.ID == results[len(results)-1].ID:
			what = "the earliest check since " + timeText(since)
		case len(e.Changes) == 0:
			what = "status changed"
		}
		fmt.Fprintf(&b, "%s  %-8s  %s\n", timeText(e.Result.At), e.Result.Status, what)
		writeChanges(&b, "    ", e.Changes, st)
	}
	_, err = io.WriteString(g.stdout, b.String())
	return err
}

// noResults is the error of a domain with nothing stored: bad input (a
// domain that is not watched, or a --since after its last check).
func noResults(domain string, since time.Time) error {
	if since.IsZero() {
		return usageError("no result stored for %s; watch it with mxtrace watch add %s, then mxtrace watch run", domain, domain)
	}
	return usageError("no result stored for %s since %s", domain, timeText(since))
}

func diffCommand(g *globals) *cobra.Command {
	var (
		db    string
		since string
	)
	cmd := &cobra.Command{
		Use:   "diff DOMAIN|ADDRESS",
		Short: "What changed in a watched domain: the latest result against an earlier one",
		Long: `diff compares the domain's latest stored result with an earlier one: by
default the one before it, or with --since the one at or just before TIME
(the domain as it was then). It compares the typed facts (exchanges and
preferences, addresses, TTLs, SPF, DMARC, MTA-STS, TLS-RPT and DKIM records,
certificates, STARTTLS, blacklists, findings), never the JSON text. Results
of checks that could not be done are passed over: they are not a state of
the domain.

The exit status follows --fail-on on the changes' severities: 1 when a change
is at or above it (a DMARC policy weakened, an exchange removed...), else 0.`,
		Example: `  mxtrace diff example.com
  mxtrace diff --since 2026-01-31 example.com
  mxtrace diff --since 7d --json example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			at, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			s, err := openDB(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer s.Close()
			return g.diff(cmd.Context(), s, names[0].String(), at)
		},
	}
	addDBFlag(cmd.Flags(), &db)
	cmd.Flags().StringVar(&since, "since", "", "compare with the result at or just before `TIME`: 2026-01-31, 2026-01-31T12:00:00Z, or a while ago such as 36h or 7d (default: the result before the latest)")
	return cmd
}

// resultRef names a result in diff --json.
type resultRef struct {
	ID     int64     `json:"result_id"`
	At     time.Time `json:"at"`
	Status string    `json:"status"`
}

// diffWindow is how many results diff reads at a time, newest first, to
// find the latest two good ones.
const diffWindow = 8

func (g *globals) diff(ctx context.Context, s store.Store, domain string, at time.Time) error {
	// Only results of checks that were done are states of the domain;
	// which they are is read light, then the two compared whole.
	var good []store.Result
	for limit := diffWindow; ; limit *= 4 {
		// Without --since, the two newest good results are enough; the
		// result at or before TIME can be anywhere, so then all of them.
		if !at.IsZero() {
			limit = 0
		}
		rs, err := s.Summaries(ctx, domain, time.Time{}, limit)
		if err != nil {
			return storeFailed(err)
		}
		good = slices.DeleteFunc(rs, func(r store.Result) bool { return r.Temporary })
		if limit == 0 || len(good) >= 2 || len(rs) < limit {
			break
		}
	}
	if len(good) == 0 {
		return noResults(domain, time.Time{})
	}
	latest := good[0]
	var base store.Result
	switch {
	case at.IsZero() && len(good) > 1:
		base = good[1]
	case at.IsZero():
		return usageError("%s has one stored result (%s): nothing to compare it with yet", domain, timeText(latest.At))
	default:
		i := slices.IndexFunc(good, func(r store.Result) bool { return !r.At.After(at) })
		if i < 0 {
			return usageError("no result stored for %s at or before %s; the first is from %s", domain, timeText(at), timeText(good[len(good)-1].At))
		}
		base = good[i]
	}
	for _, r := range []*store.Result{&base, &latest} {
		whole, err := s.Result(ctx, r.ID)
		if err == nil && whole == nil {
			err = fmt.Errorf("%s: result %d is gone", domain, r.ID)
		}
		if err != nil {
			return storeFailed(err)
		}
		*r = *whole
	}
	changes, err := watch.DiffFacts(base.Facts, latest.Facts)
	if err != nil {
		return storeFailed(fmt.Errorf("%s: %w", domain, err))
	}
	stored := make([]store.Change, len(changes))
	worst := finding.Severity(0)
	for i, c := range changes {
		stored[i] = watch.StoreChange(c)
		worst = max(worst, c.Severity)
	}
	if g.json {
		err = report.WriteJSON(g.stdout, struct {
			Domain  string             `json:"domain"`
			From    resultRef          `json:"from"`
			To      resultRef          `json:"to"`
			Changes []watch.ChangeJSON `json:"changes"`
		}{domain, resultRef{base.ID, base.At.UTC(), base.Status}, resultRef{latest.ID, latest.At.UTC(), latest.Status}, watch.ChangesJSON(stored)})
	} else {
		st := report.Style{Color: g.color()}
		var b strings.Builder
		what := prose.Count(len(changes), "change")
		if len(changes) == 0 {
			what = "no change"
		}
		fmt.Fprintf(&b, "%s  %s from %s (%s) to %s (%s)\n", paint(st, color.Bold)(domain), what, timeText(base.At), base.Status, timeText(latest.At), latest.Status)
		writeChanges(&b, "  ", stored, st)
		_, err = io.WriteString(g.stdout, b.String())
	}
	if err != nil {
		return err
	}
	return g.verdict(nil, worst)
}

// parseSince reads a --since TIME (watch.ParseSince); a bad one is bad
// usage.
func parseSince(v string, now time.Time) (time.Time, error) {
	t, err := watch.ParseSince(v, now)
	if err != nil {
		return time.Time{}, usageError("--since %w", err)
	}
	return t, nil
}

// timeText is a stored time as the commands print it: UTC, to the second.
func timeText(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// whenText is a next run as people read it: "now" when due, else the time.
func whenText(t, now time.Time) string {
	if !t.After(now) {
		return "now"
	}
	return timeText(t)
}

// paint colours text when st says so.
func paint(st report.Style, attr color.Attribute) func(a ...any) string {
	c := color.New(attr)
	if st.Color {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return c.SprintFunc()
}

// severityColor is a change's colour, as report colours findings.
func severityColor(severity string) color.Attribute {
	switch severity {
	case finding.Error.String():
		return color.FgRed
	case finding.Warning.String():
		return color.FgYellow
	}
	return color.FgCyan
}

// manyWatches is the length of a list past which existingWatches lists
// every watch once rather than looking each name up.
const manyWatches = 64

// existingWatches returns the watches of names that exist, by domain: a
// lookup per name for a few names (one watch add, among 100,000 watched,
// reads a row and not the table), one listing for a long list (--from
// with thousands of names is not thousands of queries).
func existingWatches(ctx context.Context, s store.Store, names []dnsname.Name) (map[string]*store.WatchStatus, error) {
	out := make(map[string]*store.WatchStatus, len(names))
	if len(names) > manyWatches {
		all, err := s.Watches(ctx)
		if err != nil {
			return nil, err
		}
		for i := range all {
			out[all[i].Domain] = &all[i]
		}
		return out, nil
	}
	for _, n := range names {
		w, err := s.Watch(ctx, n.String())
		if err != nil {
			return nil, err
		}
		if w != nil {
			out[w.Domain] = w
		}
	}
	return out, nil
}

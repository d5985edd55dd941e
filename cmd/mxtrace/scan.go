package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/dropbehind"
	"github.com/mxtrace/mxtrace/internal/proctune"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/scan"
)

// scanOptions are scan's own flags.
type scanOptions struct {
	mode, format, output, summary string
	cpuProfile, memProfile        string
	column, comma                 string
	header                        bool
	fromZone, origin              string
	concurrency, window, retries  int
	unordered, resume             bool
	qps                           float64
	shard                         string
	smtp                          bool
	helo                          string
	seed                          uint64
	self                          string
	selectors, lists              []string
	noDNSBL                       bool
	batch                         bool
	dropBehind                    bool
	db                            string
}

func scanCommand(g *globals) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [FILE|-]",
		Short: "Route or audit a list of domains: one JSON line per entry, in input order",
		Long: `scan routes (--mode route, the default) or audits (--mode check) every domain of
a list and writes one line per entry: exactly the object "route --json" or
"check --json --no-smtp" prints for that domain (with --smtp, "check --json"),
or, for an entry that is not a domain, an error object. Nothing is dropped,
nothing is written twice.

The input is a file, or standard input (for -, or when no FILE is given and
standard input is not a terminal: mxtrace scan < list.txt): one domain or
e-mail address per line (blank lines and # comments are skipped), one column of a CSV file
(--column), or every name with NS or MX records in a zone file (--from-zone).
It is streamed: millions of entries take no more memory than a few.

Temporary failures (time-outs, SERVFAIL) are retried with backoff (--retries).
A summary goes to standard error at the end (--summary FILE writes it as JSON);
a progress line too, when standard error is a terminal.

With --db DSN (a SQLite file or a postgres:// URL) the scan is also stored,
line by line as it is printed, with the typed facts of each domain: "mxtrace
scan list" shows the stored scans and "mxtrace scan diff OLD NEW" what changed
between two of them, domain by domain.

Ctrl-C (or SIGTERM) stops cleanly: every finished line is written and the file
is valid. Run the same command with --resume to continue it. --shard I/N takes
a fixed 1/N of the input, so N machines split one list without coordination.

Exit status: 0 the whole input was scanned (by default whatever the domains'
findings: --fail-on is "never" for scan unless given); 1 with --fail-on
SEVERITY, a line this run wrote has a finding at or above it; 2 bad usage,
or --resume on an output that does not match the input; 3 the scan could
not finish (interrupted, input or output error, or no domain got any
answer). See docs/scan.md.`,
		Example: `  mxtrace scan --zone examples/example.zone domains.txt
  mxtrace scan -o out.jsonl top-1m.csv --column 2 --concurrency 512
  mxtrace scan -o out.jsonl --resume top-1m.csv --column 2
  mxtrace scan --from-zone com.zone --shard 3/16 -o com-3.jsonl --summary com-3.summary.json
  mxtrace scan --mode check --format csv -o audit.csv customers.txt
  mxtrace scan --db scans.db --from-zone com.zone && mxtrace scan diff --db scans.db 1 2
  zcat list.gz | mxtrace scan | jq -r 'select(.result == "error") | .domain'
  mxtrace scan --fail-on error < customers.txt > audit.jsonl || echo "some domain has an error"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("fail-on") {
				// A list nearly always has broken domains: by default a
				// finished scan is a success, so a batch system does not
				// retry it (exit 1 is for --fail-on given explicitly).
				g.failOn = "never"
			}
			return g.scan(cmd, args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", "route", "`MODE`: route (the delivery plan) or check (the DNS audit)")
	f.StringVarP(&o.output, "output", "o", "", "write the lines to `FILE` (default: standard output)")
	f.StringVar(&o.format, "format", "json", "json (JSON Lines) or csv (documented columns, for spreadsheets)")
	f.StringVar(&o.summary, "summary", "", "also write the summary as JSON to `FILE`")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (for go tool pprof)")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `FILE` at the end of the run, before anything is released (for go tool pprof: -sample_index=inuse_space or alloc_space)")
	f.StringVar(&o.column, "column", "", "read CSV: the domains are in column `N` (from 1), or the column with this header name")
	f.BoolVar(&o.header, "header", false, "with --column N: the first CSV record is a header, skip it")
	f.StringVar(&o.comma, "comma", ",", "CSV field delimiter (one character, or \"tab\")")
	f.StringVar(&o.fromZone, "from-zone", "", "scan every name with NS or MX records in zone `FILE`")
	f.StringVar(&o.origin, "origin", "", "with --from-zone: the zone's origin, when the file has no $ORIGIN")
	f.IntVar(&o.concurrency, "concurrency", scan.DefaultConcurrency, "domains worked on at once")
	f.IntVar(&o.window, "window", 0, "entries started but not yet written, at most (default 16 × --concurrency with --mode route, 4 × with check)")
	f.BoolVar(&o.unordered, "unordered", false, "write lines as they finish, not in input order")
	f.IntVar(&o.retries, "retries", 2, "attempts after a temporary failure (time-out, SERVFAIL), with backoff")
	f.Float64Var(&o.qps, "qps", 0, "at most this many DNS queries a second to each resolver (0: no limit)")
	f.BoolVar(&o.resume, "resume", false, "continue the --output FILE of an interrupted run of the same command")
	f.StringVar(&o.shard, "shard", "", "scan only share `I/N` of the input (0 ≤ I < N), chosen by a stable hash of each name")
	f.BoolVar(&o.smtp, "smtp", false, "with --mode check: probe the exchanges over SMTP too (without it, as check --no-smtp)")
	f.StringVar(&o.helo, "helo", "", "with --smtp: the `NAME` to send with EHLO (default: this machine's name if fully qualified, else mxtrace.invalid)")
	f.Uint64Var(&o.seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	f.StringVar(&o.self, "self", "", "the sending host's `NAME`, when it is itself an MX of the domains")
	f.StringSliceVar(&o.selectors, "dkim-selector", nil, "with --mode check: also probe this DKIM `SELECTOR` (repeatable)")
	f.StringSliceVar(&o.lists, "dnsbl", nil, "with --mode check: query this DNS blacklist `ZONE` instead of the defaults (repeatable)")
	f.BoolVar(&o.noDNSBL, "no-dnsbl", false, "with --mode check: do not query DNS blacklists")
	addScanDB(g, cmd, o)
	f.BoolVar(&o.dropBehind, "drop-behind", true, "when the lines go to a regular file, write them back to the disk as the scan goes and drop them from the page cache, so a long scan does not fill memory with its own output (Linux)")
	f.BoolVar(&o.batch, "sched-batch", true, "run as a batch job (Linux SCHED_BATCH): yield the CPU to a resolver or server on the same machine rather than preempt it")
	return cmd
}

// scan checks the flags, wires input, DNS core, job and output together,
// runs the scan and maps its end to an exit status.
func (g *globals) scan(cmd *cobra.Command, args []string, o *scanOptions) error {
	cfg := scan.Config{Mode: o.mode, Unordered: o.unordered, Retries: o.retries, Timeout: g.timeout,
		Concurrency: o.concurrency, Window: scanWindow(o.window, o.concurrency, o.mode), Logger: g.logger}
	var err error
	if cfg.Format, err = scan.ParseFormat(o.format); err != nil {
		return usageError("--format: %v", err)
	}
	if o.shard != "" {
		if cfg.Shard, err = scan.ParseShard(o.shard); err != nil {
			return usageError("--shard: %v", err)
		}
	}
	switch {
	case o.mode != "route" && o.mode != "check":
		return usageError("--mode %q: want route or check", o.mode)
	case o.concurrency < 1:
		return usageError("--concurrency %d: want at least 1", o.concurrency)
	case o.concurrency > scan.MaxConcurrency:
		return usageError("--concurrency %d: want at most %d", o.concurrency, scan.MaxConcurrency)
	case o.window > scan.MaxWindow:
		return usageError("--window %d: want at most %d", o.window, scan.MaxWindow)
	case math.IsNaN(o.qps):
		return usageError("--qps NaN: want a number of queries a second (0: no limit)")
	case o.window < 0, o.retries < 0, o.qps < 0:
		return usageError("--window, --retries and --qps cannot be negative")
	case o.resume && (o.output == "" || o.output == "-"):
		return usageError("--resume needs --output FILE: it continues that file")
	case o.smtp && o.mode != "check":
		return usageError("--smtp goes with --mode check")
	case o.resume && o.db != "":
		// The stored scan would lack the lines of the run it continues.
		return usageError("--db does not go with --resume: store a whole scan")
	}
	input, err := o.input(args, cfg.Shard, g.stdin)
	if err != nil {
		return err
	}

	cacheLimits := scanCacheLimits(o.concurrency, o.mode == "check")
	core, dnsCounts, closeCore, err := g.scanCore(o.qps, cacheLimits, o.mode == "check")
	if err != nil {
		return err
	}
	defer closeCore()
	if cfg.Job, cfg.Prefetch, cfg.Cached, err = g.scanJob(cmd, o, core); err != nil {
		return err
	}

	var out io.Writer = g.stdout
	if o.output != "" && o.output != "-" {
		f, done, err := openOutput(o.output, cfg.Format, o.resume, o.unordered)
		if err != nil {
			return err
		}
		defer f.Close()
		out, cfg.Done = f, done
		if done != nil && done.Repaired > 0 {
			fmt.Fprintf(g.stderr, "mxtrace: %s: cut a torn last line (%s)\n", o.output, prose.Count(int(done.Repaired), "byte"))
		}
	}
	if f, ok := out.(*os.File); ok && o.dropBehind {
		out = dropbehind.New(f)
	}
	if isTerminal(g.stderr) {
		cfg.Progress, cfg.Total = g.stderr, input.total
	}

	r, closeInput, err := input.open()
	if err != nil {
		return err
	}
	defer closeInput()
	// SIGINT comes through main's context; a batch system (Kubernetes,
	// Slurm) stops a job with SIGTERM, which must end it as cleanly.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	defer proctune.GC(os.Getenv, scanMemoryLimit(cacheLimits, o.mode == "check"))()
	defer proctune.Procs(os.Getenv, time.Second)()
	if o.batch {
		restore, err := proctune.Batch()
		if err != nil {
			// A sandbox may forbid it (seccomp): the scan runs as
			// it would have without the flag.
			g.logger.Debug("scan: not run as a batch job", "error", err)
		}
		defer restore()
	}
	endDB, err := g.scanDB(ctx, o, &cfg, input.describe(cfg.Shard))
	if err != nil {
		return err
	}
	sum, err := scan.Run(ctx, input.source(r), out, cfg)
	if o.memProfile != "" {
		// Now, while the cache and the DNS core still hold what they
		// held during the run.
		if perr := writeHeapProfile(o.memProfile); perr != nil && err == nil {
			err = perr
		}
	}
	if dberr := endDB(err); dberr != nil && err == nil {
		err = dberr
	}
	if sum != nil {
		sum.DNS = dnsCounts()
		sum.WriteText(g.stderr)
		if o.summary != "" {
			if serr := writeSummary(o.summary, sum); serr != nil && err == nil {
				err = &exitError{exitFailed, serr}
			}
		}
	}
	return g.scanExit(err, sum, o)
}

// scanExit maps the end of a scan to an exit status: 3 when it could not
// finish, or when no domain got an answer; else verdict over the worst
// finding of the lines this run wrote.
func (g *globals) scanExit(err error, sum *scan.Summary, o *scanOptions) error {
	switch {
	case err == nil:
		// Every line an error saying no usable answer came (whichever
		// way it failed, as jobFailed has it for route): the scan could
		// not be done (exit 3), however well it went through the list.
		var failed error
		if sum.Written > 0 && sum.Unanswered() == sum.Written {
			failed = errors.New("no domain got an answer: are the resolvers reachable?")
		}
		worst := finding.Severity(0)
		for sev := range sum.Worst {
			worst = max(worst, sev)
		}
		return g.verdict(failed, worst)
	case errors.Is(err, scan.ErrInterrupted):
		where := "the output"
		if o.output != "" && o.output != "-" {
			where = o.output
		}
		return &exitError{exitFailed, interrupted(err, sum.Written, where)}
	case errors.Is(err, scan.ErrResume):
		return &exitError{exitUsage, err}
	}
	if _, ok := errors.AsType[*exitError](err); ok {
		return err
	}
	return &exitError{exitFailed, err}
}

// scanInput is where the entries come from.
type scanInput struct {
	path   string // "-" for standard input
	source func(io.Reader) scan.Source
	// total counts the entries for the progress line; nil when counting
	// is not cheap (standard input, a zone file).
	total func(context.Context) (int64, error)
	stdin io.Reader
}

// input checks the input flags and says how to read the entries. Without
// a FILE (or --from-zone) the list is read from stdin, unless stdin is a
// terminal: nobody types a million domains, and a scan waiting for them
// looks hung (zdns and massdns read a pipe the same way).
func (o *scanOptions) input(args []string, shard scan.Shard, stdin io.Reader) (*scanInput, error) {
	in := &scanInput{stdin: stdin}
	switch {
	case o.fromZone != "" && len(args) > 0:
		return nil, usageError("give a FILE or --from-zone, not both")
	case o.fromZone != "" && o.column != "":
		return nil, usageError("--column reads a CSV file, not a zone (--from-zone)")
	case o.fromZone != "":
		if o.origin != "" {
			if _, err := dnsname.Parse(o.origin); err != nil {
				return nil, usageError("--origin: %w", err)
			}
		}
		in.path = o.fromZone
		in.source = func(r io.Reader) scan.Source { return scan.Zone(r, o.origin, o.fromZone) }
		return in, nil
	case len(args) == 0 && isTerminal(stdin):
		return nil, usageError("no input: give a FILE, --from-zone FILE, or a list on standard input (mxtrace scan < list.txt)")
	case len(args) == 0:
		args = []string{"-"}
	}
	in.path = args[0]
	in.source = scan.Lines
	if o.column != "" {
		opt := scan.CSVOptions{Header: o.header}
		if n, err := strconv.Atoi(o.column); err == nil {
			if n < 1 {
				return nil, usageError("--column %d: columns count from 1", n)
			}
			opt.Column = n
		} else {
			opt.ColumnName = o.column
		}
		switch c := []rune(o.comma); {
		case o.comma == "tab" || o.comma == `\t`:
			opt.Comma = '\t'
		case len(c) == 1 && c[0] != '"' && c[0] != '\r' && c[0] != '\n':
			opt.Comma = c[0]
		default:
			return nil, usageError("--comma %q: want one character (not a quote or line break), or tab", o.comma)
		}
		in.source = func(r io.Reader) scan.Source { return scan.CSV(r, opt) }
	} else if o.header {
		return nil, usageError("--header goes with --column")
	}
	if in.path != "-" {
		if st, err := os.Stat(in.path); err != nil {
			return nil, usageError("%v", err)
		} else if st.Mode().IsRegular() {
			// Counting a list costs a second read of the file, in the
			// background; only done for the progress line.
			in.total = func(ctx context.Context) (int64, error) {
				f, err := os.Open(in.path)
				if err != nil {
					return 0, err
				}
				defer f.Close()
				return scan.Count(ctx, in.source(f), shard)
			}
		}
	}
	return in, nil
}

// describe names the input for a stored scan.
func (in *scanInput) describe(shard scan.Shard) string {
	if shard != (scan.Shard{}) {
		return fmt.Sprintf("%s (shard %d/%d)", in.path, shard.Index, shard.Count)
	}
	return in.path
}

// open opens the input.
func (in *scanInput) open() (io.Reader, func(), error) {
	if in.path == "-" {
		return in.stdin, func() {}, nil
	}
	f, err := os.Open(in.path)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	return f, func() { f.Close() }, nil
}

// openOutput opens the output file: a new one (an existing non-empty file
// is never overwritten), or with resume the file to continue.
func openOutput(path string, format scan.Format, resume, unordered bool) (*os.File, *scan.Done, error) {
	if !resume {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return nil, nil, usageError("--output %s exists: add --resume to continue it, or remove it", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, &exitError{exitFailed, err}
		}
		return f, nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, &exitError{exitFailed, err}
	}
	done, err := scan.Resume(f, format, unordered)
	if err != nil {
		f.Close()
		return nil, nil, &exitError{exitUsage, err}
	}
	return f, done, nil
}

func writeSummary(path string, sum *scan.Summary) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.WriteJSON(f, sum); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scanJob builds the job of the mode: the same planner (and auditor) the
// route and check commands build; and its Prefetch, which asks a domain's
// first questions ahead of the job (the planner's, or the auditor's,
// which adds each area's first question); and, for route on the network,
// the plan from the answers in memory that runs where the prefetch ends
// (scan.RouteCached).
func (g *globals) scanJob(cmd *cobra.Command, o *scanOptions, core *dnsCore) (scan.Job, func(dnsname.Name, func()), scan.CachedJob, error) {
	p := g.planner(cmd, core.resolver, o.seed)
	if o.self != "" {
		var err error
		if p.Self, err = dnsname.Parse(o.self); err != nil {
			return nil, nil, nil, usageError("--self: %w", err)
		}
	}
	if o.mode == "route" {
		var cached scan.CachedJob
		if _, ok := resolve.AsyncOf(core.resolver); ok {
			// Over a resolver that cannot start lookups (offline,
			// --zone) Prefetch asks nothing, so the plan from memory
			// would miss every time.
			cached = scan.RouteCached(p)
		}
		return scan.Route(p), p.Prefetch, cached, nil
	}
	helo, err := parseOptionalName("--helo", o.helo)
	if err != nil {
		return nil, nil, nil, err
	}
	roots, err := g.rootCAs()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := auditFlags(o.selectors, o.lists); err != nil {
		return nil, nil, nil, err
	}
	a := g.auditor(core, p, o.selectors, o.lists, o.noDNSBL)
	// The scan prefetches each domain (a.Prefetch, below) and audits
	// --concurrency at once: the areas Prefetch covers run on the job's
	// goroutine (check.Auditor.InlineAreas).
	a.InlineAreas = true
	if async, ok := resolve.AsyncOf(core.resolver); ok {
		// The gatherers' lookups leave in the Mux's batches (waitAsync).
		a.Resolver = newWaitAsync(async)
	}
	if o.smtp {
		// As check --smtp, without the relay test: a scan never tests
		// millions of servers for an open relay.
		a.Probe = g.checkProber(roots, helo, "")
	} else {
		// The issue: --no-smtp is implied. The reason is check's, so the
		// lines are exactly what check --json --no-smtp prints.
		a.SMTPSkipReason = "--no-smtp"
	}
	return scan.Check(a), a.Prefetch, nil, nil
}

// A scan's cache bounds (scanCacheLimits). A scan asks each domain's MX
// set once, so what the cache earns its keep on is the answers shared
// between domains (the providers' exchanges, a few thousand names on a
// real list, asked again and again, so the least-recently-used order
// keeps them), and the answers of the domains in progress, between the
// prefetch that asks them and the job that reads them. Everything else is
// an answer no one asks for again: before the bound was in bytes, 30,000
// of them held some 20 MB of a scan's heap (docs/performance.md).
const (
	scanCacheShared = 2 << 20 // bytes of shared answers
	// scanCachePerDomain: bytes per domain in progress (--concurrency),
	// for its answers while it is worked on; a route plan asks about a
	// dozen questions, an audit some fifty.
	scanCachePerDomainRoute = 8 << 10
	scanCachePerDomainCheck = 32 << 10
)

// routeWindowPerWorker is the route scan's default window, in entries per
// worker. In input order, one lost datagram holds every line after its
// domain's until it is sent again, at least a retransmission interval
// later (50 ms, resolve/mux). At the 40,000-60,000 domains a second a
// route scan reaches against a local server, that is 2,000-3,000 lines;
// scan's default of 4 per worker (1,024) filled in 25 ms, the feeder
// stopped, and the cores stood idle for the rest of the interval. With 16
// (4,096) the same 100k scans kept the cores 94-98 % busy instead of 74-91
// % and ran 4-25 % faster; peak RSS stayed 56 MB, as a route line and
// plan are small (docs/performance.md, "The route scan's window"). An
// audit runs ten times slower, so scan's default covers its intervals.
const routeWindowPerWorker = 16

// scanWindow is --window, or its default for the mode when it is 0.
func scanWindow(window, concurrency int, mode string) int {
	if window == 0 && mode == "route" {
		return min(routeWindowPerWorker*concurrency, scan.MaxWindow)
	}
	return window // 0: scan's default
}

// scanCacheLimits bounds a scan's cache by its concurrency, not its input.
func scanCacheLimits(concurrency int, check bool) resolve.CacheLimits {
	per := scanCachePerDomainRoute
	if check {
		per = scanCachePerDomainCheck
	}
	return resolve.CacheLimits{Bytes: scanCacheShared + int64(concurrency)*int64(per)}
}

// scanMemoryBase is the part of a scan's memory budget that does not grow
// with its cache: the runtime and the program (some 13 MiB of the Go
// runtime's own accounting), the sockets' ID tables and buffers (9 MB),
// the window of entries, and the garbage between two collections.
const scanMemoryBase = 36 << 20

// scanCheckMemoryLimit is the soft memory limit of a --mode check scan,
// as before the route scan's was worked out from its cache: an audit
// holds more per domain than its caches (the nameserver audit's state),
// and a limit near its live heap would make the collector run back to
// back. With a live heap of some 33 MB it, not GOGC, sets when the
// collector runs: 120 MiB cost half as many collections again as 160 MiB
// for 36 MB less RSS (docs/performance.md, "The collector's settings").
const scanCheckMemoryLimit = 160 << 20

// scanMemoryLimit is the soft memory limit of a scan (proctune.GC). For a
// route scan: the base, and twice the byte bound of the cache (the
// estimate of an answer can be low); 44 MiB at the defaults, so its peak
// RSS stays under 64 MB and the collector still runs only about once per
// 5,000 domains (docs/performance.md).
func scanMemoryLimit(cache resolve.CacheLimits, check bool) int64 {
	if check {
		return scanCheckMemoryLimit
	}
	return scanMemoryBase + 2*cache.Bytes
}

// scanCore is the DNS core of g.dns, built for bulk work: on the network
// the resolvers are asked through a mux.Mux (a few UDP sockets per
// server with thousands of queries in flight, matched by ID), which also
// applies --qps per server. The CD-bit resolver (check's nameserver audit
// tells DNSSEC-bogus zones apart with it) is only built for --mode check.
// counts sums what the caches and the sockets did so far (nil offline,
// where nothing goes on the wire); release closes the sockets.
func (g *globals) scanCore(qps float64, cacheLimits resolve.CacheLimits, check bool) (core *dnsCore, counts func() *scan.DNSCounts, release func(), err error) {
	var muxes []*mux.Mux
	release = func() {
		for _, m := range muxes {
			m.Close()
		}
	}
	core, err = g.dnsWith(func(cfg stub.Config) (resolve.Resolver, error) {
		m, err := mux.New(mux.Config{Config: cfg, QPS: qps})
		if err != nil {
			return nil, err
		}
		muxes = append(muxes, m)
		return m, nil
	}, check, cacheLimits)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	if check && !core.offline {
		core.direct = newMuxDirect(stub.Config{Timeout: min(2*time.Second, g.timeout/4)})
		closeMuxes := release
		release = func() {
			closeMuxes()
			core.direct.Close()
		}
	}
	counts = func() *scan.DNSCounts {
		if len(muxes) == 0 {
			return nil
		}
		var c scan.DNSCounts
		for _, r := range []resolve.Resolver{core.resolver, core.checkingDisabled} {
			if cache, ok := r.(*resolve.Cache); ok {
				st := cache.Stats()
				c.Cache.Hits += st.Hits
				c.Cache.Joined += st.Joined
				c.Cache.Misses += st.Misses
			}
		}
		for _, m := range muxes {
			c.Queries.Add(m.Stats())
		}
		return &c
	}
	return core, counts, release, nil
}

// startCPUProfile profiles the process into path until the returned
// function is called (runtime/pprof), so a slow scan can be looked into
// with go tool pprof on the real input and resolvers.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("--cpuprofile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, &exitError{exitFailed, fmt.Errorf("--cpuprofile: %w", err)}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes the heap profile (runtime/pprof "heap": the
// memory in use at the last collection, and every allocation since the
// start) to path. It collects first, so "in use" is what is live now.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return &exitError{exitFailed, fmt.Errorf("--memprofile: %w", err)}
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return &exitError{exitFailed, fmt.Errorf("--memprofile: %w", err)}
	}
	if err := f.Close(); err != nil {
		return &exitError{exitFailed, fmt.Errorf("--memprofile: %w", err)}
	}
	return nil
}

// interrupted says how far an interrupted scan got and how to go on.
func interrupted(err error, written int64, where string) error {
	return fmt.Errorf("%w; %s written to %s, run the same command with --resume to continue", err, prose.Count(int(written), "line"), where)
}

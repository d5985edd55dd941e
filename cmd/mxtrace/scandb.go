package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/scan"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// addScanDB declares scan --db and scan's subcommands on stored scans.
func addScanDB(g *globals, cmd *cobra.Command, o *scanOptions) {
	cmd.Flags().StringVar(&o.db, "db", "", "also store the scan in the database: a SQLite `FILE`, or postgres://… for PostgreSQL (see mxtrace scan list, scan diff)")
	cmd.AddCommand(scanListCommand(g), scanDiffCommand(g))
}

// scanStore opens --db as a store that keeps scans.
func scanStore(ctx context.Context, dsn string) (store.ScanStore, func(), error) {
	s, err := openDB(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	ss, ok := s.(store.ScanStore)
	if !ok {
		s.Close()
		return nil, nil, storeFailed(fmt.Errorf("--db: this store keeps no scans"))
	}
	return ss, func() { s.Close() }, nil
}

// scanDB begins a stored scan in --db and sets cfg.Written to store each
// line as it is written: its result, the JSON line, and the facts a diff
// reads (the watch snapshot of a check report, or of a plan's route). end
// commits what is left and marks the scan finished when the run ended
// without an error; an interrupted or failed scan stays unfinished, with
// every batch committed until then.
func (g *globals) scanDB(ctx context.Context, o *scanOptions, cfg *scan.Config, input string) (end func(runErr error) error, err error) {
	if o.db == "" {
		return func(error) error { return nil }, nil
	}
	ss, closeStore, err := scanStore(ctx, o.db)
	if err != nil {
		return nil, err
	}
	w, err := ss.BeginScan(ctx, store.ScanInfo{Mode: o.mode, Input: input})
	if err != nil {
		closeStore()
		return nil, storeFailed(err)
	}
	cfg.Written = func(it scan.Item, value any, line []byte) error {
		r, err := scanRecord(it, value, line, cfg.Format)
		if err != nil {
			return err
		}
		return w.Add(r)
	}
	g.logger.Debug("scan: storing", "scan", w.ID())
	return func(runErr error) error {
		defer closeStore()
		if runErr != nil {
			return w.Close()
		}
		if err := w.Finish(); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "mxtrace: stored as scan %d\n", w.ID())
		return nil
	}, nil
}

// scanRecord is one written line as the store keeps it.
func scanRecord(it scan.Item, value any, line []byte, format scan.Format) (store.ScanResult, error) {
	r := store.ScanResult{Domain: it.Key()}
	var facts *watch.Snapshot
	switch v := value.(type) {
	case *route.Plan:
		r.Status, facts = string(v.Result), watch.SnapshotOfPlan(v)
	case *check.Report:
		r.Status, facts = string(v.Result), watch.SnapshotOf(v)
	case *scan.ErrorRecord:
		r.Status = string(v.Result)
	}
	if r.Status == "" {
		r.Status = store.StatusError
	}
	if format == scan.FormatJSON {
		// A copy: the store writes it later, and scan reuses line.
		r.Line = bytes.Clone(bytes.TrimSuffix(line, []byte("\n")))
	} else {
		b, err := report.AppendJSON(nil, value)
		if err != nil {
			return r, fmt.Errorf("storing %s: %w", it.Key(), err)
		}
		r.Line = bytes.TrimSuffix(b, []byte("\n"))
	}
	if facts != nil {
		b, err := json.Marshal(facts)
		if err != nil {
			return r, fmt.Errorf("storing %s: %w", it.Key(), err)
		}
		r.Facts = b
	}
	return r, nil
}

func scanListCommand(g *globals) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the scans stored with scan --db",
		Long: `list shows each scan stored with scan --db: its number (what scan diff
takes), when it started and ended ("unfinished" when it was interrupted or is
still running: it holds the results committed until then), its mode, its
results and errors, and its input.`,
		Example: `  mxtrace scan list --db scans.db
  mxtrace scan list --db postgres://scan@db/mxtrace --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, closeStore, err := scanStore(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer closeStore()
			scans, err := ss.Scans(cmd.Context())
			if err != nil {
				return storeFailed(err)
			}
			if g.json {
				return report.WriteJSON(g.stdout, scansJSON(scans))
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SCAN\tSTARTED\tFINISHED\tMODE\tRESULTS\tERRORS\tINPUT")
			for _, s := range scans {
				finished := "unfinished"
				if !s.Finished.IsZero() {
					finished = timeText(s.Finished)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", s.ID, timeText(s.Started), finished, s.Mode, s.Results, s.Errors, printable.String(s.Input))
			}
			return tw.Flush()
		},
	}
	addDBFlag(cmd.Flags(), &db)
	return cmd
}

type scanJSON struct {
	ID       int64      `json:"scan"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished"` // null: unfinished
	Mode     string     `json:"mode"`
	Input    string     `json:"input"`
	Results  int64      `json:"results"`
	Errors   int64      `json:"errors"`
}

func scansJSON(scans []store.ScanInfo) []scanJSON {
	out := make([]scanJSON, len(scans))
	for i, s := range scans {
		out[i] = scanJSON{ID: s.ID, Started: s.Started, Mode: s.Mode, Input: s.Input, Results: s.Results, Errors: s.Errors}
		if !s.Finished.IsZero() {
			out[i].Finished = &s.Finished
		}
	}
	return out
}

func scanDiffCommand(g *globals) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "What changed between two stored scans, domain by domain",
		Long: `diff compares two scans stored with scan --db (numbers from scan list),
domain by domain: the typed changes between each domain's facts in the two
(an exchange added or removed, a preference, address or TTL changed, a
finding new or resolved; with --mode check scans also SPF, DMARC, DKIM,
MTA-STS, TLS-RPT, certificates, STARTTLS and blacklists), the domains in one
scan only, and those whose line in one scan has no facts (the entry could not
be scanned). A --mode route line has the route's facts only. Areas that
could not be checked (a temporary failure) are not compared. Both scans are
read in domain order and merged, so a diff of two scans of millions of
domains takes no more memory than one of ten.

Each domain that differs is written as it is found, then a summary: the
domains changed, and per change kind the domains with it. With --json, one
JSON object a line, the last one {"summary": ...}.

The exit status follows --fail-on on the changes' severities: 1 when a change
is at or above it, else 0. A scan that is unfinished is compared as far as
it got (a warning says so): the domains it never reached show as in the
other scan only.`,
		Example: `  mxtrace scan diff --db scans.db 1 2
  mxtrace scan diff --db scans.db --json 1 2 | jq -c 'select(.changes) | .domain'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids [2]int64
			for i, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil || id < 1 {
					return usageError("%q is not a scan number: see mxtrace scan list", a)
				}
				ids[i] = id
			}
			ss, closeStore, err := scanStore(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer closeStore()
			return g.scanDiff(cmd.Context(), ss, ids[0], ids[1])
		},
	}
	addDBFlag(cmd.Flags(), &db)
	return cmd
}

// scanDiffLine is a domain of scan diff --json.
type scanDiffLine struct {
	watch.ScanDomain
	Changes []changeLine `json:"changes,omitempty"`
}

type changeLine struct {
	Kind     watch.ChangeKind `json:"kind"`
	Subject  string           `json:"subject"`
	Severity string           `json:"severity"`
	Message  string           `json:"message"`
	Old      string           `json:"old"`
	New      string           `json:"new"`
}

func (g *globals) scanDiff(ctx context.Context, ss store.ScanStore, old, new int64) error {
	for _, id := range []int64{old, new} {
		si, err := ss.Scan(ctx, id)
		if err != nil {
			return usageError("%v: see mxtrace scan list", err)
		}
		if si.Finished.IsZero() {
			fmt.Fprintf(g.stderr, "mxtrace: warning: scan %d is unfinished (%s): the domains it did not reach show as in the other scan only\n",
				id, prose.Count(int(si.Results), "result"))
		}
	}
	st := report.Style{Color: g.color()}
	worst := finding.Severity(0)
	var b strings.Builder
	sum, err := watch.DiffScans(ctx, ss, old, new, func(d watch.ScanDomain) error {
		b.Reset()
		for _, c := range d.Changes {
			worst = max(worst, c.Severity)
		}
		if g.json {
			line := scanDiffLine{ScanDomain: d}
			for _, c := range d.Changes {
				line.Changes = append(line.Changes, changeLine{Kind: c.Kind, Subject: c.Subject, Severity: c.Severity.String(), Message: c.Message, Old: c.Old, New: c.New})
			}
			if err := report.WriteJSON(&b, line); err != nil {
				return err
			}
		} else {
			dom := paint(st, color.Bold)(printable.String(d.Domain))
			switch {
			case d.Only == "old":
				fmt.Fprintf(&b, "%s  only in scan %d (%s)\n", dom, old, d.OldStatus)
			case d.Only == "new":
				fmt.Fprintf(&b, "%s  only in scan %d (%s)\n", dom, new, d.NewStatus)
			case d.Uncompared != "":
				fmt.Fprintf(&b, "%s  not compared (%s to %s): %s\n", dom, d.OldStatus, d.NewStatus, d.Uncompared)
			default:
				fmt.Fprintf(&b, "%s  %s (%s to %s)\n", dom, prose.Count(len(d.Changes), "change"), d.OldStatus, d.NewStatus)
				cs := make([]store.Change, len(d.Changes))
				for i, c := range d.Changes {
					cs[i] = watch.StoreChange(c)
				}
				writeChanges(&b, "  ", cs, st)
			}
		}
		_, err := io.WriteString(g.stdout, b.String())
		return err
	})
	if err != nil {
		return storeFailed(err)
	}
	if g.json {
		err = report.WriteJSON(g.stdout, struct {
			Summary *watch.ScanDiffSummary `json:"summary"`
		}{sum})
	} else {
		_, err = io.WriteString(g.stdout, scanDiffSummaryText(sum, old, new))
	}
	if err != nil {
		return err
	}
	return g.verdict(nil, worst)
}

// scanDiffSummaryText is the summary of scan diff for people.
func scanDiffSummaryText(s *watch.ScanDiffSummary, old, new int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nscan %d: %s, scan %d: %s; %d in both: %d changed, %d not compared; %d only in scan %d, %d only in scan %d\n",
		old, prose.Count(int(s.Old), "domain"), new, prose.Count(int(s.New), "domain"), s.Both,
		s.Changed, s.Uncompared, s.OnlyOld, old, s.OnlyNew, new)
	kinds := slices.Sorted(maps.Keys(s.Kinds))
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-24s %s\n", k, prose.Count(int(s.Kinds[k]), "domain"))
	}
	return b.String()
}

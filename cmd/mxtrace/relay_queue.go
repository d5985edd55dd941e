package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/store"
)

// defaultQueuePath is the relay's queue when no --queue is given: relay.db
// beside watch's database, in $XDG_DATA_HOME/mxtrace.
func defaultQueuePath() string {
	return filepath.Join(filepath.Dir(store.DefaultPath()), "relay.db")
}

// addQueueFlag declares --queue on a command that opens the relay's queue.
func addQueueFlag(f *pflag.FlagSet, dsn *string) {
	f.StringVar(dsn, "queue", "", "the queue: a SQLite `FILE`, or postgres://… for PostgreSQL (default "+defaultQueuePath()+")")
}

// openQueue opens the queue --queue names; one that cannot be opened is a
// job that could not be done.
func openQueue(ctx context.Context, dsn string) (*queue.Queue, error) {
	if dsn == "" {
		dsn = defaultQueuePath()
	}
	q, err := queue.Open(ctx, dsn)
	if err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("--queue: %w", err)}
	}
	return q, nil
}

// parseIDs reads message IDs as queue list prints them, all before any is
// acted on.
func parseIDs(args []string) ([]queue.ID, error) {
	ids := make([]queue.ID, 0, len(args))
	for _, a := range args {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 1 {
			return nil, usageError("%q is not a message ID: mxtrace relay queue list shows them", a)
		}
		ids = append(ids, queue.ID(n))
	}
	return ids, nil
}

// notQueued is the error of an ID the queue does not hold: bad input, as
// for watch remove.
func notQueued(id queue.ID, err error) error {
	if errors.Is(err, queue.ErrNotFound) {
		return usageError("message %d is not in the queue (delivered, returned or deleted; mxtrace relay queue list shows what is)", id)
	}
	return storeFailed(err)
}

func relayQueueCommand(g *globals) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Look at and operate the relay's queue",
		Long: `queue reads and changes the relay's queue, the same database mxtrace relay
runs on (--queue; a running relay sees each change at its next look).

  queue list                 every message, oldest first, with each recipient's
                             state and next attempt
  queue show ID              one message's envelope and recipients
  queue flush ID...          try the pending recipients now
  queue flush --domain D     try every message pending at domain D now
  queue hold ID...           stop delivering (and expiring) a message until released
  queue release ID...        deliver a held message again
  queue delete ID...         drop a message for good, with no notice to its sender

An ID that is not in the queue is bad input (exit status 2); nothing is
changed then.`,
		Example: `  mxtrace relay queue list
  mxtrace relay queue list --domain example.com --json
  mxtrace relay queue show 42
  mxtrace relay queue flush --domain example.com
  mxtrace relay queue hold 42 43
  mxtrace relay queue --queue postgres://relay@db/mail delete 42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("queue needs a command: list, show, flush, hold, release or delete (mxtrace relay queue --help)")
		},
	}
	addQueueFlag(cmd.PersistentFlags(), &dsn)

	var listDomain string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the queued messages, oldest first, with each recipient's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var domain string
			if listDomain != "" {
				n, err := parseName(listDomain)
				if err != nil {
					return err
				}
				domain = n.String()
			}
			return g.withQueue(cmd, dsn, func(ctx context.Context, q *queue.Queue) error {
				es, err := q.List(ctx, queue.Filter{Domain: domain})
				if err != nil {
					return storeFailed(err)
				}
				if g.json {
					return writeEntriesJSON(g.stdout, es)
				}
				return writeEntries(g.stdout, es, time.Now())
			})
		},
	}
	list.Flags().StringVar(&listDomain, "domain", "", "only the messages with a recipient pending at `DOMAIN`")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one message's envelope and recipients",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return g.withQueue(cmd, dsn, func(ctx context.Context, q *queue.Queue) error {
				e, err := q.Show(ctx, ids[0])
				if err != nil {
					return notQueued(ids[0], err)
				}
				if g.json {
					return writeEntriesJSON(g.stdout, []queue.Entry{*e})
				}
				return writeEntry(g.stdout, e, time.Now())
			})
		},
	}

	var flushDomain string
	flush := &cobra.Command{
		Use:   "flush ID...|--domain DOMAIN",
		Short: "Try pending recipients now instead of at their next attempt",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) > 0) == (flushDomain != "") {
				return usageError("flush needs message IDs or --domain DOMAIN, not both")
			}
			if flushDomain != "" {
				n, err := parseName(flushDomain)
				if err != nil {
					return err
				}
				return g.withQueue(cmd, dsn, func(ctx context.Context, q *queue.Queue) error {
					count, err := q.FlushDomain(ctx, n.String())
					if err != nil {
						return storeFailed(err)
					}
					if g.json {
						return report.WriteJSON(g.stdout, map[string]any{"domain": n.String(), "flushed": count})
					}
					fmt.Fprintf(g.stdout, "%s: %s due now\n", n, prose.Count(count, "message"))
					return nil
				})
			}
			return g.queueOp(cmd, dsn, args, "flushed", (*queue.Queue).Flush, "%d: its pending recipients are due now\n")
		},
	}
	flush.Flags().StringVar(&flushDomain, "domain", "", "flush every message with recipients pending at `DOMAIN`")

	op := func(use, short, done string, fn func(*queue.Queue, context.Context, queue.ID) error, text string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID...",
			Short: short,
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.queueOp(cmd, dsn, args, done, fn, text)
			},
		}
	}
	cmd.AddCommand(list, show, flush,
		op("hold", "Stop delivering messages until released (nor do they expire)", "held", (*queue.Queue).Hold, "%d: held\n"),
		op("release", "Deliver held messages again", "released", (*queue.Queue).Release, "%d: released\n"),
		op("delete", "Drop messages for good, with no notice to their senders", "deleted", (*queue.Queue).Delete, "%d: deleted\n"))
	return cmd
}

// withQueue opens the queue, runs fn on it and closes it.
func (g *globals) withQueue(cmd *cobra.Command, dsn string, fn func(context.Context, *queue.Queue) error) error {
	q, err := openQueue(cmd.Context(), dsn)
	if err != nil {
		return err
	}
	defer q.Close()
	return fn(cmd.Context(), q)
}

// queueOp applies fn to each message args names. Every ID is parsed and
// looked up first, so that a typo in the third leaves the first two
// unchanged.
func (g *globals) queueOp(cmd *cobra.Command, dsn string, args []string, done string, fn func(*queue.Queue, context.Context, queue.ID) error, text string) error {
	ids, err := parseIDs(args)
	if err != nil {
		return err
	}
	return g.withQueue(cmd, dsn, func(ctx context.Context, q *queue.Queue) error {
		for _, id := range ids {
			if _, err := q.Show(ctx, id); err != nil {
				return notQueued(id, err)
			}
		}
		for _, id := range ids {
			if err := fn(q, ctx, id); err != nil {
				return notQueued(id, err)
			}
			if g.json {
				if err := report.WriteJSON(g.stdout, map[string]any{"id": int64(id), done: true}); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(g.stdout, text, id)
		}
		return nil
	})
}

// writeEntriesJSON writes one object per message (relay.EntryJSON, the
// object GET /api/v1/queue lists).
func writeEntriesJSON(w io.Writer, es []queue.Entry) error {
	var b []byte
	for _, e := range es {
		var err error
		if b, err = report.AppendJSON(b, relay.NewEntryJSON(e)); err != nil {
			return err
		}
	}
	_, err := w.Write(b)
	return err
}

// maxErrorColumn bounds the last error shown in queue list's table; show
// prints it whole.
const maxErrorColumn = 60

// writeEntries writes the queue as a table, a line per recipient, the
// message's columns on its first line only.
func writeEntries(w io.Writer, es []queue.Entry, now time.Time) error {
	if len(es) == 0 {
		_, err := io.WriteString(w, "the queue is empty\n")
		return err
	}
	table, err := aligned(func(tw io.Writer) {
		fmt.Fprintf(tw, "ID\tRECEIVED\tSENDER\tRECIPIENT\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR\n")
		for _, e := range es {
			id, received, sender := e.ID.String(), timeText(e.Received), senderText(e.Sender)
			if len(e.Recipients) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t\t\t\n", id, received, sender)
			}
			for i, r := range e.Recipients {
				if i > 0 {
					id, received, sender = "", "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, received, sender, r.Address,
					stateText(e, r), r.Attempts, nextText(e, r, now), cut(r.LastError, maxErrorColumn))
			}
		}
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, table)
	return err
}

// writeEntry writes one message's envelope and recipients.
func writeEntry(w io.Writer, e *queue.Entry, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "message %s\n", e.ID)
	client := "-"
	if e.Client.IsValid() {
		client = e.Client.String()
	}
	if e.Helo != "" {
		client += " (EHLO " + e.Helo + ")"
	}
	held := "no"
	if e.Held {
		held = "yes: mxtrace relay queue release " + e.ID.String() + " delivers it again"
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  sender\t%s\n  client\t%s\n  received\t%s\n  expires\t%s\n  held\t%s\n",
		senderText(e.Sender), client, timeText(e.Received), timeText(e.Expires), held)
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString(table.String())
	b.WriteString("recipients\n")
	for _, r := range e.Recipients {
		fmt.Fprintf(&b, "  %s: %s", r.Address, stateText(*e, r))
		if r.Attempts > 0 {
			fmt.Fprintf(&b, " after %s", prose.Count(r.Attempts, "attempt"))
		}
		if next := nextText(*e, r, now); next != "" {
			fmt.Fprintf(&b, ", next attempt %s", next)
		}
		b.WriteString("\n")
		if r.LastError != "" {
			fmt.Fprintf(&b, "    last error: %s\n", r.LastError)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// senderText is an envelope sender as printed: <> for the null sender.
func senderText(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

// stateText is a recipient's state, "held" for a pending one of a held
// message.
func stateText(e queue.Entry, r queue.RecipientState) string {
	if e.Held && relay.Pending(r.State) {
		return "held"
	}
	return string(r.State)
}

// nextText is a pending recipient's next attempt ("now" when due), "" for
// one that is done or held.
func nextText(e queue.Entry, r queue.RecipientState, now time.Time) string {
	if e.Held || !relay.Pending(r.State) {
		return ""
	}
	return whenText(r.Next, now)
}

// cut shortens s to n runes, with an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/spf"
)

func spfCommand(g *globals) *cobra.Command {
	var ipText, sender, helo string
	cmd := &cobra.Command{
		Use:   "spf DOMAIN|ADDRESS --ip IP",
		Short: "Evaluate SPF (RFC 7208 check_host) and show the lookup tree",
		Long: `spf evaluates the domain's SPF policy for a client address exactly as a
receiving server does (RFC 7208 check_host) and prints the result, the path
that decided it (which record and term, through which includes and
redirects), the explanation of a fail, and how many DNS-querying terms and
void lookups the evaluation used (the limits are 10 and 2).

It also walks the whole record tree, whatever the address, and prints every
include and redirect with its lookup count, and the problems found
(spf-missing, spf-multiple, spf-syntax, spf-lookup-limit, spf-void-lookups,
spf-plus-all, spf-neutral-all, spf-ptr).

Given an e-mail address, its domain is checked and the address is the
sender. The sender defaults to postmaster@DOMAIN and the HELO name to DOMAIN.

Exit status: 0 the evaluation ran, whatever the SPF result; 2 bad input
(invalid domain or address); 3 it could not run (no DNS server answered).`,
		Example: `  mxtrace spf --zone cmd/mxtrace/testdata/spf-example.zone shop.example.test --ip 198.51.100.7
  mxtrace spf example.com --ip 192.0.2.1 --sender bounce@example.com --helo mail.example.net
  mxtrace spf --json joe@example.org --ip 2001:db8::25`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := dnsname.Parse(args[0])
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if ipText == "" {
				return usageError("--ip is required: the client address to evaluate the policy for")
			}
			ip, err := netip.ParseAddr(ipText)
			if err != nil || ip.Zone() != "" {
				return usageError("--ip: %q is not an IP address", ipText)
			}
			if sender == "" {
				sender = "postmaster@" + name.String()
				if strings.Contains(args[0], "@") {
					sender = strings.TrimSpace(args[0])
				}
			} else if !strings.Contains(sender, "@") {
				return usageError("--sender: %q is not an e-mail address", sender)
			}
			if helo == "" {
				helo = name.String()
			}
			r, err := g.resolver()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			out := g.runSPF(ctx, &spf.Checker{Resolver: r, Logger: g.logger, Timeout: g.timeout},
				&spf.Analyzer{Resolver: r, Logger: g.logger}, name, spf.Query{IP: ip, Domain: name.String(), Sender: sender, HELO: helo})
			if g.json {
				err = report.WriteJSON(g.stdout, out)
			} else {
				err = writeSPF(g.stdout, out)
			}
			if err != nil {
				return &exitError{exitFailed, err}
			}
			switch {
			case out.analysisErr != nil && couldNotRun(out.analysisErr):
				return &exitError{exitFailed, out.analysisErr}
			case out.Status == spf.TempError && couldNotRun(out.Err):
				return &exitError{exitFailed, out.Err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ipText, "ip", "", "the client `IP` address to evaluate the policy for (required)")
	cmd.Flags().StringVar(&sender, "sender", "", "the MAIL FROM `ADDRESS` (default postmaster@DOMAIN)")
	cmd.Flags().StringVar(&helo, "helo", "", "the client's HELO/EHLO `NAME` (default DOMAIN)")
	return cmd
}

// spfOutput is what `spf --json` prints: check_host()'s result with the
// record tree and its findings.
type spfOutput struct {
	Schema int `json:"schema"`
	*spf.Result
	Tree            *spf.Node         `json:"tree"`
	TreeLookups     int               `json:"tree_lookups"`
	TreeVoidLookups int               `json:"tree_void_lookups"`
	Incomplete      bool              `json:"incomplete,omitempty"`
	Findings        []finding.Finding `json:"findings"`
	Error           string            `json:"error,omitempty"`
	ElapsedMS       int64             `json:"elapsed_ms"`

	analysisErr error
}

// runSPF evaluates and analyses at once: the two walk the same records, and
// the shared cache answers the second asker.
func (g *globals) runSPF(ctx context.Context, c *spf.Checker, a *spf.Analyzer, name dnsname.Name, q spf.Query) *spfOutput {
	start := time.Now()
	out := &spfOutput{Schema: 1}
	var an *spf.Analysis
	var wg sync.WaitGroup
	wg.Go(func() { out.Result = c.CheckHost(ctx, q) })
	wg.Go(func() { an, out.analysisErr = a.Analyze(ctx, name) })
	wg.Wait()
	out.Tree, out.TreeLookups, out.TreeVoidLookups = an.Tree, an.Lookups, an.VoidLookups
	out.Incomplete, out.Findings = an.Incomplete, an.Findings
	if out.analysisErr != nil {
		out.Error = out.analysisErr.Error()
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	return out
}

// writeSPF prints the result for a person: the result line, the deciding
// path, the counts, then the record tree and the findings.
func writeSPF(w io.Writer, o *spfOutput) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  for %s (sender %s, helo %s)  (%d ms)\n", o.Domain, o.Status, o.IP, o.Sender, o.HELO, o.ElapsedMS)
	if o.Reason != "" {
		fmt.Fprintf(&b, "  why: %s\n", o.Reason)
	}
	if o.Explanation != "" {
		fmt.Fprintf(&b, "  explanation: %s\n", o.Explanation)
	}
	if len(o.Path) > 0 {
		b.WriteString("  decided by:\n")
		for i, s := range o.Path {
			indent := strings.Repeat("  ", i)
			via := ""
			if s.Via != "" {
				via = s.Via + " → "
			}
			term := s.Term
			if term == "" {
				term = "(no term)"
			}
			fmt.Fprintf(&b, "    %s%s%s: %s  %s", indent, via, s.Domain, term, s.Result)
			if s.Detail != "" {
				fmt.Fprintf(&b, "  (%s)", s.Detail)
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "  evaluation: %s, %s (limits %d and %d)\n",
		countWord(o.Lookups, "DNS-querying term"), countWord(o.VoidLookups, "void lookup"), spf.MaxLookups, spf.MaxVoidLookups)

	if o.Tree != nil {
		fmt.Fprintf(&b, "  record tree: %s, %s in all", countWord(o.TreeLookups, "DNS-querying term"), countWord(o.TreeVoidLookups, "void lookup"))
		if o.Incomplete {
			b.WriteString(" (incomplete)")
		}
		b.WriteString("\n")
		writeSPFNode(&b, o.Tree, "    ", "    ")
	}
	if o.Error != "" {
		fmt.Fprintf(&b, "  analysis failed: %s\n", o.Error)
	}
	for _, f := range o.Findings {
		fmt.Fprintf(&b, "  %-7s %s  %s\n", f.Severity, f.ID, f.Message)
		if f.Severity > finding.Info && f.Fix != "" {
			fmt.Fprintf(&b, "          fix: %s", f.Fix)
			if f.Reference != "" {
				fmt.Fprintf(&b, " (%s)", f.Reference)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSPFNode prints one record of the tree and, indented, its children.
func writeSPFNode(b *strings.Builder, n *spf.Node, first, rest string) {
	b.WriteString(first)
	if n.Term != "" {
		b.WriteString(n.Term + "  ")
	} else {
		b.WriteString(n.Domain + "  ")
	}
	if n.Record != "" {
		fmt.Fprintf(b, "%q", n.Record)
	} else {
		b.WriteString("(no record)")
	}
	fmt.Fprintf(b, "  [%s", countWord(n.Lookups, "lookup"))
	if n.TotalLookups != n.Lookups {
		fmt.Fprintf(b, ", %d with includes", n.TotalLookups)
	}
	if n.VoidLookups > 0 {
		fmt.Fprintf(b, ", %s", countWord(n.VoidLookups, "void lookup"))
	}
	b.WriteString("]\n")
	for _, e := range n.Errors {
		fmt.Fprintf(b, "%s  ! %s\n", rest, e)
	}
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			writeSPFNode(b, c, rest+"└─ ", rest+"   ")
		} else {
			writeSPFNode(b, c, rest+"├─ ", rest+"│  ")
		}
	}
}

func countWord(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

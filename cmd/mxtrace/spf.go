package main

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dnsname"
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
(spf-missing, spf-include-none, spf-redirect-none, spf-multiple, spf-syntax,
spf-lookup-limit, spf-void-lookups, spf-plus-all, spf-neutral-all, spf-ptr).

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
				spf.Options{Logger: g.logger}, name, spf.Query{IP: ip, Domain: name.String(), Sender: sender, HELO: helo})
			if g.json {
				err = report.WriteJSON(g.stdout, out)
			} else {
				err = report.WriteSPF(g.stdout, out, report.Style{Color: g.color()})
			}
			if err != nil {
				return &exitError{exitFailed, err}
			}
			switch {
			case out.AnalysisErr != nil && couldNotRun(out.AnalysisErr):
				return &exitError{exitFailed, out.AnalysisErr}
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

// runSPF evaluates and analyses at once: the two walk the same records, and
// the shared cache answers the second asker. The analysis asks through c's
// resolver.
func (g *globals) runSPF(ctx context.Context, c *spf.Checker, opts spf.Options, name dnsname.Name, q spf.Query) *report.SPF {
	start := time.Now()
	out := &report.SPF{Schema: 1}
	var an *spf.Analysis
	var wg sync.WaitGroup
	wg.Go(func() { out.Result = c.CheckHost(ctx, q) })
	wg.Go(func() { an, out.AnalysisErr = spf.Lookup(ctx, c.Resolver, name, opts) })
	wg.Wait()
	out.Tree, out.TreeLookups, out.TreeVoidLookups = an.Tree, an.Lookups, an.VoidLookups
	out.Incomplete, out.Findings = an.Incomplete, spf.Findings(an)
	if out.AnalysisErr != nil {
		out.Error = out.AnalysisErr.Error()
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	return out
}

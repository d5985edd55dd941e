package main

import (
	"context"
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
		Use:   "spf [DOMAIN|ADDRESS] --ip IP [--sender ADDRESS] [--helo NAME]",
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

Given a DOMAIN, its policy is checked; given an e-mail address, its domain,
and the address is the sender. The sender defaults to postmaster@DOMAIN and
the HELO name to DOMAIN.

Without a DOMAIN, the input is what a receiving server sees in the SMTP
session (RFC 7208 §2.3, §2.4, §4.3): the domain is the --sender's domain
part; with a null sender (--sender '<>' or --sender '') or none, it is the
--helo name, and the sender is postmaster@HELO; a sender without a local
part gets "postmaster". A domain taken from the session that is not a
usable name (an empty label, a label over 63 octets, an address literal
such as [192.0.2.1], a single label) gives the result none with the reason,
as check_host requires; a DOMAIN typed as the argument must be valid.

Exit status: 0 the evaluation ran, whatever the SPF result; 2 bad input
(invalid DOMAIN or address); 3 it could not run (no usable DNS answer).`,
		Example: `  mxtrace spf --zone cmd/mxtrace/testdata/spf-example.zone shop.example.test --ip 198.51.100.7
  mxtrace spf example.com --ip 192.0.2.1 --sender bounce@example.com --helo mail.example.net
  mxtrace spf --ip 192.0.2.1 --sender bounce@example.com --helo mail.example.net
  mxtrace spf --ip 192.0.2.1 --sender '<>' --helo mail.example.net
  mxtrace spf --json joe@example.org --ip 2001:db8::25`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ipText == "" {
				return usageError("--ip is required: the client address to evaluate the policy for")
			}
			ip, err := netip.ParseAddr(ipText)
			if err != nil || ip.Zone() != "" {
				return usageError("--ip: %q is not an IP address", ipText)
			}
			q, name, err := spfQuery(args, sender, cmd.Flags().Changed("sender"), helo)
			if err != nil {
				return err
			}
			q.IP = ip
			r, err := g.resolver()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			out := g.runSPF(ctx, &spf.Checker{Resolver: r, Logger: g.logger, Timeout: g.timeout},
				spf.Options{Logger: g.logger}, name, q)
			if g.json {
				err = report.WriteJSON(g.stdout, out)
			} else {
				err = report.WriteSPF(g.stdout, out, report.Style{Color: g.color()})
			}
			if err != nil {
				return &exitError{exitFailed, err}
			}
			// The SPF result, and the tree's findings, are the answer:
			// only a lookup that could not be done changes the status.
			var failed error
			switch {
			case jobFailed(out.AnalysisErr):
				failed = out.AnalysisErr
			case out.Status == spf.TempError && jobFailed(out.Err):
				failed = out.Err
			}
			return g.verdict(failed, 0)
		},
	}
	cmd.Flags().StringVar(&ipText, "ip", "", "the client `IP` address to evaluate the policy for (required)")
	cmd.Flags().StringVar(&sender, "sender", "", "the MAIL FROM `ADDRESS`; '<>' or '' is the null sender (default postmaster@DOMAIN)")
	cmd.Flags().StringVar(&helo, "helo", "", "the client's HELO/EHLO `NAME` (default DOMAIN)")
	return cmd
}

// spfQuery builds check_host()'s input from the command line: a DOMAIN
// (or ADDRESS) typed as the argument, which must be valid; or, without
// one, the session's sender and HELO name, from which check_host() derives
// the domain (spf.Query.Identity) and judges it. name is the domain whose
// record tree is walked: "" when the derived one is not a name the tree
// walk can take, for which check_host() says none and why.
func spfQuery(args []string, sender string, senderGiven bool, helo string) (q spf.Query, name dnsname.Name, err error) {
	null := senderGiven && (sender == "" || sender == "<>")
	if !null && sender != "" && !strings.Contains(sender, "@") {
		return q, "", usageError("--sender: %q is not an e-mail address ('<>' is the null sender)", sender)
	}
	if len(args) == 1 {
		if name, err = parseName(args[0]); err != nil {
			return q, "", hintIP(err, func(string) string { return "the client address goes in --ip" })
		}
		switch {
		case !senderGiven && strings.Contains(args[0], "@"):
			sender = strings.TrimSpace(args[0])
		case !senderGiven:
			sender = "postmaster@" + name.String()
		}
		if helo == "" {
			helo = name.String()
		}
		return spf.Query{Domain: name.String(), Sender: sender, HELO: helo}, name, nil
	}
	if (null || sender == "") && helo == "" {
		return q, "", usageError("give a DOMAIN, or the session it comes from: --sender ADDRESS, or --helo NAME (with a null sender, or none)")
	}
	q = spf.Query{Sender: sender, HELO: helo}
	_, domain := q.Identity()
	if q.HELO == "" {
		q.HELO = domain
	}
	// RFC 7208 §4.3: a single-label domain gives none; no tree to walk.
	if n, err := dnsname.Parse(domain); err == nil && strings.Contains(n.String(), ".") {
		name = n
	}
	return q, name, nil
}

// runSPF evaluates and analyses at once: the two walk the same records, and
// the shared cache answers the second asker. The analysis asks through c's
// resolver. Without a name (a domain from the session that is not one)
// there is no tree to walk.
func (g *globals) runSPF(ctx context.Context, c *spf.Checker, opts spf.Options, name dnsname.Name, q spf.Query) *report.SPF {
	start := time.Now()
	out := &report.SPF{Schema: 1}
	var an *spf.Analysis
	var wg sync.WaitGroup
	wg.Go(func() { out.Result = c.CheckHost(ctx, q) })
	if name != "" {
		wg.Go(func() { an, out.AnalysisErr = spf.Lookup(ctx, c.Resolver, name, opts) })
	}
	wg.Wait()
	out.Findings = []finding.Finding{}
	if an != nil {
		out.Tree, out.TreeLookups, out.TreeVoidLookups = an.Tree, an.Lookups, an.VoidLookups
		out.Incomplete, out.Findings = an.Incomplete, spf.Findings(an)
	}
	if out.AnalysisErr != nil {
		out.Error = out.AnalysisErr.Error()
	}
	out.ElapsedMS = time.Since(start).Milliseconds()
	return out
}

package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

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
			req := spf.Request{IP: ipText, Sender: sender, HELO: helo}
			if len(args) == 1 {
				req.Domain = args[0]
			}
			if sender == "" && cmd.Flags().Changed("sender") {
				req.Sender = "<>" // --sender '': the null sender
			}
			q, name, err := req.Query()
			if err != nil {
				return spfUsage(err)
			}
			r, err := g.resolver()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			out := spf.Evaluate(ctx, &spf.Checker{Resolver: r, Logger: g.logger, Timeout: g.timeout}, q, name, spf.Options{Logger: g.logger})
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

// spfUsage is the usage error of a request spf.Request.Query refused,
// worded for the command line: its parameters are flags, and an address
// typed as the DOMAIN gets a hint.
func spfUsage(err error) error {
	re, ok := errors.AsType[*spf.RequestError](err)
	switch {
	case !ok:
		return err
	case re.Param == spf.ParamDomain:
		return hintIP(&exitError{exitUsage, re.Err}, func(string) string { return "the client address goes in --ip" })
	case re.Param != "":
		return usageError("--%w", err)
	}
	return usageError("%w", err)
}

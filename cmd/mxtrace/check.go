package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

func checkCommand(g *globals) *cobra.Command {
	var (
		selectors []string
		lists     []string
		noDNSBL   bool
		seed      uint64
	)
	cmd := &cobra.Command{
		Use:   "check DOMAIN|ADDRESS...",
		Short: "Audit a domain's mail DNS: routing, nameservers, PTR, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, DANE, blacklists",
		Long: `check audits everything a sender and a receiver look at for a mail domain:
the delivery plan (as route computes it), the zone's authoritative servers
(do they agree on the MX set and the serial, is the zone signed), reverse DNS
of every exchange address, SPF (with the DNS lookup count of the whole include
tree), DMARC (with report-destination consent), DKIM keys at common selectors,
MTA-STS (record and HTTPS policy, and whether it covers every MX), TLS-RPT,
DANE TLSA records, and DNS blacklists.

Every lookup is asked once and independent lookups run at the same time. A
temporary failure is reported as "could not check", never as a missing record.
Each problem is a finding with a stable ID (docs/findings.md) and a fix.

With --zone and no --resolver, check runs offline on the zone files and says
in one line what it skipped because it needs the network.`,
		Example: `  mxtrace check --zone examples/example.zone tiers.example
  mxtrace check example.com
  mxtrace check --json example.com | jq '.findings[] | .id'
  mxtrace check --fail-on warning --dkim-selector s2024 example.com
  mxtrace check --zone new.zone --resolver 9.9.9.9 example.com`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			core, err := g.dns()
			if err != nil {
				return err
			}
			planner := &route.Planner{Resolver: core.resolver, Logger: g.logger, IPv4: g.ipv4, IPv6: g.ipv6}
			if cmd.Flags().Changed("seed") {
				planner.Seed, planner.HasSeed = seed, true
			}
			a := &check.Auditor{
				Resolver:      core.resolver,
				Planner:       planner,
				DKIMSelectors: selectors,
				Logger:        g.logger,
			}
			if core.offline {
				a.SkipReason = "they need the network: --zone without --resolver"
			} else {
				a.Nameservers = &nameserver.Auditor{Resolver: core.resolver, CDResolver: core.checkingDisabled, Logger: g.logger, IPv4: g.ipv4, IPv6: g.ipv6}
				a.MTASTS = &mtasts.Checker{Resolver: core.resolver, Fetcher: &mtasts.Fetcher{Resolver: core.resolver, Logger: g.logger}, Logger: g.logger}
				if !noDNSBL {
					a.DNSBL = &dnsbl.Checker{Resolver: core.resolver, Lists: lists}
				} else {
					a.SkipReason = "--no-dnsbl"
				}
			}
			style := report.Style{Color: g.color()}
			return runInOrder(g, cmd.Context(), names,
				func(ctx context.Context, n dnsname.Name) (*check.Report, error) {
					r := a.Audit(ctx, n)
					return r, errors.Join(r.Errors()...)
				},
				func(r *check.Report) error {
					if g.json {
						return report.WriteJSON(g.stdout, r)
					}
					return report.WriteCheck(g.stdout, r, style)
				},
				func(r *check.Report) []finding.Finding { return r.Findings })
		},
	}
	cmd.Flags().StringSliceVar(&selectors, "dkim-selector", nil, "also probe this DKIM `SELECTOR` (repeatable)")
	cmd.Flags().StringSliceVar(&lists, "dnsbl", nil, "query this DNS blacklist `ZONE` instead of the defaults (repeatable)")
	cmd.Flags().BoolVar(&noDNSBL, "no-dnsbl", false, "do not query DNS blacklists")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	return cmd
}

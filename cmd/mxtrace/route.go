package main

import (
	"context"
	"sync"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

// maxParallelDomains bounds how many domains of one command line are
// planned at once.
const maxParallelDomains = 32

func routeCommand(g *globals) *cobra.Command {
	var (
		seed uint64
		self string
	)
	cmd := &cobra.Command{
		Use:   "route DOMAIN|ADDRESS...",
		Short: "Show the delivery plan a sender computes (RFC 5321 §5.1)",
		Long: `route computes where mail for each domain goes, exactly as an RFC 5321 §5.1
sender does: it follows an alias, recognises NXDOMAIN, Null MX (RFC 7505) and
implicit MX, sorts the exchanges into preference tiers, shuffles each tier,
and resolves every exchange to its addresses. Problems with the exchanges
are reported with their finding IDs.

A temporary DNS failure (SERVFAIL, REFUSED, time-out) is reported as result
"error", never as "no MX".`,
		Example: `  mxtrace route --zone examples/example.zone tiers.example
  mxtrace route example.com postmaster@example.org
  mxtrace route --json --seed 1 example.com
  mxtrace route --self mx2.example.com example.com
  mxtrace route --resolver 9.9.9.9 --resolver 1.1.1.1 bücher.example`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := parseNames(args)
			if err != nil {
				return err
			}
			p := &route.Planner{Logger: g.logger, IPv4: g.ipv4, IPv6: g.ipv6}
			if cmd.Flags().Changed("seed") {
				p.Seed, p.HasSeed = seed, true
			}
			if self != "" {
				if p.Self, err = dnsname.Parse(self); err != nil {
					return usageError("--self: %w", err)
				}
			}
			if p.Resolver, err = g.resolver(); err != nil {
				return err
			}
			return g.printPlans(cmd.Context(), p, names)
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	cmd.Flags().StringVar(&self, "self", "", "the sending host's `NAME`, when it is itself an MX of the domain")
	return cmd
}

// printPlans plans every domain concurrently (bounded) and prints them in
// input order as soon as each one and all before it are done.
func (g *globals) printPlans(ctx context.Context, p *route.Planner, names []dnsname.Name) error {
	type result struct {
		plan *route.Plan
		err  error
	}
	done := make([]chan result, len(names))
	sem := make(chan struct{}, maxParallelDomains)
	var wg sync.WaitGroup
	for i, n := range names {
		done[i] = make(chan result, 1)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, g.timeout)
			defer cancel()
			plan, err := p.Plan(dctx, n)
			done[i] <- result{plan, err}
		})
	}
	defer wg.Wait()

	failOn, _ := g.failSeverity()
	style := report.Style{Color: g.color()}
	worst, failed := finding.Severity(0), error(nil)
	for _, c := range done {
		r := <-c
		var err error
		if g.json {
			err = report.WriteJSON(g.stdout, r.plan)
		} else {
			err = report.WriteRoute(g.stdout, r.plan, style)
		}
		if err != nil {
			return &exitError{exitFailed, err}
		}
		worst = max(worst, finding.Worst(r.plan.Findings))
		if r.err != nil && couldNotRun(r.err) && failed == nil {
			failed = r.err
		}
	}
	if failed != nil {
		return &exitError{exitFailed, failed}
	}
	if failOn != 0 && worst >= failOn {
		return &exitError{exitFindings, errFindings}
	}
	return nil
}

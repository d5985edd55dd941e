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
			var selfName dnsname.Name
			if self != "" {
				if selfName, err = dnsname.Parse(self); err != nil {
					return usageError("--self: %w", err)
				}
			}
			r, err := g.resolver()
			if err != nil {
				return err
			}
			p := g.planner(cmd, r, seed)
			p.Self = selfName
			return g.printPlans(cmd.Context(), p, names)
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	cmd.Flags().StringVar(&self, "self", "", "the sending host's `NAME`, when it is itself an MX of the domain")
	return cmd
}

// printPlans plans every domain concurrently and prints the plans in
// input order.
func (g *globals) printPlans(ctx context.Context, p *route.Planner, names []dnsname.Name) error {
	style := report.Style{Color: g.color()}
	return runInOrder(g, ctx, names,
		func(ctx context.Context, n dnsname.Name) (*route.Plan, error) {
			plan, err := p.Plan(ctx, n)
			if !jobFailed(err) {
				err = nil // an answer broken for good (brokenForGood): a finding
			}
			return plan, err
		},
		func(plan *route.Plan) error {
			if g.json {
				return report.WriteJSON(g.stdout, plan)
			}
			return report.WriteRoute(g.stdout, plan, style)
		},
		func(plan *route.Plan) []finding.Finding { return plan.Findings })
}

// runInOrder runs do for every name concurrently (at most
// maxParallelDomains at once, each within --timeout) and writes the
// results in input order as soon as each one and all before it are done.
// do's error says that the job could not be done for the name (nil when it
// was, whatever was found); the outcome goes through verdict: 3 when a job
// could not be done, else 1 when a finding reaches --fail-on.
func runInOrder[T any](g *globals, ctx context.Context, names []dnsname.Name,
	do func(context.Context, dnsname.Name) (T, error), write func(T) error, findings func(T) []finding.Finding) error {
	type result struct {
		v   T
		err error
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
			v, err := do(dctx, n)
			done[i] <- result{v, err}
		})
	}
	defer wg.Wait()

	worst, failed := finding.Severity(0), error(nil)
	for _, c := range done {
		r := <-c
		if err := write(r.v); err != nil {
			return &exitError{exitFailed, err}
		}
		worst = max(worst, finding.Worst(findings(r.v)))
		if failed == nil {
			failed = r.err
		}
	}
	return g.verdict(failed, worst)
}

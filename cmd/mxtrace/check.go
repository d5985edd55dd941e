package main

import (
	"context"
	"crypto/x509"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

func checkCommand(g *globals) *cobra.Command {
	var (
		selectors []string
		lists     []string
		noDNSBL   bool
		seed      uint64
		noSMTP    bool
		smtp      bool
		relayTo   string
		helo      string
	)
	cmd := &cobra.Command{
		Use:   "check DOMAIN|ADDRESS...",
		Short: "Audit a mail domain by area: routing, nameservers, reverse DNS, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, DANE, blacklists, SMTP, tiers",
		Long: `check audits everything a sender and a receiver look at for a mail domain:
the delivery plan (as route computes it), the zone's authoritative servers
(do they agree on the MX set and the serial, is the zone signed), reverse DNS
of every exchange address, SPF (with the DNS lookup count of the whole include
tree), DMARC (with report-destination consent), DKIM keys at common selectors,
MTA-STS (record and HTTPS policy, and whether it covers every MX), TLS-RPT,
DANE TLSA records, DNS blacklists, and what every exchange address says over
SMTP: banner, STARTTLS, certificate, whether the TLSA records match it, and
whether a backup tier is weaker than the primary (--no-smtp skips that part).
check never sends a message; --relay-test DOMAIN adds an open-relay test
(MAIL FROM:<>, RCPT TO a recipient in DOMAIN, then RSET).

Every lookup is asked once and independent lookups run at the same time. A
temporary failure is reported as "could not check", never as a missing record.
Each problem is a finding with a stable ID (docs/findings.md) and a fix.

With --zone and no --resolver, check runs offline on the zone files and says
in one line what it skipped because it needs the network (add --smtp to probe
the exchanges all the same, e.g. new servers before the zone is published).`,
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
			if noSMTP && smtp {
				return usageError("--smtp and --no-smtp exclude each other")
			}
			if relayTo, err = parseOptionalName("--relay-test", relayTo); err != nil {
				return err
			}
			if helo, err = parseOptionalName("--helo", helo); err != nil {
				return err
			}
			core, roots, err := g.smtpCore()
			if err != nil {
				return err
			}
			if err := auditFlags(selectors, lists); err != nil {
				return err
			}
			a := g.auditor(core, g.planner(cmd, core.resolver, seed), selectors, lists, noDNSBL)
			switch {
			case noSMTP:
				a.SMTPSkipReason = "--no-smtp"
			case core.offline && !smtp:
				// Skipped for the same reason as the other network areas.
			default:
				a.Probe = g.checkProber(roots, helo, relayTo)
			}
			style := report.Style{Color: g.color()}
			return runInOrder(g, cmd.Context(), names,
				func(ctx context.Context, n dnsname.Name) (*check.Report, error) {
					r := a.Audit(ctx, n)
					return r, auditFailed(r)
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
	cmd.Flags().BoolVar(&noSMTP, "no-smtp", false, "do not connect to the exchanges (no SMTP, tier or DANE-match checks)")
	cmd.Flags().BoolVar(&smtp, "smtp", false, "probe the exchanges over SMTP even with --zone and no --resolver")
	cmd.Flags().StringVar(&relayTo, "relay-test", "", "also test each exchange for an open relay with a recipient in `DOMAIN` (never sends DATA)")
	cmd.Flags().StringVar(&helo, "helo", "", "the `NAME` to send with EHLO (default: this machine's name if fully qualified, else mxtrace.invalid)")
	return cmd
}

// auditor is check's Auditor without its SMTP part, as check and scan
// --mode check build it: offline (--zone without --resolver) it skips the
// areas that need the network and says so.
func (g *globals) auditor(core *dnsCore, p *route.Planner, selectors, lists []string, noDNSBL bool) *check.Auditor {
	a := &check.Auditor{Resolver: core.resolver, Planner: p, DKIMSelectors: selectors, Logger: g.logger}
	if core.offline {
		a.SkipReason = "they need the network: --zone without --resolver"
		return a
	}
	// The nameservers' addresses and the MTA-STS policy host come from the
	// domain's owner: both go through the command's address policy.
	a.Nameservers = &nameserver.Options{CDResolver: core.checkingDisabled, Logger: g.logger, IPv4: g.ipv4, IPv6: g.ipv6, Policy: g.policy,
		Port: uint16(g.nsPort)}
	if core.direct != nil {
		// A scan's audits share each server's SOA of a zone for a while
		// (nameserver.SOACache says why).
		a.Nameservers.Direct = nameserver.NewSOACache(core.direct, 0)
	}
	a.MTASTS = &mtasts.Options{Fetcher: &mtasts.Fetcher{Resolver: core.resolver, Dialer: g.dialer(), Logger: g.logger}, Logger: g.logger}
	if noDNSBL {
		a.SkipReason = "--no-dnsbl"
	} else {
		a.DNSBL = &dnsbl.Options{Lists: lists}
	}
	return a
}

// auditFlags checks --dkim-selector and --dnsbl before anything is
// asked: a selector that cannot be one (RFC 6376 §3.1), or a list zone
// that is not a domain name, is bad usage, not an area that could not be
// checked.
func auditFlags(selectors, lists []string) error {
	for _, s := range selectors {
		if !dkim.ValidSelector(strings.Trim(s, ".")) {
			return usageError("--dkim-selector %q: not a selector (labels of letters, digits, hyphens and underscores, RFC 6376 §3.1)", s)
		}
	}
	for _, l := range lists {
		if _, err := dnsname.Parse(l); err != nil {
			return usageError("--dnsbl: %w", err)
		}
	}
	return nil
}

// checkProber is the SMTP prober of check: each step's deadline fits in
// the per-domain --timeout (fittedTimeouts).
func (g *globals) checkProber(roots *x509.CertPool, helo, relayTo string) *probe.Prober {
	return &probe.Prober{
		Port:      g.smtpPort,
		HelloName: helo,
		RootCAs:   roots,
		RelayTo:   relayTo,
		Logger:    g.logger,
		Dialer:    g.dialer(),
		Timeouts:  g.fittedTimeouts(),
	}
}

// fittedTimeouts are the SMTP step deadlines that fit in --timeout, so a
// silent or slow server is reported as such (its step timed out: a
// finding) instead of running the whole job out of time, which leaves no
// verdict on it (probe.KindOutOfTime).
func (g *globals) fittedTimeouts() dial.SMTPTimeouts {
	def := probe.DefaultTimeouts()
	return dial.SMTPTimeouts{
		Connect:      min(def.Connect, g.timeout/4),
		Greeting:     min(def.Greeting, g.timeout/2),
		Command:      min(def.Command, g.timeout/4),
		TLSHandshake: min(def.TLSHandshake, g.timeout/4),
	}
}

// parseOptionalName validates a domain-name flag, leaving it empty when
// not given.
func parseOptionalName(flag, value string) (string, error) {
	if value == "" {
		return "", nil
	}
	n, err := dnsname.Parse(value)
	if err != nil {
		return "", usageError("%s: %w", flag, err)
	}
	return n.String(), nil
}

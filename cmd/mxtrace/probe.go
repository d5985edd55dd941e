package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
)

func probeCommand(g *globals) *cobra.Command {
	var (
		hosts   bool
		relayTo string
		helo    string
		seed    uint64
	)
	cmd := &cobra.Command{
		Use:   "probe DOMAIN|ADDRESS|HOST:PORT|IP...",
		Short: "Talk SMTP to every exchange of a domain (or to one host): banner, EHLO, STARTTLS, certificate, DANE",
		Long: `probe connects to every address of every exchange of a domain, as a sender
would, and reports what each server does: the greeting (code, host name, time
to greet), the EHLO extensions, STARTTLS, the TLS version and cipher, the
certificate chain (verified against the system's roots and any --ca, for the
MX host name; its expiry), and, when the exchange publishes TLSA records,
whether the chain matches them (DANE, RFC 7672). It then says QUIT. It never
sends a message: no DATA, ever. Every step has a deadline and every reply a
size cap, so a silent, endless or garbage-spewing server is a finding, not a
hang.

What an argument names:
  DOMAIN or ADDRESS   a mail domain (or the domain of an e-mail address):
                      its delivery plan, as route computes it, every address
  HOST:PORT           one host on that port, no MX lookup ([IPv6]:PORT too)
  IP                  one address, no MX lookup, no name to check
  --host NAME         one host name on --smtp-port, no MX lookup

--relay-test DOMAIN also asks each server to take a recipient in DOMAIN
(MAIL FROM:<>, RCPT TO:<mxtrace-relay-test@DOMAIN>, then RSET): a server that
accepts it is an open relay. Name a domain you control, not the server's own.

Without --timeout, each step has its own deadline (connect 10s, greeting
30s, each command 30s, TLS handshake 15s); with it, each target must finish
within that time.`,
		Example: `  mxtrace probe example.com
  mxtrace probe -v mx1.example.com:25
  mxtrace probe --host mx1.example.com
  mxtrace probe --json --ca private-ca.pem example.com
  mxtrace probe --relay-test relay-check.example.org example.com`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets := make([]probe.Target, 0, len(args))
			for _, a := range args {
				t, err := parseTarget(a, hosts)
				if err != nil {
					return err
				}
				targets = append(targets, t)
			}
			var err error
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
			a := &probe.Auditor{
				Prober:   &probe.Prober{Port: g.smtpPort, HelloName: helo, RootCAs: roots, Dialer: g.dialer(), Logger: g.logger, RelayTo: relayTo},
				Resolver: core.resolver,
				Planner:  g.planner(cmd, core.resolver, seed),
				DANE:     &dane.Options{Logger: g.logger},
				IPv4:     g.ipv4,
				IPv6:     g.ipv6,
			}
			bounded := cmd.Flags().Changed("timeout")
			if bounded {
				a.Prober.Timeouts = g.fittedTimeouts()
			}
			return g.probeTargets(cmd.Context(), a, targets, bounded)
		},
	}
	cmd.Flags().BoolVar(&hosts, "host", false, "take every argument as a host name, not a domain (no MX lookup)")
	cmd.Flags().StringVar(&relayTo, "relay-test", "", "also test for an open relay with a recipient in `DOMAIN` (never sends DATA)")
	cmd.Flags().StringVar(&helo, "helo", "", "the `NAME` to send with EHLO (default: this machine's name if fully qualified, else mxtrace.invalid)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	return cmd
}

// probeTargets probes the targets one after the other (each probes its
// addresses in parallel) and prints each report as soon as it is done.
func (g *globals) probeTargets(ctx context.Context, a *probe.Auditor, targets []probe.Target, bounded bool) error {
	style := report.Style{Color: g.color()}
	worst := finding.Severity(0)
	var failed error
	for _, t := range targets {
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			tctx, cancel = context.WithTimeout(ctx, g.timeout)
		}
		rep, err := a.Audit(tctx, t)
		cancel()
		if g.json {
			err2 := report.WriteJSON(g.stdout, rep)
			if err2 != nil {
				return &exitError{exitFailed, err2}
			}
		} else if err2 := report.WriteProbe(g.stdout, rep, style, report.ProbeOptions{Transcript: g.verbose}); err2 != nil {
			return &exitError{exitFailed, err2}
		}
		worst = max(worst, finding.Worst(rep.Findings))
		if failed == nil && jobFailed(err) {
			failed = fmt.Errorf("%s: %w", t, err)
		}
	}
	return g.verdict(failed, worst)
}

// literalAddress returns the address inside an address literal (RFC 5321
// §4.1.3: [192.0.2.1], [IPv6:2001:db8::1]; brackets only as a pair), or s
// as it is.
func literalAddress(s string) string {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return s
	}
	s = s[1 : len(s)-1]
	if len(s) > 5 && strings.EqualFold(s[:5], "IPv6:") {
		s = s[5:]
	}
	return s
}

// parseTarget decides what an argument names: an IP address, or anything
// with a port, is one host; so is a name with --host; anything else is a
// domain or an e-mail address.
func parseTarget(arg string, host bool) (probe.Target, error) {
	if ip, err := netip.ParseAddr(literalAddress(arg)); err == nil {
		return probe.Target{Host: ip.Unmap().String()}, nil
	}
	if h, p, err := net.SplitHostPort(arg); err == nil {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil || port == 0 {
			return probe.Target{}, usageError("%s: %q is not a TCP port", arg, p)
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			return probe.Target{Host: ip.Unmap().String(), Port: int(port)}, nil
		}
		n, err := dnsname.Parse(h)
		if err != nil {
			return probe.Target{}, &exitError{exitUsage, err}
		}
		return probe.Target{Host: n.String(), Port: int(port)}, nil
	}
	n, err := dnsname.Parse(arg)
	if err != nil {
		return probe.Target{}, &exitError{exitUsage, err}
	}
	if host {
		return probe.Target{Host: n.String()}, nil
	}
	return probe.Target{Domain: n}, nil
}

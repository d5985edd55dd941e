package main

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/send"
)

// minDataTimeout is the least time the reply to the end of the message
// data is waited for: content filters take time (RFC 5321 §4.5.3.2.6 allows
// 10 minutes).
const minDataTimeout = 2 * time.Minute

// sendFlags are the flags of the send command.
type sendFlags struct {
	to, from, subject, body, bodyFile, helo string
	requireTLS, noMTASTS, noDANE            bool
	retry                                   bool
	retryBase, retryMax, retryFor           time.Duration
	retryFactor                             float64
	seed                                    uint64
	httpsPort                               int
}

func sendCommand(g *globals) *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use:   "send --to ADDRESS",
		Short: "Deliver a test message along the route, with failover, printing every attempt",
		Long: `send delivers one test message to ADDRESS exactly as a mail server would
(RFC 5321 §5.1): it computes the delivery plan of the address's domain (as
route does), then tries the exchanges tier by tier, in random order inside a
tier, every address of each. A refused connection, a time-out or a 4xx reply
moves on to the next address; a 5xx reply to MAIL, RCPT or DATA stops: the
message would bounce. The output shows each attempt as it happens and ends
with the exchange that accepted the message and the queue ID it gave.

TLS: STARTTLS whenever the server offers it. Without a requirement a failed
handshake is retried in clear text and any certificate is accepted (it is
still checked and reported). A requirement makes TLS mandatory and refuses
the exchange otherwise:
  --require-tls   every exchange: a certificate valid for its MX name
                  (system roots plus --ca)
  MTA-STS         when the domain publishes a policy in enforce mode: only
                  exchanges the policy lists, each with a valid certificate
                  (RFC 8461); mode testing delivers and notes what enforce
                  would refuse
  DANE            when an exchange has DNSSEC-validated TLSA records (and the
                  MX records are validated): the chain must match them
                  (RFC 7672); DANE takes precedence over MTA-STS

--retry handles greylisting: after a round in which every exchange deferred,
send waits B(n) = min(--retry-max, --retry-base × --retry-factor^n) plus up to
10% jitter and tries the whole route again, until --retry-for has passed.

Time limits: --timeout bounds each attempt, one SMTP session from the
connection to the end of the message data, and every step inside it (the
connection, the greeting, each reply, the TLS handshake); a reply cut short by
it is a time-out, not a reply. The reply to the message's final dot gets at
least 2 minutes, since giving up there can deliver twice (RFC 5321 §4.5.3.2.6).
It also bounds the DNS lookups; it does not bound the whole command. Without --retry the
command ends after one pass over the route; with it, --retry-for bounds the
rounds (no wait ends past it).

The sender address defaults to mxtrace@ the --helo name (default: this
machine's host name). Receivers check it (SPF, a domain that resolves), so
give --from an address of a domain you control.

Exit status: 0 the message was accepted; 1 it was not (5xx, deferred
everywhere, a TLS requirement not met, or no mail route); 2 bad usage;
3 could not run (the DNS lookups failed).`,
		Example: `  mxtrace send --to postmaster@example.com --from me@example.org
  mxtrace send -v --to user@example.com --require-tls
  mxtrace send --to user@example.com --retry --retry-for 30m
  mxtrace send --json --to user@example.com --body-file message.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "the recipient `ADDRESS` (required)")
	fl.StringVar(&f.from, "from", "", "the sender `ADDRESS` (MAIL FROM and From:; default mxtrace@ the HELO name)")
	fl.StringVar(&f.subject, "subject", send.DefaultSubject, "the `SUBJECT` of the message")
	fl.StringVar(&f.body, "body", "", "the `TEXT` of the message (default: a short note saying it is an mxtrace test)")
	fl.StringVar(&f.bodyFile, "body-file", "", "read the text of the message from `FILE`")
	fl.StringVar(&f.helo, "helo", "", "the `NAME` to send with EHLO (default: this machine's name if fully qualified, else its address literal)")
	fl.BoolVar(&f.requireTLS, "require-tls", false, "deliver only over STARTTLS with a certificate valid for the MX name")
	fl.BoolVar(&f.noMTASTS, "no-mta-sts", false, "do not look up the domain's MTA-STS policy")
	fl.BoolVar(&f.noDANE, "no-dane", false, "do not look up TLSA records")
	fl.BoolVar(&f.retry, "retry", false, "after every exchange deferred, wait and try the route again (greylisting)")
	fl.DurationVar(&f.retryBase, "retry-base", send.DefaultRetryBase, "first wait of --retry (Tbase)")
	fl.Float64Var(&f.retryFactor, "retry-factor", send.DefaultRetryFactor, "growth of each wait of --retry (k, at least 1)")
	fl.DurationVar(&f.retryMax, "retry-max", send.DefaultRetryMax, "longest wait of --retry (Tmax)")
	fl.DurationVar(&f.retryFor, "retry-for", send.DefaultRetryFor, "give up --retry when the next wait would end past this time from the start")
	fl.Uint64Var(&f.seed, "seed", 0, "seed the shuffle inside each tier, for a reproducible order")
	fl.IntVar(&f.httpsPort, "mta-sts-port", 443, "TCP `PORT` of the MTA-STS policy host (for tests)")
	_ = fl.MarkHidden("mta-sts-port")
	return cmd
}

// send runs the send command.
func (g *globals) send(cmd *cobra.Command, f *sendFlags) error {
	if f.to == "" {
		return usageError("--to is required")
	}
	if _, err := dnsname.Parse(f.to); err != nil {
		return usageError("--to: %w", err)
	}
	if !strings.Contains(f.to, "@") {
		return usageError("--to %s: not an e-mail address", f.to)
	}
	if f.body != "" && f.bodyFile != "" {
		return usageError("--body and --body-file exclude each other")
	}
	// !(x >= 1) refuses NaN too; +Inf is no growth factor either.
	if !(f.retryFactor >= 1) || math.IsInf(f.retryFactor, 1) || f.retryBase <= 0 || f.retryMax <= 0 || f.retryFor <= 0 {
		return usageError("--retry-base, --retry-max and --retry-for must be positive and --retry-factor a number at least 1")
	}
	if f.httpsPort < 1 || f.httpsPort > 65535 {
		return usageError("--mta-sts-port %d: not a TCP port", f.httpsPort)
	}
	body := f.body
	if f.bodyFile != "" {
		var err error
		if body, err = readBody(f.bodyFile); err != nil {
			return usageError("--body-file: %w", err)
		}
	}
	helo, err := parseOptionalName("--helo", f.helo)
	if err != nil {
		return err
	}
	from := f.from
	if from == "" {
		from = "mxtrace@" + defaultSenderDomain(helo)
	}
	core, roots, err := g.smtpCore()
	if err != nil {
		return err
	}

	msg := &send.Message{From: from, To: f.to, Subject: f.subject, Body: body, Date: time.Now()}
	msg.MessageID = send.NewMessageID(domainPart(from))
	if _, err := msg.Bytes(); err != nil {
		return usageError("%w", err)
	}

	s := &send.Sender{
		Planner:    g.planner(cmd, core.resolver, f.seed),
		Resolver:   core.resolver,
		Port:       g.smtpPort,
		HelloName:  helo,
		RootCAs:    roots,
		RequireTLS: f.requireTLS,
		Dialer:     g.dialer(),
		// One SMTP session within --timeout, every stage inside it; the
		// reply to the final dot may take longer (RFC 5321 §4.5.3.2.6).
		Timeouts:   dial.SMTPTimeouts{Session: g.timeout, DataTerm: max(g.timeout, minDataTimeout)},
		Transcript: g.verbose,
		Logger:     g.logger,
	}
	if !f.noMTASTS {
		fetcher := &mtasts.Fetcher{Resolver: core.resolver, RootCAs: roots, Timeout: g.timeout, Logger: g.logger}
		fetcher.Dialer = g.dialer()
		if f.httpsPort != 443 {
			fetcher.Dialer = portDialer{d: g.dialer(), port: strconv.Itoa(f.httpsPort)}
		}
		s.MTASTS = &mtasts.Options{Fetcher: fetcher, Logger: g.logger}
	}
	if !f.noDANE {
		s.DANE = &dane.Options{Logger: g.logger}
	}
	if f.retry {
		s.Retry = &send.Retry{Base: f.retryBase, Factor: f.retryFactor, Max: f.retryMax, For: f.retryFor}
	}

	style := report.Style{Color: g.color()}
	var printer *report.SendPrinter
	if !g.json {
		printer = &report.SendPrinter{W: g.stdout, Style: style, Transcript: g.verbose}
		printer.Start(from, f.to, msg.MessageID)
		if s.Retry != nil {
			printer.Retry(*s.Retry)
		}
		s.Observer = printer.Event
	}

	res, sendErr := s.Send(cmd.Context(), msg)
	if g.json {
		if err := report.WriteJSON(g.stdout, res); err != nil {
			return err
		}
	} else {
		if printer.Err != nil {
			return printer.Err
		}
		if err := report.WriteSend(g.stdout, res, style); err != nil {
			return err
		}
	}
	switch {
	case sendErr == nil:
		return nil
	case errors.Is(sendErr, send.ErrMessage):
		return usageError("%w", sendErr)
	case errors.Is(sendErr, send.ErrDNS), errors.Is(sendErr, context.Canceled), errors.Is(sendErr, context.DeadlineExceeded):
		return &exitError{exitFailed, sendErr}
	}
	// Not delivered: the output says why; exit 1 without repeating it.
	return &exitError{exitFindings, sendErr}
}

// readBody reads a message body, refusing files over send.MaxBodySize.
func readBody(name string) (string, error) {
	b, err := readFile(name, send.MaxBodySize)
	return string(b), err
}

// defaultSenderDomain is the domain of the default sender address: the
// HELO name, else the host name, else localhost.
func defaultSenderDomain(helo string) string {
	if helo != "" {
		return helo
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		if n, err := dnsname.Parse(h); err == nil {
			return n.String()
		}
	}
	return "localhost"
}

func domainPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// portDialer sends every connection to the same host on another port: the
// MTA-STS policy host of a test listening on a port that is not 443.
type portDialer struct {
	d    dial.Dialer
	port string
}

func (p portDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return p.d.DialContext(ctx, network, net.JoinHostPort(host, p.port))
}

package relay

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"time"

	mxdial "github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/route"
)

// Bounds of the out-of-band probe.
const (
	// probeTimeout bounds one probe of one address, connection to QUIT.
	probeTimeout = 10 * time.Second
	// probeMaxBytes caps what a server may send in one probe.
	probeMaxBytes = 64 << 10
	// probeParallel bounds the destinations probed at once.
	probeParallel = 16
	// probeMaxAddresses bounds the addresses of one tier tried per probe
	// (route.DefaultMaxAddresses, as a round of send).
	probeMaxAddresses = route.DefaultMaxAddresses
)

// watch probes, every ProbeEvery until ctx ends, the primary tier of each
// destination that holds mail (of the configured Domains, when set). The primary is what the relay forwards to,
// and senders only learn it is back when their own retry timer fires: the
// relay learns within ProbeEvery, then makes the destination's mail due
// at once (Queue.FlushDomain) and wakes the delivery loop.
func (d *Deliverer) watch(ctx context.Context) {
	t := time.NewTicker(cmp.Or(d.ProbeEvery, DefaultProbeEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.probeAll(ctx)
		}
	}
}

// probeAll probes every destination holding mail, a few at a time.
func (d *Deliverer) probeAll(ctx context.Context) {
	domains, err := d.Queue.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logger().Error("relay: queue: pending domains", "err", err)
		}
		return
	}
	if len(d.Domains) > 0 {
		domains = slices.DeleteFunc(domains, func(s string) bool { return !slices.Contains(d.Domains, dnsname.Name(s)) })
	}
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for _, domain := range domains {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.probeDomain(ctx, domain)
		})
	}
	wg.Wait()
}

// probeDomain probes one destination's primary tier and flushes its mail
// on a down→up transition.
func (d *Deliverer) probeDomain(ctx context.Context, domain string) {
	err := d.probePrimary(ctx, domain)
	if ctx.Err() != nil {
		return
	}
	up := err == nil
	if len(d.Domains) > 0 {
		d.Metrics.PrimaryUp(domain, up)
	}
	if !d.dests.probed(domain, up) {
		return
	}
	n, ferr := d.Queue.FlushDomain(ctx, domain)
	if ferr != nil {
		d.logger().Error("relay: queue: flush", "domain", domain, "err", ferr)
	}
	d.logger().Info("relay: primary is back: flushing", "domain", domain, "deliveries", n)
	d.Wake()
}

// ErrPrimaryDown: no address of the primary tier answered 220 to the
// connection and 250 to EHLO.
var ErrPrimaryDown = errors.New("relay: no exchange of the primary tier answered")

// probePrimary reports whether the most preferred tier left to the relay
// (the plan of its Sender's Planner, Self pruned: RFC 5321 §5.1) is up: an
// address that answers the greeting with 220 and EHLO with 250 is enough.
func (d *Deliverer) probePrimary(ctx context.Context, domain string) error {
	name, err := dnsname.Parse(domain)
	if err != nil {
		return err
	}
	plan, err := d.Sender.Planner.Plan(ctx, name)
	if err != nil {
		return err
	}
	if plan.Result != route.ResultOK || len(plan.Tiers) == 0 {
		return fmt.Errorf("%w: the route of %s is %s", ErrPrimaryDown, domain, plan.Result)
	}
	tried := 0
	var errs []error
	for _, h := range plan.Tiers[0].Hosts {
		for _, a := range h.Addresses {
			if tried == probeMaxAddresses {
				return errors.Join(append(errs, ErrPrimaryDown)...)
			}
			tried++
			err := d.ping(ctx, a)
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s [%s]: %w", h.Name, a, err))
		}
	}
	return errors.Join(append(errs, ErrPrimaryDown)...)
}

// ping opens an SMTP session with addr through the Sender's dialer and
// port: the 220 greeting (RFC 5321 §4.3.1), EHLO and its 250
// (§4.1.1.1), then QUIT (§4.1.1.10); no mail transaction. The session has
// one deadline, and what the server may send is capped.
func (d *Deliverer) ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	dialer := d.Sender.Dialer
	if dialer == nil {
		dialer = &mxdial.Net{}
	}
	port := cmp.Or(d.Sender.Port, mxdial.SMTPPort)
	connect := cmp.Or(d.Sender.Timeouts.Connect, probeTimeout)
	dctx, dcancel := context.WithTimeout(ctx, connect)
	c, err := dialer.DialContext(dctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	dcancel()
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	tp := textproto.NewReader(bufio.NewReader(io.LimitReader(c, probeMaxBytes)))
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	helo := cmp.Or(d.Sender.HelloName, d.Hostname)
	if _, err := io.WriteString(c, "EHLO "+helo+"\r\n"); err != nil {
		return err
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	// The answer to QUIT is not awaited: the probe has its answer.
	_, _ = io.WriteString(c, "QUIT\r\n")
	return nil
}

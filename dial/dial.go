// Package dial opens mxtrace's outbound TCP connections: the SMTP sessions
// of probe and send and the HTTPS fetch of MTA-STS policies all go through
// one Dialer. It is the one place where the connect deadline, the address
// family (-4, -6), the source address and the address policy apply: the
// policy is checked in net.Dialer's Control hook, on the address actually
// connected to after any name resolution, so a name that resolves to a
// forbidden address is refused as surely as the address typed by itself
// (docs/security.md).
//
// The package also holds the SMTP constants shared by its users: the port
// (RFC 5321 §4.5.4.2 via the IANA registry) and the time-outs of an SMTP
// session, named as RFC 5321 §4.5.3.2 names them.
package dial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Dialer opens connections; *net.Dialer and *Net are Dialers. Protocol
// code takes a Dialer so tests can pass an in-memory one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// DefaultConnectTimeout bounds a connection attempt when Net.Timeout is
// zero.
const DefaultConnectTimeout = 30 * time.Second

// Net dials over the network. The zero value connects anywhere, with
// DefaultConnectTimeout, over either address family.
type Net struct {
	// Timeout bounds each connection attempt (the context may end it
	// sooner). Zero: DefaultConnectTimeout.
	Timeout time.Duration
	// IPv4 and IPv6 select the address family (-4, -6); both false means
	// both. Dialing an address of the other family fails with ErrFamily.
	IPv4, IPv6 bool
	// Source is the local address to connect from; the zero Addr lets
	// the system choose.
	Source netip.Addr
	// Policy says which addresses may be connected to. Nil: any (the
	// command line, which users point at their own hosts).
	Policy *Policy
}

// ErrFamily is the error of dialing an address of a family that Net's
// IPv4 or IPv6 excludes.
var ErrFamily = errors.New("dial: address family not selected")

// DialContext connects to address ("host:port") on network "tcp" (or
// "tcp4", "tcp6"), checking the policy on every address tried.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	network, err := n.network(network, address)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: n.Timeout, Control: n.control}
	if d.Timeout <= 0 {
		d.Timeout = DefaultConnectTimeout
	}
	if n.Source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: n.Source.AsSlice(), Zone: n.Source.Zone()}
	}
	if n.Policy == nil || n.Policy.AllowPrivate {
		return d.DialContext(ctx, network, address)
	}
	return n.dialChecked(ctx, d, network, address)
}

// dialChecked dials under a restricting policy. Control alone is not
// enough: Go connects to an IPv4-mapped address (::ffff:9.9.9.9, given
// literally or by a name's AAAA record) over an IPv4 socket, and Control
// then sees 9.9.9.9, a public address, never the mapped form the policy
// refuses (ipclass.Embedded). So a literal is checked before dialing, and
// a name is resolved here, each address checked, and the allowed ones
// dialed as literals, in the order served, with the time shared among
// them as net.Dialer shares it: nothing resolves the name again between
// the check and the connection, and Control still checks each address.
func (n *Net) dialChecked(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial: %s: %w", address, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := n.Policy.Check(ip); err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, address)
	}
	var lookup string
	switch network {
	case "tcp":
		lookup = "ip"
	case "tcp4":
		lookup = "ip4"
	case "tcp6":
		lookup = "ip6"
	default:
		return nil, net.UnknownNetworkError(network)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, lookup, host)
	if err != nil {
		return nil, err
	}
	var allowed []netip.Addr
	var errs []error
	for _, a := range addrs {
		if err := n.Policy.Check(a); err != nil {
			errs = append(errs, err)
			continue
		}
		allowed = append(allowed, a)
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	for i, a := range allowed {
		actx, acancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			// As net.Dialer's partialDeadline: the time left, shared
			// among the addresses left, but at least 2 seconds each.
			part := time.Until(dl) / time.Duration(len(allowed)-i)
			if part < 2*time.Second {
				part = 2 * time.Second
			}
			actx, acancel = context.WithTimeout(ctx, part)
		}
		c, err := d.DialContext(actx, network, net.JoinHostPort(a.String(), port))
		acancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("dial: %s: no address", host)
	}
	return nil, errors.Join(errs...)
}

// network narrows "tcp" to the selected family and refuses an address
// literal of the other one.
func (n *Net) network(network, address string) (string, error) {
	if n.IPv4 == n.IPv6 {
		return network, nil
	}
	want, fam := "tcp4", "IPv4"
	if n.IPv6 {
		want, fam = "tcp6", "IPv6"
	}
	if host, _, err := net.SplitHostPort(address); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().Is4() != n.IPv4 {
			return "", fmt.Errorf("%w: %s is not an %s address", ErrFamily, host, fam)
		}
	}
	switch network {
	case "tcp", want:
		return want, nil
	}
	return "", fmt.Errorf("%w: network %s with only %s selected", ErrFamily, network, fam)
}

// control runs after the address is resolved and before connect(2): the
// one point every outbound connection passes with its real address.
func (n *Net) control(network, address string, _ syscall.RawConn) error {
	if n.Policy == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial: %s: %w", address, err)
	}
	return n.Policy.Check(ap.Addr())
}

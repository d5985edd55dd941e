// Package smtptest runs in-process SMTP servers on loopback for tests of
// mxtrace's SMTP client code (probe and send). It has two kinds:
//
//   - Start runs a well-behaved MTA (RFC 5321) built on go-smtp's server,
//     with optional STARTTLS (RFC 3207), a banner delay, greylisting,
//     per-recipient verdicts, relay control and a Postfix-like queue ID in
//     the reply to DATA. It records every accepted message and counts
//     connections and transactions, so a test can assert that a probe
//     never reached DATA.
//   - StartRaw runs a hostile or broken server on a plain listener: silent,
//     slow, endless or over-long replies, garbage, a 554 greeting, closing
//     at the wrong moment, a broken or refused STARTTLS, no STARTTLS at all,
//     or a TCP reset. It records the lines clients send (Transcript).
//
// Beside them, StartPolicyHost serves an MTA-STS policy (RFC 8461) over
// HTTPS, for the senders that honour it.
//
// mxtrace uses one SMTP port for every exchange (--smtp-port), so a test
// that needs several exchanges runs several servers on different
// 127.0.0.x addresses sharing one port: Port finds a port that is free on
// all of 127.0.0.1..127.0.0.30 (and ::1 when the host has IPv6), and every
// Start takes the address to listen on. Refused gives an address where a
// connection is refused.
//
// Every server stops with the test (tb.Cleanup calls Close), and every
// goroutine it starts is bounded in time: go-smtp sessions by read and
// write time-outs, raw sessions by a fixed lifetime (RawLifetime), so a
// misbehaving client cannot make a test hang.
package smtptest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// Port-search bounds.
const (
	// FirstSharedHost and LastSharedHost are the last octets of the
	// 127.0.0.x addresses on which Port checks the port is free.
	FirstSharedHost = 1
	LastSharedHost  = 30
	// portAttempts bounds the search for a port free everywhere.
	portAttempts = 50
)

// Loopback returns 127.0.0.n, for building addresses with the port from
// Port: netip.AddrPortFrom(smtptest.Loopback(2), port).
func Loopback(n byte) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 0, n})
}

// Port returns a TCP port that is, at the time of the call, free on every
// address 127.0.0.1..127.0.0.30 and on ::1 when the host has IPv6, so that
// several servers can listen on different loopback addresses with the same
// port. It takes a candidate from the kernel (listening on 127.0.0.1:0) and
// tries it everywhere, retrying with another candidate on a collision.
func Port(tb testing.TB) int {
	tb.Helper()
	v6 := hasIPv6()
	var lastErr error
	for range portAttempts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("smtptest: Port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			tb.Fatalf("smtptest: Port: %v", err)
		}
		if lastErr = portFree(port, v6); lastErr == nil {
			return port
		}
	}
	tb.Fatalf("smtptest: Port: no port free on all of 127.0.0.%d..%d after %d attempts: %v", FirstSharedHost, LastSharedHost, portAttempts, lastErr)
	return 0
}

// portFree tries to listen on port at every shared address and releases
// them again; it reports the first address that is taken.
func portFree(port int, v6 bool) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	addrs := make([]netip.Addr, 0, LastSharedHost-FirstSharedHost+2)
	for n := FirstSharedHost; n <= LastSharedHost; n++ {
		addrs = append(addrs, Loopback(byte(n)))
	}
	if v6 {
		addrs = append(addrs, netip.IPv6Loopback())
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err != nil {
			return fmt.Errorf("%s port %d: %w", a, port, err)
		}
		ls = append(ls, l)
	}
	return nil
}

// hasIPv6 reports whether the host can listen on ::1.
func hasIPv6() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Refused returns an address on which nothing listens, so a connection to
// it is refused. addr is an IP address ("127.0.0.7", "::1"), which gets a
// port the kernel just handed out and took back, or an IP and port
// ("127.0.0.7:2525", "[::1]:2525", for the shared port), which is checked
// to be free. An empty addr means 127.0.0.1.
func Refused(tb testing.TB, addr string) netip.AddrPort {
	tb.Helper()
	if addr == "" {
		addr = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		addr = netip.AddrPortFrom(ip, 0).String()
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		tb.Fatalf("smtptest: Refused(%q): %v", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		tb.Fatalf("smtptest: Refused(%q): not a loopback address", addr)
	}
	l, err := net.Listen("tcp", ap.String())
	if err != nil {
		tb.Fatalf("smtptest: Refused(%q): something listens there: %v", addr, err)
	}
	got := addrPort(l.Addr())
	if err := l.Close(); err != nil {
		tb.Fatalf("smtptest: Refused(%q): %v", addr, err)
	}
	return got
}

// addrPort is a listener's address as a netip.AddrPort, with IPv4 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listen listens on addr ("" = "127.0.0.1:0"), refusing anything but
// loopback so a test never opens a port to the network.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("smtptest: address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("smtptest: address %q: %w", addr, errNotLoopback)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("smtptest: address %q: bad port: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	return l, nil
}

var errNotLoopback = errors.New("not a loopback IP address")

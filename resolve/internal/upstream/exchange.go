// Package upstream holds what the stub resolver and the Mux share about
// asking one DNS server: the exchange of one query over UDP or TCP
// (RFC 1035 §4.2, RFC 7766), the checks that a reply answers the query
// asked (RFC 5452 §9.1, RFC 1035 §4.1.1), the classification of socket
// errors, and each server's health (which servers have stopped answering
// and are asked after the others).
package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// MaxStrayReplies bounds how many non-matching datagrams one UDP
// attempt reads before giving up, so a flood cannot keep it busy for
// the whole deadline doing work.
const MaxStrayReplies = 64

// Exchange sends m to server over network ("udp" or "tcp") and returns
// the first reply that matches it, within timeout and ctx. A reply with the wrong ID, not marked as a
// response, or for another question is dropped (RFC 5452 §9.1); over UDP
// the read goes on until a matching reply or the deadline, so a spoofed or
// stray datagram cannot stand in for the answer.
func Exchange(ctx context.Context, network, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
		// The socket deadline may fire a moment before the context's
		// timer: say which deadline it was either way.
		ctx = contextAtDeadline{ctx, d}
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, NetError(ctx, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Cancellation (not only the deadline) must end a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	out, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: packing the query: %w", resolve.ErrBadResponse, err)
	}
	if network == "tcp" {
		return readTCP(ctx, conn, out, m)
	}
	if _, err := conn.Write(out); err != nil {
		return nil, NetError(ctx, err)
	}
	bp := udpBuffers.Get().(*[]byte)
	defer udpBuffers.Put(bp)
	buf := *bp
	var stray error
	for range MaxStrayReplies {
		n, err := conn.Read(buf)
		if err != nil {
			if stray != nil && isTimeout(err) {
				return nil, fmt.Errorf("%w (and dropped a reply: %w)", resolve.ErrTimeout, stray)
			}
			return nil, NetError(ctx, err)
		}
		r, err := ParseReply(buf[:n], m)
		if err != nil {
			stray = err
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: %d replies that do not match the query (last: %w)", resolve.ErrBadResponse, MaxStrayReplies, stray)
}

// udpBuffers holds read buffers big enough for any datagram, so a lookup
// does not allocate 64 KiB (a scan makes millions). ParseReply copies what
// it keeps, so a buffer is free again when Exchange returns.
var udpBuffers = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

// readTCP sends a query over a TCP connection with the two-octet length
// prefix of RFC 1035 §4.2.2 and reads one reply.
func readTCP(ctx context.Context, conn net.Conn, out []byte, m *dns.Msg) (*dns.Msg, error) {
	msg := make([]byte, 2+len(out))
	binary.BigEndian.PutUint16(msg, uint16(len(out)))
	copy(msg[2:], out)
	if _, err := conn.Write(msg); err != nil {
		return nil, NetError(ctx, err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, NetError(ctx, err)
	}
	// The length prefix caps the read at 64 KiB.
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, NetError(ctx, err)
	}
	return ParseReply(buf, m)
}

// ParseReply unpacks b and checks it answers m.
func ParseReply(b []byte, m *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, fmt.Errorf("%w: %w", resolve.ErrBadResponse, err)
	}
	// miekg/dns stops quietly when a section ends early; a reply whose
	// header promises records it does not hold is cut or forged, and
	// taking it as NODATA would turn it into "no MX" (RFC 1035 §4.1.1).
	if counts := [4]int{len(r.Question), len(r.Answer), len(r.Ns), len(r.Extra)}; counts != headerCounts(b) {
		return nil, fmt.Errorf("%w: the header announces %v records per section, the message holds %v", resolve.ErrBadResponse, headerCounts(b), counts)
	}
	if r.Id != m.Id {
		return nil, fmt.Errorf("%w: reply ID %d, query ID %d", resolve.ErrBadResponse, r.Id, m.Id)
	}
	if !r.Response {
		return nil, fmt.Errorf("%w: reply without the QR bit", resolve.ErrBadResponse)
	}
	if len(r.Question) == 0 {
		// Servers may drop the question in an error reply (FORMERR in
		// particular); such a reply carries no data to mistake.
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			return r, nil
		}
		return nil, fmt.Errorf("%w: reply without a question", resolve.ErrBadResponse)
	}
	want, got := m.Question[0], r.Question[0]
	if len(r.Question) != 1 || got.Qtype != want.Qtype || got.Qclass != want.Qclass || !resolve.EqualNames(got.Name, want.Name) {
		return nil, fmt.Errorf("%w: reply for %s %s, not the question asked", resolve.ErrBadResponse, got.Name, dns.TypeToString[got.Qtype])
	}
	return r, nil
}

// contextAtDeadline reports DeadlineExceeded from its deadline on, even
// before the context's own timer has fired.
type contextAtDeadline struct {
	context.Context
	deadline time.Time
}

func (c contextAtDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// headerCounts reads QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT (RFC 1035
// §4.1.1); b is at least a header long, or Unpack would have failed.
func headerCounts(b []byte) [4]int {
	var c [4]int
	for i := range c {
		c[i] = int(binary.BigEndian.Uint16(b[4+2*i:]))
	}
	return c
}

// NetError classifies a socket error: time-outs and cancellation become
// resolve.ErrTimeout (wrapping the context's error when it caused them).
func NetError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())
	}
	if isTimeout(err) {
		return resolve.ErrTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the connection closed mid-reply: %w", resolve.ErrBadResponse, err)
	}
	// ICMP port or host unreachable (over UDP, reported on a later read),
	// a refused TCP connection, no route: nothing answers at the address.
	if Unreachable(err) {
		return fmt.Errorf("%w: %w", resolve.ErrUnreachable, err)
	}
	return err
}

// isTimeout reports whether err is a network time-out.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// RetryTruncated asks m again over TCP when r, the reply to it over UDP
// (err its error), is truncated (RFC 7766 §5), and returns the reply to
// go on with and whether it came over TCP.
func RetryTruncated(ctx context.Context, server string, m *dns.Msg, timeout time.Duration, r *dns.Msg, err error) (*dns.Msg, bool, error) {
	if err != nil || !r.Truncated {
		return r, false, err
	}
	r, err = Exchange(ctx, "tcp", server, m, timeout)
	return r, true, err
}

// EDNSUnknown reports a reply from a server that does not know EDNS:
// FORMERR (or NOTIMP) without an OPT record (RFC 6891 §7). The query is
// asked again without EDNS.
func EDNSUnknown(r *dns.Msg) bool {
	return (r.Rcode == dns.RcodeFormatError || r.Rcode == dns.RcodeNotImplemented) && r.IsEdns0() == nil
}

// RcodeOf is a's rcode for a log line ("" without an answer).
func RcodeOf(a *resolve.Answer) string {
	if a == nil {
		return ""
	}
	return dns.RcodeToString[a.Rcode]
}

// ServerOf is the server that answered, or the last one asked, for a log
// line.
func ServerOf(a *resolve.Answer, err error) string {
	if a != nil {
		return a.Server
	}
	if e, ok := errors.AsType[*resolve.Error](err); ok {
		return e.Server
	}
	return ""
}

// Unreachable reports the errors with which a connected UDP socket passes
// on an ICMP destination-unreachable report (RFC 1122 §3.2.2.1, §4.1.3.3):
// the server's port (ECONNREFUSED), host or network cannot be reached.
// They end no read: they concern one datagram sent earlier.
func Unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTDOWN)
}

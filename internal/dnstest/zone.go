package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// NewZone starts an authoritative server for the zones in zoneText
// (RFC 1035 §5 master-file syntax; every zone needs its SOA record) and
// closes it when the test ends. See Authoritative for what it answers.
func NewZone(tb testing.TB, zoneText string, opts ...Option) *Server {
	tb.Helper()
	h, err := zoneHandler(zoneText, tb.Name())
	if err != nil {
		tb.Fatal(err)
	}
	return New(tb, h, opts...)
}

// StartZone is NewZone outside a test; the caller must Close the server.
func StartZone(zoneText string, opts ...Option) (*Server, error) {
	h, err := zoneHandler(zoneText, "dnstest")
	if err != nil {
		return nil, err
	}
	return Start(h, opts...)
}

func zoneHandler(zoneText, name string) (dns.Handler, error) {
	z, err := resolve.ParseZones(strings.NewReader(zoneText), name)
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	return Authoritative(z), nil
}

// Authoritative answers queries from r the way an authoritative server
// does: AA and the rcode as r reports them, the answer section (CNAME chain
// first) and the authority section (the SOA of a negative answer) copied
// from the *resolve.Answer. Names r does not hold (errors wrapping
// resolve.ErrNotInZone) are REFUSED; other failures give the *resolve.Error's
// rcode, or SERVFAIL. Delegations are not served as referrals.
//
// Queries with an OPT record get one back carrying the client's own buffer
// size and DO bit; over UDP, replies larger than that size are truncated
// with TC set, so the client retries over TCP.
func Authoritative(r resolve.Resolver) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := Reply(req)
		switch opt := req.IsEdns0(); {
		case req.Opcode != dns.OpcodeQuery:
			// RFC 1035 §4.1.1: NOTIMP for kinds of query the server
			// does not support.
			m.Rcode = dns.RcodeNotImplemented
		case len(req.Question) != 1:
			// RFC 9619: a query has exactly one question.
			m.Rcode = dns.RcodeFormatError
		case opt != nil && opt.Version() != 0:
			// RFC 6891 §6.1.3: BADVERS for an EDNS version the server
			// does not implement; its OPT carries version 0.
			m.Rcode = dns.RcodeBadVers
		case req.Question[0].Qclass != dns.ClassINET:
			m.Rcode = dns.RcodeRefused
		default:
			q := req.Question[0]
			a, err := r.Lookup(TransportOf(w).Context(), resolve.Q(q.Name, q.Qtype))
			rerr, isErr := errors.AsType[*resolve.Error](err)
			switch {
			case errors.Is(err, resolve.ErrNotInZone):
				// Not a zone this server is authoritative for.
				m.Rcode = dns.RcodeRefused
			case isErr && rerr.Rcode > 0:
				m.Rcode = rerr.Rcode
			case err != nil:
				m.Rcode = dns.RcodeServerFailure
			default:
				m.Authoritative = a.Authoritative
				m.Rcode = a.Rcode
				m.Answer = slices.Clone(a.Answer)
				m.Ns = slices.Clone(a.Authority)
			}
		}
		_ = w.WriteMsg(m) // on failure the client times out
	})
}

// Reply starts a reply to req: same ID, opcode, RD and question, QR set,
// compressed. If req has an OPT record, the reply gets one too, with the
// client's buffer size (at least 512, RFC 6891 §6.2.5) and its DO bit
// (RFC 3225 §3: the DO bit of the query is copied in the response).
func Reply(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), opt.Do())
	}
	return m
}

// Servers stands in for a zone's authoritative servers where the
// nameserver audit asks them directly (nameserver.Options.Direct), in
// memory: each address answers from its own copy of the zone; any other
// address times out, as an unreachable server does.
type Servers map[netip.Addr]resolve.Resolver

// Ask answers q from server's copy.
func (s Servers) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	r, ok := s[server.Addr()]
	if !ok {
		return nil, &resolve.Error{Question: q, Server: server.String(), Rcode: -1, Err: resolve.ErrTimeout}
	}
	return r.Lookup(ctx, q)
}

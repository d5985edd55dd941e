// Package resolve is mxtrace's DNS seam: one small Resolver interface that
// keeps every fact MX routing needs (rcode, NXDOMAIN versus NODATA, the AD
// bit, TTLs, which server answered), and what works over any resolver:
//
//   - Zones, answers from zone files (for --zone) with the semantics of an
//     authoritative server: NXDOMAIN, NODATA, CNAME and wildcards;
//   - Cache, a TTL-aware cache (RFC 2308 for negative answers) with in-flight
//     de-duplication, shared by every lookup of one run;
//   - Follow, CNAME chains followed to the end (RFC 1034 §3.6.2).
//
// The transports that ask servers live below it: resolve/stub, a stub
// resolver for commands (a socket per query, UDP with EDNS0 and TCP
// fall-back), and resolve/mux, the bulk transport for scan (a few sockets
// per server, many queries in flight, asynchronous lookups with a
// congestion window).
//
// Names are kept and compared in one form, CanonicalName's: absolute, ASCII
// letters in lower case, and each octet spelled as miekg/dns spells names
// it reads from the wire (presentation format, RFC 1035 §5.1, with "\ ",
// "\@", "\;", "\\" and "\.", and "\DDD" for octets outside printable
// ASCII). A name that needs escapes has several spellings: a zone file may
// write a space as "\032" or "\ ", an SPF macro expansion (RFC 7208 §7.3)
// hands it over raw. Questions (and so the cache's keys), the zone files'
// owners and the names Follow walks are all in this form, and EqualNames
// compares any two spellings, so every spelling of a name finds the same
// records. The form is the one a transport's answers arrive in, so names
// read from the network need no conversion.
//
// Outcomes are values and failures are errors: NXDOMAIN and NODATA come back
// as an *Answer; SERVFAIL, REFUSED, time-outs and malformed replies come back
// as an *Error. A temporary failure is never turned into "no records".
package resolve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Resolver answers one DNS question. Implementations must be safe for
// concurrent use and must honour ctx's deadline.
type Resolver interface {
	Lookup(ctx context.Context, q Question) (*Answer, error)
}

// Question is a DNS question of class IN. Name is absolute (with the
// trailing dot) and lower case; use NewQuestion to build one from input.
type Question struct {
	Name string
	Type uint16
}

// NewQuestion canonicalises name (lower case) and rejects relative names, so
// a search list can never silently rewrite what is asked (cf. mox
// dns.ErrRelativeDNSName).
func NewQuestion(name string, qtype uint16) (Question, error) {
	if !dns.IsFqdn(name) {
		return Question{}, fmt.Errorf("%w: %q", ErrRelativeName, name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return Question{}, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return Question{Name: CanonicalName(name), Type: qtype}, nil
}

// Q is NewQuestion for names already known to be absolute and valid (built
// from a dnsname.Name or taken from a parsed record); it only canonicalises.
func Q(name string, qtype uint16) Question {
	return Question{Name: CanonicalName(name), Type: qtype}
}

// CanonicalName is the one form resolve keeps and compares names in (see
// the package documentation): fully qualified, ASCII letters in lower case
// (RFC 4034 §6.2, RFC 4343), and every octet spelled the way miekg/dns
// writes a name it reads from the wire. A name nearly always needs nothing
// but the trailing dot or the case fold (names built by the planner, or
// read from answers): that is one pass over it, and no copy when it is
// canonical already. Only a name with an escape or an octet that needs one
// goes through miekg/dns's packer and back. A name that cannot be packed
// (an empty label, a label over 63 octets) is only folded: no query can
// be sent for it, and nothing can match it.
func CanonicalName(name string) string {
	upper := -1
	for i := 0; i < len(name); i++ {
		c := name[i]
		if needsSpelling(c) {
			if s, ok := spelled(name); ok {
				return s
			}
			return folded(name, 0)
		}
		if upper < 0 && 'A' <= c && c <= 'Z' {
			upper = i
		}
	}
	if upper >= 0 {
		return folded(name, upper)
	}
	if !strings.HasSuffix(name, ".") {
		return name + "."
	}
	return name
}

// folded is name fully qualified with the ASCII letters from octet from
// on in lower case.
func folded(name string, from int) string {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	b := []byte(name)
	for j := from; j < len(b); j++ {
		b[j] = lowerASCII(b[j])
	}
	return string(b)
}

// needsSpelling reports an octet of a name that may be written in more
// than one way: a backslash (an escape, RFC 1035 §5.1), an octet that
// miekg/dns escapes when it reads a name from the wire (space, double
// quote, parentheses, semicolon, at sign and apostrophe as a backslash
// and the octet, the others as "\DDD"), or one that it writes as such an
// escape.
func needsSpelling(c byte) bool {
	switch c {
	case '\\', ' ', '"', '(', ')', ';', '@', '\'':
		return true
	}
	return c < ' ' || c > '~'
}

// spelled is CanonicalName's slow path: name packed to wire form and
// unpacked again, so that every spelling of an octet ("\032", "\ " or a
// space) becomes the one miekg/dns reads from the wire ("\ "), with the
// ASCII letters folded (escapes are digits or punctuation, which do not
// fold).
func spelled(name string) (string, bool) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	var wire [256]byte
	n, err := dns.PackDomainName(name, wire[:], 0, nil, false)
	if err != nil {
		return "", false
	}
	s, _, err := dns.UnpackDomainName(wire[:n], 0)
	if err != nil {
		return "", false
	}
	return folded(s, 0), true
}

func (q Question) String() string {
	return q.Name + " " + dns.TypeToString[q.Type]
}

// Answer is a response that settles the question: records, NODATA or
// NXDOMAIN (Rcode NOERROR or NXDOMAIN). Any other rcode is an *Error.
type Answer struct {
	Question      Question
	Rcode         int      // dns.RcodeSuccess or dns.RcodeNameError
	Answer        []dns.RR // the answer section as served: CNAMEs, then records
	Authority     []dns.RR // the authority section (SOA on negative answers)
	AD            bool     // authenticated data: a validating resolver vouched for it (RFC 4035 §3.2.3)
	Authoritative bool     // AA bit
	Server        string   // who answered: "host:port", or "zone:FILE" for the zone backend

	// ttl is TTL's value, worked out once by seal when the answer is
	// built (ttlKnown): every lookup a cache answers asks for it, and
	// walking the records each time touches memory shared by thousands
	// of domains (a provider's exchange addresses).
	ttl      uint32
	ttlKnown bool
}

// seal works out the TTL of an answer just built, before it is shared.
func (a *Answer) seal() *Answer {
	a.ttl, a.ttlKnown = a.computeTTL(), true
	return a
}

// FromReply turns a server's reply r to q, already checked to answer it,
// into an Answer (NOERROR or NXDOMAIN: the question is settled) or an
// Error (SERVFAIL, REFUSED, any other rcode). server is who answered.
func FromReply(q Question, server string, r *dns.Msg) (*Answer, *Error) {
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		a := &Answer{Question: q, Rcode: r.Rcode, Answer: r.Answer, Authority: r.Ns,
			AD: r.AuthenticatedData, Authoritative: r.Authoritative, Server: server}
		return a.seal(), nil
	case dns.RcodeServerFailure:
		return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: ErrServerFailure}
	case dns.RcodeRefused:
		return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: ErrRefused}
	}
	return nil, &Error{Question: q, Server: server, Rcode: r.Rcode, Err: fmt.Errorf("%w %s", ErrRcode, dns.RcodeToString[r.Rcode])}
}

// NXDomain reports whether the final name of the answer does not exist.
func (a *Answer) NXDomain() bool { return a.Rcode == dns.RcodeNameError }

// TTL is how long the answer may be cached: the lowest TTL in the answer
// section, or for a negative answer the lower of the SOA's TTL and its
// MINIMUM field (RFC 2308 §5) and of the aliases on the way. An answer
// that ends at an alias without an SOA holds for the aliases' TTL (RFC
// 2181 §10.1.1: a CNAME is cached like any record); a negative answer with
// neither is not cached (0).
func (a *Answer) TTL() uint32 {
	if a.ttlKnown {
		return a.ttl
	}
	return a.computeTTL()
}

func (a *Answer) computeTTL() uint32 {
	var ttl uint32
	first := true
	take := func(v uint32) {
		if first || v < ttl {
			ttl, first = v, false
		}
	}
	hasFinal := false
	for _, rr := range a.Answer {
		take(rr.Header().Ttl)
		if rr.Header().Rrtype == a.Question.Type || a.Question.Type == dns.TypeANY {
			hasFinal = true
		}
	}
	if hasFinal {
		return ttl
	}
	for _, rr := range a.Authority {
		if soa, ok := rr.(*dns.SOA); ok {
			take(min(soa.Hdr.Ttl, soa.Minttl))
			return ttl
		}
	}
	// No SOA: aliases alone (a server that stopped at a CNAME whose target
	// it does not serve) hold for their own TTL; nothing at all is not
	// cached.
	return ttl
}

// Errors wrapped by *Error, for errors.Is.
var (
	ErrRelativeName  = errors.New("resolve: name is not absolute")
	ErrBadName       = errors.New("resolve: not a valid domain name")
	ErrServerFailure = errors.New("server failure (SERVFAIL)")
	ErrRefused       = errors.New("query refused (REFUSED)")
	ErrRcode         = errors.New("unexpected response code")
	ErrTimeout       = errors.New("no answer before the deadline")
	ErrUnreachable   = errors.New("server unreachable")
	ErrBadResponse   = errors.New("malformed response")
	ErrNoServers     = errors.New("resolve: no DNS servers configured")

	// ErrCNAMELoop and ErrCNAMEChain are answers broken for good, not
	// failures to get one: the alias chain loops, or runs past
	// MaxCNAMEChain (RFC 1034 §3.6.2). Asking again gives the same.
	ErrCNAMELoop  = errors.New("CNAME loop")
	ErrCNAMEChain = errors.New("CNAME chain too long")
	// ErrNotInZone is a question outside every loaded zone file (Zones):
	// nothing is wrong with the name, the files just do not hold it.
	ErrNotInZone = errors.New("name is not in any loaded zone file")
)

// Error is a lookup that did not settle the question. Callers must not
// report it as "no records". Most are temporary from the routing point of
// view (a sender would queue and retry, never bounce); an alias chain that
// loops or runs too long (ErrCNAMELoop, ErrCNAMEChain) is the zone's
// configuration, broken for good, and a name outside the zone files
// (ErrNotInZone) is a limit of what was loaded: callers tell them apart
// with errors.Is.
type Error struct {
	Question Question
	Server   string // the last server tried, if any
	Rcode    int    // the rcode that caused it, or -1 when there was no response
	Err      error  // one of the Err* sentinels, possibly wrapping a cause
	// TCP is set when the failure came over TCP, after the server had
	// truncated its UDP reply (RFC 7766 §5).
	TCP bool
	// Waited is how long the server was given to answer, each of Tries
	// times, when it did not (ErrTimeout); zero when not known.
	Waited time.Duration
	Tries  int
}

// Error says what happened in DNS terms: the question, the server and
// what it did ("lookup d.test. MX: 192.0.2.53:53 refused the query (port
// unreachable)"), not the socket's text; Unwrap still gives the socket's
// error (syscall.ECONNREFUSED and the like) to errors.Is.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("lookup ")
	b.WriteString(e.Question.String())
	if what := e.exchange(); what != "" {
		b.WriteString(": ")
		b.WriteString(what)
		return b.String()
	}
	if e.Server != "" {
		b.WriteString(" at ")
		b.WriteString(e.Server)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// exchange says how the exchange with e.Server failed, starting with the
// server, or "" when e is not about one (a CNAME loop, a name outside the
// zone files, no server at all).
func (e *Error) exchange() string {
	srv := e.Server
	if srv == "" || e.Err == nil {
		return ""
	}
	// detail is what e.Err says past its sentinel's text.
	detail := func(sentinel error) string {
		return strings.TrimLeft(strings.TrimPrefix(e.Err.Error(), sentinel.Error()), ": ")
	}
	overTCP := ""
	if e.TCP {
		overTCP = " over TCP (after a truncated UDP reply)"
	}
	switch {
	case errors.Is(e.Err, context.Canceled):
		return "canceled while waiting for " + srv
	case errors.Is(e.Err, context.DeadlineExceeded):
		return "no answer from " + srv + overTCP + " before the time allowed ran out"
	case errors.Is(e.Err, ErrTimeout):
		s := "no answer from " + srv + overTCP
		if e.Waited > 0 {
			s += " within " + e.Waited.String()
			if e.Tries > 1 {
				s += fmt.Sprintf(" (%d tries)", e.Tries)
			}
		}
		if d := detail(ErrTimeout); d != "" {
			s += " " + d // "(and dropped a reply: ...)"
		}
		return s
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		if e.TCP {
			return srv + " truncated its UDP reply and refused the TCP connection for the whole one"
		}
		return srv + " refused the query (port unreachable)"
	case errors.Is(e.Err, syscall.ENETUNREACH):
		return srv + " cannot be reached (network unreachable)"
	case errors.Is(e.Err, syscall.EHOSTUNREACH):
		return srv + " cannot be reached (host unreachable)"
	case errors.Is(e.Err, syscall.EHOSTDOWN):
		return srv + " cannot be reached (host down)"
	case errors.Is(e.Err, ErrUnreachable):
		return srv + " cannot be reached"
	case errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF):
		if e.TCP {
			return srv + " truncated its UDP reply, then closed the TCP connection before the whole one"
		}
		return srv + " closed the connection mid-reply"
	case errors.Is(e.Err, ErrBadResponse):
		return srv + " sent a malformed reply" + overTCP + ": " + detail(ErrBadResponse)
	case errors.Is(e.Err, ErrServerFailure):
		return srv + " answered SERVFAIL (server failure)"
	case errors.Is(e.Err, ErrRefused):
		return srv + " refused to answer (REFUSED)"
	case errors.Is(e.Err, ErrRcode):
		return srv + " answered " + detail(ErrRcode) + ", an unexpected response code"
	}
	return ""
}

func (e *Error) Unwrap() error { return e.Err }

package dnstest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/miekg/dns"
)

// This file holds the hostile servers: handlers that replace the honest
// one (Silent, Rcode, Garbage, Huge), and options that make any handler
// misbehave (WrongID, WrongQuestion, NotResponse, AlwaysTruncated,
// BrokenTCP, SlowTCP, FormErrOnEDNS). Options compose, e.g.
//
//	dnstest.NewZone(t, zone, dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn))
//
// is a server whose UDP answers are always truncated and whose TCP port
// hangs up: a client must give up with an error, not loop or hang.
//
// Write errors are ignored throughout: the client then sees no answer,
// which is what a test observes.

// Silent never answers: the client must time out.
func Silent() dns.Handler {
	return dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
}

// Rcode answers every query with rcode (dns.RcodeServerFailure,
// dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented, ...)
// and no records. Extended rcodes (above 15) need a query with EDNS0.
func Rcode(rcode int) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := Reply(req)
		m.Rcode = rcode
		_ = w.WriteMsg(m)
	})
}

// GarbageKind is the kind of malformed reply Garbage sends.
type GarbageKind int

// Kinds of garbage. Each keeps the query's ID and sets QR, so a client that
// matches replies by ID takes it and has to parse it.
const (
	// RandomBytes is 64 octets: the ID, then flags with QR set, then
	// random octets (the same ones for the same query ID).
	RandomBytes GarbageKind = iota
	// ShortHeader is the first 6 octets of a 12-octet header.
	ShortHeader
	// LyingCounts is a well-formed header and question whose answer,
	// authority and additional counts each claim 5 records, with no
	// records following.
	LyingCounts
)

func (k GarbageKind) String() string {
	switch k {
	case RandomBytes:
		return "RandomBytes"
	case ShortHeader:
		return "ShortHeader"
	case LyingCounts:
		return "LyingCounts"
	}
	return fmt.Sprintf("GarbageKind(%d)", int(k))
}

// Garbage answers every query with a malformed message of the given kind.
func Garbage(kind GarbageKind) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		var b []byte
		switch kind {
		case RandomBytes:
			b = make([]byte, 64)
			rnd := rand.New(rand.NewPCG(uint64(req.Id), 0x646e7374657374))
			for i := range b {
				b[i] = byte(rnd.Uint32())
			}
			binary.BigEndian.PutUint16(b, req.Id)
			b[2] |= 0x80 // QR
		case ShortHeader:
			b = make([]byte, 6)
			binary.BigEndian.PutUint16(b, req.Id)
			b[2] = 0x80 // QR
			binary.BigEndian.PutUint16(b[4:], 1)
		case LyingCounts:
			m := new(dns.Msg)
			m.SetReply(req)
			var err error
			if b, err = m.Pack(); err != nil {
				return
			}
			// RFC 1035 §4.1.1: ANCOUNT, NSCOUNT, ARCOUNT are octets 6 to 11.
			for off := 6; off < 12; off += 2 {
				binary.BigEndian.PutUint16(b[off:], 5)
			}
		default:
			return
		}
		_, _ = w.Write(b)
	})
}

// Huge answers A, AAAA, MX and TXT queries with as many records of that
// type as fit in the largest DNS message, 65535 octets (RFC 1035 §4.2.2:
// the TCP length prefix is 16 bits), compressed: about 4000 A records. Over
// UDP the reply is truncated to the client's size with TC set, so the
// client must fetch it over TCP and must cope with its size. Other types
// get an empty NOERROR answer.
func Huge() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := Reply(req)
		if len(req.Question) == 1 {
			m.Answer = hugeAnswer(m, req.Question[0])
		}
		_ = w.WriteMsg(m)
	})
}

// hugeAnswer returns the largest answer for q that keeps m within
// dns.MaxMsgSize, found by bisection on the packed length.
func hugeAnswer(m *dns.Msg, q dns.Question) []dns.RR {
	hdr := func() dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 300}
	}
	var make1 func(i int) dns.RR
	switch q.Qtype {
	case dns.TypeA:
		make1 = func(i int) dns.RR {
			return &dns.A{Hdr: hdr(), A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))}
		}
	case dns.TypeAAAA:
		make1 = func(i int) dns.RR {
			ip := make(net.IP, net.IPv6len)
			copy(ip, net.ParseIP("2001:db8::"))
			binary.BigEndian.PutUint32(ip[12:], uint32(i))
			return &dns.AAAA{Hdr: hdr(), AAAA: ip}
		}
	case dns.TypeMX:
		make1 = func(i int) dns.RR {
			return &dns.MX{Hdr: hdr(), Preference: uint16(i), Mx: fmt.Sprintf("mx%d.%s", i, q.Name)}
		}
	case dns.TypeTXT:
		make1 = func(i int) dns.RR {
			return &dns.TXT{Hdr: hdr(), Txt: []string{fmt.Sprintf("record %d", i)}}
		}
	default:
		return nil
	}
	// Every record takes at least 11 octets (a compressed owner, type,
	// class, TTL and length), which bounds the count.
	all := make([]dns.RR, dns.MaxMsgSize/11)
	for i := range all {
		all[i] = make1(i)
	}
	fits := func(n int) bool {
		m.Answer = all[:n]
		return m.Len() <= dns.MaxMsgSize
	}
	lo, hi := 0, len(all) // fits(lo) holds; find the largest such lo
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return all[:lo]
}

// captured runs next as if it answered w, and returns the messages it
// wrote with WriteMsg instead of sending them. Raw writes go through.
func captured(next dns.Handler, w dns.ResponseWriter, req *dns.Msg) []*dns.Msg {
	c := &capture{ResponseWriter: w}
	next.ServeDNS(c, req)
	return c.msgs
}

type capture struct {
	dns.ResponseWriter
	msgs []*dns.Msg
}

func (c *capture) WriteMsg(m *dns.Msg) error {
	c.msgs = append(c.msgs, m)
	return nil
}

// capture passes the Transport of the writer it wraps through.
func (c *capture) Network() string                { return TransportOf(c.ResponseWriter).Network() }
func (c *capture) WriteRaw(b []byte) (int, error) { return TransportOf(c.ResponseWriter).WriteRaw(b) }
func (c *capture) Context() context.Context       { return TransportOf(c.ResponseWriter).Context() }

// rewrite is an option that edits every reply of the wrapped handler with f,
// which sends it.
func rewrite(f func(w dns.ResponseWriter, req, reply *dns.Msg)) Option {
	return WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			for _, m := range captured(next, w, req) {
				f(w, req, m)
			}
		})
	})
}

// WrongID sends every reply with an ID other than the query's. A client
// must ignore it (RFC 1035 §7.3, RFC 5452 §9.1: a reply is matched to its
// query by ID)
// and so time out.
func WrongID() Option {
	return rewrite(func(w dns.ResponseWriter, req, m *dns.Msg) {
		m.Id = req.Id + 1
		_ = w.WriteMsg(m)
	})
}

// WrongIDThenRight sends every reply twice: first with a wrong ID, then the
// real one. A client that drops the first and keeps reading until its
// deadline gets the answer; one that gives up at the first mismatch fails.
func WrongIDThenRight() Option {
	return rewrite(func(w dns.ResponseWriter, req, m *dns.Msg) {
		bad := m.Copy()
		bad.Id = req.Id + 1
		_ = w.WriteMsg(bad)
		_ = w.WriteMsg(m)
	})
}

// QuestionPart is the part of the question WrongQuestion changes.
type QuestionPart int

// Parts of a question.
const (
	QuestionName  QuestionPart = iota // another name: "wrong." prepended
	QuestionType                      // another type: TXT, or A for a TXT query
	QuestionClass                     // another class: CH, or IN for a CH query
)

// WrongQuestion sends every reply with part of its question changed. A
// client must not take it as the answer to what it asked (RFC 5452 §9.1:
// a reply is matched to its query by name, class and type too).
func WrongQuestion(part QuestionPart) Option {
	return rewrite(func(w dns.ResponseWriter, req, m *dns.Msg) {
		if len(m.Question) == 0 {
			m.Question = []dns.Question{{Name: ".", Qtype: dns.TypeA, Qclass: dns.ClassINET}}
		}
		q := &m.Question[0]
		switch part {
		case QuestionName:
			if len(q.Name) < 200 {
				q.Name = "wrong." + q.Name
			} else {
				q.Name = "wrong.invalid."
			}
		case QuestionType:
			if q.Qtype == dns.TypeTXT {
				q.Qtype = dns.TypeA
			} else {
				q.Qtype = dns.TypeTXT
			}
		case QuestionClass:
			if q.Qclass == dns.ClassCHAOS {
				q.Qclass = dns.ClassINET
			} else {
				q.Qclass = dns.ClassCHAOS
			}
		}
		_ = w.WriteMsg(m)
	})
}

// NotResponse sends every reply with the QR bit clear: a query, not a
// response (RFC 1035 §4.1.1), which a client must not accept.
func NotResponse() Option {
	return rewrite(func(w dns.ResponseWriter, _, m *dns.Msg) {
		m.Response = false
		_ = w.WriteMsg(m)
	})
}

// FormErrOnEDNS answers queries that carry an OPT record with FORMERR and
// no OPT, as servers from before EDNS do; queries without OPT get the
// wrapped handler's answer. RFC 6891 §7: a requester that gets FORMERR
// without OPT may retry without EDNS.
func FormErrOnEDNS() Option {
	return WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			if req.IsEdns0() == nil {
				next.ServeDNS(w, req)
				return
			}
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeFormatError)
			_ = w.WriteMsg(m)
		})
	})
}

// AlwaysTruncated answers every UDP query with TC set and no records, so
// the client must retry over TCP (RFC 7766 §5); TCP queries get the wrapped
// handler's answer. Add BrokenTCP or SlowTCP to break the TCP side too.
func AlwaysTruncated() Option {
	return WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			if TransportOf(w).Network() == "tcp" {
				next.ServeDNS(w, req)
				return
			}
			m := Reply(req)
			m.Truncated = true
			_ = w.WriteMsg(m)
		})
	})
}

// TCPBreak is how BrokenTCP breaks a TCP answer.
type TCPBreak int

// Ways to break TCP.
const (
	// CloseConn closes the connection without answering.
	CloseConn TCPBreak = iota
	// LengthOnly sends a length prefix announcing 512 octets and then
	// nothing, keeping the connection open until the client closes it or
	// the server stops.
	LengthOnly
)

// BrokenTCP breaks every answer over TCP as how says; UDP queries get the
// wrapped handler's answer.
func BrokenTCP(how TCPBreak) Option {
	return WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			t := TransportOf(w)
			if t.Network() != "tcp" {
				next.ServeDNS(w, req)
				return
			}
			switch how {
			case CloseConn:
				_ = w.Close()
			case LengthOnly:
				if _, err := t.WriteRaw([]byte{0x02, 0x00}); err != nil {
					return
				}
				<-t.Context().Done()
			}
		})
	})
}

// SlowTCP sends every TCP answer, length prefix included, one octet per
// interval, so a client's read deadline must cut it off; UDP queries get
// the wrapped handler's answer. The trickle stops when the connection or
// the server ends.
func SlowTCP(interval time.Duration) Option {
	return WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			t := TransportOf(w)
			if t.Network() != "tcp" {
				next.ServeDNS(w, req)
				return
			}
			ticker := time.NewTicker(interval)
			defer ticker.Stop()
			for _, m := range captured(next, w, req) {
				b, err := m.Pack()
				if err != nil {
					return
				}
				b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
				for i := range b {
					select {
					case <-ticker.C:
					case <-t.Context().Done():
						return
					}
					if _, err := t.WriteRaw(b[i : i+1]); err != nil {
						return
					}
				}
			}
		})
	})
}

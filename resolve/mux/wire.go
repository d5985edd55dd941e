package mux

import (
	"encoding/binary"
	"net"
	"slices"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
)

// Limits of the fast reply parser. A reply beyond any of them is not
// wrong, only unusual for a scan: upstream.ParseReply takes it.
const (
	wireMaxRRs   = 32  // records in all three sections together
	wireMaxNames = 32  // distinct names in a message, root and the question's included
	wireMaxRefs  = 32  // name offsets remembered for compression pointers
	wireScratch  = 512 // octets of decoded names, each name once
	// wireMaxJumps bounds the compression pointers followed in one name;
	// miekg/dns allows 126, so a name within it is one miekg decodes.
	wireMaxJumps = 16
	// wireMaxName is the longest name in presentation form, trailing dot
	// included: 255 octets on the wire (RFC 1035 §2.3.4) less the root
	// label's length octet. miekg/dns refuses anything longer.
	wireMaxName = 254
)

// parseReplyFast is upstream.ParseReply for the replies a scan reads by the
// thousand: it gives the same verdict, the same error and, on success, a
// *dns.Msg with the same header, question and records (same concrete
// types and field values) as upstream.ParseReply, which unpacks with miekg/dns.
//
// It exists because (*dns.Msg).Unpack, called for every reply the Mux
// reads, was a large share of the scanner's CPU (docs/performance.md): it
// allocates a string for every
// name of every record, grows each section by appending, and unpacks the
// OPT record's options into their own types. This parser reads the message
// format of RFC 1035 §4.1 itself, for what a scan's replies hold: A, AAAA,
// CNAME, NS, MX, SOA and TXT records of class IN and, in the additional
// section, one OPT record (RFC 6891 §6.1.2) without options or with one
// Extended DNS Error (RFC 8914), whose extended RCODE bits it adds to the
// header's as miekg/dns does (RFC 6891 §6.1.3); names of letters, digits,
// '-' and '_', plain or compressed (RFC 1035 §4.1.4) with pointers that
// point backwards. Each distinct name is decoded once: a name equal to the
// question asked is that string, one met before in the message (same
// pointer target, or same octets) is the same string, and the new names
// of a message share one allocation. The records of a type are allocated
// together, the answer and authority sections share one []dns.RR of the
// size the header announces, and the message, its question and an
// additional section holding only the OPT record take one allocation.
//
// Anything else — another type or class, another EDNS option, a name with
// octets miekg/dns would escape, a forward pointer, a count that does not
// match, trailing octets, more than the limits above, a reply that fails
// the checks — goes to upstream.ParseReply whole, so the fast path decides nothing
// it is not sure of. FuzzParseReplyFast compares it with upstream.ParseReply, and
// so with miekg/dns, on arbitrary input.
func parseReplyFast(b []byte, m *dns.Msg) (*dns.Msg, error) {
	return parseReplyInto(b, m, nil)
}

// parseReplyInto is parseReplyFast building the message, its question and
// its OPT record in into, when not nil and the fast path takes the reply,
// instead of a new wireMsg; what into held before is overwritten. The
// records are allocated as parseReplyFast allocates them. A socket's
// reader parses the replies to asynchronous lookups into one wireMsg of
// its own, since the answer made from a reply keeps only its records
// (resolve.FromReply), and copies it (own) for the rare reply that must
// outlive the callback. The message was a third of the bytes the Mux
// allocated per reply (alloc_space profile of an audit, docs/performance.md).
func parseReplyInto(b []byte, m *dns.Msg, into *wireMsg) (*dns.Msg, error) {
	var p wireParser
	if r := p.parse(b, m, into); r != nil {
		return r, nil
	}
	return upstream.ParseReply(b, m)
}

// wireParser holds one message's parse: pass one (parse) reads and checks
// the whole message into the arrays, pass two (build) allocates the
// result. It lives on the caller's stack, so it is kept small: offsets fit
// 16 bits as a DNS message is at most 65535 octets (RFC 1035 §4.2.2).
type wireParser struct {
	b     []byte
	asked string // the question asked: a name equal to it reuses its string
	// names are the distinct names met; names[0] is the root, names[1]
	// the question asked, the others are spans of scratch.
	names  [wireMaxNames]wireName
	nnames int
	// refs map the offset where a name started to its names index and
	// the pointers followed to read it.
	refs    [wireMaxRefs]wireRef
	nrefs   int
	scratch [wireScratch]byte
	n       int
	rrs     [wireMaxRRs]wireRR
}

const (
	nameRoot  = 0
	nameAsked = 1
)

type wireName struct {
	start, end uint16 // in scratch
	s          string
}

type wireRef struct {
	off         uint16
	name, jumps uint8
}

// wireRR is a record checked by pass one; build reads its fixed fields
// from the message again.
type wireRR struct {
	owner, n1, n2 uint8 // names index; n1, n2: CNAME, NS, MX target; SOA MNAME, RNAME
	rrtype        uint16
	class         uint16
	rdlen         uint16
	k             uint16 // TXT: the number of strings; OPT: the number of options (0 or 1 EDE)
	ttl           uint32
	rd            uint16 // offset of the RDATA
}

// parse returns the reply, built in into when not nil, or nil when
// upstream.ParseReply must decide.
func (p *wireParser) parse(b []byte, m *dns.Msg, into *wireMsg) *dns.Msg {
	// RFC 1035 §4.1.1: the 12-octet header.
	if len(b) < 12 || len(b) > dns.MaxMsgSize || len(m.Question) == 0 {
		return nil
	}
	bits := binary.BigEndian.Uint16(b[2:])
	qd := int(binary.BigEndian.Uint16(b[4:]))
	an := int(binary.BigEndian.Uint16(b[6:]))
	ns := int(binary.BigEndian.Uint16(b[8:]))
	ar := int(binary.BigEndian.Uint16(b[10:]))
	// The checks of upstream.ParseReply that need no parse: a reply failing them
	// is a stray, rare enough for the slow path.
	if qd != 1 || an+ns+ar > wireMaxRRs || binary.BigEndian.Uint16(b) != m.Id || bits&(1<<15) == 0 {
		return nil
	}
	p.b, p.asked = b, m.Question[0].Name
	p.names[nameRoot].s, p.names[nameAsked].s = ".", p.asked
	p.nnames = 2

	// RFC 1035 §4.1.2: the question.
	qname, off, ok := p.name(12, len(b))
	if !ok || off+4 > len(b) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(b[off:])
	qclass := binary.BigEndian.Uint16(b[off+2:])
	off += 4
	want := m.Question[0]
	if qtype != want.Qtype || qclass != want.Qclass {
		return nil
	}

	// RFC 1035 §4.1.3: the records. miekg/dns stops quietly at the end of
	// the message and ignores octets after the last record; here both
	// mean upstream.ParseReply.
	opts := 0
	for i := range an + ns + ar {
		rr := &p.rrs[i]
		if off, ok = p.rr(rr, off); !ok {
			return nil
		}
		if rr.rrtype == dns.TypeOPT {
			// RFC 6891 §6.1.1: one OPT record, in the additional section.
			if i < an+ns || opts > 0 {
				return nil
			}
			opts++
		}
	}
	if off != len(b) {
		return nil
	}

	// The names, then the question check of upstream.ParseReply.
	var all string
	if p.n > 0 {
		all = string(p.scratch[:p.n])
	}
	for i := 2; i < p.nnames; i++ {
		p.names[i].s = all[p.names[i].start:p.names[i].end]
	}
	got := p.names[qname].s
	if qname != nameAsked && !resolve.EqualNames(got, want.Name) {
		return nil
	}
	return p.build(bits, got, qtype, qclass, an, ns, ar, into)
}

// rr reads the record at off into rr and returns the offset after it.
func (p *wireParser) rr(rr *wireRR, off int) (int, bool) {
	b := p.b
	owner, off, ok := p.name(off, len(b))
	if !ok || off+10 > len(b) {
		return 0, false
	}
	rr.owner = owner
	rr.rrtype = binary.BigEndian.Uint16(b[off:])
	rr.class = binary.BigEndian.Uint16(b[off+2:])
	rr.ttl = binary.BigEndian.Uint32(b[off+4:])
	rr.rdlen = binary.BigEndian.Uint16(b[off+8:])
	off += 10
	rr.rd = uint16(off)
	end := off + int(rr.rdlen)
	if end > len(b) || rr.rrtype != dns.TypeOPT && rr.class != dns.ClassINET {
		return 0, false
	}
	// miekg/dns reads a record's data within its RDLENGTH, a name in it
	// included, and requires the data to fill RDLENGTH. It takes empty
	// or short data for a record without the missing fields; those are
	// left to it.
	switch rr.rrtype {
	case dns.TypeA:
		ok = rr.rdlen == net.IPv4len
	case dns.TypeAAAA:
		ok = rr.rdlen == net.IPv6len
	case dns.TypeCNAME, dns.TypeNS:
		rr.n1, off, ok = p.name(off, end)
		ok = ok && off == end
	case dns.TypeMX:
		if rr.rdlen < 3 {
			return 0, false
		}
		rr.n1, off, ok = p.name(off+2, end)
		ok = ok && off == end
	case dns.TypeSOA:
		if rr.n1, off, ok = p.name(off, end); ok {
			rr.n2, off, ok = p.name(off, end)
		}
		ok = ok && off+20 == end // SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM
	case dns.TypeTXT:
		rr.k, ok = txtStrings(b[off:end])
	case dns.TypeOPT:
		rr.k, ok = 0, true
		if rr.rdlen > 0 {
			// RFC 8914 §2: one Extended DNS Error, code 15, at least
			// the INFO-CODE long.
			d := b[off:end]
			ok = len(d) >= 6 && binary.BigEndian.Uint16(d) == dns.EDNS0EDE && int(binary.BigEndian.Uint16(d[2:])) == len(d)-4
			rr.k = 1
		}
	default:
		ok = false
	}
	return end, ok
}

// txtStrings counts the character-strings of TXT data (RFC 1035 §3.3.14),
// each a length octet and that many octets. It refuses empty data and
// octets miekg/dns escapes: '"', '\' and all but printable ASCII.
func txtStrings(d []byte) (uint16, bool) {
	if len(d) == 0 {
		return 0, false
	}
	k := uint16(0)
	for len(d) > 0 {
		l := int(d[0])
		if 1+l > len(d) {
			return 0, false
		}
		for _, c := range d[1 : 1+l] {
			if c < ' ' || c > '~' || c == '"' || c == '\\' {
				return 0, false
			}
		}
		d = d[1+l:]
		k++
	}
	return k, true
}

// name reads the domain name at off (RFC 1035 §3.1, compressed as in
// §4.1.4), with no octet read at limit or beyond, and returns its names
// index and the offset after it. It refuses, for upstream.ParseReply to decide,
// labels with octets miekg/dns escapes, names longer than miekg/dns
// allows, pointers that do not point before the labels that led to them
// (which also rules out loops), more than wireMaxJumps pointers, and the
// reserved label types 01 and 10.
func (p *wireParser) name(off, limit int) (uint8, int, bool) {
	b := p.b
	start := off
	// A pointer straight to the start of a name already read: that name.
	if off+1 < limit && b[off]&0xC0 == 0xC0 {
		t := uint16(b[off]&0x3F)<<8 | uint16(b[off+1])
		for _, r := range p.refs[:p.nrefs] {
			if r.off == t && r.jumps < wireMaxJumps {
				return r.name, off + 2, true
			}
		}
	}
	mark := p.n
	seg := off // start of the labels being read; a pointer must point before it
	jumps := 0
	next := -1 // offset after the name: after its first pointer, if any
	for {
		if off >= limit {
			return 0, 0, false
		}
		c := int(b[off])
		if c == 0 {
			off++
			break
		}
		switch c & 0xC0 {
		case 0x00: // a label of c octets
			if off+1+c > limit || p.n-mark+c+1 > wireMaxName || p.n+c+1 > len(p.scratch) {
				return 0, 0, false
			}
			for _, x := range b[off+1 : off+1+c] {
				if !plainLabelByte(x) {
					return 0, 0, false
				}
			}
			p.n += copy(p.scratch[p.n:], b[off+1:off+1+c])
			p.scratch[p.n] = '.'
			p.n++
			off += 1 + c
		case 0xC0: // a pointer
			if off+1 >= limit {
				return 0, 0, false
			}
			t := (c&0x3F)<<8 | int(b[off+1])
			if next < 0 {
				next = off + 2
			}
			if jumps++; t >= seg || jumps > wireMaxJumps {
				return 0, 0, false
			}
			seg, off = t, t
		default:
			return 0, 0, false
		}
	}
	if next < 0 {
		next = off
	}
	id, ok := p.intern(mark)
	if ok && p.nrefs < len(p.refs) {
		p.refs[p.nrefs] = wireRef{off: uint16(start), name: id, jumps: uint8(jumps)}
		p.nrefs++
	}
	return id, next, ok
}

// intern returns the names index of the name just decoded into
// scratch[mark:], dropping those octets when the name is known.
func (p *wireParser) intern(mark int) (uint8, bool) {
	s := p.scratch[mark:p.n]
	switch {
	case len(s) == 0:
		return nameRoot, true
	case string(s) == p.asked:
		p.n = mark
		return nameAsked, true
	}
	for i := 2; i < p.nnames; i++ {
		if nm := p.names[i]; string(p.scratch[nm.start:nm.end]) == string(s) {
			p.n = mark
			return uint8(i), true
		}
	}
	if p.nnames == len(p.names) {
		return 0, false
	}
	p.names[p.nnames] = wireName{start: uint16(mark), end: uint16(p.n)}
	p.nnames++
	return uint8(p.nnames - 1), true
}

// plainLabelByte reports whether miekg/dns writes x as itself in a name:
// the letters, digits, '-' and '_' of host names and service labels. (It
// writes more octets unescaped; those go to upstream.ParseReply.)
func plainLabelByte(x byte) bool {
	return 'a' <= x && x <= 'z' || 'A' <= x && x <= 'Z' || '0' <= x && x <= '9' || x == '-' || x == '_'
}

// wireMsg is a reply's message with its question and, when the additional
// section holds only the OPT record, that section: one allocation for what
// lives as long as the message. The answer and authority records, which a
// cache keeps, are allocated apart from it.
type wireMsg struct {
	msg   dns.Msg
	q     [1]dns.Question
	opt   dns.OPT
	extra [1]dns.RR
}

// own returns r, or a copy of it when r was built in scratch
// (parseReplyInto), for a reply that outlives scratch's next use. The
// records are shared: only the message, its question and its OPT record
// live in scratch.
func own(r *dns.Msg, scratch *wireMsg) *dns.Msg {
	if scratch == nil || r != &scratch.msg {
		return r
	}
	c := new(wireMsg)
	*c = *scratch
	c.msg.Question = c.q[:]
	switch {
	case len(r.Extra) == 0:
	case &r.Extra[0] == &scratch.extra[0]:
		c.msg.Extra = c.extra[:]
	default:
		c.msg.Extra = slices.Clone(r.Extra)
	}
	for i, rr := range c.msg.Extra {
		if rr == dns.RR(&scratch.opt) {
			c.msg.Extra[i] = &c.opt
		}
	}
	return &c.msg
}

// wireA and wireAAAA hold a record with its address.
type wireA struct {
	rr dns.A
	ip [net.IPv4len]byte
}

type wireAAAA struct {
	rr dns.AAAA
	ip [net.IPv6len]byte
}

// build allocates the reply checked by parse, in into when not nil.
func (p *wireParser) build(bits uint16, qname string, qtype, qclass uint16, an, ns, ar int, into *wireMsg) *dns.Msg {
	b := p.b
	wm := into
	if wm == nil {
		wm = new(wireMsg)
	} else {
		*wm = wireMsg{}
	}
	r := &wm.msg
	// RFC 1035 §4.1.1 header flags; AD and CD from RFC 4035 §3.2.
	r.MsgHdr = dns.MsgHdr{
		Id:                 binary.BigEndian.Uint16(b),
		Response:           bits&(1<<15) != 0,
		Opcode:             int(bits>>11) & 0xF,
		Authoritative:      bits&(1<<10) != 0,
		Truncated:          bits&(1<<9) != 0,
		RecursionDesired:   bits&(1<<8) != 0,
		RecursionAvailable: bits&(1<<7) != 0,
		Zero:               bits&(1<<6) != 0,
		AuthenticatedData:  bits&(1<<5) != 0,
		CheckingDisabled:   bits&(1<<4) != 0,
		Rcode:              int(bits & 0xF),
	}
	wm.q[0] = dns.Question{Name: qname, Qtype: qtype, Qclass: qclass}
	r.Question = wm.q[:]

	total := an + ns + ar
	var nA, nAAAA, nCNAME, nNS, nMX, nSOA int
	for i := range total {
		switch p.rrs[i].rrtype {
		case dns.TypeA:
			nA++
		case dns.TypeAAAA:
			nAAAA++
		case dns.TypeCNAME:
			nCNAME++
		case dns.TypeNS:
			nNS++
		case dns.TypeMX:
			nMX++
		case dns.TypeSOA:
			nSOA++
		}
	}
	// One allocation per type (none for a type not there). The answer
	// and authority sections share one array, and the full slice
	// expressions keep an append to one section from writing into the
	// next.
	as, aaaas := make([]wireA, nA), make([]wireAAAA, nAAAA)
	cnames, nss := make([]dns.CNAME, nCNAME), make([]dns.NS, nNS)
	mxs, soas := make([]dns.MX, nMX), make([]dns.SOA, nSOA)
	rrs := make([]dns.RR, an+ns)
	if an > 0 {
		r.Answer = rrs[:an:an]
	}
	if ns > 0 {
		r.Ns = rrs[an:]
	}
	switch {
	case ar == 1 && p.rrs[total-1].rrtype == dns.TypeOPT:
		r.Extra = wm.extra[:]
	case ar > 0:
		r.Extra = make([]dns.RR, ar)
	}

	for i := range total {
		w := &p.rrs[i]
		h := dns.RR_Header{Name: p.names[w.owner].s, Rrtype: w.rrtype, Class: w.class, Ttl: w.ttl, Rdlength: w.rdlen}
		d := b[w.rd : int(w.rd)+int(w.rdlen)]
		var rr dns.RR
		switch w.rrtype {
		case dns.TypeA:
			a := next(&as)
			a.rr.Hdr = h
			copy(a.ip[:], d)
			a.rr.A = a.ip[:]
			rr = &a.rr
		case dns.TypeAAAA:
			a := next(&aaaas)
			a.rr.Hdr = h
			copy(a.ip[:], d)
			a.rr.AAAA = a.ip[:]
			rr = &a.rr
		case dns.TypeCNAME:
			c := next(&cnames)
			c.Hdr, c.Target = h, p.names[w.n1].s
			rr = c
		case dns.TypeNS:
			n := next(&nss)
			n.Hdr, n.Ns = h, p.names[w.n1].s
			rr = n
		case dns.TypeMX:
			mx := next(&mxs)
			mx.Hdr, mx.Preference, mx.Mx = h, binary.BigEndian.Uint16(d), p.names[w.n1].s
			rr = mx
		case dns.TypeSOA:
			soa := next(&soas)
			soa.Hdr, soa.Ns, soa.Mbox = h, p.names[w.n1].s, p.names[w.n2].s
			t := d[len(d)-20:]
			soa.Serial = binary.BigEndian.Uint32(t)
			soa.Refresh = binary.BigEndian.Uint32(t[4:])
			soa.Retry = binary.BigEndian.Uint32(t[8:])
			soa.Expire = binary.BigEndian.Uint32(t[12:])
			soa.Minttl = binary.BigEndian.Uint32(t[16:])
			rr = soa
		case dns.TypeTXT:
			// One string for the data, cut into the character-strings.
			s := string(d)
			txt := make([]string, 0, w.k)
			for o := 0; o < len(s); {
				l := int(s[o])
				txt = append(txt, s[o+1:o+1+l])
				o += 1 + l
			}
			rr = &dns.TXT{Hdr: h, Txt: txt}
		case dns.TypeOPT:
			wm.opt.Hdr = h
			if w.k == 1 {
				wm.opt.Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: binary.BigEndian.Uint16(d[4:]), ExtraText: string(d[6:])}}
			}
			// RFC 6891 §6.1.3: the OPT TTL's top octet holds the upper
			// eight bits of the 12-bit RCODE, as miekg/dns adds them.
			r.Rcode |= int(w.ttl>>24) << 4
			rr = &wm.opt
		}
		switch {
		case i < an+ns:
			rrs[i] = rr
		default:
			r.Extra[i-an-ns] = rr
		}
	}
	return r
}

// next takes the first record of one type's block (build allocates each
// type's records together) and moves the block past it.
func next[T any](block *[]T) *T {
	r := &(*block)[0]
	*block = (*block)[1:]
	return r
}

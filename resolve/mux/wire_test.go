package mux

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// The question every reply below answers, unless a case says otherwise.
const (
	wireQName = "d.test."
	wireID    = 4242
)

func wireQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = wireID
	return q
}

// wireReply is a reply to d.test./qtype with EDNS (1232 octets, as
// Knot and Unbound send) and the records given in presentation form; a
// record after the marker "|" goes to the authority section, after "||"
// to the additional section.
func wireReply(t testing.TB, qtype uint16, rcode int, rrs ...string) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetRcode(wireQuery(wireQName, qtype), rcode)
	r.RecursionAvailable = true
	section := &r.Answer
	for _, s := range rrs {
		switch s {
		case "|":
			section = &r.Ns
			continue
		case "||":
			section = &r.Extra
			continue
		}
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		*section = append(*section, rr)
	}
	r.SetEdns0(stub.DefaultUDPSize, false)
	return r
}

func wirePack(t testing.TB, m *dns.Msg, compress bool) []byte {
	t.Helper()
	m.Compress = compress
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Octets for hand-built messages (RFC 1035 §4.1).

func wireHeader(id, bits uint16, qd, an, ns, ar int) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint16(h, id)
	binary.BigEndian.PutUint16(h[2:], bits)
	for i, c := range []int{qd, an, ns, ar} {
		binary.BigEndian.PutUint16(h[4+2*i:], uint16(c))
	}
	return h
}

// wireLabels writes labels, without the root label: append 0 or a pointer.
func wireLabels(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return b
}

func wirePtr(off int) []byte { return []byte{0xC0 | byte(off>>8), byte(off)} }

func wireU16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func wireCat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// wireRRHeader is the fixed part of a record after its owner: type, class
// IN, TTL 60 and RDLENGTH.
func wireRRHeader(rrtype uint16, rdlen int) []byte {
	return wireCat(wireU16(rrtype), wireU16(dns.ClassINET), []byte{0, 0, 0, 60}, wireU16(uint16(rdlen)))
}

// The header flags of a plain reply: QR, RD, RA.
const wireBits = 1<<15 | 1<<8 | 1<<7

// wireQuestion is d.test./type IN at offset 12.
func wireQuestion(qtype uint16) []byte {
	return wireCat(wireLabels("d", "test"), []byte{0}, wireU16(qtype), wireU16(dns.ClassINET))
}

// compareParses runs upstream.ParseReply and parseReplyFast on b and fails unless
// they agree: both errors with the same text, or equal messages. It
// reports whether the fast path decided without upstream.ParseReply.
func compareParses(t *testing.T, b []byte, q *dns.Msg) (fast bool, err error) {
	t.Helper()
	want, wantErr := upstream.ParseReply(b, q)
	got, gotErr := parseReplyFast(b, q)
	fast = new(wireParser).parse(b, q, nil) != nil
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("upstream.ParseReply: %v, parseReplyFast: %v\n%x", wantErr, gotErr, b)
	}
	if wantErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("upstream.ParseReply: %v\nparseReplyFast: %v", wantErr, gotErr)
		}
		if fast {
			t.Fatalf("the fast path accepted what upstream.ParseReply refuses: %v", wantErr)
		}
		return false, wantErr
	}
	if w, g := want.String(), got.String(); w != g {
		t.Fatalf("upstream.ParseReply:\n%s\nparseReplyFast:\n%s", w, g)
	}
	if want.MsgHdr != got.MsgHdr {
		t.Fatalf("header: upstream.ParseReply %+v, parseReplyFast %+v", want.MsgHdr, got.MsgHdr)
	}
	if !reflect.DeepEqual(want.Question, got.Question) {
		t.Fatalf("question: upstream.ParseReply %v, parseReplyFast %v", want.Question, got.Question)
	}
	for i, sec := range [][2][]dns.RR{{want.Answer, got.Answer}, {want.Ns, got.Ns}, {want.Extra, got.Extra}} {
		w, g := sec[0], sec[1]
		if len(w) != len(g) || (w == nil) != (g == nil) {
			t.Fatalf("section %d: upstream.ParseReply %d records (nil %v), parseReplyFast %d (nil %v)", i, len(w), w == nil, len(g), g == nil)
		}
		for j := range w {
			// DeepEqual compares the concrete type and every field, the
			// TTL and the case of names included.
			if !reflect.DeepEqual(w[j], g[j]) {
				t.Fatalf("section %d record %d: upstream.ParseReply %#v, parseReplyFast %#v", i, j, w[j], g[j])
			}
		}
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("messages differ:\n%#v\n%#v", want, got)
	}
	// Built in a reader's scratch wireMsg that held something else, and
	// copied out of it before it is used again (parseReplyInto, own).
	var scratch wireMsg
	junk(&scratch)
	in, err := parseReplyInto(b, q, &scratch)
	if err != nil {
		t.Fatalf("parseReplyInto: %v", err)
	}
	if !reflect.DeepEqual(want, in) {
		t.Fatalf("built in a used wireMsg:\n%#v\n%#v", want, in)
	}
	kept := own(in, &scratch)
	junk(&scratch)
	if !reflect.DeepEqual(want, kept) {
		t.Fatalf("copied out of the scratch wireMsg, then that reused:\n%#v\n%#v", want, kept)
	}
	return fast, nil
}

// wirePacked are replies built with dns.Msg.Pack; each is tested with
// and without name compression.
func wirePacked(t testing.TB) []struct {
	name  string
	qtype uint16
	msg   *dns.Msg
	fast  bool // the fast path decides (else it hands the message to upstream.ParseReply)
	ok    bool
} {
	t.Helper()
	extRcode := wireReply(t, dns.TypeMX, dns.RcodeBadVers)
	extRcode19 := wireReply(t, dns.TypeMX, 0x13, "d.test. 60 IN MX 10 mx.d.test.")
	do := wireReply(t, dns.TypeA, dns.RcodeSuccess, "d.test. 60 IN A 192.0.2.1")
	do.IsEdns0().SetDo()
	do.IsEdns0().SetVersion(0)
	do.IsEdns0().SetUDPSize(4096)
	ede := wireReply(t, dns.TypeMX, dns.RcodeServerFailure)
	ede.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "validation failure <d.test. MX>"}}
	edeEmpty := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	edeEmpty.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer}}
	nsid := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	nsid.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6b6e6f74"}}
	two := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	two.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: 3}, &dns.EDNS0_PADDING{Padding: make([]byte, 8)}}
	noEdns := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	noEdns.Extra = nil
	flags := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	flags.Authoritative, flags.Truncated, flags.Zero, flags.AuthenticatedData, flags.CheckingDisabled = true, true, true, true, true
	flags.RecursionDesired, flags.RecursionAvailable = false, false
	notify := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	notify.Opcode = dns.OpcodeNotify
	upper := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "D.Test. 60 IN MX 10 MX.D.Test.")
	upper.Question[0].Name = "D.Test."
	otherName := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	otherName.Question[0].Name = "e.test."
	otherType := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	otherType.Question[0].Qtype = dns.TypeA
	otherClass := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	otherClass.Question[0].Qclass = dns.ClassCHAOS
	twoQuestions := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	noQR := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	noQR.Response = false
	wrongID := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 IN MX 10 mx.d.test.")
	wrongID.Id++
	noQuestion := func(rcode int) *dns.Msg {
		r := wireReply(t, dns.TypeMX, rcode)
		r.Question = nil
		return r
	}
	chaos := wireReply(t, dns.TypeMX, dns.RcodeSuccess, "d.test. 60 CH MX 10 mx.d.test.")
	optInAnswer := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	optInAnswer.Answer = []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}}}
	twoOpts := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	twoOpts.Extra = append(twoOpts.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512, Ttl: 1 << 24}})
	optOwner := wireReply(t, dns.TypeMX, dns.RcodeSuccess)
	optOwner.IsEdns0().Hdr.Name = "d.test."
	emptyA := wireReply(t, dns.TypeA, dns.RcodeSuccess)
	emptyA.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "d.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}}}

	chain := func(hops int) *dns.Msg {
		// d.test. CNAME x.d.test. CNAME x.x.d.test. ...: compressed, the
		// k-th target is a label and a pointer to the one before, so
		// reading it follows k pointers, and the A record's owner one
		// more.
		var rrs []string
		owner := "d.test."
		for range hops {
			target := "x." + owner
			rrs = append(rrs, owner+" 300 IN CNAME "+target)
			owner = target
		}
		rrs = append(rrs, owner+" 60 IN A 192.0.2.7")
		return wireReply(t, dns.TypeA, dns.RcodeSuccess, rrs...)
	}
	manyA := func(n int) *dns.Msg {
		var rrs []string
		for i := range n {
			rrs = append(rrs, fmt.Sprintf("d.test. 60 IN A 192.0.2.%d", i))
		}
		return wireReply(t, dns.TypeA, dns.RcodeSuccess, rrs...)
	}
	longMX := func(n int) *dns.Msg {
		// MX targets under d.test. of n octets in all, in presentation
		// form: 100 each, the last one the rest.
		var rrs []string
		for i := 0; n > 0; i++ {
			l := min(n, 100)
			if n-l < 9 && n != l {
				l = n - 9 // the shortest, "x.d.test.", for the last one
			}
			n -= l
			var labels []string
			for rem := l - len("d.test."); rem > 0; {
				ll := min(rem-1, 63)
				if rem-ll-1 == 1 {
					ll-- // no room for a label after it
				}
				labels = append(labels, string(rune('a'+i))+strings.Repeat("x", ll-1))
				rem -= ll + 1
			}
			rrs = append(rrs, fmt.Sprintf("d.test. 60 IN MX %d %s.d.test.", i, strings.Join(labels, ".")))
		}
		return wireReply(t, dns.TypeMX, dns.RcodeSuccess, rrs...)
	}
	manyMX := func(n int) *dns.Msg {
		var rrs []string
		for i := range n {
			rrs = append(rrs, fmt.Sprintf("d.test. 60 IN MX %d mx%d.d.test.", i, i))
		}
		return wireReply(t, dns.TypeMX, dns.RcodeSuccess, rrs...)
	}

	type tc = struct {
		name  string
		qtype uint16
		msg   *dns.Msg
		fast  bool
		ok    bool
	}
	return []tc{
		{"MX", dns.TypeMX, wireReply(t, dns.TypeMX, 0, "d.test. 300 IN MX 10 mx1.d.test.", "d.test. 300 IN MX 20 mx2.example."), true, true},
		{"null MX", dns.TypeMX, wireReply(t, dns.TypeMX, 0, "d.test. 300 IN MX 0 ."), true, true},
		{"A behind CNAME", dns.TypeA, wireReply(t, dns.TypeA, 0, "d.test. 300 IN CNAME web.example.", "web.example. 60 IN A 192.0.2.1", "web.example. 60 IN A 192.0.2.2"), true, true},
		{"CNAME chain", dns.TypeA, chain(5), true, true},
		{"CNAME chain of 15", dns.TypeA, chain(15), true, true},
		{"CNAME chain of 16", dns.TypeA, chain(16), false, true}, // compressed: 17 pointers in a name
		{"CNAME only", dns.TypeA, wireReply(t, dns.TypeA, 0, "d.test. 300 IN CNAME gone.example.", "|", "example. 300 IN SOA ns.example. h.example. 1 2 3 4 5"), true, true},
		{"AAAA", dns.TypeAAAA, wireReply(t, dns.TypeAAAA, 0, "d.test. 60 IN AAAA 2001:db8::1", "d.test. 60 IN AAAA ::ffff:192.0.2.1"), true, true},
		{"NS with glue", dns.TypeNS, wireReply(t, dns.TypeNS, 0, "d.test. 3600 IN NS ns1.d.test.", "d.test. 3600 IN NS ns2.other.example.", "||", "ns1.d.test. 3600 IN A 192.0.2.53", "ns1.d.test. 3600 IN AAAA 2001:db8::53"), true, true},
		{"referral", dns.TypeMX, wireReply(t, dns.TypeMX, 0, "|", "d.test. 3600 IN NS ns1.d.test.", "||", "ns1.d.test. 3600 IN A 192.0.2.53"), true, true},
		{"SOA", dns.TypeSOA, wireReply(t, dns.TypeSOA, 0, "d.test. 3600 IN SOA ns1.d.test. hostmaster.d.test. 2024010101 7200 3600 1209600 300"), true, true},
		{"TXT", dns.TypeTXT, wireReply(t, dns.TypeTXT, 0, `d.test. 60 IN TXT "v=spf1 -all"`, `d.test. 60 IN TXT "a" "" "b c"`), true, true},
		{"TXT escaped", dns.TypeTXT, wireReply(t, dns.TypeTXT, 0, `d.test. 60 IN TXT "say \"hi\" \\ \255"`), false, true},
		{"NXDOMAIN", dns.TypeMX, wireReply(t, dns.TypeMX, dns.RcodeNameError, "|", "test. 900 IN SOA a.nic.test. hostmaster.nic.test. 1 1800 900 604800 900"), true, true},
		{"NODATA", dns.TypeMX, wireReply(t, dns.TypeMX, 0, "|", "d.test. 900 IN SOA ns1.d.test. hostmaster.d.test. 1 1800 900 604800 900"), true, true},
		{"NODATA bare", dns.TypeMX, wireReply(t, dns.TypeMX, 0), true, true},
		{"SERVFAIL", dns.TypeMX, wireReply(t, dns.TypeMX, dns.RcodeServerFailure), true, true},
		{"no EDNS", dns.TypeMX, noEdns, true, true},
		{"extended RCODE BADVERS", dns.TypeMX, extRcode, true, true},
		{"extended RCODE 0x13", dns.TypeMX, extRcode19, true, true},
		{"OPT DO, UDP size", dns.TypeA, do, true, true},
		{"OPT with EDE", dns.TypeMX, ede, true, true},
		{"OPT with empty EDE", dns.TypeMX, edeEmpty, true, true},
		{"OPT with NSID", dns.TypeMX, nsid, false, true},
		{"OPT with two options", dns.TypeMX, two, false, true},
		{"OPT owner not root", dns.TypeMX, optOwner, true, true},
		{"OPT in answer", dns.TypeMX, optInAnswer, false, true},
		{"two OPT", dns.TypeMX, twoOpts, false, true},
		{"all flags", dns.TypeMX, flags, true, true},
		{"NOTIFY opcode", dns.TypeMX, notify, true, true},
		{"question in other case", dns.TypeMX, upper, true, true},
		{"32 records", dns.TypeA, manyA(31), true, true},
		{"33 records", dns.TypeA, manyA(32), false, true},
		{"32 names", dns.TypeMX, manyMX(30), true, true}, // the root, d.test. and 30 targets
		{"33 names", dns.TypeMX, manyMX(31), false, true},
		{"names of 512 octets", dns.TypeMX, longMX(512), true, true},
		{"names of 513 octets", dns.TypeMX, longMX(513), false, true},
		{"escaped dot", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 a\.b.d.test.`), false, true},
		{"escaped backslash", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 a\\b.d.test.`), false, true},
		{"space", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 a\032b.d.test.`), false, true},
		{"non-ASCII", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 \200x.d.test.`), false, true},
		{"wildcard", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 *.d.test.`), false, true},
		{"escaped owner", dns.TypeMX, wireReply(t, dns.TypeMX, 0, `d.test. 60 IN MX 10 mx.d.test.`, `a\@b.d.test. 60 IN A 192.0.2.1`), false, true},
		{"class CH", dns.TypeMX, chaos, false, true},
		{"other type", dns.TypeMX, wireReply(t, dns.TypeMX, 0, "d.test. 60 IN MX 10 mx.d.test.", "d.test. 60 IN DNAME other.example."), false, true},
		{"A without data", dns.TypeA, emptyA, false, true},
		{"QR unset", dns.TypeMX, noQR, false, false},
		{"wrong ID", dns.TypeMX, wrongID, false, false},
		{"wrong name", dns.TypeMX, otherName, false, false},
		{"wrong type", dns.TypeMX, otherType, false, false},
		{"wrong class", dns.TypeMX, otherClass, false, false},
		{"two questions", dns.TypeMX, twoQuestions, false, false},
		{"no question, SERVFAIL", dns.TypeMX, noQuestion(dns.RcodeServerFailure), false, true},
		{"no question, FORMERR", dns.TypeMX, noQuestion(dns.RcodeFormatError), false, true},
		{"no question, NOERROR", dns.TypeMX, noQuestion(dns.RcodeSuccess), false, false},
		{"no question, NXDOMAIN", dns.TypeMX, noQuestion(dns.RcodeNameError), false, false},
	}
}

func TestParseReplyFast(t *testing.T) {
	for _, c := range wirePacked(t) {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%v", c.name, compress), func(t *testing.T) {
				b := wirePack(t, c.msg, compress)
				fast, err := compareParses(t, b, wireQuery(wireQName, c.qtype))
				if (err == nil) != c.ok {
					t.Fatalf("error %v, want ok %v", err, c.ok)
				}
				// Uncompressed, no name needs a pointer.
				wantFast := c.fast || c.name == "CNAME chain of 16" && !compress
				if fast != wantFast {
					t.Errorf("fast path %v, want %v", fast, wantFast)
				}
			})
		}
	}
}

// TestParseReplyFastCut cuts replies at every length and changes their
// header counts: the two parsers must agree on all of them.
func TestParseReplyFastCut(t *testing.T) {
	replies := []*dns.Msg{
		wireReply(t, dns.TypeMX, 0, "d.test. 300 IN MX 10 mx1.d.test.", "d.test. 300 IN MX 20 mx2.example."),
		wireReply(t, dns.TypeMX, dns.RcodeNameError, "|", "test. 900 IN SOA a.nic.test. hostmaster.nic.test. 1 1800 900 604800 900"),
		wireReply(t, dns.TypeMX, 0, `d.test. 60 IN TXT "a" "bc"`, "d.test. 60 IN CNAME x.d.test.", "d.test. 60 IN A 192.0.2.1", "d.test. 60 IN AAAA 2001:db8::1", "d.test. 60 IN NS ns.d.test."),
	}
	q := wireQuery(wireQName, dns.TypeMX)
	for i, r := range replies {
		for _, compress := range []bool{false, true} {
			full := wirePack(t, r, compress)
			for n := range len(full) + 1 {
				_, err := compareParses(t, full[:n], q)
				if (err == nil) != (n == len(full)) {
					t.Errorf("reply %d compress %v cut at %d/%d: error %v", i, compress, n, len(full), err)
				}
			}
			// Header counts one more and one less than the records held
			// (miekg/dns takes the second, ignoring the last record).
			for sec := range 4 {
				for _, d := range []int{1, -1} {
					b := append([]byte(nil), full...)
					c := int(binary.BigEndian.Uint16(b[4+2*sec:])) + d
					if c < 0 {
						continue
					}
					binary.BigEndian.PutUint16(b[4+2*sec:], uint16(c))
					compareParses(t, b, q)
				}
			}
			// Trailing octets.
			for _, tail := range [][]byte{{0}, {0xC0, 0x0C}, []byte("garbage")} {
				compareParses(t, append(append([]byte(nil), full...), tail...), q)
			}
		}
	}
}

// wireCase is a hand-built message, the question it answers, and whether
// the fast path takes it and it is accepted.
type wireCase struct {
	name  string
	qname string
	qtype uint16
	b     []byte
	fast  bool
	ok    bool
}

// wireRaw are hand-built messages for what dns.Msg.Pack does not write.
func wireRaw() []wireCase {
	long := func(n ...int) []string {
		var ls []string
		for _, l := range n {
			ls = append(ls, strings.Repeat("x", l))
		}
		return ls
	}
	name254 := long(63, 63, 63, 61) // 254 octets in presentation form, 255 on the wire
	name255 := long(63, 63, 63, 62) // one too many
	mxTo := func(target []byte) []byte {
		return wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(12), wireRRHeader(dns.TypeMX, 2+len(target)), wireU16(10), target)
	}
	type tc = wireCase
	return []tc{
		{"plain", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels("mx"), wirePtr(12))), true, true},
		{"header only, QDCOUNT 1", wireQName, dns.TypeMX, wireHeader(wireID, wireBits, 1, 0, 0, 0), false, false},
		{"header only, SERVFAIL", wireQName, dns.TypeMX, wireHeader(wireID, wireBits|2, 0, 0, 0, 0), false, true},
		{"header only, REFUSED", wireQName, dns.TypeMX, wireHeader(wireID, wireBits|5, 0, 0, 0, 0), false, true},
		{"question cut after the name", wireQName, 0, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 0), wireLabels("d", "test"), []byte{0}), false, false},
		{"pointer loop", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 0), wirePtr(12), wireU16(dns.TypeMX), wireU16(1)), false, false},
		{"pointer loop through two names", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0),
			wireLabels("d"), wirePtr(32), wireU16(dns.TypeMX), wireU16(1), // question at 12: "d", then a pointer to the CNAME target
			wirePtr(12), wireRRHeader(dns.TypeCNAME, 4), wireLabels("x"), wirePtr(12)), false, false},
		{"pointer into itself", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels("mx"), wirePtr(41))), false, false},
		// The MX target starts at 38; 36 holds the preference, 0 and 10:
		// the root label, so the target is "mx.".
		{"pointer to the preference", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels("mx"), wirePtr(36))), true, true},
		{"forward pointer", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0),
			wirePtr(18), wireU16(dns.TypeMX), wireU16(1), // the question name points to the owner name after it
			wireLabels("d", "test"), []byte{0}, wireRRHeader(dns.TypeMX, 2), wireU16(5)), false, true},
		{"forward pointer past the RDATA", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 2, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(12), wireRRHeader(dns.TypeMX, 4), wireU16(10), wirePtr(40), // to the next record
			wireLabels("mx"), wirePtr(12), wireRRHeader(dns.TypeMX, 4), wireU16(10), wirePtr(12)), false, false},
		{"forward pointer to a name", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0),
			wirePtr(32), wireU16(dns.TypeMX), wireU16(1), // to the MX target, at 32
			wirePtr(12), wireRRHeader(dns.TypeMX, 10), wireU16(10), wireLabels("d", "test"), []byte{0}), false, true},
		{"pointer to a pointer", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 2, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(12), wireRRHeader(dns.TypeMX, 4), wireU16(10), wirePtr(24), // owner at 24
			wirePtr(24), wireRRHeader(dns.TypeMX, 4), wireU16(20), wirePtr(12)), true, true},
		{"pointer past the RDATA", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels("mx"), []byte{0xC0})), false, false},
		{"pointer at the end", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 0), []byte{0xC0}), false, false},
		{"label type 01", wireQName, dns.TypeMX, mxTo(wireCat([]byte{0x40}, []byte("x"), []byte{0})), false, false},
		{"label type 10", wireQName, dns.TypeMX, mxTo(wireCat([]byte{0x80, 0})), false, false},
		{"name of 254", strings.Join(name254, ".") + ".", dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 0),
			wireLabels(name254...), []byte{0}, wireU16(dns.TypeMX), wireU16(1)), true, true},
		{"name of 255", strings.Join(name255, ".") + ".", dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 0),
			wireLabels(name255...), []byte{0}, wireU16(dns.TypeMX), wireU16(1)), false, false},
		{"name of 254 through a pointer", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels(long(63, 63, 63, 54)...), wirePtr(12))), true, true},
		{"name of 255 through a pointer", wireQName, dns.TypeMX, mxTo(wireCat(wireLabels(long(63, 63, 63, 55)...), wirePtr(12))), false, false},
		{"MX without a target", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(12), wireRRHeader(dns.TypeMX, 2), wireU16(10)), false, true},
		{"MX target short of RDLENGTH", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(12), wireRRHeader(dns.TypeMX, 6), wireU16(10), wirePtr(12), []byte{0, 0}), false, false},
		{"A of 5 octets", wireQName, dns.TypeA, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeA),
			wirePtr(12), wireRRHeader(dns.TypeA, 5), []byte{192, 0, 2, 1, 9}), false, false},
		{"RDLENGTH past the end", wireQName, dns.TypeA, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeA),
			wirePtr(12), wireRRHeader(dns.TypeA, 9), []byte{192, 0, 2, 1}), false, false},
		{"TXT without data", wireQName, dns.TypeTXT, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeTXT),
			wirePtr(12), wireRRHeader(dns.TypeTXT, 0)), false, true},
		{"TXT string past RDLENGTH", wireQName, dns.TypeTXT, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeTXT),
			wirePtr(12), wireRRHeader(dns.TypeTXT, 3), []byte{3, 'a', 'b'}), false, false},
		{"EDE too short", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 0, 0, 1), wireQuestion(dns.TypeMX),
			[]byte{0}, wireU16(dns.TypeOPT), wireU16(1232), []byte{0, 0, 0, 0}, wireU16(5), wireU16(dns.EDNS0EDE), wireU16(1), []byte{0}), false, false},
		{"owner in the header", wireQName, dns.TypeMX, wireCat(wireHeader(wireID, wireBits, 1, 1, 0, 0), wireQuestion(dns.TypeMX),
			wirePtr(11), wireRRHeader(dns.TypeMX, 4), wireU16(10), wirePtr(12)), true, true}, // ARCOUNT's low octet, 0: the root
	}
}

func TestParseReplyFastRaw(t *testing.T) {
	for _, c := range wireRaw() {
		t.Run(c.name, func(t *testing.T) {
			fast, err := compareParses(t, c.b, wireQuery(c.qname, c.qtype))
			if (err == nil) != c.ok {
				t.Errorf("error %v, want ok %v", err, c.ok)
			}
			if fast != c.fast {
				t.Errorf("fast path %v, want %v", fast, c.fast)
			}
		})
	}
}

// junk fills a wireMsg as another reply would have.
func junk(wm *wireMsg) {
	wm.msg = dns.Msg{MsgHdr: dns.MsgHdr{Id: 7, Rcode: dns.RcodeServerFailure, Truncated: true},
		Answer: []dns.RR{&dns.A{}}, Ns: []dns.RR{&dns.NS{}}, Extra: []dns.RR{&dns.TXT{}}}
	wm.q[0] = dns.Question{Name: "junk.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}
	wm.opt = dns.OPT{Hdr: dns.RR_Header{Name: "junk.", Ttl: 1 << 24}, Option: []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: 9}}}
	wm.extra[0] = &dns.A{}
}

// FuzzParseReplyFast compares parseReplyFast with upstream.ParseReply on arbitrary
// octets, as replies to a question of arbitrary name and type: the same
// verdict, the same error, the same message.
func FuzzParseReplyFast(f *testing.F) {
	for _, c := range wirePacked(f) {
		for _, compress := range []bool{false, true} {
			f.Add(wirePack(f, c.msg, compress), wireQName, c.qtype)
		}
	}
	for _, c := range wireRaw() {
		f.Add(c.b, c.qname, c.qtype)
	}
	f.Fuzz(func(t *testing.T, b []byte, qname string, qtype uint16) {
		compareParses(t, b, wireQuery(qname, qtype))
	})
}

// intoScratch is parseReplyInto with one wireMsg reused, as a socket's
// reader parses the replies to asynchronous lookups.
func intoScratch() func([]byte, *dns.Msg) (*dns.Msg, error) {
	var wm wireMsg
	return func(b []byte, m *dns.Msg) (*dns.Msg, error) { return parseReplyInto(b, m, &wm) }
}

// BenchmarkParseReply compares upstream.ParseReply (miekg/dns Unpack) with
// parseReplyFast (and parseReplyInto) on three replies as Knot sends
// them, compressed and with an OPT record:
//
//	go test -run x -bench ParseReply -benchmem ./resolve
func BenchmarkParseReply(b *testing.B) {
	mx := wireReply(b, dns.TypeMX, 0, "d.test. 300 IN MX 10 mx1.d.test.", "d.test. 300 IN MX 20 mx2.d.test.")
	cname := wireReply(b, dns.TypeA, 0, "d.test. 300 IN CNAME web.d.test.", "web.d.test. 60 IN A 192.0.2.1", "web.d.test. 60 IN A 192.0.2.2")
	nx := wireReply(b, dns.TypeMX, dns.RcodeNameError, "|", "test. 900 IN SOA a.nic.test. hostmaster.nic.test. 2024010101 1800 900 604800 900")
	for _, c := range []struct {
		name  string
		qtype uint16
		msg   *dns.Msg
	}{{"MX", dns.TypeMX, mx}, {"CNAME+A", dns.TypeA, cname}, {"NXDOMAIN", dns.TypeMX, nx}} {
		buf := wirePack(b, c.msg, true)
		q := wireQuery(wireQName, c.qtype)
		for _, p := range []struct {
			name  string
			parse func([]byte, *dns.Msg) (*dns.Msg, error)
		}{{"ParseReply", upstream.ParseReply}, {"parseReplyFast", parseReplyFast}, {"parseReplyInto", intoScratch()}} {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(buf, q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package mux

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// packedByMiekg is the query Mux.pack built with miekg/dns before
// appendQuery: the reference.
func packedByMiekg(t testing.TB, name string, qtype uint16, rd, cd, edns bool, udpSize uint16) ([]byte, error) {
	t.Helper()
	m := dns.Msg{Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}}
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired, m.AuthenticatedData, m.CheckingDisabled = rd, true, cd
	if edns {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(udpSize)
		m.Extra = []dns.RR{opt}
	}
	return m.Pack()
}

// checkAppendQuery: what appendQuery packs is byte for byte miekg/dns's
// query, and it declines only names miekg/dns would treat differently
// (escapes, other characters) or reject.
func checkAppendQuery(t *testing.T, name string, qtype uint16, rd, cd, edns bool, udpSize uint16) {
	t.Helper()
	got, ok := appendQuery([]byte("prefix"), name, qtype, rd, cd, edns, udpSize)
	if !ok {
		if string(got) != "prefix" {
			t.Fatalf("%q: declined but appended %q", name, got)
		}
		return
	}
	want, err := packedByMiekg(t, name, qtype, rd, cd, edns, udpSize)
	if err != nil {
		t.Fatalf("%q: appendQuery packs it, miekg/dns refuses: %v", name, err)
	}
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("%q type %d rd=%v cd=%v edns=%v size %d:\n got %x\nwant %x", name, qtype, rd, cd, edns, udpSize, got[len("prefix"):], want)
	}
}

func TestAppendQuery(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{".", true},
		{"example.com.", true},
		{"Mail-1.Example.COM.", true},
		{"_dmarc.example.com.", true},
		{long63 + ".test.", true},
		{strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) + ".", true}, // 255 octets on the wire
		{strings.Repeat(long63+".", 3) + strings.Repeat("b", 62) + ".", false},
		{strings.Repeat("a", 64) + ".test.", false},
		{"example.com", false},
		{"a..b.", false},
		{"a\\.b.example.", false},
		{"a b.example.", false},
		{"bücher.example.", false},
		{"", false},
	} {
		if _, ok := appendQuery(nil, tt.name, dns.TypeMX, true, false, true, 1232); ok != tt.ok {
			t.Errorf("appendQuery(%q) packs: %v, want %v", tt.name, ok, tt.ok)
		}
		for _, qtype := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
			for _, f := range []struct{ rd, cd, edns bool }{{true, false, true}, {false, false, true}, {true, true, true}, {true, false, false}, {false, true, false}} {
				checkAppendQuery(t, tt.name, qtype, f.rd, f.cd, f.edns, 1232)
			}
		}
	}
	checkAppendQuery(t, "example.com.", dns.TypeMX, true, false, true, 4096)
	checkAppendQuery(t, "example.com.", dns.TypeMX, true, false, true, 512)
}

// FuzzAppendQuery: for any name and flags, appendQuery declines or packs
// exactly what miekg/dns packs.
func FuzzAppendQuery(f *testing.F) {
	f.Add("example.com.", uint16(dns.TypeMX), true, false, true, uint16(1232))
	f.Add("A-b_c.D.", uint16(dns.TypeAAAA), false, true, false, uint16(512))
	f.Add(".", uint16(dns.TypeNS), true, true, true, uint16(0))
	f.Fuzz(checkAppendQuery)
}

// TestPadQuery: a padded query is a multiple of padBlock octets, and
// reads as the same query with one EDNS(0) Padding option of zeros.
func TestPadQuery(t *testing.T) {
	long := strings.Repeat("abcdefghij.", 22) + "test." // 247 octets
	for _, name := range []string{".", "a.test.", "mail.example.com.", long} {
		plain, ok := appendQuery(nil, name, dns.TypeAAAA, true, false, true, 1232)
		if !ok {
			t.Fatalf("appendQuery(%q) packs nothing", name)
		}
		padded := padQuery(bytes.Clone(plain))
		if len(padded)%padBlock != 0 || len(padded) < len(plain)+4 || len(padded) >= len(plain)+4+padBlock {
			t.Errorf("%q: %d octets padded to %d", name, len(plain), len(padded))
		}
		var want, got dns.Msg
		if err := want.Unpack(plain); err != nil {
			t.Fatal(err)
		}
		if err := got.Unpack(padded); err != nil {
			t.Fatalf("%q: the padded query does not parse: %v", name, err)
		}
		opt := got.IsEdns0()
		if opt == nil || len(opt.Option) != 1 {
			t.Fatalf("%q: OPT %v, want one option", name, opt)
		}
		pad, ok := opt.Option[0].(*dns.EDNS0_PADDING)
		if !ok || len(pad.Padding) != len(padded)-len(plain)-4 || bytes.Count(pad.Padding, []byte{0}) != len(pad.Padding) {
			t.Errorf("%q: option %#v, want padding of zeros", name, opt.Option[0])
		}
		opt.Option = nil
		if got.String() != want.String() {
			t.Errorf("%q: padded query reads\n%v\nwant\n%v", name, &got, &want)
		}
	}
}

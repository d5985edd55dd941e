package resolve_test

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

func TestAddrOf(t *testing.T) {
	for _, tt := range []struct {
		rr   string
		want string // "" for not an address record
	}{
		{"a.test. 60 IN A 192.0.2.1", "192.0.2.1"},
		{"a.test. 60 IN AAAA 2001:db8::1", "2001:db8::1"},
		{"a.test. 60 IN AAAA ::ffff:192.0.2.1", "::ffff:192.0.2.1"}, // as published: dial's policy refuses the form
		{"a.test. 60 IN MX 10 mx.test.", ""},
	} {
		rr, err := dns.NewRR(tt.rr)
		if err != nil {
			t.Fatal(err)
		}
		a, ok := resolve.AddrOf(rr)
		if ok != (tt.want != "") || (ok && a != netip.MustParseAddr(tt.want)) {
			t.Errorf("AddrOf(%s) = %v, %v; want %q", tt.rr, a, ok, tt.want)
		}
	}
}

func TestTXTData(t *testing.T) {
	for _, tt := range []struct{ rr, want string }{
		{`a.test. 60 IN TXT "v=spf1 " "-all"`, "v=spf1 -all"},
		{`a.test. 60 IN TXT "say \"hi\"; a\\b \065"`, `say "hi"; a\b A`},
	} {
		rr, err := dns.NewRR(tt.rr)
		if err != nil {
			t.Fatal(err)
		}
		if got := resolve.TXTData(rr.(*dns.TXT)); got != tt.want {
			t.Errorf("TXTData(%s) = %q, want %q", tt.rr, got, tt.want)
		}
	}
}

package dial

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/ipclass"
)

// TestPolicyRefusesEveryRange: one address in every range a server that
// dials what strangers name must refuse (docs/security.md#what-serve-refuses),
// and every IPv6 form that embeds an IPv4 address, of a private and of a
// public IPv4 address: each form is refused whatever it holds (IPv4-mapped
// RFC 4291 §2.5.5.2, IPv4-compatible §2.5.5.1, NAT64 RFC 6052 and RFC
// 8215, 6to4 RFC 3056, Teredo RFC 4380), with a reason naming the form,
// its RFC and the IPv4 address inside.
func TestPolicyRefusesEveryRange(t *testing.T) {
	for _, tt := range []struct {
		what, addr string
		refused    bool
	}{
		{"this network 0.0.0.0/8", "0.0.0.1", true},
		{"loopback 127.0.0.0/8", "127.1.2.3", true},
		{"private 10.0.0.0/8", "10.255.0.1", true},
		{"private 172.16.0.0/12", "172.20.0.1", true},
		{"private 192.168.0.0/16", "192.168.0.1", true},
		{"link-local 169.254.0.0/16", "169.254.169.254", true},
		{"CGNAT 100.64.0.0/10", "100.127.255.254", true},
		{"multicast 224.0.0.0/4", "239.1.2.3", true},
		{"documentation 192.0.2.0/24", "192.0.2.10", true},
		{"documentation 198.51.100.0/24", "198.51.100.10", true},
		{"documentation 203.0.113.0/24", "203.0.113.10", true},
		{"reserved 240.0.0.0/4", "250.1.2.3", true},
		{"limited broadcast", "255.255.255.255", true},
		{"benchmarking 198.18.0.0/15", "198.19.0.1", true},
		{"IETF 192.0.0.0/24", "192.0.0.1", true},
		{"public IPv4", "9.9.9.9", false},
		{"unspecified ::", "::", true},
		{"loopback ::1", "::1", true},
		{"unique-local fc00::/7", "fc00::1", true},
		{"unique-local fd00::/8", "fdff:1::1", true},
		{"link-local fe80::/10", "fe80::1", true},
		{"site-local fec0::/10 (deprecated)", "fec0::1", true},
		{"multicast ff00::/8", "ff05::2", true},
		{"documentation 2001:db8::/32", "2001:db8::25", true},
		{"documentation 3fff::/20", "3fff::25", true},
		{"discard 100::/64", "100::1", true},
		{"outside 2000::/3", "4000::1", true},
		{"public IPv6", "2620:fe::fe", false},

		{"IPv4-mapped of loopback", "::ffff:127.0.0.1", true},
		{"IPv4-mapped of private", "::ffff:192.168.1.1", true},
		{"IPv4-mapped of public", "::ffff:9.9.9.9", true},
		{"IPv4-compatible of loopback", "::127.0.0.1", true},
		{"IPv4-compatible of private", "::10.0.0.1", true},
		{"IPv4-compatible of public", "::9.9.9.9", true},
		{"NAT64 of loopback", "64:ff9b::127.0.0.1", true},
		{"NAT64 of private", "64:ff9b::10.0.0.1", true},
		{"NAT64 of CGNAT", "64:ff9b::100.64.0.1", true},
		{"NAT64 of public", "64:ff9b::9.9.9.9", true},
		{"local-use NAT64 of private", "64:ff9b:1::a00:1", true},
		{"local-use NAT64 of public", "64:ff9b:1::909:909", true},
		{"6to4 of loopback", "2002:7f00:1::1", true},
		{"6to4 of private", "2002:c0a8:101::1", true},
		{"6to4 of link-local", "2002:a9fe:a9fe::1", true},
		{"6to4 of public", "2002:909:909::1", true},
		// Teredo: server 65.54.227.120, client 127.0.0.1:40000, both
		// obfuscated (RFC 4380 §4).
		{"Teredo with a loopback client", "2001:0:4136:e378:8000:63bf:80ff:fffe", true},
		{"Teredo with a public client", "2001:0:4136:e378:8000:63bf:f6f6:f6f6", true},
	} {
		a := netip.MustParseAddr(tt.addr)
		err := (&Policy{}).Check(a)
		if tt.refused != (err != nil) {
			t.Errorf("%s (%s): %v, refused want %t", tt.what, tt.addr, err, tt.refused)
			continue
		}
		if err == nil {
			continue
		}
		fe, ok := errors.AsType[*ForbiddenError](err)
		if !ok {
			t.Errorf("%s (%s): %#v, want a ForbiddenError", tt.what, tt.addr, err)
			continue
		}
		name, rfc := fe.Class.Name, fe.Class.RFC
		if e, embeds := ipclass.Embedded(a); embeds {
			name, rfc = fe.Embedding.Form, fe.Embedding.RFC
			if fe.Embedding != e || !strings.Contains(err.Error(), e.String()) {
				t.Errorf("%s (%s): %v, want the form %s named", tt.what, tt.addr, err, e)
			}
		}
		if !errors.Is(err, ErrForbidden) || fe.Addr != a || name == "" || rfc == "" || !strings.Contains(err.Error(), rfc) {
			t.Errorf("%s (%s): %#v, want a ForbiddenError naming the range and its RFC", tt.what, tt.addr, err)
		}
		if err := (&Policy{AllowPrivate: true}).Check(a); err != nil {
			t.Errorf("%s (%s) with AllowPrivate: %v", tt.what, tt.addr, err)
		}
	}
}

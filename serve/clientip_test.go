package serve

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name, peer string
		trusted    []netip.Prefix
		xff        []string
		want       string
	}{
		{"no proxy trusted: the header is ignored", "192.0.2.1:4000", nil, []string{"198.51.100.7"}, "192.0.2.1"},
		{"peer outside the trusted prefixes", "192.0.2.1:4000", proxies, []string{"198.51.100.7"}, "192.0.2.1"},
		{"mapped peer", "[::ffff:192.0.2.1]:4000", nil, nil, "192.0.2.1"},
		{"trusted peer without header", "10.0.0.1:4000", proxies, nil, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:4000", proxies, []string{"198.51.100.7"}, "198.51.100.7"},
		{"left of the client is the client's word", "10.0.0.1:4000", proxies, []string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops skipped", "10.0.0.1:4000", proxies, []string{"203.0.113.9, 198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"several header lines", "10.0.0.1:4000", proxies, []string{"203.0.113.9", "198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"every hop trusted", "10.0.0.1:4000", proxies, []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"malformed last hop: the proxy", "10.0.0.1:4000", proxies, []string{"198.51.100.7, garbage"}, "10.0.0.1"},
		{"malformed after a trusted hop", "10.0.0.1:4000", proxies, []string{"198.51.100.7, unknown, 10.0.0.2"}, "10.0.0.2"},
		{"a port is malformed", "10.0.0.1:4000", proxies, []string{"198.51.100.7:1234"}, "10.0.0.1"},
		{"empty header", "10.0.0.1:4000", proxies, []string{""}, "10.0.0.1"},
		{"IPv6 client, IPv6 proxy", "[2001:db8:ffff::1]:4000", proxies, []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"mapped hop", "10.0.0.1:4000", proxies, []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"zone dropped", "10.0.0.1:4000", proxies, []string{"fe80::1%eth0"}, "fe80::1"},
		{"Unix socket", "@", proxies, []string{"198.51.100.7"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted).String(); got != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

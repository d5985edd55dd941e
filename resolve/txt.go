package resolve

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// TXTData returns the text of a TXT record as the publisher wrote it: the
// character-strings concatenated with nothing between them, and the
// presentation escapes miekg/dns keeps in TXT.Txt (\" \\ \DDD) undone.
// RFC 7208 §3.3 and RFC 6376 §3.6.2.2: the strings of one TXT record are
// joined with no white space between them; the other TXT-based mail
// records (DMARC, MTA-STS, TLS-RPT) are read the same way.
func TXTData(t *dns.TXT) string {
	// The data is at most as long as its presentation form: grown once,
	// not byte by byte (1 % of a check scan's allocations).
	n := 0
	for _, s := range t.Txt {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range t.Txt {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v < 256 {
					b.WriteByte(byte(v))
					i += 3
					continue
				}
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// AddrOf returns the address of an A or AAAA record as the record holds
// it, and false for any other record. An AAAA record of an IPv4-mapped
// address (::ffff:192.0.2.1) stays mapped, so that a dial policy sees the
// form the record publishes (serve refuses every IPv6 form that embeds an
// IPv4 address, docs/security.md); route judges it by the IPv4 address
// inside (package ipclass).
func AddrOf(rr dns.RR) (netip.Addr, bool) {
	var a netip.Addr
	switch v := rr.(type) {
	case *dns.A:
		a, _ = netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		a, _ = netip.AddrFromSlice(v.AAAA)
	}
	return a, a.IsValid()
}

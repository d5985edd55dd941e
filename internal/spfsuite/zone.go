package spfsuite

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// ZoneText writes the scenario's data as one zone file at the root, as a
// test driver writes one for --zone, with the driver's rules applied (SPF
// entries copied to TXT, "TXT: NONE" left out). Owner names and targets
// spell every octet that needs an escape as \DDD (RFC 1035 §5.1), where
// SPF macro expansion asks for them raw. It reports false when the data
// has a TIMEOUT entry, which a zone file cannot express.
func (f *Resolver) ZoneText() (string, bool) {
	var b strings.Builder
	b.WriteString(". 300 IN SOA ns.suite. hostmaster.suite. 1 3600 600 86400 300\n")
	for _, owner := range slices.Sorted(maps.Keys(f.names)) {
		for _, it := range f.names[owner] {
			if it.timeout {
				return "", false
			}
			rr := dns.Copy(it.rr)
			rr.Header().Name = escapeDDD(owner)
			switch v := rr.(type) {
			case *dns.CNAME:
				v.Target = escapeDDD(v.Target)
			case *dns.MX:
				v.Mx = escapeDDD(v.Mx)
			case *dns.PTR:
				v.Ptr = escapeDDD(v.Ptr)
			}
			b.WriteString(rr.String())
			b.WriteByte('\n')
		}
	}
	return b.String(), true
}

// escapeDDD spells a name's octets that need an escape as \DDD, whatever
// spelling the name had (the suite's raw text, or resolve's "\ ").
func escapeDDD(name string) string {
	var wire [256]byte
	if n, err := dns.PackDomainName(dns.Fqdn(name), wire[:], 0, nil, false); err == nil {
		var b strings.Builder
		for off := 0; off < n && wire[off] != 0; off += int(wire[off]) + 1 {
			for _, c := range wire[off+1 : off+1+int(wire[off])] {
				switch {
				case c == '.' || c == ' ' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' || c == '\'' || c == '\\' || c < ' ' || c > '~':
					fmt.Fprintf(&b, `\%03d`, c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('.')
		}
		if b.Len() == 0 {
			return "."
		}
		return b.String()
	}
	return name
}

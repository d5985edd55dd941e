package upstream

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// FuzzParseReply feeds arbitrary octets to the reply check as if a server
// had sent them: it must never panic, and whatever it accepts must answer
// the question asked with counts that match its header.
func FuzzParseReply(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("d.test.", dns.TypeMX)
	q.Id = 4242
	good := new(dns.Msg)
	good.SetReply(q)
	mx, _ := dns.NewRR("d.test. 60 IN MX 10 mx.d.test.")
	good.Answer = []dns.RR{mx}
	b, _ := good.Pack()
	f.Add(b)
	f.Add(b[:20])
	f.Add([]byte{0x10, 0x92, 0x80, 0, 0, 1, 0, 5, 0, 5, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b, q)
		if err != nil {
			return
		}
		if r.Id != q.Id || !r.Response {
			t.Fatalf("accepted a reply with ID %d response %v", r.Id, r.Response)
		}
		if len(r.Question) == 1 && !resolve.EqualNames(r.Question[0].Name, "d.test.") {
			t.Fatalf("accepted a reply for %s", r.Question[0].Name)
		}
	})
}

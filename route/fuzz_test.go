package route_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// universe answers every question from one DNS message, as a hostile or
// broken server might: whatever records the message holds are served for
// any name they are owned by, CNAMEs included, with the message's rcode.
type universe struct{ msg *dns.Msg }

func (u universe) Lookup(_ context.Context, q resolve.Question) (*resolve.Answer, error) {
	switch u.msg.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, &resolve.Error{Question: q, Rcode: u.msg.Rcode, Err: resolve.ErrServerFailure}
	}
	a := &resolve.Answer{Question: q, Rcode: u.msg.Rcode, Authority: u.msg.Ns, AD: u.msg.AuthenticatedData}
	for _, rr := range u.msg.Answer {
		h := rr.Header()
		if dns.CanonicalName(h.Name) == q.Name && (h.Rrtype == q.Type || h.Rrtype == dns.TypeCNAME) {
			a.Answer = append(a.Answer, rr)
		}
	}
	// Serve every CNAME too, so chains and loops of any shape reach Follow.
	for _, rr := range u.msg.Answer {
		if rr.Header().Rrtype == dns.TypeCNAME && !slices.Contains(a.Answer, rr) {
			a.Answer = append(a.Answer, rr)
		}
	}
	return a, nil
}

// FuzzPlan feeds the planner arbitrary DNS answers (a wire-format message
// from the fuzzer): it must never panic or hang, and every plan must keep
// the invariants a sender relies on.
func FuzzPlan(f *testing.F) {
	seed := func(rcode int, rrs ...string) {
		m := new(dns.Msg)
		m.Rcode = rcode
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(dns.RcodeSuccess, "d.test. 60 MX 10 a.test.", "d.test. 60 MX 10 b.test.", "a.test. 60 A 192.0.2.1", "b.test. 60 AAAA 2001:db8::1")
	seed(dns.RcodeSuccess, "d.test. 60 MX 0 .")
	seed(dns.RcodeSuccess, "d.test. 60 MX 0 .", "d.test. 60 MX 5 d.test.", "d.test. 60 A 10.0.0.1")
	seed(dns.RcodeSuccess, "d.test. 60 CNAME e.test.", "e.test. 60 CNAME d.test.")
	seed(dns.RcodeSuccess, "d.test. 60 CNAME e.test.", "e.test. 60 MX 1 f.test.", "f.test. 60 CNAME g.test.", "g.test. 60 A 127.0.0.1")
	seed(dns.RcodeSuccess, "d.test. 60 A 192.0.2.1")
	seed(dns.RcodeNameError)
	seed(dns.RcodeServerFailure)

	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		p := &route.Planner{Resolver: universe{m}, Self: "b.test", MaxExchanges: 8, MaxAddresses: 4}
		plan, err := p.Plan(ctx, dnsname.MustParse("d.test"))
		if ctx.Err() != nil {
			t.Fatal("plan did not finish in 5 s")
		}
		if (err != nil) != (plan.Result == route.ResultError) {
			t.Fatalf("err %v with result %s", err, plan.Result)
		}
		switch plan.Result {
		case route.ResultOK:
			if len(plan.Tiers) == 0 {
				t.Fatal("ok without tiers")
			}
		case route.ResultNullMX, route.ResultNoMail, route.ResultNXDomain, route.ResultError:
			if len(plan.Tiers) != 0 {
				t.Fatalf("result %s with tiers %v", plan.Result, plan.Tiers)
			}
		default:
			t.Fatalf("unknown result %q", plan.Result)
		}
		hosts := plan.Hosts()
		if len(hosts) > 8 || len(plan.Order) != len(hosts) {
			t.Fatalf("%d hosts, order %v", len(hosts), plan.Order)
		}
		for i := 1; i < len(plan.Tiers); i++ {
			if plan.Tiers[i-1].Preference >= plan.Tiers[i].Preference {
				t.Fatalf("tiers not strictly ascending: %+v", plan.Tiers)
			}
		}
		pos := 0
		for _, tier := range plan.Tiers {
			var names []string
			for _, h := range tier.Hosts {
				if len(h.Addresses) > 4 {
					t.Fatalf("%s has %d addresses", h.Name, len(h.Addresses))
				}
				if h.Name == "b.test" {
					t.Fatal("--self host left in the plan")
				}
				names = append(names, h.Name)
			}
			got := slices.Clone(plan.Order[pos : pos+len(names)])
			slices.Sort(got)
			slices.Sort(names)
			if !slices.Equal(got, names) {
				t.Fatalf("order %v does not take tier %d whole", plan.Order, tier.Preference)
			}
			pos += len(names)
		}
	})
}

package resolve_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// bounded runs f and fails the test when it does not return in time: a
// walk over labels that never ends does not look at any deadline.
func bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// parseBounded is ParseZones under bounded.
func parseBounded(t *testing.T, text string) (z *resolve.Zones, err error) {
	t.Helper()
	bounded(t, "loading the zone", func() { z, err = resolve.ParseZones(strings.NewReader(text), "test") })
	return z, err
}

// lookupBounded asks z under a deadline, directly and through Follow, and
// fails the test when the lookup does not return soon after it.
func lookupBounded(t *testing.T, z resolve.Resolver, q resolve.Question) (a *resolve.Answer, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	bounded(t, "lookup "+q.String(), func() {
		a, err = z.Lookup(ctx, q)
		resolve.Follow(ctx, z, q)
	})
	return a, err
}

// TestZonesRootApex: a zone whose apex is the root (legal, and what a lab
// writes) answers like any other: the walks over labels end at ".", the
// wildcard right below the root applies, empty non-terminals exist. They
// used to walk from "com." to "" and spin for ever.
func TestZonesRootApex(t *testing.T) {
	const text = `
.                 300 SOA ns.lab. h.lab. 1 7200 900 1209600 60
.                 300 NS  ns.lab.
ns.lab.           300 A   192.0.2.53
example.com.      300 MX  10 mx.example.com.
mx.example.com.   300 A   192.0.2.25
*.                300 TXT "root wildcard"
*.wild.example.   300 MX  5 mx.example.com.
sub.example.      300 NS  ns.elsewhere.
`
	z, err := parseBounded(t, text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{"example.com.", dns.TypeMX, dns.RcodeSuccess, []string{"example.com. MX 10 mx.example.com."}},
		{"mx.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"mx.example.com. A 192.0.2.25"}},
		{"com.", dns.TypeMX, dns.RcodeSuccess, nil},          // an empty non-terminal
		{"nosuch.com.", dns.TypeMX, dns.RcodeNameError, nil}, // com. exists: no wildcard below it
		{"x.wild.example.", dns.TypeMX, dns.RcodeSuccess, []string{"x.wild.example. MX 5 mx.example.com."}},
		{"tld.", dns.TypeTXT, dns.RcodeSuccess, []string{`tld. TXT "root wildcard"`}},
		{".", dns.TypeSOA, dns.RcodeSuccess, []string{". SOA ns.lab. h.lab. 1 7200 900 1209600 60"}},
	} {
		a, err := lookupBounded(t, z, resolve.Q(tt.name, tt.qtype))
		if err != nil {
			t.Errorf("%s %s: %v", tt.name, dns.TypeToString[tt.qtype], err)
			continue
		}
		var got []string
		for _, rr := range a.Answer {
			got = append(got, rrText(rr))
		}
		if a.Rcode != tt.rcode || strings.Join(got, "|") != strings.Join(tt.answer, "|") {
			t.Errorf("%s %s: %s %q, want %s %q", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[a.Rcode], got, dns.RcodeToString[tt.rcode], tt.answer)
		}
	}
	// Below the delegation the child zone's data is not loaded.
	if _, err := lookupBounded(t, z, resolve.Q("mx.sub.example.", dns.TypeA)); !errors.Is(err, resolve.ErrNotInZone) {
		t.Errorf("below a delegation from the root zone: %v, want ErrNotInZone", err)
	}
}

// FuzzZones loads random zone text at a random apex (the root among them)
// and asks random questions, and every name the zone holds, each under a
// deadline: loading and looking up must never panic nor hang, and an
// answer starts at the name asked, however it was spelled.
func FuzzZones(f *testing.F) {
	for _, seed := range []struct {
		apex, body, qname string
		qtype             uint16
	}{
		{".", "com. MX 10 mx.com.\n*. A 192.0.2.1\n", "x.y.com.", dns.TypeMX},
		{"example.com.", "@ MX 10 mx\nmx A 192.0.2.1\n*.w MX 0 .\n", "a.b.w.example.com.", dns.TypeMX},
		{"com.", "a CNAME b\nb CNAME a\n", "a.com.", dns.TypeA},
		{"test.", "sub NS ns.sub\nx.sub A 192.0.2.1\n* CNAME sub\n", "q.test.", dns.TypeA},
		{`a\ b.example.`, `c\@d TXT "x"` + "\n" + `e\046f A 192.0.2.1` + "\n", `c@d.a b.example.`, dns.TypeTXT},
		{".", "", "", dns.TypeANY},
	} {
		f.Add(seed.apex, seed.body, seed.qname, seed.qtype)
	}
	f.Fuzz(func(t *testing.T, apex, body, qname string, qtype uint16) {
		if _, ok := dns.IsDomainName(apex); !ok || strings.ContainsAny(apex, "\n;()\"$") {
			return
		}
		apex = dns.Fqdn(apex)
		text := "$ORIGIN " + apex + "\n$TTL 60\n@ SOA ns. h. 1 2 3 4 5\n" + body
		z, err := parseBounded(t, text)
		if err != nil {
			return
		}
		questions := []resolve.Question{resolve.Q(dns.Fqdn(qname), qtype), resolve.Q(dns.Fqdn(qname)+apex, qtype)}
		// The zone's own names, below and at its apexes.
		for _, a := range z.Apexes() {
			questions = append(questions, resolve.Q(a, qtype), resolve.Q("nosuch."+strings.TrimPrefix(a, "."), dns.TypeMX))
		}
		zp := dns.NewZoneParser(strings.NewReader(text), ".", "fuzz")
		for rr, ok := zp.Next(); ok && len(questions) < 40; rr, ok = zp.Next() {
			questions = append(questions, resolve.Q(rr.Header().Name, qtype), resolve.Q("x."+rr.Header().Name, dns.TypeA))
		}
		for _, q := range questions {
			if _, ok := dns.IsDomainName(q.Name); !ok {
				continue
			}
			a, err := lookupBounded(t, z, q)
			if err != nil {
				if _, ok := errors.AsType[*resolve.Error](err); !ok {
					t.Fatalf("%s: error %T %v, want a *resolve.Error", q, err, err)
				}
				continue
			}
			if a.Question != q {
				t.Fatalf("asked %s, answer is for %s", q, a.Question)
			}
			if len(a.Answer) > 0 && !resolve.EqualNames(a.Answer[0].Header().Name, q.Name) {
				t.Fatalf("asked %s, the answer starts at %s", q, a.Answer[0].Header().Name)
			}
		}
	})
}

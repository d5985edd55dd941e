package nameserver

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

func TestClassify(t *testing.T) {
	t.Parallel()
	const (
		apex    = "example.test."
		soa     = "example.test. 300 IN SOA ns1.example.test. h.example.test. 42 3600 600 86400 300"
		soaTest = "test. 300 IN SOA ns.test. h.test. 1 3600 600 86400 300"
	)
	mx := func(rcode int, aa bool, answer, authority []string) *resolve.Answer {
		return &resolve.Answer{Question: resolve.Q("www.example.test.", dns.TypeMX), Rcode: rcode, Authoritative: aa,
			Answer: rrs(t, answer...), Authority: rrs(t, authority...)}
	}
	for _, tt := range []struct {
		name    string
		a       *resolve.Answer
		err     error
		qtype   uint16
		status  Status
		records []string
		serial  int64 // -1: none
		reason  string
	}{
		{name: "MX set, sorted by preference", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, true, []string{"www.example.test. MX 20 B.example.test.", "www.example.test. MX 5 z.example.test.", "other.example.test. MX 1 x.example.test."}, nil),
			status: StatusOK, records: []string{"MX 5 z.example.test", "MX 20 b.example.test"}, serial: -1},
		{name: "alias at the name", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, true, []string{"www.example.test. CNAME elsewhere.test."}, nil),
			status: StatusOK, records: []string{"CNAME elsewhere.test"}, serial: -1},
		{name: "NODATA", qtype: dns.TypeMX, a: mx(dns.RcodeSuccess, true, nil, []string{soa}), status: StatusOK, serial: -1},
		{name: "NXDOMAIN", qtype: dns.TypeMX, a: mx(dns.RcodeNameError, true, nil, []string{soa}), status: StatusOK, serial: -1},
		{name: "negative answer from the parent zone", qtype: dns.TypeMX, a: mx(dns.RcodeNameError, true, nil, []string{soaTest}),
			status: StatusLame, serial: -1, reason: "from zone test"},
		{name: "referral below the apex", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, false, nil, []string{"www.example.test. NS ns.www.example.test."}),
			status: StatusReferral, records: []string{"NS ns.www.example.test"}, serial: -1},
		{name: "referral to the apex", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, false, nil, []string{"example.test. NS ns1.example.test."}),
			status: StatusLame, records: []string{"NS ns1.example.test"}, serial: -1, reason: "referral to example.test"},
		{name: "referral to the root", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, false, nil, []string{". NS a.root-servers.net."}),
			status: StatusLame, records: []string{"NS a.root-servers.net"}, serial: -1, reason: "referral to the root"},
		{name: "answer without AA", qtype: dns.TypeMX,
			a:      mx(dns.RcodeSuccess, false, []string{"www.example.test. MX 10 mx.example.test."}, nil),
			status: StatusLame, serial: -1, reason: "without the AA bit"},
		{name: "SOA", qtype: dns.TypeSOA,
			a:      &resolve.Answer{Rcode: dns.RcodeSuccess, Authoritative: true, Answer: rrs(t, soa)},
			status: StatusOK, serial: 42},
		{name: "SOA NODATA", qtype: dns.TypeSOA,
			a:      &resolve.Answer{Rcode: dns.RcodeSuccess, Authoritative: true, Authority: rrs(t, soa)},
			status: StatusLame, serial: -1, reason: "NODATA for the SOA"},
		{name: "REFUSED", qtype: dns.TypeMX, err: &resolve.Error{Rcode: dns.RcodeRefused, Err: resolve.ErrRefused},
			status: StatusLame, serial: -1, reason: "answered REFUSED"},
		{name: "SERVFAIL", qtype: dns.TypeSOA, err: &resolve.Error{Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure},
			status: StatusLame, serial: -1, reason: "answered SERVFAIL"},
		{name: "NOTIMP", qtype: dns.TypeSOA, err: &resolve.Error{Rcode: dns.RcodeNotImplemented, Err: fmt.Errorf("%w NOTIMP", resolve.ErrRcode)},
			status: StatusLame, serial: -1, reason: "answered NOTIMP"},
		{name: "malformed", qtype: dns.TypeSOA, err: &resolve.Error{Rcode: -1, Err: fmt.Errorf("%w: bad", resolve.ErrBadResponse)},
			status: StatusLame, serial: -1, reason: "malformed reply"},
		{name: "time-out", qtype: dns.TypeMX, err: &resolve.Error{Rcode: -1, Err: resolve.ErrTimeout},
			status: StatusUnreachable, serial: -1, reason: "no reply before the deadline"},
		{name: "connection refused", qtype: dns.TypeMX,
			err:    &resolve.Error{Rcode: -1, Err: &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("read", syscall.ECONNREFUSED)}},
			status: StatusUnreachable, serial: -1, reason: "could not be reached (connection refused)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			qname := "www.example.test."
			if tt.qtype == dns.TypeSOA {
				qname = apex
			}
			r := classify(tt.a, tt.err, apex, qname, tt.qtype)
			if r.Status != tt.status || !slices.Equal(r.Records, tt.records) || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("got %+v, want status %s, records %q, reason with %q", r, tt.status, tt.records, tt.reason)
			}
			if (r.Serial == nil) != (tt.serial < 0) || (r.Serial != nil && int64(*r.Serial) != tt.serial) {
				t.Errorf("serial %v, want %d", r.Serial, tt.serial)
			}
		})
	}
}

// FuzzClassify feeds arbitrary replies to the classifier, as a hostile
// authoritative server would: it must not panic, every status must be one
// of the four, a serial comes only with an ok SOA reply, and every record
// it reports must parse back as a resource record.
func FuzzClassify(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	// RFC 1035 §4.1 message shapes: an answer, a negative answer with the
	// SOA (RFC 2308 §3), a referral (RFC 1034 §4.3.2).
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeMX)
	m.Authoritative = true
	m.Answer = rrs(f, "example.test. 300 IN MX 10 mx1.example.test.", "example.test. 300 IN MX 20 mx2.example.test.")
	seed(m)
	m = new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	m.Authoritative = true
	m.Answer = rrs(f, "example.test. 300 IN SOA ns1.example.test. h.example.test. 2026112201 3600 600 86400 300")
	seed(m)
	m = new(dns.Msg)
	m.SetQuestion("x.example.test.", dns.TypeMX)
	m.Rcode = dns.RcodeNameError
	m.Authoritative = true
	m.Ns = rrs(f, "example.test. 300 IN SOA ns1.example.test. h.example.test. 1 3600 600 86400 300")
	seed(m)
	m = new(dns.Msg)
	m.SetQuestion("a.b.example.test.", dns.TypeMX)
	m.Ns = rrs(f, "b.example.test. 300 IN NS ns.b.example.test.")
	seed(m)

	f.Fuzz(func(t *testing.T, b []byte, soaQuestion bool) {
		msg := new(dns.Msg)
		if err := msg.Unpack(b); err != nil || len(msg.Question) != 1 {
			return
		}
		qtype, apex := uint16(dns.TypeMX), "example.test."
		if soaQuestion {
			qtype = dns.TypeSOA
		}
		qname := dns.CanonicalName(msg.Question[0].Name)
		if !dns.IsSubDomain(apex, qname) {
			apex = qname
		}
		a := &resolve.Answer{Question: resolve.Q(qname, qtype), Rcode: msg.Rcode, Answer: msg.Answer, Authority: msg.Ns, Authoritative: msg.Authoritative}
		r := classify(a, nil, apex, qname, qtype)
		switch r.Status {
		case StatusOK, StatusReferral, StatusLame, StatusUnreachable:
		default:
			t.Fatalf("status %q", r.Status)
		}
		if r.Serial != nil && (r.Status != StatusOK || !soaQuestion) {
			t.Fatalf("serial in %+v", r)
		}
		if r.Status != StatusOK && r.Status != StatusReferral && r.Reason == "" {
			t.Fatalf("no reason in %+v", r)
		}
		for _, rec := range r.Records {
			// The formatted record must parse back: a hostile name cannot
			// break the presentation format the findings quote.
			if _, err := dns.NewRR("x. " + rec); err != nil {
				t.Fatalf("record %q does not parse back: %v", rec, err)
			}
		}
	})
}

// TestCompareRecords: MX records sort by preference as a number (5 before
// 10, which text order puts after it), then by text; other records by
// text.
func TestCompareRecords(t *testing.T) {
	got := []string{"MX 10 b.test", "MX 5 z.test", "CNAME c.test", "MX 10 a.test", "MX 65535 a.test", "MX 0 y.test"}
	slices.SortFunc(got, compareRecords)
	want := []string{"CNAME c.test", "MX 0 y.test", "MX 5 z.test", "MX 10 a.test", "MX 10 b.test", "MX 65535 a.test"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %q, want %q", got, want)
	}
}

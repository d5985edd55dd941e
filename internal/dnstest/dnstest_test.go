package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// bigSet is the number of A records at big.example.test: more than fit in
// 512 octets (and in 1232), fewer than in 4096.
const bigSet = 100

func testZone() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN example.test.
$TTL 300
@     SOA ns1 hostmaster 1 7200 3600 1209600 60
@     NS  ns1
@     MX  10 mx1
ns1   A   192.0.2.53
mx1   A   192.0.2.1
mx1   AAAA 2001:db8::1
www   CNAME mx1
`)
	for i := range bigSet {
		fmt.Fprintf(&b, "big A 10.0.%d.%d\n", i/256, i%256)
	}
	return b.String()
}

// query builds a query; ednsSize 0 means no OPT record.
func query(name string, qtype uint16, ednsSize uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if ednsSize > 0 {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

// exchange sends m over network with miekg's client.
func exchange(t *testing.T, network, addr string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: timeout}
	r, _, err := c.ExchangeContext(t.Context(), m, addr)
	return r, err
}

// mustExchange is exchange that fails the test on error.
func mustExchange(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := exchange(t, network, addr, m, 3*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", network, m.Question[0].String(), err)
	}
	return r
}

// rawExchange sends m over network and returns the first reply's octets
// unparsed (over TCP without the length prefix).
func rawExchange(t *testing.T, network, addr string, m *dns.Msg) []byte {
	t.Helper()
	c := rawConn(t, network, addr, m)
	return readRaw(t, c, network, 3*time.Second)
}

func rawConn(t *testing.T, network, addr string, m *dns.Msg) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func readRaw(t *testing.T, c net.Conn, network string, timeout time.Duration) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	if network == "udp" {
		buf := make([]byte, dns.MaxMsgSize)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

var networks = []string{"udp", "tcp"}

func TestNewZone(t *testing.T) {
	s := NewZone(t, testZone())
	for _, tt := range []struct {
		name      string
		q         *dns.Msg
		rcode     int
		aa        bool
		answer    []uint16 // types of the answer section, in order
		authority []uint16
	}{
		{"records", query("example.test.", dns.TypeMX, 0), dns.RcodeSuccess, true, []uint16{dns.TypeMX}, nil},
		{"nxdomain", query("missing.example.test.", dns.TypeMX, 0), dns.RcodeNameError, true, nil, []uint16{dns.TypeSOA}},
		{"nodata", query("mx1.example.test.", dns.TypeTXT, 0), dns.RcodeSuccess, true, nil, []uint16{dns.TypeSOA}},
		{"cname", query("www.example.test.", dns.TypeAAAA, 0), dns.RcodeSuccess, true, []uint16{dns.TypeCNAME, dns.TypeAAAA}, nil},
		{"case kept", query("MX1.Example.TEST.", dns.TypeA, 0), dns.RcodeSuccess, true, []uint16{dns.TypeA}, nil},
		{"not in zone", query("example.org.", dns.TypeMX, 0), dns.RcodeRefused, false, nil, nil},
		{"class CH", func() *dns.Msg {
			m := query("example.test.", dns.TypeTXT, 0)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(), dns.RcodeRefused, false, nil, nil},
		{"notify", func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0)
			m.Opcode = dns.OpcodeNotify
			return m
		}(), dns.RcodeNotImplemented, false, nil, nil},
		{"two questions", func() *dns.Msg {
			m := query("example.test.", dns.TypeMX, 0)
			m.Question = append(m.Question, dns.Question{Name: "mx1.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return m
		}(), dns.RcodeFormatError, false, nil, nil},
		{"edns version 1", func() *dns.Msg {
			m := query("example.test.", dns.TypeMX, 1232)
			m.IsEdns0().SetVersion(1)
			return m
		}(), dns.RcodeBadVers, false, nil, nil},
	} {
		for _, network := range networks {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				r := mustExchange(t, network, s.Addr, tt.q)
				if r.Id != tt.q.Id || !r.Response {
					t.Errorf("id %d response %v, want id %d and QR", r.Id, r.Response, tt.q.Id)
				}
				if r.Rcode != tt.rcode || r.Authoritative != tt.aa {
					t.Errorf("rcode %s aa %v, want %s aa %v", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tt.rcode], tt.aa)
				}
				if len(r.Question) != 1 || r.Question[0] != tt.q.Question[0] {
					t.Errorf("question %v, want %v", r.Question, tt.q.Question[0])
				}
				if got := types(r.Answer); !equal(got, tt.answer) {
					t.Errorf("answer types %v, want %v", got, tt.answer)
				}
				if got := types(r.Ns); !equal(got, tt.authority) {
					t.Errorf("authority types %v, want %v", got, tt.authority)
				}
			})
		}
	}
}

func types(rrs []dns.RR) []uint16 {
	var out []uint16
	for _, rr := range rrs {
		out = append(out, rr.Header().Rrtype)
	}
	return out
}

func equal(a, b []uint16) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestEDNSEcho(t *testing.T) {
	s := NewZone(t, testZone())
	for _, network := range networks {
		q := query("example.test.", dns.TypeMX, 1400)
		q.IsEdns0().SetDo()
		r := mustExchange(t, network, s.Addr, q)
		opt := r.IsEdns0()
		if opt == nil || opt.UDPSize() != 1400 || !opt.Do() {
			t.Errorf("%s: OPT %v, want size 1400 with DO", network, opt)
		}
		r = mustExchange(t, network, s.Addr, query("example.test.", dns.TypeMX, 0))
		if r.IsEdns0() != nil {
			t.Errorf("%s: OPT in the reply to a query without one", network)
		}
	}
}

func TestTruncation(t *testing.T) {
	s := NewZone(t, testZone())
	for _, tt := range []struct {
		network string
		edns    uint16
		tc      bool
		limit   int // the packed reply must not exceed this
	}{
		{"udp", 0, true, 512},
		{"udp", 1232, true, 1232},
		{"udp", 4096, false, 4096},
		{"tcp", 0, false, dns.MaxMsgSize},
	} {
		t.Run(fmt.Sprintf("%s/%d", tt.network, tt.edns), func(t *testing.T) {
			raw := rawExchange(t, tt.network, s.Addr, query("big.example.test.", dns.TypeA, tt.edns))
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if len(raw) > tt.limit {
				t.Errorf("reply is %d octets, more than %d", len(raw), tt.limit)
			}
			if r.Truncated != tt.tc {
				t.Errorf("TC %v, want %v", r.Truncated, tt.tc)
			}
			if full := len(r.Answer) == bigSet; full == tt.tc {
				t.Errorf("%d of %d records with TC %v", len(r.Answer), bigSet, r.Truncated)
			}
		})
	}
	// The client's fallback works end to end: TC over UDP, then all over TCP.
	r := mustExchange(t, "udp", s.Addr, query("big.example.test.", dns.TypeA, 0))
	if !r.Truncated {
		t.Fatal("UDP reply not truncated")
	}
	r = mustExchange(t, "tcp", s.Addr, query("big.example.test.", dns.TypeA, 0))
	if r.Truncated || len(r.Answer) != bigSet {
		t.Errorf("TCP: TC %v, %d records, want all %d", r.Truncated, len(r.Answer), bigSet)
	}
}

func TestQueries(t *testing.T) {
	s := NewZone(t, testZone())
	for range 3 {
		mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0))
	}
	for range 2 {
		mustExchange(t, "tcp", s.Addr, query("Example.Test.", dns.TypeMX, 1232))
	}
	mustExchange(t, "udp", s.Addr, query("mx1.example.test.", dns.TypeA, 0))
	// Junk is counted as received, but under no question.
	c, err := net.Dial("udp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	// The junk gets no answer; a query after it on the same socket shows
	// the server has read it (one UDP socket is read in order).
	mustExchange(t, "udp", s.Addr, query("mx1.example.test.", dns.TypeA, 0))
	deadline := time.Now().Add(2 * time.Second)
	for s.Queries() < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Queries(); got != 8 {
		t.Errorf("Queries() = %d, want 8", got)
	}
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  int64
	}{
		{"example.test", dns.TypeMX, 5},
		{"EXAMPLE.TEST.", dns.TypeMX, 5},
		{"mx1.example.test.", dns.TypeA, 2},
		{"mx1.example.test.", dns.TypeAAAA, 0},
	} {
		if got := s.QueriesFor(tt.name, tt.qtype); got != tt.want {
			t.Errorf("QueriesFor(%s, %s) = %d, want %d", tt.name, dns.TypeToString[tt.qtype], got, tt.want)
		}
	}
}

func TestWithDelay(t *testing.T) {
	const d = 200 * time.Millisecond
	const n = 100
	s := NewZone(t, testZone(), WithDelay(d))
	start := time.Now()
	var wg sync.WaitGroup
	rtts := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
			_, rtts[i], errs[i] = c.ExchangeContext(t.Context(), query("example.test.", dns.TypeMX, 0), s.Addr)
		})
	}
	wg.Wait()
	total := time.Since(start)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("query %d: %v", i, errs[i])
		}
		if rtts[i] < d {
			t.Errorf("query %d answered after %v, before the delay %v", i, rtts[i], d)
		}
	}
	// Serialised, the answers would take n*d; concurrent, about d.
	if total > n*d/2 {
		t.Errorf("%d concurrent queries took %v: the delay serialises them", n, total)
	}
	// Over TCP too.
	start = time.Now()
	if r := mustExchange(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0)); len(r.Answer) != 1 {
		t.Errorf("tcp: %d answers, want 1", len(r.Answer))
	}
	if elapsed := time.Since(start); elapsed < d {
		t.Errorf("tcp: answered after %v, before the delay %v", elapsed, d)
	}
}

// Queries pipelined on one TCP connection are handled concurrently (RFC 7766
// §6.2.1.1): each handler waits until both have arrived, which a server
// handling them one after the other never lets happen.
func TestTCPPipelining(t *testing.T) {
	var arrived atomic.Int32
	both := make(chan struct{})
	s := New(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if arrived.Add(1) == 2 {
			close(both)
		}
		m := Reply(req)
		select {
		case <-both:
		case <-time.After(3 * time.Second):
			m.Rcode = dns.RcodeServerFailure
		case <-TransportOf(w).Context().Done():
			return
		}
		_ = w.WriteMsg(m)
	}))
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	co, err := c.DialContext(t.Context(), s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	co.SetDeadline(time.Now().Add(5 * time.Second))
	q1, q2 := query("example.test.", dns.TypeMX, 0), query("mx1.example.test.", dns.TypeA, 0)
	for _, q := range []*dns.Msg{q1, q2} {
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[uint16]bool{}
	for range 2 {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess {
			t.Errorf("reply %d: %s: the queries were not handled concurrently", r.Id, dns.RcodeToString[r.Rcode])
		}
		ids[r.Id] = true
	}
	if !ids[q1.Id] || !ids[q2.Id] {
		t.Errorf("reply IDs %v, want %d and %d", ids, q1.Id, q2.Id)
	}
}

func TestWithAddr(t *testing.T) {
	s1 := NewZone(t, testZone())
	s2 := NewZone(t, testZone(), WithAddr("127.0.0.2"))
	if host, _, _ := net.SplitHostPort(s2.Addr); host != "127.0.0.2" {
		t.Errorf("Addr %s, want host 127.0.0.2", s2.Addr)
	}
	for _, network := range networks {
		if r := mustExchange(t, network, s2.Addr, query("example.test.", dns.TypeMX, 0)); len(r.Answer) != 1 {
			t.Errorf("%s: %d answers from 127.0.0.2", network, len(r.Answer))
		}
	}
	if s1.Queries() != 0 || s2.Queries() != 2 {
		t.Errorf("queries %d and %d, want 0 and 2", s1.Queries(), s2.Queries())
	}
	for _, ip := range []string{"192.0.2.1", "0.0.0.0", "not an address"} {
		if s, err := Start(Silent(), WithAddr(ip)); err == nil {
			s.Close()
			t.Errorf("WithAddr(%q) started a server", ip)
		}
	}
}

func TestStartZoneErrors(t *testing.T) {
	_, err := StartZone("example.test. 300 IN MX 10 mx1.example.test.\n")
	if !errors.Is(err, resolve.ErrNoSOA) {
		t.Errorf("zone without SOA: %v, want ErrNoSOA", err)
	}
	if _, err := StartZone("example.test. IN SOA broken"); err == nil {
		t.Error("bad zone text accepted")
	}
	if _, err := Start(nil); err == nil {
		t.Error("nil handler accepted")
	}
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := StartZone(testZone(), WithDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Neither an idle TCP connection nor queries waiting out their delay
	// keep Close waiting.
	idle, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	for _, network := range networks {
		rawConn(t, network, s.Addr, query("example.test.", dns.TypeMX, 0))
	}
	for s.Queries() < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Goroutines of earlier tests may still be winding down; give them a
	// moment, but the server's own must all be gone.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before Start", n, before)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := exchange(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0), time.Second); err == nil {
		t.Error("closed server answered over TCP")
	}
	if _, err := exchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0), 200*time.Millisecond); err == nil {
		t.Error("closed server answered over UDP")
	}
}

func TestCloseReportsStuckHandler(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, err := Start(dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {
		entered <- struct{}{}
		<-release // ignores the Transport context
	}))
	if err != nil {
		t.Fatal(err)
	}
	s.grace = 100 * time.Millisecond
	defer close(release)
	rawConn(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0))
	<-entered
	if err := s.Close(); !errors.Is(err, ErrShutdown) {
		t.Errorf("Close with a stuck handler: %v, want ErrShutdown", err)
	}
}

func TestAuthoritativeErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		rcode int
	}{
		{"servfail", &resolve.Error{Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}, dns.RcodeServerFailure},
		{"refused", &resolve.Error{Rcode: dns.RcodeRefused, Err: resolve.ErrRefused}, dns.RcodeRefused},
		{"timeout", &resolve.Error{Rcode: -1, Err: resolve.ErrTimeout}, dns.RcodeServerFailure},
		{"not in zone", &resolve.Error{Rcode: -1, Err: resolve.ErrNotInZone}, dns.RcodeRefused},
		{"plain error", errors.New("boom"), dns.RcodeServerFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, Authoritative(failing{tt.err}))
			r := mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0))
			if r.Rcode != tt.rcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d answers, want %s", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode])
			}
		})
	}
}

type failing struct{ err error }

func (f failing) Lookup(context.Context, resolve.Question) (*resolve.Answer, error) {
	return nil, f.err
}

func TestSilent(t *testing.T) {
	s := New(t, Silent())
	for _, network := range networks {
		_, err := exchange(t, network, s.Addr, query("example.test.", dns.TypeMX, 0), 200*time.Millisecond)
		if !isTimeout(err) {
			t.Errorf("%s: %v, want a time-out", network, err)
		}
	}
	if s.Queries() != 2 {
		t.Errorf("Queries() = %d, want 2", s.Queries())
	}
}

func TestRcode(t *testing.T) {
	for _, rcode := range []int{dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented} {
		s := New(t, Rcode(rcode))
		for _, network := range networks {
			q := query("example.test.", dns.TypeMX, 1232)
			r := mustExchange(t, network, s.Addr, q)
			if r.Rcode != rcode || r.Id != q.Id || len(r.Answer) != 0 || r.IsEdns0() == nil {
				t.Errorf("Rcode(%s) over %s: rcode %s, id %d (want %d), %d answers, OPT %v",
					dns.RcodeToString[rcode], network, dns.RcodeToString[r.Rcode], r.Id, q.Id, len(r.Answer), r.IsEdns0())
			}
		}
	}
}

func TestWrongID(t *testing.T) {
	s := NewZone(t, testZone(), WrongID())
	for _, network := range networks {
		q := query("example.test.", dns.TypeMX, 0)
		r := new(dns.Msg)
		if err := r.Unpack(rawExchange(t, network, s.Addr, q)); err != nil {
			t.Fatal(err)
		}
		if r.Id == q.Id || len(r.Answer) != 1 {
			t.Errorf("%s: id %d (query %d), %d answers; want another ID on the real answer", network, r.Id, q.Id, len(r.Answer))
		}
	}
	// miekg's client ignores the reply over UDP and rejects it over TCP.
	if _, err := exchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0), 200*time.Millisecond); !isTimeout(err) {
		t.Errorf("udp: %v, want a time-out", err)
	}
	if _, err := exchange(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0), time.Second); !errors.Is(err, dns.ErrId) {
		t.Errorf("tcp: %v, want dns.ErrId", err)
	}
}

func TestWrongIDThenRight(t *testing.T) {
	s := NewZone(t, testZone(), WrongIDThenRight())
	for _, network := range networks {
		q := query("example.test.", dns.TypeMX, 0)
		c := rawConn(t, network, s.Addr, q)
		var ids []uint16
		for range 2 {
			r := new(dns.Msg)
			if err := r.Unpack(readRaw(t, c, network, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.Id)
		}
		if ids[0] == q.Id || ids[1] != q.Id {
			t.Errorf("%s: reply IDs %v for query %d, want a wrong one then the right one", network, ids, q.Id)
		}
	}
	// A client that keeps reading (miekg over UDP) gets the answer.
	if r := mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0)); len(r.Answer) != 1 {
		t.Errorf("udp: %d answers, want 1", len(r.Answer))
	}
}

func TestWrongQuestion(t *testing.T) {
	asked := dns.Question{Name: "example.test.", Qtype: dns.TypeMX, Qclass: dns.ClassINET}
	for _, tt := range []struct {
		part QuestionPart
		want dns.Question
	}{
		{QuestionName, dns.Question{Name: "wrong.example.test.", Qtype: dns.TypeMX, Qclass: dns.ClassINET}},
		{QuestionType, dns.Question{Name: "example.test.", Qtype: dns.TypeTXT, Qclass: dns.ClassINET}},
		{QuestionClass, dns.Question{Name: "example.test.", Qtype: dns.TypeMX, Qclass: dns.ClassCHAOS}},
	} {
		s := NewZone(t, testZone(), WrongQuestion(tt.part))
		for _, network := range networks {
			r := mustExchange(t, network, s.Addr, query(asked.Name, asked.Qtype, 0))
			if len(r.Question) != 1 || r.Question[0] != tt.want {
				t.Errorf("part %d over %s: question %v, want %v", tt.part, network, r.Question, tt.want)
			}
		}
	}
}

func TestGarbage(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			q := query("example.test.", dns.TypeMX, 0)

			raw := rawExchange(t, network, New(t, Garbage(RandomBytes)).Addr, q)
			if len(raw) != 64 || binary.BigEndian.Uint16(raw) != q.Id || raw[2]&0x80 == 0 {
				t.Errorf("RandomBytes: %d octets, id %d (want 64 octets, id %d, QR)", len(raw), binary.BigEndian.Uint16(raw), q.Id)
			}
			if again := rawExchange(t, network, New(t, Garbage(RandomBytes)).Addr, q); string(again) != string(raw) {
				t.Error("RandomBytes differ for the same query ID")
			}

			raw = rawExchange(t, network, New(t, Garbage(ShortHeader)).Addr, q)
			if len(raw) != 6 || binary.BigEndian.Uint16(raw) != q.Id {
				t.Errorf("ShortHeader: %x", raw)
			}
			if err := new(dns.Msg).Unpack(raw); err == nil {
				t.Error("ShortHeader parses")
			}

			raw = rawExchange(t, network, New(t, Garbage(LyingCounts)).Addr, q)
			hdr := new(dns.Msg)
			hdr.SetQuestion("example.test.", dns.TypeMX)
			if len(raw) != hdr.Len() {
				t.Errorf("LyingCounts: %d octets, want header and question only (%d)", len(raw), hdr.Len())
			}
			for off := 6; off < 12 && len(raw) >= 12; off += 2 {
				if n := binary.BigEndian.Uint16(raw[off:]); n != 5 {
					t.Errorf("LyingCounts: count at %d is %d, want 5", off, n)
				}
			}
		})
	}
}

func TestAlwaysTruncated(t *testing.T) {
	s := NewZone(t, testZone(), AlwaysTruncated())
	for _, edns := range []uint16{0, 4096} {
		r := mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, edns))
		if !r.Truncated || len(r.Answer) != 0 {
			t.Errorf("udp (edns %d): TC %v with %d answers, want TC and none", edns, r.Truncated, len(r.Answer))
		}
	}
	if r := mustExchange(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0)); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("tcp: TC %v with %d answers, want the answer", r.Truncated, len(r.Answer))
	}
}

func TestBrokenTCP(t *testing.T) {
	t.Run("CloseConn", func(t *testing.T) {
		s := NewZone(t, testZone(), AlwaysTruncated(), BrokenTCP(CloseConn))
		if r := mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0)); !r.Truncated {
			t.Error("udp: not truncated")
		}
		start := time.Now()
		_, err := exchange(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0), 3*time.Second)
		if err == nil || isTimeout(err) {
			t.Errorf("tcp: %v, want the connection closed", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("tcp: took %v to see the close", time.Since(start))
		}
	})
	t.Run("LengthOnly", func(t *testing.T) {
		s := NewZone(t, testZone(), BrokenTCP(LengthOnly))
		if r := mustExchange(t, "udp", s.Addr, query("example.test.", dns.TypeMX, 0)); len(r.Answer) != 1 {
			t.Errorf("udp: %d answers, want 1", len(r.Answer))
		}
		c := rawConn(t, "tcp", s.Addr, query("example.test.", dns.TypeMX, 0))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, err := io.ReadAll(c)
		if !isTimeout(err) || string(b) != "\x02\x00" {
			t.Errorf("read %x, %v; want the prefix 0200 then a time-out", b, err)
		}
		// Cleanup must stop the waiting handler: a second server is
		// closed here while a client still holds its connection.
		s2, err := StartZone(testZone(), BrokenTCP(LengthOnly))
		if err != nil {
			t.Fatal(err)
		}
		c2 := rawConn(t, "tcp", s2.Addr, query("example.test.", dns.TypeMX, 0))
		readLen := make([]byte, 2)
		c2.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadFull(c2, readLen); err != nil {
			t.Fatal(err)
		}
		if err := s2.Close(); err != nil {
			t.Errorf("Close with a client waiting: %v", err)
		}
	})
}

func TestFormErrOnEDNS(t *testing.T) {
	s := NewZone(t, testZone(), FormErrOnEDNS())
	for _, network := range networks {
		r := mustExchange(t, network, s.Addr, query("example.test.", dns.TypeMX, 1232))
		if r.Rcode != dns.RcodeFormatError || r.IsEdns0() != nil {
			t.Errorf("%s with EDNS: rcode %s, OPT %v; want FORMERR without OPT", network, dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
		r = mustExchange(t, network, s.Addr, query("example.test.", dns.TypeMX, 0))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s without EDNS: rcode %s, %d answers", network, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
}

func TestNotResponse(t *testing.T) {
	s := NewZone(t, testZone(), NotResponse())
	for _, network := range networks {
		q := query("example.test.", dns.TypeMX, 0)
		r := new(dns.Msg)
		if err := r.Unpack(rawExchange(t, network, s.Addr, q)); err != nil {
			t.Fatal(err)
		}
		if r.Response || r.Id != q.Id || len(r.Answer) != 1 {
			t.Errorf("%s: QR %v, id %d (want %d), %d answers; want the answer with QR clear", network, r.Response, r.Id, q.Id, len(r.Answer))
		}
	}
}

func TestOptionsCompose(t *testing.T) {
	s := NewZone(t, testZone(), WrongID(), NotResponse())
	q := query("example.test.", dns.TypeMX, 0)
	r := new(dns.Msg)
	if err := r.Unpack(rawExchange(t, "udp", s.Addr, q)); err != nil {
		t.Fatal(err)
	}
	if r.Id == q.Id || r.Response {
		t.Errorf("id %d (query %d), QR %v; want both options applied", r.Id, q.Id, r.Response)
	}
}

func TestHuge(t *testing.T) {
	s := New(t, Huge())
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT} {
		t.Run(dns.TypeToString[qtype], func(t *testing.T) {
			raw := rawExchange(t, "tcp", s.Addr, query("huge.example.test.", qtype, 0))
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if r.Truncated || len(r.Answer) < 1000 {
				t.Fatalf("TC %v with %d records", r.Truncated, len(r.Answer))
			}
			for _, rr := range r.Answer {
				if rr.Header().Rrtype != qtype {
					t.Fatalf("record %v in the answer to %s", rr, dns.TypeToString[qtype])
				}
			}
			// Maximal: one more record of the same kind does not fit.
			r.Answer = append(r.Answer, dns.Copy(r.Answer[len(r.Answer)-1]))
			r.Compress = true
			if r.Len() <= dns.MaxMsgSize {
				t.Errorf("%d records in %d octets: one more still fits", len(r.Answer)-1, len(raw))
			}
			// Over UDP the client gets TC and a reply within its size.
			raw = rawExchange(t, "udp", s.Addr, query("huge.example.test.", qtype, 1232))
			if err := r.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if !r.Truncated || len(raw) > 1232 {
				t.Errorf("udp: TC %v in %d octets", r.Truncated, len(raw))
			}
		})
	}
	if r := mustExchange(t, "tcp", s.Addr, query("huge.example.test.", dns.TypeA, 0)); len(r.Answer) < 4000 {
		t.Errorf("miekg client over TCP: %d A records, want about 4000", len(r.Answer))
	}
}

func TestSlowTCP(t *testing.T) {
	const interval = 5 * time.Millisecond
	s := NewZone(t, testZone(), SlowTCP(interval))
	q := query("example.test.", dns.TypeMX, 0)
	if r := mustExchange(t, "udp", s.Addr, q); len(r.Answer) != 1 {
		t.Errorf("udp: %d answers, want 1", len(r.Answer))
	}
	// A short deadline cuts the trickle off part-way.
	c := rawConn(t, "tcp", s.Addr, q)
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	b, err := io.ReadAll(c)
	if !isTimeout(err) || len(b) == 0 || len(b) > 40 {
		t.Errorf("read %d octets, %v within 100ms; want a few, then a time-out", len(b), err)
	}
	// A patient client gets the whole answer, one octet per interval.
	start := time.Now()
	r := mustExchange(t, "tcp", s.Addr, q)
	if len(r.Answer) != 1 {
		t.Errorf("tcp: %d answers, want 1", len(r.Answer))
	}
	r.Compress = true // as sent
	if min := time.Duration(r.Len()+2) * interval; time.Since(start) < min {
		t.Errorf("answer of %d octets in %v, faster than %v", r.Len(), time.Since(start), min)
	}
}

func BenchmarkZoneUDP(b *testing.B) {
	s := NewZone(b, testZone())
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	co, err := c.Dial(s.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer co.Close()
	q := query("example.test.", dns.TypeMX, 1232)
	for b.Loop() {
		if _, _, err := c.ExchangeWithConn(q, co); err != nil {
			b.Fatal(err)
		}
	}
}

package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
)

// stubZone is served by the honest test servers: a normal answer, a set
// too big for 1232 octets (TCP fallback) and the negative cases.
func stubZone() string {
	var b strings.Builder
	b.WriteString(testZones)
	for i := range 80 {
		fmt.Fprintf(&b, "big.test. 300 IN A 198.51.100.%d\n", i+1)
	}
	return b.String()
}

// shortTimeout keeps the tests that must time out quick; every wait is
// bounded by it times the attempts.
const shortTimeout = 200 * time.Millisecond

func newStub(t *testing.T, cfg resolve.StubConfig, servers ...*dnstest.Server) *resolve.Stub {
	t.Helper()
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.Addr)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = shortTimeout
	}
	stub, err := resolve.NewStub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return stub
}

// TestStubAnswers: the outcomes that settle a question come back as an
// Answer with the facts intact.
func TestStubAnswers(t *testing.T) {
	srv := dnstest.NewZone(t, stubZone())
	stub := newStub(t, resolve.StubConfig{}, srv)
	for _, tt := range []struct {
		name    string
		qtype   uint16
		rcode   int
		records int
	}{
		{"d.test.", dns.TypeMX, dns.RcodeSuccess, 2},
		{"mx.d.test.", dns.TypeA, dns.RcodeSuccess, 2},
		{"txt.d.test.", dns.TypeMX, dns.RcodeSuccess, 0}, // NODATA
		{"nope.test.", dns.TypeA, dns.RcodeNameError, 0}, // NXDOMAIN
		{"big.test.", dns.TypeA, dns.RcodeSuccess, 80},   // truncated over UDP, complete over TCP
		{"chain.test.", dns.TypeMX, dns.RcodeSuccess, 4}, // two CNAMEs and two MX
	} {
		a, err := stub.Lookup(t.Context(), resolve.Q(tt.name, tt.qtype))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if a.Rcode != tt.rcode || len(a.Answer) != tt.records {
			t.Errorf("%s %s: rcode %s with %d records, want %s with %d", tt.name, dns.TypeToString[tt.qtype],
				dns.RcodeToString[a.Rcode], len(a.Answer), dns.RcodeToString[tt.rcode], tt.records)
		}
		if tt.records == 0 && (len(a.Authority) == 0 || a.TTL() != 300) {
			t.Errorf("%s: negative answer without the SOA's TTL: %v", tt.name, a.Authority)
		}
		if !a.Authoritative || a.Server != srv.Addr {
			t.Errorf("%s: AA %v server %q", tt.name, a.Authoritative, a.Server)
		}
	}
	if n := srv.QueriesFor("big.test.", dns.TypeA); n != 2 {
		t.Errorf("big.test A: %d queries, want 2 (UDP truncated, then TCP)", n)
	}
}

// TestStubADBit: the AD bit of a validating resolver's answer is kept, and
// the query asks for it (RFC 6840 §5.7); CD is sent only when configured.
func TestStubADBit(t *testing.T) {
	var sawAD, sawCD atomic.Bool // written by the server's goroutine
	srv := dnstest.New(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		sawAD.Store(req.AuthenticatedData)
		sawCD.Store(req.CheckingDisabled)
		m := dnstest.Reply(req)
		m.AuthenticatedData = true
		m.Answer = []dns.RR{mustRR(t, "d.test. 60 IN MX 10 mx.d.test.")}
		w.WriteMsg(m)
	}))
	for _, cd := range []bool{false, true} {
		a, err := newStub(t, resolve.StubConfig{CheckingDisabled: cd}, srv).Lookup(t.Context(), resolve.Q("d.test.", dns.TypeMX))
		if err != nil {
			t.Fatal(err)
		}
		if !a.AD || !sawAD.Load() || sawCD.Load() != cd {
			t.Errorf("CD=%v: answer AD %v, query AD %v CD %v", cd, a.AD, sawAD.Load(), sawCD.Load())
		}
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// TestStubHostile: replies that do not answer the question are dropped,
// never taken as the answer; what cannot be answered is an error wrapping
// the right sentinel, within the configured time.
func TestStubHostile(t *testing.T) {
	zoneHandler := func(t *testing.T) dns.Handler {
		z, err := resolve.ParseZones(strings.NewReader(stubZone()), "stub")
		if err != nil {
			t.Fatal(err)
		}
		return dnstest.Authoritative(z)
	}
	for _, tt := range []struct {
		name    string
		handler func(t *testing.T) dns.Handler
		opts    []dnstest.Option
		qname   string
		wantErr error // nil: the answer must arrive
	}{
		{"silent", func(*testing.T) dns.Handler { return dnstest.Silent() }, nil, "d.test.", resolve.ErrTimeout},
		{"wrong ID", zoneHandler, []dnstest.Option{dnstest.WrongID()}, "d.test.", resolve.ErrTimeout},
		{"wrong ID, then the answer", zoneHandler, []dnstest.Option{dnstest.WrongIDThenRight()}, "d.test.", nil},
		{"wrong name", zoneHandler, []dnstest.Option{dnstest.WrongQuestion(dnstest.QuestionName)}, "d.test.", resolve.ErrTimeout},
		{"wrong type", zoneHandler, []dnstest.Option{dnstest.WrongQuestion(dnstest.QuestionType)}, "d.test.", resolve.ErrTimeout},
		{"wrong class", zoneHandler, []dnstest.Option{dnstest.WrongQuestion(dnstest.QuestionClass)}, "d.test.", resolve.ErrTimeout},
		{"not a response", zoneHandler, []dnstest.Option{dnstest.NotResponse()}, "d.test.", resolve.ErrTimeout},
		{"random bytes", func(*testing.T) dns.Handler { return dnstest.Garbage(dnstest.RandomBytes) }, nil, "d.test.", resolve.ErrTimeout},
		{"short header", func(*testing.T) dns.Handler { return dnstest.Garbage(dnstest.ShortHeader) }, nil, "d.test.", resolve.ErrTimeout},
		{"lying counts", func(*testing.T) dns.Handler { return dnstest.Garbage(dnstest.LyingCounts) }, nil, "d.test.", resolve.ErrTimeout},
		{"SERVFAIL", func(*testing.T) dns.Handler { return dnstest.Rcode(dns.RcodeServerFailure) }, nil, "d.test.", resolve.ErrServerFailure},
		{"REFUSED", func(*testing.T) dns.Handler { return dnstest.Rcode(dns.RcodeRefused) }, nil, "d.test.", resolve.ErrRefused},
		{"NOTIMP", func(*testing.T) dns.Handler { return dnstest.Rcode(dns.RcodeNotImplemented) }, nil, "d.test.", resolve.ErrRcode},
		{"EDNS intolerant", zoneHandler, []dnstest.Option{dnstest.FormErrOnEDNS()}, "d.test.", nil},
		{"always truncated, TCP fine", zoneHandler, []dnstest.Option{dnstest.AlwaysTruncated()}, "d.test.", nil},
		{"truncated, TCP closed", zoneHandler, []dnstest.Option{dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn)}, "d.test.", resolve.ErrBadResponse},
		{"truncated, TCP stalls", zoneHandler, []dnstest.Option{dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.LengthOnly)}, "d.test.", resolve.ErrTimeout},
		{"truncated, TCP trickles", zoneHandler, []dnstest.Option{dnstest.AlwaysTruncated(), dnstest.SlowTCP(50 * time.Millisecond)}, "d.test.", resolve.ErrTimeout},
		{"huge answer over TCP", func(*testing.T) dns.Handler { return dnstest.Huge() }, nil, "d.test.", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.New(t, tt.handler(t), tt.opts...)
			stub := newStub(t, resolve.StubConfig{Attempts: 2}, srv)
			start := time.Now()
			a, err := stub.Lookup(t.Context(), resolve.Q(tt.qname, dns.TypeMX))
			elapsed := time.Since(start)
			if tt.wantErr == nil {
				if err != nil || len(a.Answer) == 0 {
					t.Fatalf("got %v, %v; want the answer", a, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if _, ok := errors.AsType[*resolve.Error](err); !ok {
				t.Errorf("err is %T, want *resolve.Error", err)
			}
			if a != nil {
				t.Errorf("an answer came with the error: %v", a)
			}
			// Two attempts, each with a UDP and maybe a TCP leg, each
			// bounded by the timeout; generous slack for a loaded machine.
			if limit := 4*shortTimeout + 2*time.Second; elapsed > limit {
				t.Errorf("took %v, more than %v", elapsed, limit)
			}
		})
	}
}

// TestStubFailover: a time-out, SERVFAIL or REFUSED moves on to the next
// server; NXDOMAIN and NODATA settle the question and do not.
func TestStubFailover(t *testing.T) {
	for _, tt := range []struct {
		name     string
		first    dns.Handler
		qname    string
		wantNext bool
	}{
		{"silent", dnstest.Silent(), "d.test.", true},
		{"SERVFAIL", dnstest.Rcode(dns.RcodeServerFailure), "d.test.", true},
		{"REFUSED", dnstest.Rcode(dns.RcodeRefused), "d.test.", true},
		{"garbage", dnstest.Garbage(dnstest.ShortHeader), "d.test.", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := dnstest.New(t, tt.first)
			second := dnstest.NewZone(t, stubZone(), dnstest.WithAddr("127.0.0.2"))
			a, err := newStub(t, resolve.StubConfig{Attempts: 1}, first, second).Lookup(t.Context(), resolve.Q(tt.qname, dns.TypeMX))
			if err != nil || a.Server != second.Addr || len(a.Answer) != 2 {
				t.Errorf("got %+v, %v; want the second server's answer", a, err)
			}
		})
	}
	for _, q := range []resolve.Question{resolve.Q("nope.test.", dns.TypeMX), resolve.Q("txt.d.test.", dns.TypeMX)} {
		first := dnstest.NewZone(t, stubZone())
		second := dnstest.NewZone(t, stubZone(), dnstest.WithAddr("127.0.0.2"))
		a, err := newStub(t, resolve.StubConfig{}, first, second).Lookup(t.Context(), q)
		if err != nil || a.Server != first.Addr {
			t.Errorf("%v: %+v, %v; want the first server's negative answer", q, a, err)
		}
		if n := second.Queries(); n != 0 {
			t.Errorf("%v: the second server was asked %d times after a negative answer", q, n)
		}
	}
}

// TestStubRetries: a silent server is asked Attempts times, then the next
// one; the error names the last server.
func TestStubRetries(t *testing.T) {
	a := dnstest.New(t, dnstest.Silent())
	b := dnstest.New(t, dnstest.Silent(), dnstest.WithAddr("127.0.0.3"))
	_, err := newStub(t, resolve.StubConfig{Attempts: 3, Timeout: 50 * time.Millisecond}, a, b).Lookup(t.Context(), resolve.Q("d.test.", dns.TypeMX))
	if !errors.Is(err, resolve.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if e, _ := errors.AsType[*resolve.Error](err); e == nil || e.Server != b.Addr {
		t.Errorf("err %v does not name the last server %s", err, b.Addr)
	}
	if a.Queries() != 3 || b.Queries() != 3 {
		t.Errorf("queries %d and %d, want 3 each", a.Queries(), b.Queries())
	}
}

// TestStubContext: cancellation and the caller's deadline end a lookup at
// once, whatever the per-attempt timeout, with an error that says so.
func TestStubContext(t *testing.T) {
	srv := dnstest.New(t, dnstest.Silent())
	stub := newStub(t, resolve.StubConfig{Timeout: time.Minute}, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := stub.Lookup(ctx, resolve.Q("d.test.", dns.TypeMX))
	if !errors.Is(err, resolve.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrTimeout wrapping the deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v after a 100 ms deadline", elapsed)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = stub.Lookup(ctx, resolve.Q("d.test.", dns.TypeMX))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want canceled", err)
	}
}

func TestParseServer(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"9.9.9.9", "9.9.9.9:53"},
		{"9.9.9.9:5353", "9.9.9.9:5353"},
		{"127.0.0.1@5353", "127.0.0.1:5353"},
		{"2001:db8::53", "[2001:db8::53]:53"},
		{"[2001:db8::53]:5353", "[2001:db8::53]:5353"},
		{"[::1]", "[::1]:53"},
		{"dns.example", ""},
		{"9.9.9.9:0", ""},
		{"9.9.9.9:99999", ""},
		{"", ""},
	} {
		got, err := resolve.ParseServer(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := resolve.NewStub(resolve.StubConfig{}); !errors.Is(err, resolve.ErrNoServers) {
		t.Errorf("no servers: err = %v", err)
	}
}

func TestSystemServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte("# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"), 0o644)
	got, err := resolve.SystemServers(path)
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("SystemServers = %v, %v; want %v", got, err, want)
	}
	os.WriteFile(path, []byte("search example.com\n"), 0o644)
	if _, err := resolve.SystemServers(path); !errors.Is(err, resolve.ErrNoServers) {
		t.Errorf("no nameserver lines: err = %v, want ErrNoServers", err)
	}
}

package resolve_test

import (
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

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
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

// TestStubServerDown: the first of two servers stops answering. The first
// lookup pays its two tries there and fails over; the next ones go to the
// second server straight away; once the first answers again and its
// hold-down is over, the next lookup asks it first (the Stub's probe) and
// it is back. Every answer is right throughout.
func TestStubServerDown(t *testing.T) {
	var silent atomic.Bool
	silent.Store(true)
	drop := silenceable(&silent)
	primary := dnstest.NewZone(t, manyZone(20), drop)
	backup := dnstest.NewZone(t, manyZone(20))
	const try = 100 * time.Millisecond
	stub := newStub(t, resolve.StubConfig{Timeout: try, Attempts: 2}, primary, backup)
	lookup := func(i int) time.Duration {
		t.Helper()
		start := time.Now()
		a, err := stub.Lookup(t.Context(), resolve.Q(fmt.Sprintf("n%d.test.", i), dns.TypeA))
		if err == nil {
			err = checkMany(a, i, dns.TypeA)
		}
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}

	if took := lookup(0); took < 2*try {
		t.Errorf("the first lookup took %v: it did not try the silent server twice", took)
	}
	if got := primary.Queries(); got != 2 {
		t.Errorf("the silent server got %d queries, want the first lookup's 2", got)
	}
	for i := 1; i < 10; i++ {
		if took := lookup(i); took >= try {
			t.Errorf("lookup %d took %v: it waited for the server held down", i, took)
		}
	}
	if got := primary.Queries(); got != 2 {
		t.Errorf("the server held down got %d more queries", got-2)
	}

	silent.Store(false)
	time.Sleep(resolve.InitialHoldDown)
	before := backup.Queries()
	for i := 10; i < 20; i++ {
		lookup(i)
	}
	if got, other := primary.Queries()-2, backup.Queries()-before; got != 10 || other != 0 {
		t.Errorf("after the hold-down, with the first server answering: it got %d of 10 lookups, the second %d", got, other)
	}
}

package stub_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
	"github.com/mxtrace/mxtrace/resolve/internal/upstream"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

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
		got, err := stub.ParseServer(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := stub.New(stub.Config{}); !errors.Is(err, resolve.ErrNoServers) {
		t.Errorf("no servers: err = %v", err)
	}
}

func TestSystemServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte("# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"), 0o644)
	got, err := stub.SystemServers(path)
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("SystemServers = %v, %v; want %v", got, err, want)
	}
	os.WriteFile(path, []byte("search example.com\n"), 0o644)
	if _, err := stub.SystemServers(path); !errors.Is(err, resolve.ErrNoServers) {
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
	drop := resolvetest.Silenceable(&silent)
	primary := dnstest.NewZone(t, resolvetest.ManyZone(20), drop)
	backup := dnstest.NewZone(t, resolvetest.ManyZone(20))
	const try = 100 * time.Millisecond
	stub := resolvetest.NewStub(t, stub.Config{Timeout: try, Attempts: 2}, primary, backup)
	lookup := func(i int) time.Duration {
		t.Helper()
		start := time.Now()
		a, err := stub.Lookup(t.Context(), resolve.Q(fmt.Sprintf("n%d.test.", i), dns.TypeA))
		if err == nil {
			err = resolvetest.CheckMany(a, i, dns.TypeA)
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
	// Counted, not timed: a lookup that asked the server held down (and
	// so waited for it) is a query to it.
	for i := 1; i < 10; i++ {
		lookup(i)
	}
	if got := primary.Queries(); got != 2 {
		t.Errorf("the server held down got %d more queries: lookups waited for it", got-2)
	}

	silent.Store(false)
	time.Sleep(upstream.InitialHoldDown)
	before := backup.Queries()
	for i := 10; i < 20; i++ {
		lookup(i)
	}
	if got, other := primary.Queries()-2, backup.Queries()-before; got != 10 || other != 0 {
		t.Errorf("after the hold-down, with the first server answering: it got %d of 10 lookups, the second %d", got, other)
	}
}

package mux_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// TestMuxSegmented: on Linux a Mux pads its queries to 128 octets (RFC
// 8467 §4.1, with RFC 7830's option) and sends them segmented; the server
// gets every query whole, and each lookup its answer. A datagram the
// sweeper sends again (a reply slower than the retransmission interval,
// on a loaded machine) is one more of 128 octets, and counted in Resent.
func TestMuxSegmented(t *testing.T) {
	const n = 300
	var mu sync.Mutex
	sizes := map[int]int{}
	names := map[string]bool{}
	record := func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			mu.Lock()
			sizes[req.Len()]++
			names[req.Question[0].Name] = true
			mu.Unlock()
			next.ServeDNS(w, req)
		})
	}
	srv := dnstest.NewZone(t, resolvetest.ManyZone(n), dnstest.WithMiddleware(record))
	m := newMux(t, mux.Config{Config: stub.Config{Timeout: 5 * time.Second}, Sockets: 2}, srv)
	errs := make(chan error, n)
	for i := range n {
		m.LookupAsync(resolve.Q(fmt.Sprintf("n%d.test.", i), dns.TypeA), func(a *resolve.Answer, err error) {
			if err == nil {
				err = resolvetest.CheckMany(a, i, dns.TypeA)
			}
			errs <- err
		})
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("lookups stalled")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	st := m.Stats()
	if len(sizes) != 1 || sizes[128] != n+int(st.Resent) {
		t.Errorf("query sizes %v: want all %d datagrams (%d queries, %d sent again) of 128 octets", sizes, n+int(st.Resent), n, st.Resent)
	}
	if len(names) != n {
		t.Errorf("the server got %d of the %d questions", len(names), n)
	}
	if st.Sent != n {
		t.Errorf("stats %+v: want %d queries sent", st, n)
	}
}

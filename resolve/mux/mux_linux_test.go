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
// gets every query whole, once, and each lookup its answer.
func TestMuxSegmented(t *testing.T) {
	const n = 300
	var mu sync.Mutex
	sizes := map[int]int{}
	record := func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			mu.Lock()
			sizes[req.Len()]++
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
	if len(sizes) != 1 || sizes[128] != n {
		t.Errorf("query sizes %v: want all %d of 128 octets", sizes, n)
	}
	if st := m.Stats(); st.Sent != n || st.Resent != 0 {
		t.Errorf("stats %+v: want %d queries sent once each", st, n)
	}
}

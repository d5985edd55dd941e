package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// TestMuxDirectSilentServer: the nameserver audit's questions to a server
// that answers nothing all leave at once, as StubDirect's do, and are not
// paced by the Mux's congestion window (which cut such a server to eight
// questions at a time: 200 questions of domains sharing a dead nameserver
// took 7.8 s instead of one time-out). Counted, not timed: when the first
// question gives up, the server has seen nearly all of them (the window
// would have let through at most its initial 64).
func TestMuxDirectSilentServer(t *testing.T) {
	const n = 200
	srv := dnstest.New(t, dnstest.Silent())
	d := newMuxDirect(stub.Config{Timeout: 2 * time.Second, Attempts: 1})
	t.Cleanup(d.Close)
	server := netip.MustParseAddrPort(srv.Addr)
	var (
		once      sync.Once
		seenFirst int
		wg        sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			_, err := d.Ask(context.Background(), server, resolve.Q(fmt.Sprintf("n%d.test.", i), dns.TypeSOA))
			once.Do(func() { seenFirst = int(srv.Queries()) })
			if err == nil {
				t.Errorf("question %d: an answer from a silent server", i)
			}
		})
	}
	wg.Wait()
	if seenFirst < n*3/4 {
		t.Errorf("when the first question gave up, the server had seen %d of %d: the questions were paced", seenFirst, n)
	}
}

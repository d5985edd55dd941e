package relay

import (
	"net/netip"
	"testing"
	"time"
)

// TestRateLimitsBounded: the buckets kept never pass their bound, and a
// client's bucket is its own: one client's burst spent leaves another's.
func TestRateLimitsBounded(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	l := newRateLimits(1, 2, 3)
	a := clientKey(netip.MustParseAddr("192.0.2.1"))
	if !l.allow(a, now) || !l.allow(a, now) || l.allow(a, now) {
		t.Fatal("a burst of 2 is not 2")
	}
	if !l.allow(a, now.Add(time.Second)) || l.allow(a, now.Add(time.Second)) {
		t.Error("not one token back after a second at 1 a second")
	}
	if !l.allow(clientKey(netip.MustParseAddr("192.0.2.2")), now) {
		t.Error("another client shares the first one's bucket")
	}
	for i := range 100 {
		l.allow(clientKey(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})), now)
		if n := l.lru.Len(); n > 3 || n != len(l.byKey) {
			t.Fatalf("%d buckets in the list, %d in the map, bound 3", n, len(l.byKey))
		}
	}
}

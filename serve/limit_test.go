package serve

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(0.5, 2, 100)
	key := clientKey(netip.MustParseAddr("192.0.2.1"))
	now := time.Unix(1_000_000, 0)
	for i := range 2 {
		if wait := l.take(key, now); wait != 0 {
			t.Fatalf("request %d of a burst of 2: wait %v", i+1, wait)
		}
	}
	if wait := l.take(key, now); wait != 2*time.Second {
		t.Errorf("third request: wait %v, want 2s (0.5 tokens a second)", wait)
	}
	// A refused request spends nothing: half a second later, 1.5 s to go.
	if wait := l.take(key, now.Add(500*time.Millisecond)); wait != 1500*time.Millisecond {
		t.Errorf("wait %v, want 1.5s", wait)
	}
	if wait := l.take(key, now.Add(2*time.Second)); wait != 0 {
		t.Errorf("after 2 s: wait %v, want a token", wait)
	}
}

// TestLimiterFlood: a flood from distinct addresses keeps at most max
// buckets, and buckets idle long enough to be full again are dropped as
// new clients come.
func TestLimiterFlood(t *testing.T) {
	const max = 1000
	l := newLimiter(1, 5, max)
	now := time.Unix(1_000_000, 0)
	for i := range 200_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.take(clientKey(a), now)
		if n := l.len(); n > max {
			t.Fatalf("after %d addresses: %d buckets, want at most %d", i+1, n, max)
		}
	}
	if len(l.byKey) != l.lru.Len() {
		t.Fatalf("map %d, list %d", len(l.byKey), l.lru.Len())
	}
	// 5 tokens at 1 a second: full again after 5 s, and dropped.
	l.take(clientKey(netip.MustParseAddr("192.0.2.1")), now.Add(5*time.Second))
	if n := l.len(); n != 1 {
		t.Errorf("after the idle ones filled up: %d buckets, want 1", n)
	}
}

// TestLimiterKeepsBusyClient: a client in the middle of its bucket is not
// forgotten (and so refilled) while others come and go, under the bound.
func TestLimiterKeepsBusyClient(t *testing.T) {
	l := newLimiter(0.1, 2, 100)
	busy := clientKey(netip.MustParseAddr("192.0.2.1"))
	now := time.Unix(1_000_000, 0)
	l.take(busy, now)
	l.take(busy, now)
	for i := range 50 {
		l.take(clientKey(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})), now.Add(time.Second))
	}
	if wait := l.take(busy, now.Add(time.Second)); wait == 0 {
		t.Error("the busy client's empty bucket was forgotten")
	}
}

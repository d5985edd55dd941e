package clientlimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1/32",
		"::ffff:192.0.2.1":     "192.0.2.1/32",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
		"::1":                  "::/64",
	} {
		if got := Key(netip.MustParseAddr(addr)).String(); got != want {
			t.Errorf("Key(%s) = %s, want %s", addr, got, want)
		}
	}
	if got := Key(netip.Addr{}); got.IsValid() {
		t.Errorf("Key(zero) = %s, want the zero Prefix", got)
	}
}

func TestBucket(t *testing.T) {
	b := New(0.5, 2, 100)
	key := Key(netip.MustParseAddr("192.0.2.1"))
	now := time.Unix(1_000_000, 0)
	for i := range 2 {
		if wait := b.Take(key, now); wait != 0 {
			t.Fatalf("request %d of a burst of 2: wait %v", i+1, wait)
		}
	}
	if wait := b.Take(key, now); wait != 2*time.Second {
		t.Errorf("third request: wait %v, want 2s (0.5 tokens a second)", wait)
	}
	// A refused request spends nothing: half a second later, 1.5 s to go.
	if wait := b.Take(key, now.Add(500*time.Millisecond)); wait != 1500*time.Millisecond {
		t.Errorf("wait %v, want 1.5s", wait)
	}
	if wait := b.Take(key, now.Add(2*time.Second)); wait != 0 {
		t.Errorf("after 2 s: wait %v, want a token", wait)
	}
	if wait := b.Take(Key(netip.MustParseAddr("192.0.2.2")), now); wait != 0 {
		t.Errorf("another client shares the first one's bucket: wait %v", wait)
	}
}

// TestFlood: a flood from distinct addresses keeps at most max buckets,
// and buckets idle long enough to be full again are dropped as new
// clients come.
func TestFlood(t *testing.T) {
	const max = 1000
	b := New(1, 5, max)
	now := time.Unix(1_000_000, 0)
	for i := range 200_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.Take(Key(a), now)
		if n := b.Len(); n > max {
			t.Fatalf("after %d addresses: %d buckets, want at most %d", i+1, n, max)
		}
	}
	if len(b.byKey) != b.lru.Len() {
		t.Fatalf("map %d, list %d", len(b.byKey), b.lru.Len())
	}
	// 5 tokens at 1 a second: full again after 5 s, and dropped.
	b.Take(Key(netip.MustParseAddr("192.0.2.1")), now.Add(5*time.Second))
	if n := b.Len(); n != 1 {
		t.Errorf("after the idle ones filled up: %d buckets, want 1", n)
	}
}

// TestKeepsBusyClient: a client in the middle of its bucket is not
// forgotten (and so refilled) while others come and go, under the bound.
func TestKeepsBusyClient(t *testing.T) {
	b := New(0.1, 2, 100)
	busy := Key(netip.MustParseAddr("192.0.2.1"))
	now := time.Unix(1_000_000, 0)
	b.Take(busy, now)
	b.Take(busy, now)
	for i := range 50 {
		b.Take(Key(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})), now.Add(time.Second))
	}
	if wait := b.Take(busy, now.Add(time.Second)); wait == 0 {
		t.Error("the busy client's empty bucket was forgotten")
	}
}

package upstream

import (
	"sync/atomic"
	"time"
)

// Server health: the stub and the Mux pass over a server that has
// stopped answering.
//
// Fail-over per lookup is not enough for a long scan. A server that is
// down costs every lookup its tries there first: a time-out (2 s by
// default) when its host is gone, an ICMP report and a pause when nothing
// listens. Asked first by thousands of lookups, a dead first --resolver
// cuts a scan's rate by an order of magnitude or more (docs/scan.md). So,
// as a recursive resolver keeps a server's state in its infrastructure
// cache (Unbound marks a server that keeps timing out and asks it again
// only to probe it), and as CoreDNS's forward plugin
// takes an upstream out of rotation after failed health checks:
//
//   - SilentLimit tries in a row (a Stub: one lookup's tries, at least
//     two) that got nothing back (time-outs, ICMP
//     unreachable reports), each sent after the server's last reply,
//     mark it down (a burst that overflows a live server's socket buffer
//     loses queries sent before replies that still come: not silence);
//   - the lookups waiting for it then start over at once on the next
//     server, asynchronous ones paced by that server's window: those in
//     flight and those queued;
//   - a server that is down is asked after the others, not before, and
//     a lookup stops retrying it for one that is up;
//   - when its hold-down ends, the Mux probes it with a query of its own
//     (". NS"; no lookup waits on the probe); a reply of any kind (even
//     REFUSED: it answers) marks it up, and silence marks it down again
//     for twice as long, up to maxHoldDown.
//
// With a single server, or all of them down, every lookup still asks them
// all: being passed over only changes the order.
const (
	SilentLimit     = 3
	InitialHoldDown = 2 * time.Second
	maxHoldDown     = time.Minute
)

// Health is one server's state. Times are nanoseconds on the clock of
// the resolver that keeps it (its epoch), so a check is an atomic load.
type Health struct {
	// silent counts the tries in a row that got nothing back.
	silent atomic.Int32
	// lastHeard is when a reply last came (a batch of them, read).
	lastHeard atomic.Int64
	// downUntil is the end of the hold-down; 0 while the server is up.
	// Once passed, the server is probed.
	downUntil atomic.Int64
	// probeUntil is when the probe under way may be given up for another
	// (probeDue).
	probeUntil atomic.Int64
	// hold is the next hold-down (InitialHoldDown after a reply).
	hold atomic.Int64
	// downs counts the times the server was marked down.
	downs atomic.Int64
}

// Heard notes replies from the server read at now (the reader's path, for
// every batch: a store and two loads when nothing changes). It reports
// whether the server was down and is up again.
func (h *Health) Heard(now int64) bool {
	h.lastHeard.Store(now)
	if h.silent.Load() != 0 {
		h.silent.Store(0)
	}
	if h.downUntil.Load() == 0 {
		return false
	}
	h.hold.Store(int64(InitialHoldDown))
	return h.downUntil.Swap(0) != 0
}

// Silence notes a try sent at sent that got nothing back, at now. It
// reports the hold-down when it marks the server down (0 if not): at
// limit tries in a row, or when the probe after a hold-down got
// nothing either. A try sent before the last reply is not silence (the
// server was alive then: the datagram was lost, or is slow), and tries
// ending while the server is held down change nothing. wasUp reports
// that it was up before.
func (h *Health) Silence(now, sent int64, limit int32) (hold time.Duration, wasUp bool) {
	if sent < h.lastHeard.Load() {
		return 0, false
	}
	if h.silent.Add(1) < limit {
		return 0, false
	}
	for {
		until := h.downUntil.Load()
		if until != 0 && now < until {
			return 0, false
		}
		hold := h.hold.Load()
		if hold == 0 {
			hold = int64(InitialHoldDown)
		}
		if h.downUntil.CompareAndSwap(until, now+hold) {
			h.hold.Store(min(2*hold, int64(maxHoldDown)))
			h.downs.Add(1)
			return time.Duration(hold), until == 0
		}
	}
}

// Up reports whether the server is up (not held down, nor waiting for a
// probe to answer).
func (h *Health) Up() bool { return h.downUntil.Load() == 0 }

// Usable reports whether the server may be asked at now: it is up, or
// its hold-down is over (the next try is its probe).
func (h *Health) Usable(now int64) bool {
	until := h.downUntil.Load()
	return until == 0 || now >= until
}

// Downs is the number of times the server was marked down.
func (h *Health) Downs() int64 { return h.downs.Load() }

// ProbeDue reports, for a server that is down, whether its hold-down is
// over at now and no probe is under way; then the caller starts one, and
// no other is due for the next probeFor.
func (h *Health) ProbeDue(now int64, probeFor time.Duration) bool {
	until := h.downUntil.Load()
	if until == 0 || now < until {
		return false
	}
	p := h.probeUntil.Load()
	return now >= p && h.probeUntil.CompareAndSwap(p, now+int64(probeFor))
}

// AskOrder appends to buf the indexes of a resolver's n servers in the
// order a lookup asks them: first if it is not negative, then those
// usable in the configured order, then the others, so every server is
// still asked when none is usable. Each is judged once.
func AskOrder(buf []int, n, first int, usable func(int) bool) []int {
	if first >= 0 {
		buf = append(buf, first)
	}
	var downBuf [4]int
	down := downBuf[:0]
	for i := range n {
		switch {
		case i == first:
		case usable(i):
			buf = append(buf, i)
		default:
			down = append(down, i)
		}
	}
	return append(buf, down...)
}

// PassOver reports whether a lookup asking server i of n should go on to
// the next instead of retrying it: i is not usable and another is.
func PassOver(n, i int, usable func(int) bool) bool {
	if n == 1 || usable(i) {
		return false
	}
	for j := range n {
		if j != i && usable(j) {
			return true
		}
	}
	return false
}

package upstream

import (
	"slices"
	"testing"
	"time"
)

// TestHealth walks one server's health through its states on a made-up
// clock: silence below SilentLimit changes nothing; at it the server is
// down for InitialHoldDown; more silence while it is held down changes
// nothing; a probe is due once at the end of the hold-down; a probe that
// gets nothing doubles the hold-down, up to maxHoldDown; a reply brings it
// up and resets everything.
func TestHealth(t *testing.T) {
	var h Health
	sec := int64(time.Second)
	probeFor := 4 * time.Second
	now := int64(0)

	for i := 1; i < SilentLimit; i++ {
		if hold, _ := h.Silence(now, now, SilentLimit); hold != 0 || !h.Up() {
			t.Fatalf("silent try %d of %d: down for %v", i, SilentLimit, hold)
		}
	}
	if h.Heard(now) {
		t.Fatal("a reply to a server that was up says it came back")
	}
	for i := 1; i < SilentLimit; i++ {
		if hold, _ := h.Silence(now, now, SilentLimit); hold != 0 {
			t.Fatalf("after a reply, silent try %d: down for %v; the count did not restart", i, hold)
		}
	}
	hold, wasUp := h.Silence(now, now, SilentLimit)
	if hold != InitialHoldDown || !wasUp || h.Up() {
		t.Fatalf("at %d silent tries: hold %v, was up %v, up %v; want down for %v", SilentLimit, hold, wasUp, h.Up(), InitialHoldDown)
	}
	if hold, _ := h.Silence(now+sec, now+sec, SilentLimit); hold != 0 {
		t.Errorf("a try ending while held down marked it down again for %v", hold)
	}
	if h.ProbeDue(now+sec, probeFor) {
		t.Error("a probe is due before the hold-down ends")
	}
	end := now + int64(InitialHoldDown)
	if !h.ProbeDue(end, probeFor) {
		t.Fatal("no probe due at the end of the hold-down")
	}
	if h.ProbeDue(end, probeFor) || h.ProbeDue(end+int64(probeFor)-1, probeFor) {
		t.Error("a second probe is due while the first is under way")
	}
	if h.Up() {
		t.Error("up before the probe answered")
	}

	// The probes keep getting nothing: each doubles the hold-down.
	want := 2 * InitialHoldDown
	for range 10 {
		hold, wasUp := h.Silence(end, end, SilentLimit)
		if hold != want || wasUp {
			t.Fatalf("probe at %v got nothing: hold %v (was up %v), want %v", time.Duration(end), hold, wasUp, want)
		}
		end += int64(hold)
		if !h.ProbeDue(end, probeFor) {
			t.Fatalf("no probe due at %v", time.Duration(end))
		}
		want = min(2*want, maxHoldDown)
	}
	if want != maxHoldDown {
		t.Fatalf("the hold-down grew to %v, not capped at %v", want, maxHoldDown)
	}
	if got := h.downs.Load(); got != 11 {
		t.Errorf("downs = %d, want 11", got)
	}

	if !h.Heard(now) || !h.Up() {
		t.Fatal("a reply did not bring the server up")
	}
	if h.ProbeDue(end+int64(time.Hour), probeFor) {
		t.Error("a probe is due for a server that is up")
	}
	for i := 1; i < SilentLimit; i++ {
		h.Silence(end, end, SilentLimit)
	}
	if hold, wasUp := h.Silence(end, end, SilentLimit); hold != InitialHoldDown || !wasUp {
		t.Errorf("down again after coming back: hold %v (was up %v), want %v: the hold-down did not reset", hold, wasUp, InitialHoldDown)
	}
}

// TestAskOrder: the servers usable come first in the configured order,
// the others after (every server is asked once), and a lookup going on
// from a try leads with that server; PassOver leaves a server not usable
// only for a usable one.
func TestAskOrder(t *testing.T) {
	for _, tt := range []struct {
		usable      string // one letter per server: u usable, d not
		first       int
		order       []int
		passOverAll []bool // PassOver for each server
	}{
		{"uuu", -1, []int{0, 1, 2}, []bool{false, false, false}},
		{"duu", -1, []int{1, 2, 0}, []bool{true, false, false}},
		{"dud", -1, []int{1, 0, 2}, []bool{true, false, true}},
		{"ddd", -1, []int{0, 1, 2}, []bool{false, false, false}},
		{"duu", 0, []int{0, 1, 2}, []bool{true, false, false}},
		{"udu", 2, []int{2, 0, 1}, []bool{false, true, false}},
		{"d", -1, []int{0}, []bool{false}},
	} {
		usable := func(i int) bool { return tt.usable[i] == 'u' }
		n := len(tt.usable)
		if got := AskOrder(nil, n, tt.first, usable); !slices.Equal(got, tt.order) {
			t.Errorf("%s, first %d: order %v, want %v", tt.usable, tt.first, got, tt.order)
		}
		for i, want := range tt.passOverAll {
			if got := PassOver(n, i, usable); got != want {
				t.Errorf("%s: PassOver(%d) = %v, want %v", tt.usable, i, got, want)
			}
		}
	}
}

package resolve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// TestFollowed: Followed yields, in order, what WaitFollow returns, on
// both paths (a chain that takes several lookups and one that fails
// included), although it reuses one Result; breaking off stops it.
func TestFollowed(t *testing.T) {
	base := &held{Resolver: oneStep{loadTestZones(t)}, fail: map[string]error{"broken.test.": errBroken}}
	qs := append(batchQuestions, resolve.Q("into-other.test.", dns.TypeA))
	var want []string
	for _, q := range qs {
		res, err := resolve.Follow(t.Context(), base, q)
		if err != nil {
			res = nil
		}
		want = append(want, summary(resolve.Followed{Result: res, Err: err}))
	}
	check := func(path string, b *resolve.Batch) {
		t.Helper()
		n := 0
		for i, f := range b.Followed() {
			if i != n || i >= len(want) {
				t.Fatalf("%s: question %d yielded as %d", path, n, i)
			}
			if g := summary(f); g != want[i] {
				t.Errorf("%s %d: %s; want %s", path, i, g, want[i])
			}
			n++
		}
		if n != len(want) {
			t.Errorf("%s: %d results for %d questions", path, n, len(want))
		}
		for i := range b.Followed() {
			if i != 0 {
				t.Errorf("%s: yielded %d after a break", path, i)
			}
			break
		}
	}
	check("blocking", resolve.AskFollow(t.Context(), struct{ resolve.Resolver }{base}, qs, 3))
	b := resolve.AskFollow(t.Context(), resolve.NewCache(base, 0), qs, 0)
	<-base.release()
	check("async", b)
}

// BenchmarkFollowed follows a DKIM-like batch of 27 questions answered
// from a cache, reading the results with Followed, or with WaitFollow.
func BenchmarkFollowed(b *testing.B) {
	z, err := resolve.ParseZones(strings.NewReader(testZones), "test")
	if err != nil {
		b.Fatal(err)
	}
	base := &held{Resolver: z}
	c := resolve.NewCache(base, 0)
	qs := make([]resolve.Question, 27)
	for i := range qs {
		qs[i] = resolve.Q(fmt.Sprintf("s%d._domainkey.d.test.", i), dns.TypeTXT)
	}
	qs[0] = resolve.Q("chain.test.", dns.TypeMX)
	fill := resolve.AskFollow(b.Context(), c, qs, 0)
	<-base.release()
	fill.WaitFollow()
	b.Run("Followed", func(b *testing.B) {
		for b.Loop() {
			for _, f := range resolve.AskFollow(b.Context(), c, qs, 0).Followed() {
				if f.Err != nil {
					b.Fatal(f.Err)
				}
			}
		}
	})
	b.Run("WaitFollow", func(b *testing.B) {
		for b.Loop() {
			for _, f := range resolve.AskFollow(b.Context(), c, qs, 0).WaitFollow() {
				if f.Err != nil {
					b.Fatal(f.Err)
				}
			}
		}
	})
}

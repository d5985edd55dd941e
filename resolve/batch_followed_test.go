package resolve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
)

// TestFollowedInto: FollowedInto returns what WaitFollow returns, on
// both paths (a chain that takes several lookups and one that fails
// included), although it reuses one Result.
func TestFollowedInto(t *testing.T) {
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
		var res resolve.Result
		for i := range qs {
			if g := summary(b.FollowedInto(i, &res)); g != want[i] {
				t.Errorf("%s %d: %s; want %s", path, i, g, want[i])
			}
		}
	}
	check("blocking", resolve.AskFollow(t.Context(), struct{ resolve.Resolver }{base}, qs, 3))
	b := resolve.AskFollow(t.Context(), resolve.NewCache(base, 0), qs, 0)
	<-base.release()
	check("async", b)
}

// BenchmarkFollowedInto follows a DKIM-like batch of 27 questions
// answered from a cache, reading the results with FollowedInto, or with
// WaitFollow.
func BenchmarkFollowedInto(b *testing.B) {
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
	b.Run("FollowedInto", func(b *testing.B) {
		var res resolve.Result
		for b.Loop() {
			batch := resolve.AskFollow(b.Context(), c, qs, 0)
			for i := range qs {
				if f := batch.FollowedInto(i, &res); f.Err != nil {
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

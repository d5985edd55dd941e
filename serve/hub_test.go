package serve

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// gated answers from next once open is closed, counting the lookups.
type gated struct {
	next    resolve.Resolver
	open    chan struct{}
	lookups atomic.Int64
}

func newGated(t *testing.T) *gated {
	t.Helper()
	zones, err := resolve.LoadZones(testZone)
	if err != nil {
		t.Fatal(err)
	}
	return &gated{next: zones, open: make(chan struct{})}
}

func (g *gated) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	g.lookups.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, &resolve.Error{Question: q, Rcode: -1, Err: ctx.Err()}
	}
	return g.next.Lookup(ctx, q)
}

var tiers = dnsname.MustParse("tiers.example")

// TestHubShares: two requests for the same check at once follow one
// audit and get the same report; other options are another check.
func TestHubShares(t *testing.T) {
	g := newGated(t)
	e := newEnv(t, g)
	a := e.srv.checkRun(t.Context(), tiers, checkOptions{})
	b := e.srv.checkRun(t.Context(), tiers, checkOptions{})
	c := e.srv.checkRun(t.Context(), tiers, checkOptions{Selectors: []string{"sel"}})
	// The server does not probe (offline): smtp=0 is the same check.
	d := e.srv.checkRun(t.Context(), tiers, checkOptions{NoSMTP: true})
	if a != b || a != d {
		t.Error("two requests for the same check at once run two audits")
	}
	if a == c {
		t.Error("a check with other DKIM selectors shares the report of one without")
	}
	close(g.open)
	ra, err := a.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := b.Wait(t.Context())
	if ra != rb {
		t.Error("the two followers got different reports")
	}
	if len(ra.Areas) == 0 {
		t.Error("an empty report")
	}
}

// TestHubReuse: a finished check is served again for checkReuse, then
// run afresh; its events are replayed from the first to a late joiner.
func TestHubReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t)
		close(g.open)
		e := newEnvIn(t, true, g)
		first := e.srv.checkRun(t.Context(), tiers, checkOptions{})
		rep, err := first.Wait(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(checkReuse - time.Second)
		if again := e.srv.checkRun(t.Context(), tiers, checkOptions{}); again != first {
			t.Error("a check finished a moment ago was run again")
		}
		var names []string
		for ev := range first.Events(t.Context()) {
			names = append(names, ev.Name)
		}
		if len(names) < 3 || !slices.Contains(names, "route") || names[len(names)-1] != "result" {
			t.Errorf("replayed events %v, want the route and the areas, then result", names)
		}
		if n := len(rep.Areas) + len(rep.Skipped) + 2; len(names) != n {
			t.Errorf("replayed %d events, want %d (route, every area or skip, result)", len(names), n)
		}
		time.Sleep(time.Second)
		if again := e.srv.checkRun(t.Context(), tiers, checkOptions{}); again == first {
			t.Errorf("a check finished %v ago was reused", checkReuse)
		}
	})
}

// TestHubFailedNotReused: a check that could not be done (a lookup
// failed) is not served again.
func TestHubFailedNotReused(t *testing.T) {
	e := newEnv(t, failing{})
	first := e.srv.checkRun(t.Context(), tiers, checkOptions{})
	if _, err := first.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again := e.srv.checkRun(t.Context(), tiers, checkOptions{}); again == first {
		t.Error("a failed check was reused")
	}
}

// TestHubAbandoned: when every request following a running check has
// gone, the check is cancelled, and the next request starts another.
func TestHubAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated(t)
		e := newEnvIn(t, true, g)
		ctx1, cancel1 := context.WithCancel(t.Context())
		ctx2, cancel2 := context.WithCancel(t.Context())
		r := e.srv.checkRun(ctx1, tiers, checkOptions{})
		e.srv.checkRun(ctx2, tiers, checkOptions{})
		cancel1()
		synctest.Wait()
		select {
		case <-r.done:
			t.Fatal("the check stopped while a request still followed it")
		default:
		}
		cancel2()
		synctest.Wait()
		select {
		case <-r.done:
		default:
			t.Fatal("the check runs on with no one following it")
		}
		if _, err := r.Wait(t.Context()); err == nil {
			t.Error("a cancelled check has no error")
		}
		if again := e.srv.checkRun(t.Context(), tiers, checkOptions{}); again == r {
			t.Error("a cancelled check was reused")
		}
		close(g.open)
	})
}

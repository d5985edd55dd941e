package watch

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
)

// SnapshotOfPlan takes the facts of a route alone (a line of scan --mode
// route): the MX records, the exchanges and their addresses, the route's
// findings, with the routing area judged as check judges it, so Diff
// compares the route of two plans (and nothing else, no other area being
// checked). A plan that failed for a temporary reason (its result is
// error, not for an alias chain that loops or runs too long, RFC 1034
// §3.6.2) leaves the routing area incomplete: it is not compared. nil
// gives nil.
func SnapshotOfPlan(p *route.Plan) *Snapshot {
	if p == nil {
		return nil
	}
	area := check.AreaResult{Area: finding.AreaRouting, Status: check.StatusPass, Findings: p.Findings}
	if finding.Worst(p.Findings) > finding.Info {
		area.Status = check.StatusProblems
	}
	if p.Result == route.ResultError && !slices.ContainsFunc(p.Findings, func(f finding.Finding) bool {
		return f.ID == finding.MXAliasLoop || f.ID == finding.MXAliasTooLong
	}) {
		area.Status = check.StatusError
	}
	return SnapshotOf(&check.Report{Plan: p, Areas: []check.AreaResult{area}})
}

// ScanDomain is one domain whose lines differ between two stored scans.
type ScanDomain struct {
	Domain string `json:"domain"`
	// Only is "old" or "new" when the domain is in that scan only.
	Only string `json:"only,omitempty"`
	// OldStatus and NewStatus are the lines' results (ok, null-mx,
	// no-mail, nxdomain, error).
	OldStatus string `json:"old_status,omitempty"`
	NewStatus string `json:"new_status,omitempty"`
	// Uncompared says why the facts of a domain in both scans were not
	// compared: a line without facts (an entry that could not be scanned)
	// on one side.
	Uncompared string `json:"uncompared,omitempty"`
	// Changes are Diff's, old to new.
	Changes []Change `json:"changes,omitempty"`
}

// ScanDiffSummary counts what DiffScans found.
type ScanDiffSummary struct {
	Old        int64 `json:"old"` // domains in each scan
	New        int64 `json:"new"`
	Both       int64 `json:"both"`
	Changed    int64 `json:"changed"` // domains with at least one change
	OnlyOld    int64 `json:"only_old"`
	OnlyNew    int64 `json:"only_new"`
	Uncompared int64 `json:"uncompared"`
	// Kinds counts the domains with a change of each kind.
	Kinds map[ChangeKind]int64 `json:"kinds"`
}

// DiffScans compares scan old with scan new domain by domain, calling each
// with every domain that differs, in domain order: its changes (Diff of
// the two lines' facts), or that it is in one scan only, or that its
// lines could not be compared. It reads both scans as two streams in
// domain order and merges them, so its memory does not grow with the
// scans' size. A domain scanned twice in one scan counts once, with one of
// its lines. An error from each stops it.
func DiffScans(ctx context.Context, s store.ScanStore, old, new int64, each func(ScanDomain) error) (*ScanDiffSummary, error) {
	sum := &ScanDiffSummary{Kinds: map[ChangeKind]int64{}}
	nextOld, stopOld := iter.Pull2(distinct(s.ScanResults(ctx, old)))
	defer stopOld()
	nextNew, stopNew := iter.Pull2(distinct(s.ScanResults(ctx, new)))
	defer stopNew()
	a, errA, okA := nextOld()
	b, errB, okB := nextNew()
	for okA || okB {
		if errA != nil {
			return sum, errA
		}
		if errB != nil {
			return sum, errB
		}
		var d *ScanDomain
		switch c := compareDomains(a, b, okA, okB); {
		case c < 0:
			sum.Old++
			sum.OnlyOld++
			d = &ScanDomain{Domain: a.Domain, Only: "old", OldStatus: a.Status}
			a, errA, okA = nextOld()
		case c > 0:
			sum.New++
			sum.OnlyNew++
			d = &ScanDomain{Domain: b.Domain, Only: "new", NewStatus: b.Status}
			b, errB, okB = nextNew()
		default:
			sum.Old++
			sum.New++
			sum.Both++
			var err error
			if d, err = diffLines(a, b); err != nil {
				return sum, err
			}
			if d != nil && d.Uncompared != "" {
				sum.Uncompared++
			}
			if d != nil && len(d.Changes) > 0 {
				sum.Changed++
				seen := map[ChangeKind]bool{}
				for _, c := range d.Changes {
					if !seen[c.Kind] {
						seen[c.Kind] = true
						sum.Kinds[c.Kind]++
					}
				}
			}
			a, errA, okA = nextOld()
			b, errB, okB = nextNew()
		}
		if d != nil {
			if err := each(*d); err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}

// compareDomains orders the heads of the two streams; an ended stream
// sorts after everything.
func compareDomains(a, b store.ScanResult, okA, okB bool) int {
	switch {
	case !okA:
		return 1
	case !okB:
		return -1
	}
	return strings.Compare(a.Domain, b.Domain)
}

// diffLines compares one domain's lines of two scans; nil when nothing
// differs.
func diffLines(a, b store.ScanResult) (*ScanDomain, error) {
	d := &ScanDomain{Domain: a.Domain, OldStatus: a.Status, NewStatus: b.Status}
	if a.Facts == nil || b.Facts == nil {
		if a.Facts == nil && b.Facts == nil && a.Status == b.Status {
			return nil, nil
		}
		d.Uncompared = "a line without facts: the entry could not be scanned"
		return d, nil
	}
	if bytes.Equal(a.Facts, b.Facts) {
		// The same facts (a route that did not move, snapshots being
		// sorted): nothing to decode, the common case of a large scan.
		return nil, nil
	}
	o, err := ParseSnapshot(a.Facts)
	if err != nil {
		return nil, fmt.Errorf("%s in the old scan: %w", a.Domain, err)
	}
	n, err := ParseSnapshot(b.Facts)
	if err != nil {
		return nil, fmt.Errorf("%s in the new scan: %w", b.Domain, err)
	}
	if d.Changes = Diff(o, n); len(d.Changes) == 0 {
		return nil, nil
	}
	return d, nil
}

// distinct passes seq on without the repeats of a domain just yielded.
func distinct(seq iter.Seq2[store.ScanResult, error]) iter.Seq2[store.ScanResult, error] {
	return func(yield func(store.ScanResult, error) bool) {
		last, started := "", false
		for r, err := range seq {
			if err == nil && started && r.Domain == last {
				continue
			}
			last, started = r.Domain, true
			if !yield(r, err) {
				return
			}
		}
	}
}

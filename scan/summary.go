package scan

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/route"
)

// SummarySchema is the "schema" member of the summary JSON.
const SummarySchema = 1

// Bounds on the provider counts, so the summary stays small whatever the
// input: at most providerCounters registrable domains are counted at once
// (Misra–Gries), and the top topProviders are reported.
const (
	providerCounters = 10_000
	topProviders     = 20
)

// Summary describes one run: what it wrote and how fast. Its JSON form is
// the --summary file.
type Summary struct {
	Schema int    `json:"schema"`
	Mode   string `json:"mode,omitempty"`
	// Written counts the lines this run wrote; Resumed the entries it
	// skipped because an earlier run had written them (--resume).
	Written int64 `json:"written"`
	Resumed int64 `json:"resumed"`
	// Results counts the lines by result.
	Results map[route.Result]int64 `json:"results"`
	// Findings counts, per finding ID, the domains with at least one
	// finding of it.
	Findings map[finding.ID]int64 `json:"findings"`
	// Worst counts the lines with findings by the severity of their worst
	// one (mxtrace scan --fail-on reads it).
	Worst map[finding.Severity]int64 `json:"worst"`
	// Providers are the registrable domains that run the most exchanges,
	// counted once per domain that routes mail to them, most first.
	Providers []Provider `json:"providers"`
	// ProvidersExact is false when there were too many distinct providers
	// to count each one: the counts are then lower bounds, each short by
	// at most written/10001.
	ProvidersExact bool `json:"providers_exact"`
	// Errors counts the lines whose result is "error", by kind.
	Errors map[ErrorKind]int64 `json:"errors"`
	// Incomplete counts lines with another result that still miss a part
	// after the retries (an exchange whose addresses could not be looked
	// up, an audit area that could not be checked).
	Incomplete int64 `json:"incomplete"`
	// Retried counts domains that needed more than one attempt.
	Retried int64 `json:"retried"`
	// ElapsedMS is the wall time of the run; PerSecond is Written over it.
	ElapsedMS int64   `json:"elapsed_ms"`
	PerSecond float64 `json:"domains_per_second"`
	// Interrupted is set when the run was stopped before the end of the
	// input; --resume continues it.
	Interrupted bool `json:"interrupted"`
	// MaxInFlight and MaxReordered are the most entries that were being
	// worked on at once, and waiting in the reorder buffer for an earlier
	// one: the pipeline's memory bounds, as observed.
	MaxInFlight  int64 `json:"max_in_flight"`
	MaxReordered int64 `json:"max_reordered"`
	// DNS is what the run asked of the DNS, when the caller counted it
	// (mxtrace scan does): how the lookups were served by the cache and
	// what went on the wire. Nil when not counted.
	DNS *DNSCounts `json:"dns,omitempty"`

	providers    *heavyHitters
	registrables registrables
	start        time.Time
}

// DNSCounts says how a run's lookups were served: from the shared cache, or
// by queries on the wire (summed over the resolvers asked). A scan that
// sends far more queries than it has distinct questions is losing
// datagrams (resent, timeouts) or its cache is too small.
type DNSCounts struct {
	Cache   resolve.CacheStats `json:"cache"`
	Queries mux.Stats          `json:"queries"`
}

// Provider is a registrable domain and how many domains route mail to it.
type Provider struct {
	Domain  string `json:"domain"`
	Domains int64  `json:"domains"`
}

func newSummary(mode string) *Summary {
	return &Summary{
		Schema:       SummarySchema,
		Mode:         mode,
		Results:      map[route.Result]int64{},
		Findings:     map[finding.ID]int64{},
		Worst:        map[finding.Severity]int64{},
		Errors:       map[ErrorKind]int64{},
		providers:    newHeavyHitters(providerCounters),
		registrables: registrables{},
		start:        time.Now(),
	}
}

// add counts one written line.
func (s *Summary) add(o *outcome) {
	s.Written++
	res := o.result()
	if res == "" {
		res = route.ResultError
		if o.err == nil {
			res = "unknown"
		}
	}
	s.Results[res]++
	if o.attempts > 1 {
		s.Retried++
	}
	switch {
	case res == route.ResultError:
		kind := KindOther
		if e, ok := o.value.(*ErrorRecord); ok {
			kind = e.Kind
		} else if o.err != nil {
			kind = KindOf(o.err)
		}
		s.Errors[kind]++
	case o.err != nil:
		s.Incomplete++
	}
	if w := finding.Worst(o.findings); w > 0 {
		s.Worst[w]++
	}
	s.countFindings(o.findings)
	if o.plan != nil && o.plan.Result == route.ResultOK {
		var seen []string
		for h := range o.plan.EachHost() {
			if p := s.registrables.of(h.Name); !slices.Contains(seen, p) {
				seen = append(seen, p)
				s.providers.add(p)
			}
		}
	}
}

// Unanswered counts the error lines that are errors for want of a usable
// answer: every kind but invalid input, and a CNAME loop or chain or a
// mail loop, which are answers (broken ones). When every line written is
// one, the scan could not be done, however well it went through the list.
func (s *Summary) Unanswered() int64 {
	var n int64
	for kind, c := range s.Errors {
		switch kind {
		case KindInvalidInput, KindCNAME, KindMailLoop:
		default:
			n += c
		}
	}
	return n
}

// countFindings counts each ID of one domain's findings once. A domain
// has a few findings, where a scan of those before finds a repeat
// without building a set; past onceScan of them a set does, so that a
// hostile domain's thousands cost time in proportion (docs/security.md,
// "Hostile answers become findings or errors").
func (s *Summary) countFindings(fs []finding.Finding) {
	if len(fs) > onceScan {
		seen := make(map[finding.ID]bool)
		for _, f := range fs {
			if !seen[f.ID] {
				seen[f.ID] = true
				s.Findings[f.ID]++
			}
		}
		return
	}
	for i, f := range fs {
		if !slices.ContainsFunc(fs[:i], func(g finding.Finding) bool { return g.ID == f.ID }) {
			s.Findings[f.ID]++
		}
	}
}

// onceScan is the most findings countFindings compares one by one.
const onceScan = 16

// finish sets the figures computed at the end.
func (s *Summary) finish() {
	elapsed := time.Since(s.start)
	s.ElapsedMS = elapsed.Milliseconds()
	if elapsed > 0 {
		s.PerSecond = float64(s.Written) / elapsed.Seconds()
	}
	s.Providers = s.providers.top(topProviders)
	s.ProvidersExact = s.providers.exact()
}

// WriteText writes the summary for a person, a few lines.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	state := "scanned"
	if s.Interrupted {
		state = "interrupted after"
	}
	fmt.Fprintf(&b, "%s %s in %s (%.0f domains/s)", state, prose.Count(int(s.Written), "entry"),
		(time.Duration(s.ElapsedMS) * time.Millisecond).Round(time.Millisecond), s.PerSecond)
	if s.Resumed > 0 {
		fmt.Fprintf(&b, ", %d already done", s.Resumed)
	}
	if s.Retried > 0 {
		fmt.Fprintf(&b, ", %d retried", s.Retried)
	}
	b.WriteString("\n")
	line := func(name string, counts []kv) {
		if len(counts) == 0 {
			return
		}
		parts := make([]string, len(counts))
		for i, c := range counts {
			parts[i] = fmt.Sprintf("%s %d", c.k, c.v)
		}
		fmt.Fprintf(&b, "  %-10s %s\n", name+":", strings.Join(parts, ", "))
	}
	line("results", sorted(s.Results, 0))
	line("errors", sorted(s.Errors, 0))
	if s.Incomplete > 0 {
		line("incomplete", []kv{{"domains", s.Incomplete}})
	}
	line("findings", sorted(s.Findings, 12))
	providers := make([]kv, 0, 10)
	for _, p := range s.Providers[:min(10, len(s.Providers))] {
		providers = append(providers, kv{p.Domain, p.Domains})
	}
	line("providers", providers)
	if d := s.DNS; d != nil {
		q := d.Queries
		fmt.Fprintf(&b, "  %-10s %s: %d from the cache, %d joined one in flight, %d asked; %s sent (%s, %d resent, %d timed out, %d over TCP), window %d\n",
			"dns:", prose.Count(int(d.Cache.Hits+d.Cache.Joined+d.Cache.Misses), "lookup"), d.Cache.Hits, d.Cache.Joined, d.Cache.Misses,
			prose.Count(int(q.Sent), "query"), prose.Count(int(q.Retries), "retry"), q.Resent, q.Timeouts, q.TCP, q.Window)
		if q.Down > 0 {
			fmt.Fprintf(&b, "  %-10s passed over %s after one stopped answering (asked after the others until it answered again)\n", "resolvers:", prose.Count(int(q.Down), "time"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type kv struct {
	k string
	v int64
}

// sorted lists m's counts, largest first (then by name), at most n (0: all).
func sorted[K ~string](m map[K]int64, n int) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{string(k), m[k]})
	}
	slices.SortStableFunc(out, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// heavyHitters counts the most frequent strings of a stream in bounded
// memory (Misra and Gries, "Finding repeated elements", 1982): at most k
// counters; a new string when all are taken lowers every counter by one
// and drops those at zero. Each count is then short by at most n/(k+1);
// with fewer than k+1 distinct strings it is exact. Each lowering pass
// removes k+1 units of count, so the passes cost O(n) in all.
type heavyHitters struct {
	k       int
	counts  map[string]int64
	lowered int64 // passes made
}

func newHeavyHitters(k int) *heavyHitters {
	return &heavyHitters{k: k, counts: map[string]int64{}}
}

func (h *heavyHitters) add(s string) {
	if _, ok := h.counts[s]; ok || len(h.counts) < h.k {
		h.counts[s]++
		return
	}
	h.lowered++
	for k, v := range h.counts {
		if v <= 1 {
			delete(h.counts, k)
		} else {
			h.counts[k] = v - 1
		}
	}
}

func (h *heavyHitters) exact() bool { return h.lowered == 0 }

// top returns the n largest counts, largest first, then by name.
func (h *heavyHitters) top(n int) []Provider {
	out := make([]Provider, 0, len(h.counts))
	for k, v := range h.counts {
		out = append(out, Provider{k, v})
	}
	slices.SortFunc(out, func(a, b Provider) int {
		return cmp.Or(cmp.Compare(b.Domains, a.Domains), strings.Compare(a.Domain, b.Domain))
	})
	return out[:min(n, len(out))]
}

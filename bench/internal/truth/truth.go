// Package truth is the ground truth of the scan benchmark's world: what
// "mxtrace route --json" must say for each generated domain (RFC 5321 §5.1
// delivery plan: result, MX records, exchanges and their addresses), and
// the comparison of a plan with it. bench/scanworld writes it, and
// bench/scantool verify reads it.
package truth

import (
	"fmt"
	"net/netip"
	"slices"
)

// Domain is one line of truth.jsonl.
type Domain struct {
	Domain   string `json:"domain"`
	Kind     string `json:"kind"`   // the generator's category (provider, own, ...)
	Result   string `json:"result"` // ok, null-mx, no-mail, nxdomain
	Implicit bool   `json:"implicit"`
	// Records are the MX records as served (TTL left out).
	Records []Record `json:"records"`
	// Hosts maps every exchange of the plan's tiers to its address set.
	Hosts map[string][]string `json:"hosts"`
}

// Record is an MX record without its TTL.
type Record struct {
	Preference uint16 `json:"preference"`
	Exchange   string `json:"exchange"`
}

// Plan is the part of a route --json line that is compared.
type Plan struct {
	Domain   string   `json:"domain"`
	Result   string   `json:"result"`
	Error    string   `json:"error"`
	Implicit bool     `json:"implicit"`
	Records  []Record `json:"records"`
	Tiers    []Tier   `json:"tiers"`
}

// Tier is a preference tier of a Plan.
type Tier struct {
	Preference uint16 `json:"preference"`
	Hosts      []Host `json:"hosts"`
}

// Host is an exchange of a Plan.
type Host struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// Compare says how p differs from d, or "" when it matches: same result
// and implicit flag, the same MX records, and for result ok the same
// exchanges with the same address sets. Orders are not compared: the hosts
// of a tier are shuffled (RFC 5321 §5.1), and a server may rotate the
// addresses of a multihomed host.
func Compare(d *Domain, p *Plan) string {
	if p.Result != d.Result {
		return fmt.Sprintf("result %s, want %s", p.Result, d.Result)
	}
	if p.Implicit != d.Implicit {
		return "implicit differs"
	}
	var got, want []string
	for _, r := range p.Records {
		got = append(got, fmt.Sprintf("%d %s", r.Preference, r.Exchange))
	}
	for _, r := range d.Records {
		want = append(want, fmt.Sprintf("%d %s", r.Preference, r.Exchange))
	}
	if !sameSet(got, want) {
		return "MX records differ"
	}
	if d.Result != "ok" {
		return ""
	}
	hosts := map[string][]string{}
	for _, t := range p.Tiers {
		for _, h := range t.Hosts {
			if _, dup := hosts[h.Name]; dup {
				return "an exchange is listed twice"
			}
			hosts[h.Name] = h.Addresses
		}
	}
	if len(hosts) != len(d.Hosts) {
		return "exchanges differ"
	}
	for name, want := range d.Hosts {
		have, ok := hosts[name]
		if !ok {
			return "exchanges differ"
		}
		if !sameSet(canon(have), canon(want)) {
			return "addresses differ"
		}
	}
	return ""
}

// canon writes addresses in one form (RFC 5952 for IPv6).
func canon(as []string) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		if ip, err := netip.ParseAddr(a); err == nil {
			a = ip.String()
		}
		out = append(out, a)
	}
	return out
}

// sameSet reports whether a and b hold the same strings the same number
// of times.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// AuditDomain is one line of findings.jsonl: the finding IDs "scan --mode
// check" must report for the domain, each once, sorted.
type AuditDomain struct {
	Domain   string   `json:"domain"`
	Findings []string `json:"findings"`
}

// Report is the part of a "scan --mode check" line that is scored: the
// domain and the IDs of its findings.
type Report struct {
	Domain   string `json:"domain"`
	Findings []struct {
		ID string `json:"id"`
	} `json:"findings"`
}

// IDScore counts one finding ID over every domain: a domain is a true
// positive when both the truth and the scan have the ID, a false positive
// when only the scan has it, a false negative when only the truth has it.
type IDScore struct {
	TruePositives  int     `json:"true_positives"`
	FalsePositives int     `json:"false_positives"`
	FalseNegatives int     `json:"false_negatives"`
	Precision      float64 `json:"precision"` // TP / (TP + FP); 1 with neither
	Recall         float64 `json:"recall"`    // TP / (TP + FN); 1 with neither
}

// Scorer scores scan lines against the truth, one line at a time, so a
// million lines are never held at once.
type Scorer struct {
	want     map[string][]string // domain: sorted IDs
	unscored map[string]bool
	seen     map[string]bool
	ids      map[string]*IDScore

	Lines, Duplicates, Unknown int
	// Unscored counts the findings of IDs left out of the score.
	Unscored map[string]int
	// Examples are the first differences, "domain: +id" for a finding
	// the truth does not have and "domain: -id" for one the scan missed.
	Examples []string
}

// NewScorer scores against truth, leaving the IDs in unscored out.
func NewScorer(truth []AuditDomain, unscored []string) *Scorer {
	s := &Scorer{want: make(map[string][]string, len(truth)), unscored: map[string]bool{}, seen: map[string]bool{},
		ids: map[string]*IDScore{}, Unscored: map[string]int{}}
	for _, id := range unscored {
		s.unscored[id] = true
	}
	for _, d := range truth {
		s.want[d.Domain] = d.Findings
	}
	return s
}

func (s *Scorer) id(id string) *IDScore {
	c := s.ids[id]
	if c == nil {
		c = &IDScore{}
		s.ids[id] = c
	}
	return c
}

func (s *Scorer) example(e string) {
	if len(s.Examples) < 20 {
		s.Examples = append(s.Examples, e)
	}
}

// Add scores one line. A domain's second line, or a line for a domain
// not in the truth, is counted and otherwise ignored.
func (s *Scorer) Add(r *Report) {
	s.Lines++
	want, ok := s.want[r.Domain]
	switch {
	case !ok:
		s.Unknown++
		return
	case s.seen[r.Domain]:
		s.Duplicates++
		return
	}
	s.seen[r.Domain] = true
	got := map[string]bool{}
	for _, f := range r.Findings {
		if s.unscored[f.ID] {
			s.Unscored[f.ID]++
			continue
		}
		got[f.ID] = true
	}
	for _, id := range want {
		if got[id] {
			s.id(id).TruePositives++
			delete(got, id)
		} else {
			s.id(id).FalseNegatives++
			s.example(r.Domain + ": -" + id)
		}
	}
	extra := make([]string, 0, len(got))
	for id := range got {
		extra = append(extra, id)
	}
	slices.Sort(extra)
	for _, id := range extra {
		s.id(id).FalsePositives++
		s.example(r.Domain + ": +" + id)
	}
}

// AuditScore is the outcome of a Scorer.
type AuditScore struct {
	Domains    int `json:"domains"`
	Lines      int `json:"lines"`
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"`
	Unknown    int `json:"unknown"`
	// Exact is true when every ID has precision and recall 1 and every
	// domain has exactly one line.
	Exact    bool                `json:"exact"`
	IDs      map[string]*IDScore `json:"ids"`
	Unscored map[string]int      `json:"unscored"`
	Examples []string            `json:"examples"`
}

// Score finishes: a domain of the truth without a line counts as a false
// negative for each of its IDs.
func (s *Scorer) Score() *AuditScore {
	out := &AuditScore{Domains: len(s.want), Lines: s.Lines, Duplicates: s.Duplicates, Unknown: s.Unknown,
		IDs: s.ids, Unscored: s.Unscored, Examples: s.Examples}
	for d, want := range s.want {
		if !s.seen[d] {
			out.Missing++
			for _, id := range want {
				s.id(id).FalseNegatives++
			}
		}
	}
	out.Exact = out.Missing == 0 && out.Duplicates == 0 && out.Unknown == 0
	for _, c := range s.ids {
		c.Precision, c.Recall = ratio(c.TruePositives, c.FalsePositives), ratio(c.TruePositives, c.FalseNegatives)
		if c.Precision < 1 || c.Recall < 1 {
			out.Exact = false
		}
	}
	return out
}

// ratio is tp / (tp + miss), or 1 when both are 0.
func ratio(tp, miss int) float64 {
	if tp+miss == 0 {
		return 1
	}
	return float64(tp) / float64(tp+miss)
}

package truth

import "testing"

func TestCompare(t *testing.T) {
	want := &Domain{Domain: "a.test", Result: "ok",
		Records: []Record{{10, "mx1.a.test"}, {10, "mx2.a.test"}},
		Hosts:   map[string][]string{"mx1.a.test": {"192.0.2.1", "2001:db8::1"}, "mx2.a.test": {"192.0.2.2"}}}
	plan := func(result string, records []Record, hosts ...Host) *Plan {
		return &Plan{Domain: "a.test", Result: result, Records: records, Tiers: []Tier{{Preference: 10, Hosts: hosts}}}
	}
	recs := []Record{{10, "mx2.a.test"}, {10, "mx1.a.test"}}
	mx1 := Host{"mx1.a.test", []string{"2001:0db8::1", "192.0.2.1"}}
	mx2 := Host{"mx2.a.test", []string{"192.0.2.2"}}
	for _, c := range []struct {
		name string
		plan *Plan
		why  string
	}{
		{"same, other orders and address spelling", plan("ok", recs, mx2, mx1), ""},
		{"result", plan("error", recs, mx1, mx2), "result error, want ok"},
		{"record missing", plan("ok", recs[:1], mx1, mx2), "MX records differ"},
		{"record preference", plan("ok", []Record{{10, "mx1.a.test"}, {20, "mx2.a.test"}}, mx1, mx2), "MX records differ"},
		{"exchange missing", plan("ok", recs, mx1), "exchanges differ"},
		{"exchange twice", plan("ok", recs, mx1, mx1), "an exchange is listed twice"},
		{"address missing", plan("ok", recs, Host{"mx1.a.test", []string{"192.0.2.1"}}, mx2), "addresses differ"},
		{"address extra", plan("ok", recs, mx1, Host{"mx2.a.test", []string{"192.0.2.2", "192.0.2.3"}}), "addresses differ"},
		{"implicit", &Plan{Domain: "a.test", Result: "ok", Implicit: true, Records: recs}, "implicit differs"},
	} {
		if got := Compare(want, c.plan); got != c.why {
			t.Errorf("%s: Compare = %q, want %q", c.name, got, c.why)
		}
	}

	nx := &Domain{Domain: "b.test", Result: "nxdomain", Records: []Record{}, Hosts: map[string][]string{}}
	if got := Compare(nx, &Plan{Domain: "b.test", Result: "nxdomain"}); got != "" {
		t.Errorf("nxdomain: Compare = %q, want a match", got)
	}
	if got := Compare(nx, &Plan{Domain: "b.test", Result: "no-mail"}); got == "" {
		t.Error("nxdomain against no-mail: Compare matched")
	}
}

func TestScorer(t *testing.T) {
	want := []AuditDomain{
		{Domain: "a.test", Findings: []string{"x", "y"}},
		{Domain: "b.test", Findings: []string{"x"}},
		{Domain: "c.test", Findings: []string{}},
	}
	line := func(domain string, ids ...string) *Report {
		r := &Report{Domain: domain}
		for _, id := range ids {
			r.Findings = append(r.Findings, struct {
				ID string `json:"id"`
			}{id})
		}
		return r
	}
	s := NewScorer(want, []string{"u"})
	s.Add(line("a.test", "x", "z", "u"))
	s.Add(line("a.test", "x", "y")) // a second line does not count
	s.Add(line("c.test"))
	s.Add(line("zz.test", "x"))
	got := s.Score()
	if got.Domains != 3 || got.Lines != 4 || got.Missing != 1 || got.Duplicates != 1 || got.Unknown != 1 || got.Exact {
		t.Errorf("score %+v: want 3 domains, 4 lines, 1 missing (b), 1 duplicate, 1 unknown, not exact", got)
	}
	for id, w := range map[string]IDScore{
		// a has x; b has no line, so its x is missed.
		"x": {TruePositives: 1, FalseNegatives: 1, Precision: 1, Recall: 0.5},
		"y": {FalseNegatives: 1, Precision: 1, Recall: 0},
		"z": {FalsePositives: 1, Precision: 0, Recall: 1},
	} {
		if c := got.IDs[id]; c == nil || *c != w {
			t.Errorf("%s: %+v, want %+v", id, c, w)
		}
	}
	if got.IDs["u"] != nil || got.Unscored["u"] != 1 {
		t.Errorf("unscored u: scored %v, counted %d; want not scored, counted once", got.IDs["u"], got.Unscored["u"])
	}

	exact := NewScorer(want, nil)
	exact.Add(line("c.test"))
	exact.Add(line("b.test", "x"))
	exact.Add(line("a.test", "y", "x"))
	if sc := exact.Score(); !sc.Exact || sc.IDs["x"].TruePositives != 2 || sc.IDs["x"].Precision != 1 || sc.IDs["x"].Recall != 1 {
		t.Errorf("every line right: %+v, x %+v; want exact", sc, sc.IDs["x"])
	}
}

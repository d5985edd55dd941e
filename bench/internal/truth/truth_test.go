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

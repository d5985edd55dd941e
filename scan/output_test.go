package scan

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/mux"
	"github.com/mxtrace/mxtrace/route"
)

// worldZone has one domain of each kind a scan meets.
const worldZone = `$ORIGIN test.
$TTL 3600
@            SOA ns.test. hostmaster.test. 1 7200 900 1209600 300
@            NS  ns.test.
ns           A   192.0.2.53
; three customers of one provider, with two exchanges
a            MX  10 mx1.provider.test.
a            MX  10 mx2.provider.test.
b            MX  10 mx1.provider.test.
b            MX  10 mx2.provider.test.
c            MX  10 mx1.provider.test.
mx1.provider A   192.0.2.1
mx2.provider A   192.0.2.2
mx2.provider AAAA 2001:db8::2
; its own exchange
own          MX  10 mail.own.test.
mail.own     A   192.0.2.10
; implicit MX, Null MX, no mail
implicit     A   192.0.2.20
null         MX  0 .
nomail       TXT "v=spf1 -all"
; an exchange whose address lookup fails (see failing)
flaky        MX  10 mx.flaky.test.
mx.flaky     A   192.0.2.30
`

// failing answers from next, but fails every question about one name.
type failing struct {
	next resolve.Resolver
	name string
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Name == f.name {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.next.Lookup(ctx, q)
}

func worldPlanner(t testing.TB) *route.Planner {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(worldZone), "world")
	if err != nil {
		t.Fatal(err)
	}
	return &route.Planner{Resolver: failing{resolve.NewCache(z, 0), "mx.flaky.test."}, Seed: 1, HasSeed: true}
}

const worldList = "a.test\nb.test\nc.test\nown.test\nimplicit.test\nnull.test\nnomail.test\nnosuch.test\nflaky.test\nbad..name\n"

// TestJSONIsRouteJSON: each line is the plan, encoded as route --json
// encodes it, and nothing else.
func TestJSONIsRouteJSON(t *testing.T) {
	p := worldPlanner(t)
	out := runToString(t, "a.test\nown.test\nnull.test\n", Config{Job: Route(p)})
	var want bytes.Buffer
	for _, d := range []string{"a.test", "own.test", "null.test"} {
		plan, _ := p.Plan(t.Context(), dnsname.Name(d))
		if err := report.WriteJSON(&want, plan); err != nil {
			t.Fatal(err)
		}
	}
	if stable(out) != stable(want.String()) {
		t.Errorf("scan wrote\n%s\nroute --json writes\n%s", out, want.String())
	}
}

func TestCSVFormat(t *testing.T) {
	out := runToString(t, worldList, Config{Job: Route(worldPlanner(t)), Format: FormatCSV, Retries: 1, Backoff: 1})
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(CSVHeader(), ",") {
		t.Fatalf("header %q", rows[0])
	}
	byDomain := map[string]map[string]string{}
	for _, r := range rows[1:] {
		if len(r) != len(CSVHeader()) {
			t.Fatalf("row of %d cells: %q", len(r), r)
		}
		m := map[string]string{}
		for i, c := range CSVHeader() {
			m[c] = r[i]
		}
		byDomain[m["domain"]] = m
	}
	if len(rows) != 11 {
		t.Errorf("%d rows, want the header and 10", len(rows))
	}
	for domain, want := range map[string]map[string]string{
		"a.test": {"line": "1", "result": "ok", "implicit": "false", "mx_records": "2", "tiers": "1", "exchanges": "2",
			"first_exchange": "mx1.provider.test", "provider": "provider.test", "addresses": "3", "findings": "", "error_kind": "", "error": ""},
		"own.test":      {"line": "4", "exchanges": "1", "first_exchange": "mail.own.test", "provider": "own.test", "findings": "mx-no-ipv6 mx-single-point"},
		"implicit.test": {"result": "ok", "implicit": "true", "mx_records": "0", "tiers": "1", "first_exchange": "implicit.test", "findings": "mx-implicit mx-no-ipv6 mx-single-point"},
		"null.test":     {"result": "null-mx", "mx_records": "1", "tiers": "0", "exchanges": "0", "first_exchange": "", "provider": "", "addresses": "0", "findings": "mx-null"},
		"nosuch.test":   {"result": "nxdomain", "findings": "mx-nxdomain", "error_kind": ""},
		// The exchange's address lookup failed on every try: the plan is
		// written, and the row says why it is incomplete.
		"flaky.test": {"result": "ok", "findings": "mx-lookup-failed", "error_kind": "servfail"},
		"bad..name":  {"line": "10", "result": "error", "implicit": "", "mx_records": "", "findings": "", "error_kind": "invalid-input"},
	} {
		row, ok := byDomain[domain]
		if !ok {
			t.Errorf("no row for %s", domain)
			continue
		}
		for k, v := range want {
			if row[k] != v {
				t.Errorf("%s: %s = %q, want %q", domain, k, row[k], v)
			}
		}
	}
	if e := byDomain["flaky.test"]["error"]; !strings.Contains(e, "SERVFAIL") {
		t.Errorf("flaky.test: error %q", e)
	}
	if e := byDomain["bad..name"]["error"]; !strings.Contains(e, "empty label") {
		t.Errorf("bad..name: error %q", e)
	}
}

// TestCSVInjection: a cell a spreadsheet would run as a formula is
// defused, and read back as it was for --resume.
func TestCSVInjection(t *testing.T) {
	for _, in := range []string{"=HYPERLINK(\"http://x\")", "+1", "-x", "@SUM(A1)", "'quoted", "plain.example"} {
		c := cell(in)
		if strings.ContainsAny(c[:1], "=+-@\t") {
			t.Errorf("cell(%q) = %q starts a formula", in, c)
		}
		if uncell(c) != in {
			t.Errorf("uncell(cell(%q)) = %q", in, uncell(c))
		}
	}
	out := runToString(t, "=cmd|'/c calc'!A1\n", Config{Job: instant, Format: FormatCSV})
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || !strings.HasPrefix(rows[1][1], "'=") {
		t.Errorf("rows %q, error %v", rows, err)
	}
	if k, err := csvKey([]byte(strings.SplitAfter(out, "\n")[1])); err != nil || k != "=cmd|'/c calc'!A1" {
		t.Errorf("key read back %q, %v", k, err)
	}
}

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(t.Context(), Lines(strings.NewReader(worldList)), &out, Config{Job: Route(worldPlanner(t)), Mode: "route", Retries: 2, Backoff: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[route.Result]int64{route.ResultOK: 6, route.ResultNullMX: 1, route.ResultNoMail: 1, route.ResultNXDomain: 1, route.ResultError: 1}
	if fmt.Sprint(sum.Results) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", sum.Results, want)
	}
	if sum.Written != 10 || sum.Errors[KindInvalidInput] != 1 || len(sum.Errors) != 1 {
		t.Errorf("written %d, errors %v", sum.Written, sum.Errors)
	}
	// flaky.test: its exchange's A lookup failed three times; the plan is
	// written, counted as incomplete, and was retried.
	if sum.Incomplete != 1 || sum.Retried != 1 {
		t.Errorf("incomplete %d, retried %d; want 1 and 1", sum.Incomplete, sum.Retried)
	}
	for id, n := range map[finding.ID]int64{finding.MXImplicit: 1, finding.MXNull: 1, finding.MXNXDomain: 1, finding.MXNoMail: 1, finding.MXLookupFailed: 1} {
		if sum.Findings[id] != n {
			t.Errorf("findings[%s] = %d, want %d", id, sum.Findings[id], n)
		}
	}
	// provider.test serves a, b and c (counted once per domain, not per
	// exchange).
	if len(sum.Providers) < 1 || sum.Providers[0] != (Provider{"provider.test", 3}) || !sum.ProvidersExact {
		t.Errorf("providers %v (exact %v)", sum.Providers, sum.ProvidersExact)
	}
	if sum.ElapsedMS < 0 || sum.PerSecond <= 0 || sum.Mode != "route" || sum.Interrupted {
		t.Errorf("summary %+v", sum)
	}

	// The JSON form (the --summary file) and the text form.
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"schema":1`, `"results":{"error":1,"no-mail":1,"null-mx":1,"nxdomain":1,"ok":6}`, `"errors":{"invalid-input":1}`, `"providers":[{"domain":"provider.test","domains":3}`, `"domains_per_second":`, `"incomplete":1`, `"worst":{`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("summary JSON lacks %s: %s", k, b)
		}
	}
	var text strings.Builder
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scanned 10 entries", "ok 6", "invalid-input 1", "provider.test 3", "incomplete", "mx-lookup-failed 1"} {
		if !strings.Contains(text.String(), k) {
			t.Errorf("summary text lacks %q:\n%s", k, text.String())
		}
	}
	if strings.Contains(text.String(), "dns:") || strings.Contains(string(b), `"dns"`) {
		t.Errorf("DNS counts shown though none were given:\n%s\n%s", text.String(), b)
	}

	// The DNS counts, when the caller gives them.
	sum.DNS = &DNSCounts{Cache: resolve.CacheStats{Hits: 7, Joined: 2, Misses: 5}, Queries: mux.Stats{Sent: 6, Retries: 1, Resent: 3, Timeouts: 1}}
	text.Reset()
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if want := "14 lookups: 7 from the cache, 2 joined one in flight, 5 asked; 6 queries sent (1 retry, 3 resent, 1 timed out, 0 over TCP), window 0"; !strings.Contains(text.String(), want) {
		t.Errorf("summary text lacks %q:\n%s", want, text.String())
	}
	if b, _ = json.Marshal(sum); !strings.Contains(string(b), `"dns":{"cache":{"hits":7,"joined":2,"misses":5},"queries":{"sent":6,"retries":1,`) {
		t.Errorf("summary JSON: %s", b)
	}

	// A count of one is singular.
	sum.Written, sum.DNS = 1, &DNSCounts{Cache: resolve.CacheStats{Misses: 1}, Queries: mux.Stats{Sent: 1, Down: 1}}
	text.Reset()
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scanned 1 entry in", "1 lookup: 0 from the cache", "1 query sent (0 retries,", "passed over 1 time after"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary text lacks %q:\n%s", want, text.String())
		}
	}
}

// TestSummaryOncePerDomain: a finding ID and a provider are counted once
// per domain, however many of its findings and exchanges repeat them.
func TestSummaryOncePerDomain(t *testing.T) {
	s := newSummary("route")
	host := func(name string) route.Host { return route.Host{Name: name} }
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{host("mx1.provider.test"), host("mx2.provider.test")}},
		{Preference: 20, Hosts: []route.Host{host("backup.other.test")}},
	}}
	fs := []finding.Finding{{ID: finding.MXNoIPv6}, {ID: finding.MXTargetCNAME}, {ID: finding.MXNoIPv6}}
	for range 2 {
		s.add(&outcome{value: plan, plan: plan, findings: fs})
	}
	if s.Findings[finding.MXNoIPv6] != 2 || s.Findings[finding.MXTargetCNAME] != 2 || len(s.Findings) != 2 {
		t.Errorf("findings %v, want each ID twice", s.Findings)
	}
	// Worst: each line once, by its worst finding.
	w := newSummary("route")
	w.add(&outcome{value: plan, plan: plan, findings: []finding.Finding{{ID: finding.MXNoIPv6, Severity: finding.Info}}})
	w.add(&outcome{value: plan, plan: plan})
	fs[1].Severity = finding.Warning
	w.add(&outcome{value: plan, plan: plan, findings: fs})
	if fmt.Sprint(w.Worst) != "map[info:1 warning:1]" {
		t.Errorf("worst %v", w.Worst)
	}
	if top := s.providers.top(5); fmt.Sprint(top) != "[{other.test 2} {provider.test 2}]" {
		t.Errorf("providers %v", top)
	}
}

// TestRegistrables: the memo gives what registrable gives, and is emptied
// when full rather than growing with the input.
func TestRegistrables(t *testing.T) {
	m := registrables{}
	for i := range maxRegistrables + 10 {
		for _, h := range []string{fmt.Sprintf("mx.d%d.example.com", i), "mx1.provider.co.uk", "192.0.2.1"} {
			if got, want := m.of(h), registrable(h); got != want {
				t.Fatalf("of(%q) = %q, want %q", h, got, want)
			}
		}
		if len(m) > maxRegistrables {
			t.Fatalf("%d entries, bound %d", len(m), maxRegistrables)
		}
	}
}

// TestHeavyHitters: with more distinct providers than counters, the big
// ones are still found and their counts are short by at most n/(k+1).
func TestHeavyHitters(t *testing.T) {
	h := newHeavyHitters(50)
	n := 0
	for i := range 20000 {
		switch {
		case i%3 == 0:
			h.add("big.example")
		case i%7 == 0:
			h.add("second.example")
		default:
			h.add(fmt.Sprintf("own%d.example", i))
		}
		n++
	}
	top := h.top(2)
	if len(top) != 2 || top[0].Domain != "big.example" || top[1].Domain != "second.example" {
		t.Fatalf("top %v", top)
	}
	bigTrue, slack := int64(6667), int64(n/51)
	if top[0].Domains > bigTrue || top[0].Domains < bigTrue-slack {
		t.Errorf("big.example counted %d, true %d, bound %d", top[0].Domains, bigTrue, slack)
	}
	if h.exact() || len(h.counts) > 50 {
		t.Errorf("exact %v with %d counters", h.exact(), len(h.counts))
	}
}

func TestProgressLine(t *testing.T) {
	p := &progress{}
	for _, tt := range []struct {
		done, total, errs int64
		rate              float64
		want              []string
	}{
		{50, 100, 2, 10, []string{"\r50/100  50%", "10 domains/s", "ETA 5s", "errors 2", "\x1b[K"}},
		{50, -1, 0, 10, []string{"\r50  ", "10 domains/s", "errors 0"}},
		{100, 100, 0, 10, []string{"100/100 100%"}},
	} {
		line := p.line(tt.done, tt.total, tt.errs, tt.rate, 3*1e9)
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("line %q lacks %q", line, w)
			}
		}
		if tt.total < 0 && strings.Contains(line, "ETA") {
			t.Errorf("ETA without a total: %q", line)
		}
	}
}

// TestProgress: with a Progress writer the run draws its line and ends it
// with a newline, and counts the input when it can.
func TestProgress(t *testing.T) {
	var out, prog bytes.Buffer
	total := func(ctx context.Context) (int64, error) {
		return Count(ctx, Lines(strings.NewReader(list(300))), Shard{})
	}
	slow := func(_ context.Context, n dnsname.Name) (any, error) {
		if strings.HasPrefix(n.String(), "d29") {
			time.Sleep(300 * time.Millisecond) // long enough for a redraw
		}
		return planOf(n, route.ResultOK), nil
	}
	if _, err := Run(t.Context(), Lines(strings.NewReader(list(300))), &out, Config{Job: slow, Progress: &prog, Total: total}); err != nil {
		t.Fatal(err)
	}
	s := prog.String()
	if !strings.Contains(s, "/300") || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "300/300 100%") {
		t.Errorf("progress output %q", s)
	}
}

// TestSummaryOncePerDomainMany: the same with more findings than a scan
// of those before handles (a hostile domain's thousands).
func TestSummaryOncePerDomainMany(t *testing.T) {
	s := newSummary("route")
	fs := manyFindings(5000)
	s.add(&outcome{findings: fs})
	s.add(&outcome{findings: fs[:3]})
	if s.Findings[finding.MXDuplicate] != 2 || s.Findings[finding.MXTargetNXDomain] != 1 || s.Findings[finding.MXTargetPrivate] != 1 || len(s.Findings) != 3 {
		t.Errorf("findings %v, want mx-duplicate twice, mx-target-nxdomain and mx-target-private once", s.Findings)
	}
}

// manyFindings is n findings in runs of one ID, as a plan whose
// exchanges share addresses and then do not exist gives: half
// mx-duplicate, then mx-target-nxdomain, the last mx-target-private.
func manyFindings(n int) []finding.Finding {
	fs := make([]finding.Finding, n)
	for i := range fs {
		id := finding.MXDuplicate
		switch {
		case i == n-1:
			id = finding.MXTargetPrivate
		case i >= n/2:
			id = finding.MXTargetNXDomain
		}
		fs[i] = finding.Finding{ID: id, Subject: fmt.Sprint(i)}
	}
	return fs
}

// BenchmarkSummaryManyFindings counts one domain with 5,000 findings: the
// summary's work must stay linear in them.
func BenchmarkSummaryManyFindings(b *testing.B) {
	s := newSummary("route")
	o := &outcome{findings: manyFindings(5000)}
	for b.Loop() {
		s.add(o)
	}
}

// TestCSVRecordsOmitted: mx_records counts every record served, those a
// plan left out of its list past route.MaxRecords too.
func TestCSVRecordsOmitted(t *testing.T) {
	plan := &route.Plan{Domain: "huge.test", Result: route.ResultOK,
		Records: make([]route.Record, route.MaxRecords), RecordsOmitted: 10}
	row := newEncoder(FormatCSV).row(&outcome{value: plan, plan: plan})
	if i := slices.Index(CSVHeader(), "mx_records"); row[i] != fmt.Sprint(route.MaxRecords+10) {
		t.Errorf("mx_records = %s, want %d", row[i], route.MaxRecords+10)
	}
}

// TestUnanswered: the error lines for want of an answer are every kind
// but the answers that are broken (a CNAME loop, a mail loop) and the
// entries that are not domains.
func TestUnanswered(t *testing.T) {
	s := &Summary{Errors: map[ErrorKind]int64{
		KindInvalidInput: 1, KindCNAME: 2, KindMailLoop: 4,
		KindTimeout: 8, KindServFail: 16, KindRefused: 32, KindBadResponse: 64,
		KindNotInZone: 128, KindCancelled: 256, KindOther: 512,
	}}
	if got := s.Unanswered(); got != 1016 {
		t.Errorf("Unanswered() = %d, want 1016", got)
	}
}

// TestLineBuffers: the free list hands back the buffers the writer put,
// emptied, keeps no more than its capacity, and never keeps a long one.
func TestLineBuffers(t *testing.T) {
	l := make(lineBuffers, 2)
	if b := l.get(); b != nil {
		t.Fatalf("an empty list gave %d octets", cap(b))
	}
	a, b, c := make([]byte, 10, 100), make([]byte, 20, 200), make([]byte, 30, 300)
	l.put(a)
	l.put(b)
	l.put(c) // full: dropped
	l.put(make([]byte, 0, maxPooledLine+1))
	got := []int{cap(l.get()), cap(l.get())}
	if got[0] != 100 || got[1] != 200 || len(l) != 0 {
		t.Errorf("got buffers of capacity %v, %d left; want 100 and 200, none left", got, len(l))
	}
	l.put(a)
	if r := l.get(); len(r) != 0 || cap(r) != 100 {
		t.Errorf("a reused buffer has %d octets (capacity %d), want empty", len(r), cap(r))
	}
}

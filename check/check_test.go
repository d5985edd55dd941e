package check_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// exampleZones loads the zones shipped in examples/, as check --zone does.
func exampleZones(t testing.TB) *resolve.Zones {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(exampleZoneText(t)), "examples")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// exampleZoneText is the text of the zone files in examples/.
func exampleZoneText(t testing.TB) string {
	t.Helper()
	var text strings.Builder
	for _, f := range []string{"../examples/example.zone", "../examples/reverse.zone"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
		text.WriteString("\n")
	}
	return text.String()
}

func auditor(r resolve.Resolver) *check.Auditor {
	return &check.Auditor{
		Resolver:      r,
		Planner:       &route.Planner{Resolver: r, Seed: 1, HasSeed: true},
		DKIMSelectors: []string{"mail"},
		SkipReason:    "offline",
	}
}

func area(r *check.Report, name finding.Area) (check.AreaResult, bool) {
	i := slices.IndexFunc(r.Areas, func(a check.AreaResult) bool { return a.Area == name })
	if i < 0 {
		return check.AreaResult{}, false
	}
	return r.Areas[i], true
}

// TestAuditGood: a domain set up right passes every area it can check
// offline, and says what it skipped.
func TestAuditGood(t *testing.T) {
	r := auditor(resolve.NewCache(exampleZones(t), 0)).Audit(t.Context(), dnsname.MustParse("good.example"))
	if w := finding.Worst(r.Findings); w > finding.Info {
		t.Errorf("worst finding %s: %v", w, r.Findings)
	}
	want := []finding.Area{finding.AreaRouting, finding.AreaPTR, finding.AreaSPF, finding.AreaDMARC, finding.AreaDKIM, finding.AreaMTASTS, finding.AreaTLSRPT, finding.AreaDANE}
	var got []finding.Area
	for _, a := range r.Areas {
		got = append(got, a.Area)
		if a.Status != check.StatusPass {
			t.Errorf("%s: %s %s %v", a.Area, a.Status, a.Error, a.Findings)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("areas %v, want %v (nameservers and blacklists skipped offline)", got, want)
	}
	if len(r.Skipped) != 5 {
		t.Errorf("skipped %v, want nameservers, the MTA-STS fetch, blacklists, SMTP and tiers", r.Skipped)
	}
}

// TestAuditProblems: the findings of every area land in the report, in
// their area and in the merged list.
func TestAuditProblems(t *testing.T) {
	r := auditor(resolve.NewCache(exampleZones(t), 0)).Audit(t.Context(), dnsname.MustParse("tiers.example"))
	for _, tt := range []struct {
		area finding.Area
		id   finding.ID
	}{
		{finding.AreaPTR, finding.PTRMissing},
		{finding.AreaPTR, finding.PTRMismatch},
		{finding.AreaSPF, finding.SPFMissing},
		{finding.AreaDMARC, finding.DMARCMissing},
		{finding.AreaDKIM, finding.DKIMNoneFound},
		{finding.AreaMTASTS, finding.MTASTSMissing},
		{finding.AreaTLSRPT, finding.TLSRPTMissing},
	} {
		a, ok := area(r, tt.area)
		has := func(fs []finding.Finding) bool {
			return slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.ID == tt.id })
		}
		if !ok || !has(a.Findings) || !has(r.Findings) {
			t.Errorf("%s: no %s in the area (%v) or the report", tt.area, tt.id, a.Findings)
		}
	}
	if a, _ := area(r, finding.AreaPTR); a.Status != check.StatusProblems {
		t.Errorf("reverse DNS status %s, want problems", a.Status)
	}
}

// failType fails every lookup of one type with SERVFAIL and passes the
// rest to next.
type failType struct {
	next  resolve.Resolver
	qtype uint16
}

func (f failType) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if q.Type == f.qtype {
		return nil, &resolve.Error{Question: q, Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}
	}
	return f.next.Lookup(ctx, q)
}

// TestAuditTemporaryFailure: a SERVFAIL makes the areas that depend on it
// "error", never a "missing" finding; the others are still judged.
func TestAuditTemporaryFailure(t *testing.T) {
	r := auditor(failType{exampleZones(t), dns.TypeTXT}).Audit(t.Context(), dnsname.MustParse("good.example"))
	for _, name := range []finding.Area{finding.AreaSPF, finding.AreaDMARC, finding.AreaMTASTS, finding.AreaTLSRPT} {
		a, ok := area(r, name)
		if !ok || a.Status != check.StatusError || a.Error == "" {
			t.Errorf("%s: %+v, want status error", name, a)
		}
	}
	for _, id := range []finding.ID{finding.SPFMissing, finding.DMARCMissing, finding.MTASTSMissing, finding.TLSRPTMissing, finding.DKIMNoneFound} {
		if slices.ContainsFunc(r.Findings, func(f finding.Finding) bool { return f.ID == id }) {
			t.Errorf("%s reported although the lookup failed temporarily", id)
		}
	}
	if a, _ := area(r, finding.AreaRouting); a.Status != check.StatusPass {
		t.Errorf("routing %s: a TXT failure must not touch the plan", a.Status)
	}
	if len(r.Errors()) < 4 {
		t.Errorf("Errors() = %v, want one per failed area", r.Errors())
	}
}

// TestReportJSON: check --json has route --json's members plus the areas,
// what was skipped and the details.
func TestReportJSON(t *testing.T) {
	r := auditor(resolve.NewCache(exampleZones(t), 0)).Audit(t.Context(), dnsname.MustParse("tiers.example"))
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "domain", "result", "implicit", "alias_chain", "records", "tiers", "order", "findings", "elapsed_ms", "areas", "skipped", "details"} {
		if v, ok := m[k]; !ok || v == nil {
			t.Errorf("member %q missing or null", k)
		}
	}
	// The top-level findings are every area's, not only the plan's.
	if n := len(m["findings"].([]any)); n != len(r.Findings) || n <= len(r.Plan.Findings) {
		t.Errorf("%d findings in JSON, %d in the report, %d in the plan", n, len(r.Findings), len(r.Plan.Findings))
	}
	details := m["details"].(map[string]any)
	for _, k := range []string{"spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "ptr", "dane"} {
		if _, ok := details[k]; !ok {
			t.Errorf("details lack %q", k)
		}
	}
}

// TestChecksListed: every area of the catalogue has a check, in one list.
func TestChecksListed(t *testing.T) {
	var names []finding.Area
	for _, c := range check.Checks() {
		names = append(names, c.Area)
	}
	for _, e := range finding.Catalogue {
		if !slices.Contains(names, e.Area) {
			t.Errorf("no check for %s (%s)", e.Area, e.ID)
		}
	}
}

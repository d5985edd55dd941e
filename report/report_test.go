package report_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

var escapes = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestColor: escape codes only when the caller asks for colour, and the
// table stays aligned either way (colour only in the last column).
func TestColor(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader("$ORIGIN example.\n@ 60 SOA a. b. 1 2 3 4 5\nd 60 MX 10 mx.d.example.\nmx.d 60 CNAME h.example.\nh 60 A 192.0.2.1\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := (&route.Planner{Resolver: zones}).Plan(t.Context(), dnsname.MustParse("d.example"))
	var plain, colour bytes.Buffer
	report.WriteRoute(&plain, plan, report.Style{})
	report.WriteRoute(&colour, plan, report.Style{Color: true})
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without colour")
	}
	if !strings.Contains(colour.String(), "\x1b[") {
		t.Error("no escape codes with colour")
	}
	// Without its escape codes the coloured text is the plain text: the
	// colours change nothing else, the alignment included.
	if stripped := escapes.ReplaceAllString(colour.String(), ""); stripped != plain.String() {
		t.Errorf("colour output minus escapes differs:\n%s\nplain:\n%s", stripped, plain.String())
	}
}

// TestRouteRecordsOmitted: a plan with no tiers lists its records as
// served, the first route.DefaultMaxExchanges of them, and says how many
// more there were, in the list and past it (route.MaxRecords).
func TestRouteRecordsOmitted(t *testing.T) {
	plan := &route.Plan{Domain: "d.example", Result: route.ResultError, Error: "mail loop",
		Records: []route.Record{{Preference: 10, Exchange: "mx.d.example"}}, RecordsOmitted: 5000}
	var b bytes.Buffer
	if err := report.WriteRoute(&b, plan, report.Style{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "MX 10 mx.d.example\n  … and 5000 more MX records\n") {
		t.Errorf("output:\n%s", b.String())
	}
	plan.RecordsOmitted = 1
	b.Reset()
	report.WriteRoute(&b, plan, report.Style{})
	if !strings.Contains(b.String(), "  … and 1 more MX record\n") {
		t.Errorf("one omitted, output:\n%s", b.String())
	}
	plan.RecordsOmitted = 0
	b.Reset()
	report.WriteRoute(&b, plan, report.Style{})
	if strings.Contains(b.String(), "more MX record") {
		t.Errorf("nothing omitted, output:\n%s", b.String())
	}
	plan.Records = make([]route.Record, 100)
	plan.RecordsOmitted = 7
	b.Reset()
	report.WriteRoute(&b, plan, report.Style{})
	if n := strings.Count(b.String(), "  MX "); n != route.DefaultMaxExchanges || !strings.Contains(b.String(), "… and 43 more MX records") {
		t.Errorf("100 records and 7 omitted: %d listed, output:\n%s", n, b.String())
	}
}

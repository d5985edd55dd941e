package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
)

// TestDisagreeingServers: disagree.test is delegated (NS and glue in the
// parent) to two real Knot servers, 127.0.0.1 and 127.0.0.2 on one port,
// serving different MX sets and SOA serials. The nameserver audit, check
// and check's rendered output report ns-inconsistent and
// ns-serial-mismatch naming both servers and what each serves; for
// agree.test, which both serve from the same text, neither is reported.
func TestDisagreeingServers(t *testing.T) {
	e := startAudit(t)
	ctx, cancel := contextFor(t)
	defer cancel()
	ca := &check.Auditor{
		Resolver:    e.recursive,
		Planner:     &route.Planner{Resolver: e.recursive, IPv4: true},
		Nameservers: e.nameservers(),
		SkipReason:  "the test stays on loopback",
	}
	// What each server serves, as the audit must have seen it.
	served := map[string]struct{ mx, serial string }{
		"ns1.disagree.test (127.0.0.1)": {"MX 10 mx-new.disagree.test", "2026112402"},
		"ns2.disagree.test (127.0.0.2)": {"MX 10 mx-old.disagree.test", "2026110901"},
	}
	// Both servers and both versions of the answer are in the message.
	named := func(t *testing.T, f finding.Finding, what func(mx, serial string) string) {
		t.Helper()
		for server, s := range served {
			if !strings.Contains(f.Message, server) || !strings.Contains(f.Message, what(s.mx, s.serial)) {
				t.Errorf("%s does not name %s and its %q: %s", f.ID, server, what(s.mx, s.serial), f.Message)
			}
		}
	}
	nsIDs := func(fs []finding.Finding) []finding.ID {
		var out []finding.ID
		for _, f := range fs {
			if f.ID == finding.NSInconsistent || f.ID == finding.NSSerialMismatch {
				out = append(out, f.ID)
			}
		}
		slices.Sort(out)
		return out
	}

	t.Run("disagree.test", func(t *testing.T) {
		rep, err := nameserver.Lookup(ctx, e.recursive, dnsname.MustParse("disagree.test"), *e.nameservers())
		if err != nil {
			t.Fatal(err)
		}
		// Each real server was asked and its own answers recorded.
		if len(rep.Servers) != 2 {
			t.Fatalf("servers %+v, want ns1 and ns2", rep.Servers)
		}
		for _, srv := range rep.Servers {
			if len(srv.Addresses) != 1 {
				t.Fatalf("%s: addresses %+v", srv.Name, srv.Addresses)
			}
			a := srv.Addresses[0]
			s, ok := served[srv.Name+" ("+a.Address.String()+")"]
			if !ok || a.MX.Status != nameserver.StatusOK || a.SOA.Serial == nil ||
				!slices.Equal(a.MX.Records, []string{s.mx}) || fmt.Sprint(*a.SOA.Serial) != s.serial {
				t.Errorf("%s (%s): MX %+v, SOA %+v; want %+v", srv.Name, a.Address, a.MX, a.SOA, s)
			}
		}
		want := []finding.ID{finding.NSInconsistent, finding.NSSerialMismatch}
		if got := nsIDs(nameserver.Findings(rep)); !slices.Equal(got, want) {
			t.Fatalf("nameserver audit: %v, want %v\n%s", got, want, describe(nameserver.Findings(rep)))
		}

		crep := ca.Audit(ctx, dnsname.MustParse("disagree.test"))
		if got := nsIDs(crep.Findings); !slices.Equal(got, want) {
			t.Fatalf("check: %v, want %v\n%s", got, want, describe(crep.Findings))
		}
		i := slices.IndexFunc(crep.Areas, func(a check.AreaResult) bool { return a.Area == finding.AreaNameservers })
		if i < 0 || crep.Areas[i].Status != check.StatusProblems || !slices.Equal(nsIDs(crep.Areas[i].Findings), want) {
			t.Errorf("check's nameservers area %+v, want problems with %v", crep.Areas, want)
		}
		for _, f := range crep.Findings {
			switch f.ID {
			case finding.NSInconsistent:
				named(t, f, func(mx, _ string) string { return mx })
			case finding.NSSerialMismatch:
				named(t, f, func(_, serial string) string { return serial })
			}
		}

		// What a user reads: the text report and the JSON.
		var txt, js bytes.Buffer
		if err := report.WriteCheck(&txt, crep, report.Style{}); err != nil {
			t.Fatal(err)
		}
		if err := report.WriteJSON(&js, crep); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"ns-inconsistent", "ns-serial-mismatch", "ns1.disagree.test (127.0.0.1)", "ns2.disagree.test (127.0.0.2)"} {
			if !strings.Contains(txt.String(), s) {
				t.Errorf("check's text output does not show %q:\n%s", s, txt.String())
			}
		}
		var out struct {
			Findings []struct{ ID string }
			Details  struct {
				Nameservers struct{ Servers []struct{ Name string } }
			}
		}
		if err := json.Unmarshal(js.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		var ids, names []string
		for _, f := range out.Findings {
			ids = append(ids, f.ID)
		}
		for _, s := range out.Details.Nameservers.Servers {
			names = append(names, s.Name)
		}
		if !slices.Contains(ids, "ns-inconsistent") || !slices.Contains(ids, "ns-serial-mismatch") ||
			!slices.Equal(names, []string{"ns1.disagree.test", "ns2.disagree.test"}) {
			t.Errorf("check --json: findings %v, servers %v", ids, names)
		}
	})

	t.Run("agree.test", func(t *testing.T) {
		rep, err := nameserver.Lookup(ctx, e.recursive, dnsname.MustParse("agree.test"), *e.nameservers())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Servers) != 2 {
			t.Fatalf("servers %+v, want ns1 and ns2", rep.Servers)
		}
		if got := nsIDs(nameserver.Findings(rep)); len(got) != 0 {
			t.Errorf("nameserver audit: %v for servers that agree\n%s", got, describe(nameserver.Findings(rep)))
		}
		crep := ca.Audit(ctx, dnsname.MustParse("agree.test"))
		if got := nsIDs(crep.Findings); len(got) != 0 {
			t.Errorf("check: %v for servers that agree\n%s", got, describe(crep.Findings))
		}
	})
}

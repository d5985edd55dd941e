package check

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// TestSummariesSingular pins the areas' summaries where a count can be
// one: "1 MX pattern", "1 backup tier", one address outside the zones (the
// golden files pin "1 server asked" and "1 listing").
func TestSummariesSingular(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "mx1.d.test", Addresses: []string{"192.0.2.1"}}}},
		{Preference: 20, Hosts: []route.Host{{Name: "mx2.d.test", Addresses: []string{"192.0.2.2"}}}},
	}}
	f := &Facts{
		Plan:   plan,
		MTASTS: &mtasts.Result{Domain: "d.test", Policy: &mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"mx1.d.test"}}},
		SMTP: []*probe.Result{
			{Host: "mx1.d.test", Address: netip.MustParseAddr("192.0.2.1"), Port: 25},
			{Host: "mx2.d.test", Address: netip.MustParseAddr("192.0.2.2"), Port: 25},
		},
		PTR: []probe.HostPTR{{Host: "mx1.d.test", Results: []*rdns.Result{{Address: netip.MustParseAddr("192.0.2.1")}}, Outside: 1}},
	}
	for _, tt := range []struct {
		name  string
		judge func(*Facts) Verdict
		want  string
	}{
		{"MTA-STS", judgeMTASTS, "mode enforce, 1 MX pattern"},
		{"tiers", judgeTiers, "1 backup tier compared with the primary"},
		{"PTR", judgePTR, "1 address checked, 1 not checked (its reverse zone is not in the --zone files)"},
	} {
		if got := tt.judge(f).Summary; got != tt.want {
			t.Errorf("%s: summary %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestPTRNoneChecked: reverse DNS with every address outside the --zone
// files checked nothing, and is not a pass ("0 addresses checked" was).
func TestPTRNoneChecked(t *testing.T) {
	f := &Facts{
		Plan: &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{{Name: "mx.d.test", Addresses: []string{"10.1.2.3"}}}}}},
		PTR:  []probe.HostPTR{{Host: "mx.d.test", Outside: 1}},
	}
	if v := judgePTR(f); v.Outcome != NotChecked || !strings.Contains(v.Reason, "--zone") {
		t.Errorf("verdict %+v, want not checked for the --zone files", v)
	}
}

// TestNoExchangeAddresses: a plan whose exchanges have no address (an IP
// literal, a dangling name) has no PTR and no TLSA to check: neither area
// is a pass ("0 addresses checked", "TLSA records for 0 of 0 exchanges").
func TestNoExchangeAddresses(t *testing.T) {
	f := &Facts{
		Plan: &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{{Name: "192.0.2.150"}}}}},
		PTR:  []probe.HostPTR{{Host: "192.0.2.150"}},
	}
	if v := judgePTR(f); v.Outcome != NothingToCheck {
		t.Errorf("reverse DNS %+v, want nothing to check", v)
	}
	if v := judgeDANE(f); v.Outcome != NothingToCheck {
		t.Errorf("DANE %+v, want nothing to check", v)
	}
}

// TestSummaryRecordEscaped: the SPF and TLS-RPT summaries quote the
// records as served, so a record with terminal escape sequences is
// escaped (internal/printable) and a huge one cut to one line's worth.
func TestSummaryRecordEscaped(t *testing.T) {
	for _, record := range []string{
		"v=spf1 a:\x1b[2J.d.test \x1b]0;pwned\x07 -all",
		"v=spf1 " + strings.Repeat("ip4:192.0.2.1 ", 5000) + "-all",
	} {
		f := &Facts{SPF: &spf.Analysis{Domain: "d.test", Tree: &spf.Node{Domain: "d.test", Record: record}}}
		got := judgeSPF(f).Summary
		if strings.ContainsAny(got, "\x1b\x07") || len(got) > maxSummaryRecord+100 {
			t.Errorf("summary of %d octets: %.120q", len(got), got)
		}
	}
	rua := "mailto:r@d.test"
	for range 3000 {
		rua += ",mailto:r@d.test"
	}
	f := &Facts{TLSRPT: &tlsrpt.Result{Domain: "d.test", Record: &tlsrpt.Record{RUA: strings.Split(rua, ",")}}}
	if got := judgeTLSRPT(f).Summary; len(got) > maxSummaryRecord+100 {
		t.Errorf("TLS-RPT summary of %d octets", len(got))
	}
}

// TestMTASTSNotFetched: a record whose policy was not fetched (offline)
// says so, not just "record id=..." beside a pass mark.
func TestMTASTSNotFetched(t *testing.T) {
	f := &Facts{MTASTS: &mtasts.Result{Domain: "d.test", Record: &mtasts.Record{ID: "1"}}}
	if got, want := judgeMTASTS(f).Summary, "record id=1, policy not fetched"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestDKIMSummary: one key is "key at selector mail", two are listed.
func TestDKIMSummary(t *testing.T) {
	for _, tt := range []struct {
		selectors []string
		want      string
	}{
		{[]string{"mail"}, "key at selector mail"},
		{[]string{"s1", "s2"}, "keys at selectors s1 and s2"},
	} {
		res := &dkim.Result{Domain: "d.test"}
		for _, sel := range tt.selectors {
			res.Keys = append(res.Keys, dkim.Key{Selector: sel})
		}
		if got := judgeDKIM(&Facts{DKIM: res}).Summary; got != tt.want {
			t.Errorf("summary %q, want %q", got, tt.want)
		}
	}
}

// TestDNSBLUnusable: a list that refused every address is named apart
// from the lists that answered, and when none answered the area is not
// checked ("could not check", with the list's reason), not a pass with
// "0 listings".
func TestDNSBLUnusable(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{{Name: "mx.d.test", Addresses: []string{"192.0.2.1"}}}}}}
	a := netip.MustParseAddr("192.0.2.1")
	refused := dnsbl.Entry{List: "b.test", Address: a, Status: dnsbl.Unusable, Reason: "the list refused the query (return code 127.255.255.254)"}
	f := &Facts{Plan: plan, DNSBL: &dnsbl.Result{Entries: []dnsbl.Entry{{List: "a.test", Address: a, Status: dnsbl.Clean}, refused}}}
	if got, want := judgeDNSBL(f).Summary, "0 listings on a.test; not usable: b.test"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	f.DNSBL.Entries = []dnsbl.Entry{refused}
	if v := judgeDNSBL(f); v.Outcome != Judged || v.Err == nil || !strings.Contains(v.Err.Error(), "b.test: the list refused") {
		t.Errorf("verdict %+v, want an error with b.test's reason", v)
	}
}

// TestSMTPSummaryVerb: "1 of 2 addresses answers", "0 of 2 addresses answer".
func TestSMTPSummaryVerb(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{{Name: "mx.d.test", Addresses: []string{"192.0.2.1", "192.0.2.2"}}}}}}
	greeted := &probe.Result{Host: "mx.d.test", Address: netip.MustParseAddr("192.0.2.1"), Port: 25, Banner: &probe.Banner{Code: 220}}
	silent := &probe.Result{Host: "mx.d.test", Address: netip.MustParseAddr("192.0.2.2"), Port: 25}
	for _, tt := range []struct {
		smtp []*probe.Result
		want string
	}{
		{[]*probe.Result{greeted, silent}, "1 of 2 addresses answers, 0 with STARTTLS"},
		{[]*probe.Result{silent, silent}, "0 of 2 addresses answer, 0 with STARTTLS"},
	} {
		if got := judgeSMTP(&Facts{Plan: plan, SMTP: tt.smtp}).Summary; got != tt.want {
			t.Errorf("summary %q, want %q", got, tt.want)
		}
	}
}

// TestDANECountsAgree: DANE counts only exchanges with addresses, and
// says so when routing has more ("2 exchanges" beside "0 of 1 exchange"
// read as a contradiction).
func TestDANECountsAgree(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "gone.d.test"}}},
		{Preference: 20, Hosts: []route.Host{{Name: "mx.d.test", Addresses: []string{"192.0.2.1"}}}},
	}}
	f := &Facts{Plan: plan, DANE: []*dane.Result{{Host: "mx.d.test"}}}
	if got, want := judgeDANE(f).Summary, "TLSA records for 0 of 1 exchange with an address"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	plan.Tiers[0].Hosts[0].Addresses = []string{"192.0.2.2"}
	f.DANE = append(f.DANE, &dane.Result{Host: "gone.d.test"})
	if got, want := judgeDANE(f).Summary, "TLSA records for 0 of 2 exchanges"; got != want {
		t.Errorf("every exchange with an address: summary %q, want %q", got, want)
	}
}

// TestSMTPOutOfTime: an address our own deadline cut short was not
// probed: the SMTP area could not be checked (an error unwrapping to
// context.DeadlineExceeded), with no finding about that server, and the
// tiers are not compared on it (a primary not probed in time is not a
// primary that refuses: no mx-nolisting).
func TestSMTPOutOfTime(t *testing.T) {
	plan := &route.Plan{Result: route.ResultOK, Tiers: []route.Tier{
		{Preference: 10, Hosts: []route.Host{{Name: "mx1.d.test", Addresses: []string{"192.0.2.1"}}}},
		{Preference: 20, Hosts: []route.Host{{Name: "mx2.d.test", Addresses: []string{"192.0.2.2"}}}},
	}}
	cut := &probe.Result{Host: "mx1.d.test", Address: netip.MustParseAddr("192.0.2.1"), Port: 25,
		Err: &probe.StepError{Step: probe.StepConnect, Kind: probe.KindOutOfTime, Message: "connect 192.0.2.1:25: the time allowed ran out"}}
	greeted := &probe.Result{Host: "mx2.d.test", Address: netip.MustParseAddr("192.0.2.2"), Port: 25, Connected: true,
		Banner: &probe.Banner{Code: 220, Host: "mx2.d.test"}, EHLO: &probe.EHLO{Command: "EHLO", Code: 250}, StartTLS: true}
	f := &Facts{Plan: plan, SMTP: []*probe.Result{cut, greeted}}
	v := judgeSMTP(f)
	if v.Err == nil || !errors.Is(v.Err, context.DeadlineExceeded) || v.Err.Error() != "mx1.d.test[192.0.2.1]:25 not probed: the time allowed ran out" {
		t.Errorf("SMTP error %v, want mx1 not probed", v.Err)
	}
	for _, fd := range v.Findings {
		if fd.ID == finding.SMTPUnreachable {
			t.Errorf("finding %v about a server that was not probed", fd)
		}
	}
	if fs := judgeTiers(f).Findings; len(fs) != 0 {
		t.Errorf("tier findings %v, want none", fs)
	}
}

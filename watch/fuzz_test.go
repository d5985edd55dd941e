package watch

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/route"
)

// randomSnapshot builds a snapshot from small vocabularies, so that two of
// them share exchanges, addresses and selectors and differ in many ways,
// duplicates and missing parts included.
func randomSnapshot(r *rand.Rand) *Snapshot {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	some := func(xs ...string) []string {
		var out []string
		for range r.IntN(3) {
			out = append(out, pick(xs...))
		}
		return out
	}
	hosts := []string{"mx1.example.com", "mx2.example.com", "", "example.com"}
	addrs := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}
	s := &Snapshot{
		Version: SnapshotVersion, Domain: "example.com",
		At:       time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(60)),
		Result:   route.Result(pick("ok", "ok", "null-mx", "nxdomain", "no-mail", "error")),
		Implicit: r.IntN(4) == 0,
	}
	for range r.IntN(4) {
		s.Records = append(s.Records, MX{pick(hosts...), uint16(r.IntN(3) * 10), uint32(r.IntN(2)*3300 + 300)})
	}
	for range r.IntN(4) {
		s.Hosts = append(s.Hosts, Host{Name: pick(hosts...), Addresses: some(addrs...), Unsettled: r.IntN(5) == 0})
	}
	if r.IntN(4) > 0 {
		serial := uint32(r.IntN(3))
		s.Nameservers = &Nameservers{Apex: "example.com", MXAgree: r.IntN(2) == 0, SerialsAgree: r.IntN(2) == 0,
			Servers: []NSReply{{Server: "ns1.example.com", Address: pick(addrs...), Serial: &serial, MX: some("MX 10 a", "MX 20 b"), MXAnswered: r.IntN(2) == 0}}}
	}
	if r.IntN(4) > 0 {
		all := pick("-all", "~all", "?all", "+all", "")
		s.SPF = &SPF{Record: pick("", "v=spf1 "+all, "v=spf1 mx "+all), All: all}
	}
	if r.IntN(4) > 0 {
		s.DMARC = &DMARC{Record: pick("", "v=DMARC1; p=x"), Policy: dmarc.Policy(pick("", "none", "quarantine", "reject")),
			Subdomain: dmarc.Policy(pick("", "none", "reject")), Percent: r.IntN(3) * 50}
	}
	if r.IntN(4) > 0 {
		s.DKIM = &DKIM{Probed: some("mail", "s1"), Failed: some("mail")}
		for range r.IntN(3) {
			s.DKIM.Keys = append(s.DKIM.Keys, DKIMKey{Selector: pick("mail", "s1"), Text: pick("a", "b"), KeyType: "rsa", Bits: r.IntN(3) * 1024, Usable: r.IntN(2) == 0})
		}
	}
	if r.IntN(4) > 0 {
		s.MTASTS = &MTASTS{TXT: pick("", "v=STSv1; id=1"), ID: pick("1", "2"), Fetched: r.IntN(2) == 0,
			Mode: mtasts.Mode(pick("enforce", "testing", "none", "")), MaxAge: int64(r.IntN(2)) * 86400, MX: some("mx1.example.com", "*.example.com")}
	}
	if r.IntN(4) > 0 {
		s.TLSRPT = &TLSRPT{Record: pick("", "v=TLSRPTv1; rua=mailto:a@b", "bad"), RUA: some("mailto:a@b")}
	}
	for range r.IntN(4) {
		c := &Cert{Fingerprint: pick("aa", "bb"), Subject: "CN=x", NotAfter: s.At.AddDate(0, 0, r.IntN(40)-5), Verified: r.IntN(2) == 0}
		if r.IntN(3) == 0 {
			c = nil
		}
		s.SMTP = append(s.SMTP, SMTP{Host: pick(hosts...), Address: pick(addrs...), Reached: r.IntN(3) > 0, StartTLS: r.IntN(2) == 0, Cert: c})
	}
	for range r.IntN(4) {
		s.DNSBL = append(s.DNSBL, Listing{Address: pick(addrs...), List: pick("bl.test", "bl2.test"), Listed: r.IntN(2) == 0})
	}
	ids := []finding.ID{finding.DNSBLListed, finding.SMTPStartTLSMissing, finding.MXTargetNoAddress, finding.DMARCNoRUA, finding.MXLookupFailed}
	for range r.IntN(4) {
		s.Findings = append(s.Findings, Finding{Area: finding.Area(pick("routing", "blacklists", "SMTP", "DMARC")), ID: ids[r.IntN(len(ids))],
			Severity: finding.Severity(1 + r.IntN(3)), Subject: pick(addrs...)})
	}
	areas := []finding.Area{finding.AreaRouting, finding.AreaNameservers, finding.AreaSPF, finding.AreaDMARC, finding.AreaDKIM,
		finding.AreaMTASTS, finding.AreaTLSRPT, finding.AreaSMTP, finding.AreaDNSBL}
	for _, a := range areas {
		switch r.IntN(6) {
		case 0:
			s.Incomplete = append(s.Incomplete, a)
		case 1:
		default:
			s.Checked = append(s.Checked, a)
		}
	}
	return s
}

// roundTrip is s as stored and read back.
func roundTrip(t *testing.T, s *Snapshot) *Snapshot {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// FuzzDiff checks Diff's properties over pairs of random snapshots: a
// snapshot diffs as nothing against itself or its stored copy, Diff gives
// the same changes every time and from stored copies, and every change
// has a listed kind, a severity and a one-line message.
func FuzzDiff(f *testing.F) {
	for i := range uint64(20) {
		f.Add(i, i*7919+1)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		older := randomSnapshot(rand.New(rand.NewPCG(a, 1)))
		newer := randomSnapshot(rand.New(rand.NewPCG(b, 2)))
		storedOlder, storedNewer := roundTrip(t, older), roundTrip(t, newer)
		for _, s := range [][2]*Snapshot{{older, storedOlder}, {newer, storedNewer}} {
			if d := Diff(s[0], s[0]); len(d) != 0 {
				t.Fatalf("Diff(s, s) = %+v", d)
			}
			if d := Diff(s[0], s[1]); len(d) != 0 {
				t.Fatalf("Diff(s, stored s) = %+v", d)
			}
		}
		got := Diff(older, newer)
		if d := cmp.Diff(got, Diff(older, newer)); d != "" {
			t.Fatalf("Diff is not deterministic:\n%s", d)
		}
		if d := cmp.Diff(got, Diff(storedOlder, storedNewer)); d != "" {
			t.Fatalf("Diff of stored snapshots differs:\n%s", d)
		}
		for _, c := range got {
			if !slices.Contains(Kinds(), c.Kind) || c.Severity < finding.Info || c.Severity > finding.Error ||
				c.Message == "" || strings.ContainsAny(c.Message, "\r\n") {
				t.Fatalf("bad change %+v", c)
			}
		}
	})
}

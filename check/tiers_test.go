package check

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/finding"
)

// strong is an address with every protection.
func strong(tier int, pref uint16, host, addr string) Endpoint {
	return Endpoint{Tier: tier, Pref: pref, Host: host, Addr: netip.MustParseAddr(addr),
		Connected: true, Greeted: true, STARTTLS: true, ValidCert: true, TLS12: true,
		PTR: true, PTRKnown: true, Clean: true, CleanKnown: true}
}

func with(e Endpoint, f func(*Endpoint)) Endpoint { f(&e); return e }

func TestTierFindings(t *testing.T) {
	p1 := strong(0, 10, "mx1.example", "192.0.2.1")
	p2 := strong(0, 10, "mx2.example", "192.0.2.2")
	b := strong(1, 20, "backup.example", "198.51.100.1")
	down := func(e *Endpoint) {
		e.Connected, e.Greeted, e.STARTTLS, e.ValidCert, e.TLS12 = false, false, false, false, false
	}
	for _, tt := range []struct {
		name     string
		eps      []Endpoint
		want     []finding.ID
		contains []string // in the first finding's message
	}{
		{"equal tiers", []Endpoint{p1, p2, b}, nil, nil},
		{"one tier only", []Endpoint{p1, with(p2, func(e *Endpoint) { e.STARTTLS = false })}, nil, nil},
		{"backup without STARTTLS", []Endpoint{p1, with(b, func(e *Endpoint) { e.STARTTLS, e.ValidCert, e.TLS12 = false, false, false })},
			[]finding.ID{finding.MXBackupWeaker}, []string{"backup.example", "STARTTLS", "a valid certificate", "TLS 1.2", "MX 20", "MX 10"}},
		{"backup with a bad certificate", []Endpoint{p1, with(b, func(e *Endpoint) { e.ValidCert = false })},
			[]finding.ID{finding.MXBackupWeaker}, []string{"a valid certificate (198.51.100.1)"}},
		{"backup without PTR", []Endpoint{p1, with(b, func(e *Endpoint) { e.PTR = false })},
			[]finding.ID{finding.MXBackupWeaker}, []string{"reverse DNS"}},
		{"backup listed", []Endpoint{p1, with(b, func(e *Endpoint) { e.Clean = false })},
			[]finding.ID{finding.MXBackupWeaker}, []string{"blacklist"}},
		// The primary itself lacks the protection: nothing to downgrade.
		{"both without STARTTLS", []Endpoint{with(p1, func(e *Endpoint) { e.STARTTLS = false }), with(b, func(e *Endpoint) { e.STARTTLS = false })}, nil, nil},
		// One primary address lacks it: the primary does not give it.
		{"primary mixed", []Endpoint{p1, with(p2, func(e *Endpoint) { e.ValidCert = false }), with(b, func(e *Endpoint) { e.ValidCert = false })}, nil, nil},
		// Unknown is not lacking: offline PTR, blacklists not asked.
		{"PTR unknown at the backup", []Endpoint{p1, with(b, func(e *Endpoint) { e.PTR, e.PTRKnown = false, false })}, nil, nil},
		{"blacklists not asked", []Endpoint{with(p1, func(e *Endpoint) { e.Clean, e.CleanKnown = false, false }), with(b, func(e *Endpoint) { e.Clean, e.CleanKnown = false, false })}, nil, nil},
		// A backup that does not answer is the SMTP area's business.
		{"backup down", []Endpoint{p1, with(b, down)}, nil, nil},
		{"stronger backup", []Endpoint{with(p1, func(e *Endpoint) { e.STARTTLS = false }), b}, nil, nil},
		{"nolisting", []Endpoint{with(p1, down), with(p2, down), b},
			[]finding.ID{finding.MXNolisting}, []string{"mx1.example, mx2.example", "backup.example [198.51.100.1]"}},
		{"everything down", []Endpoint{with(p1, down), with(b, down)}, nil, nil},
		{"one primary up", []Endpoint{with(p1, down), p2, b}, nil, nil},
		{"third tier weaker", []Endpoint{p1, b, with(strong(2, 30, "last.example", "203.0.113.1"), func(e *Endpoint) { e.TLS12 = false })},
			[]finding.ID{finding.MXBackupWeaker}, []string{"last.example (MX 30)", "TLS 1.2 or later (203.0.113.1)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := TierFindings(tt.eps)
			var got []finding.ID
			for _, f := range fs {
				got = append(got, f.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("findings %v, want %v: %v", got, tt.want, fs)
			}
			for _, s := range tt.contains {
				if !strings.Contains(fs[0].Message, s) {
					t.Errorf("message %q does not mention %q", fs[0].Message, s)
				}
			}
		})
	}
}

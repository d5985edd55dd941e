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

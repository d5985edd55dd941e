package check

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// Endpoint is what a sender finds at one exchange address: the facts the
// tier comparison rests on, taken from the SMTP probe, the PTR lookups and
// the blacklist answers.
type Endpoint struct {
	Tier int    // index into the plan's tiers, 0 = primary
	Pref uint16 // the tier's MX preference
	Host string
	Addr netip.Addr

	// Connected: the TCP connection opened. Greeted: the server then sent
	// a 220 greeting, so a sender can deliver there.
	Connected, Greeted bool
	// STARTTLS: offered and the handshake succeeded. ValidCert: the chain
	// verifies to a trusted root, names the MX host and is in its validity
	// period. TLS12: the negotiated version is TLS 1.2 or later.
	STARTTLS, ValidCert, TLS12 bool
	// PTR: forward-confirmed reverse DNS. PTRKnown: it was looked up (not
	// an offline run outside the --zone files, not a failed lookup).
	PTR, PTRKnown bool
	// Clean: listed on no blacklist asked. CleanKnown: the blacklists
	// were asked and answered.
	Clean, CleanKnown bool
}

// protection is one thing a sender can rely on at an exchange, which an
// attacker gains by pushing mail to a backup that lacks it.
type protection struct {
	name  string
	has   func(e Endpoint) bool
	known func(e Endpoint) bool
}

var protections = []protection{
	{"STARTTLS", func(e Endpoint) bool { return e.STARTTLS }, always},
	{"a valid certificate", func(e Endpoint) bool { return e.ValidCert }, always},
	{"TLS 1.2 or later", func(e Endpoint) bool { return e.TLS12 }, always},
	{"forward-confirmed reverse DNS", func(e Endpoint) bool { return e.PTR }, func(e Endpoint) bool { return e.PTRKnown }},
	{"a clean blacklist record", func(e Endpoint) bool { return e.Clean }, func(e Endpoint) bool { return e.CleanKnown }},
}

func always(Endpoint) bool { return true }

// TierFindings compares the backup tiers with the primary.
//
// mx-backup-weaker: a sender that cannot reach the primary tier moves on
// to the next (RFC 5321 §5.1), so whoever can block the primary (a network
// attacker, a flood) chooses where mail goes. A protection the primary
// gives — every primary address that answers has it — and a backup
// address lacks is a downgrade handed to that attacker. Only addresses
// that answered SMTP are compared: one that did not is reported by the
// SMTP area already.
//
// mx-nolisting: every primary address refuses connections or does not
// answer while a backup greets, the pattern of "nolisting"; real senders
// retry at the backup, but it delays all mail and some senders give up.
func TierFindings(eps []Endpoint) []finding.Finding {
	tiers := map[int][]Endpoint{}
	last := 0
	for _, e := range eps {
		tiers[e.Tier] = append(tiers[e.Tier], e)
		last = max(last, e.Tier)
	}
	primary := tiers[0]
	if len(primary) == 0 || last == 0 {
		return nil
	}
	var fs []finding.Finding
	greeted := func(e Endpoint) bool { return e.Greeted }
	if !slices.ContainsFunc(primary, greeted) {
		for t := 1; t <= last; t++ {
			if i := slices.IndexFunc(tiers[t], greeted); i >= 0 {
				b := tiers[t][i]
				fs = append(fs, finding.Newf(finding.MXNolisting, hostList(primary),
					"No address of the primary tier (MX %d: %s) accepts SMTP connections, while %s [%s] at MX %d does: senders always start with a failed attempt.",
					primary[0].Pref, hostList(primary), b.Host, b.Addr, b.Pref))
				break
			}
		}
		return fs
	}

	// What every answering primary address has.
	var given []protection
	for _, p := range protections {
		all := true
		for _, e := range primary {
			if e.Greeted && (!p.known(e) || !p.has(e)) {
				all = false
			}
		}
		if all {
			given = append(given, p)
		}
	}
	if len(given) == 0 {
		return nil
	}
	// One finding per backup host, naming what it lacks.
	for t := 1; t <= last; t++ {
		lacks := map[string][]string{}
		var hosts []string
		for _, e := range tiers[t] {
			if !e.Greeted {
				continue
			}
			for _, p := range given {
				if p.known(e) && !p.has(e) {
					if _, ok := lacks[e.Host]; !ok {
						hosts = append(hosts, e.Host)
					}
					what := p.name + " (" + e.Addr.String() + ")"
					lacks[e.Host] = append(lacks[e.Host], what)
				}
			}
		}
		for _, h := range hosts {
			fs = append(fs, finding.Newf(finding.MXBackupWeaker, h,
				"The backup exchange %s (MX %d) lacks %s, which the primary tier (MX %d) has: an attacker who blocks the primary gets the mail delivered without it.",
				h, tiers[t][0].Pref, prose.List(lacks[h]), primary[0].Pref))
		}
	}
	return fs
}

// hostList names the distinct hosts of eps, in order.
func hostList(eps []Endpoint) string {
	var hs []string
	for _, e := range eps {
		if !slices.Contains(hs, e.Host) {
			hs = append(hs, e.Host)
		}
	}
	return strings.Join(hs, ", ")
}

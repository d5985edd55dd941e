package nameserver

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// maxListed bounds how many servers one finding's message names.
const maxListed = 4

// serverFindings reports every address that did not answer (ns-unreachable)
// or answered without authority (ns-lame), and every NS name without an
// address (ns-unreachable). One finding per server and kind; its subject
// names the server and the addresses concerned.
func serverFindings(res *Result) []finding.Finding {
	var fs []finding.Finding
	apex := res.Apex
	port := res.port
	if port == 0 {
		port = DefaultPort
	}
	for _, s := range res.Servers {
		if s.unresolved != "" {
			// The name resolves to nothing (NXDOMAIN or no address):
			// RFC 1034 §4.3.1 needs a reachable address for every
			// server of the zone.
			fs = append(fs, finding.Newf(finding.NSUnreachable, s.Name,
				"%s is in the NS set of %s, but it %s, so nobody can ask it.", s.Name, apex, s.unresolved))
			continue
		}
		// Lame first: an address that answers badly to one question and
		// not at all to the other is lame, and reported once.
		byReason := map[Status]map[string][]netip.Addr{StatusLame: {}, StatusUnreachable: {}}
		var order []struct {
			st     Status
			reason string
		}
		var refused []netip.Addr
		var why []string
		for _, a := range s.Addresses {
			if a.MX.Status == StatusNotAllowed {
				refused, why = append(refused, a.Address), append(why, a.MX.Reason)
				continue
			}
			st := StatusUnreachable
			if a.MX.Status == StatusLame || a.SOA.Status == StatusLame {
				st = StatusLame
			} else if a.MX.Status != StatusUnreachable && a.SOA.Status != StatusUnreachable {
				continue
			}
			reason := combine(a.MX, a.SOA, st)
			if _, ok := byReason[st][reason]; !ok {
				order = append(order, struct {
					st     Status
					reason string
				}{st, reason})
			}
			byReason[st][reason] = append(byReason[st][reason], a.Address)
		}
		for _, o := range order {
			subject := label(s.Name, byReason[o.st][o.reason])
			if o.st == StatusLame {
				// RFC 1912 §2.8, RFC 8499 §7: lame delegation.
				fs = append(fs, finding.Newf(finding.NSLame, subject,
					"%s is in the NS set of %s but is not authoritative for it: it %s.", subject, apex, o.reason))
			} else {
				fs = append(fs, finding.Newf(finding.NSUnreachable, subject,
					"%s, in the NS set of %s, did not answer on port %d: it %s.", subject, apex, port, o.reason))
			}
		}
		if len(refused) > 0 {
			// Not asked: the policy refuses non-public addresses
			// (docs/security.md#what-serve-refuses), which says nothing
			// of the server.
			subject := label(s.Name, refused)
			fs = append(fs, finding.Newf(finding.NSTargetRefused, subject,
				"%s, in the NS set of %s, was not asked: %s, and this server connects to public addresses only.", subject, apex, strings.Join(why, "; ")))
		}
	}
	return fs
}

// combine says what went wrong with status st in the replies to the MX and
// SOA questions of one address: "answered REFUSED (MX and SOA questions)".
func combine(mx, soa Reply, st Status) string {
	switch {
	case mx.Status == st && soa.Status == st && mx.Reason == soa.Reason:
		return mx.Reason + " (MX and SOA questions)"
	case mx.Status == st && soa.Status == st:
		return mx.Reason + " (MX question) and " + soa.Reason + " (SOA question)"
	case mx.Status == st:
		return mx.Reason + " (MX question)"
	}
	return soa.Reason + " (SOA question)"
}

// group is the addresses that gave one answer, by server.
type group struct {
	key     string
	members []member // in report order
	count   int
	newest  bool // holds an address that serves the newest serial
}

// member is one server's addresses in a group. A group has at most
// MaxServers members, nearly always one or two: a slice searched in
// order cost less than a map per group, which was 4 % of a scan's
// allocations (docs/performance.md, "The audit").
type member struct {
	server string
	addrs  []netip.Addr
}

func (g *group) add(server string, ip netip.Addr) {
	g.count++
	for i := range g.members {
		if g.members[i].server == server {
			g.members[i].addrs = append(g.members[i].addrs, ip)
			return
		}
	}
	g.members = append(g.members, member{server, []netip.Addr{ip}})
}

// of returns server's addresses in the group, nil when it has none.
func (g *group) of(server string) []netip.Addr {
	for _, m := range g.members {
		if m.server == server {
			return m.addrs
		}
	}
	return nil
}

// describe names a group's servers for a message, at most maxListed.
func (g *group) describe() string {
	var parts []string
	for i, m := range g.members {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("%d more", len(g.members)-maxListed))
			break
		}
		parts = append(parts, label(m.server, m.addrs))
	}
	return prose.List(parts)
}

// compareMX reports ns-inconsistent: the servers that answered the MX
// question authoritatively (or with a referral) do not all give the same
// MX set. The set is compared as a set (RFC 2181 §5): preference and
// exchange, order ignored. The reference is the answer most addresses
// gave; on a tie, the one of a server with the newest serial. Every server
// giving another answer gets a finding naming what it said and who said
// the reference.
func compareMX(res *Result) []finding.Finding {
	newest, _ := newestSerial(res)
	var groups []*group
	byKey := map[string]*group{}
	for _, s := range res.Servers {
		for _, a := range s.Addresses {
			if a.MX.Status != StatusOK && a.MX.Status != StatusReferral {
				continue
			}
			k := mxKey(a.MX)
			g := byKey[k]
			if g == nil {
				g = &group{key: k}
				byKey[k] = g
				groups = append(groups, g)
			}
			g.add(s.Name, a.Address)
			if a.SOA.Status == StatusOK && newest != nil && *a.SOA.Serial == *newest {
				g.newest = true
			}
		}
	}
	if len(groups) < 2 {
		return nil
	}
	ref := groups[0]
	for _, g := range groups[1:] {
		if g.count > ref.count || (g.count == ref.count && g.newest && !ref.newest) {
			ref = g
		}
	}
	var fs []finding.Finding
	for _, s := range res.Servers {
		for _, g := range groups {
			if g == ref || g.of(s.Name) == nil {
				continue
			}
			subject := label(s.Name, g.of(s.Name))
			// RFC 1034 §4.3.5: every server of a zone must serve the
			// same data; a sender routes by whichever it reached.
			fs = append(fs, finding.Newf(finding.NSInconsistent, subject,
				"%s answers %s for %s, but %s %s.", subject, g.key, res.Name, ref.describe(), verb(ref, "answers", "answer")+" "+ref.key))
		}
	}
	return fs
}

// mxKey is the text of an MX reply, used both to compare and in messages.
func mxKey(r Reply) string {
	switch {
	case r.Status == StatusReferral:
		return "with a referral to " + r.Referral + " (" + strings.Join(r.Records, ", ") + ")"
	case r.Rcode == "NXDOMAIN":
		return "NXDOMAIN"
	case len(r.Records) == 0:
		return "no MX records (NODATA)"
	}
	return strings.Join(r.Records, ", ")
}

// newestSerial returns the newest SOA serial served, in RFC 1982 serial
// arithmetic, and whether every serial could be ordered against it.
func newestSerial(res *Result) (*uint32, bool) {
	var serials []uint32
	for _, s := range res.Servers {
		for _, a := range s.Addresses {
			if a.SOA.Status == StatusOK && a.SOA.Serial != nil {
				serials = append(serials, *a.SOA.Serial)
			}
		}
	}
	if len(serials) == 0 {
		return nil, true
	}
	// The newest is a serial no other is greater than. RFC 1982 §3.2
	// leaves serials exactly 2^31 apart unordered; then the numerically
	// largest stands in.
	for _, c := range serials {
		top := true
		for _, o := range serials {
			if serialLess(c, o) {
				top = false
				break
			}
		}
		if top {
			return &c, true
		}
	}
	c := serials[0]
	for _, o := range serials[1:] {
		c = max(c, o)
	}
	return &c, false
}

// serialLess reports s1 < s2 in RFC 1982 §3.2 serial number arithmetic
// (SERIAL_BITS 32, RFC 1035 §3.3.13).
func serialLess(s1, s2 uint32) bool {
	const half = 1 << 31
	return (s1 < s2 && s2-s1 < half) || (s1 > s2 && s1-s2 > half)
}

// compareSerials reports ns-serial-mismatch: a server whose SOA serial is
// not the newest one served has not loaded the latest zone (RFC 1996:
// NOTIFY should have made it transfer). The newest serial is the reference,
// not the majority: the primary usually has it alone.
func compareSerials(res *Result) []finding.Finding {
	newest, ordered := newestSerial(res)
	if newest == nil {
		return nil
	}
	ref := &group{}
	others := map[uint32]*group{}
	var order []uint32
	for _, s := range res.Servers {
		for _, a := range s.Addresses {
			if a.SOA.Status != StatusOK || a.SOA.Serial == nil {
				continue
			}
			if *a.SOA.Serial == *newest {
				ref.add(s.Name, a.Address)
				continue
			}
			g := others[*a.SOA.Serial]
			if g == nil {
				g = &group{}
				others[*a.SOA.Serial] = g
				order = append(order, *a.SOA.Serial)
			}
			g.add(s.Name, a.Address)
		}
	}
	var fs []finding.Finding
	for _, s := range res.Servers {
		for _, serial := range order {
			g := others[serial]
			if g.of(s.Name) == nil {
				continue
			}
			subject := label(s.Name, g.of(s.Name))
			rel := "behind"
			if !ordered || !serialLess(serial, *newest) {
				rel = "different from"
			}
			fs = append(fs, finding.Newf(finding.NSSerialMismatch, subject,
				"%s serves %s with SOA serial %d, %s serial %d served by %s.", subject, res.Apex, serial, rel, *newest, ref.describe()))
		}
	}
	return fs
}

// label names a server and some of its addresses: "ns2.example.net
// (192.0.2.2, 2001:db8::2)".
func label(name string, addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return name
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return name + " (" + strings.Join(s, ", ") + ")"
}

func verb(g *group, one, many string) string {
	if len(g.members) == 1 {
		return one
	}
	return many
}

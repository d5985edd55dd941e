package resolve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
)

// Zones answers questions from zone files (RFC 1035 §5) the way an
// authoritative server for those zones would, so every command runs offline
// (--zone) and a zone can be checked before it is published.
//
// A zone is defined by its SOA record: every record belongs to the zone of
// the closest enclosing SOA owner, so one file may hold several zones. Names
// below a delegation (NS records below an apex) that no loaded zone covers,
// and names outside every zone, give an *Error wrapping ErrNotInZone, which
// Fallback uses to ask the network instead.
//
// Unlike a plain authoritative server, Zones chases CNAME targets into the
// other loaded zones, as the recursive resolver it stands in for would.
//
// A zone whose file carries a DNSKEY set at its apex (a signed zone file,
// as dnssec-signzone, ldns-signzone or Knot write it) answers with AD set,
// standing in for the validating resolver that will vouch for it once it
// is published (RFC 4035 §3.2.3); an unsigned zone answers without AD, so
// TLSA records in it are reported as untrusted (RFC 7672 §2.2), as they
// will be. The signatures themselves are not validated: the files are the
// operator's own, unpublished data. An answer whose CNAME chain crosses an
// unsigned zone is not AD.
type Zones struct {
	source string
	zones  []*zone          // longest apex first
	byApex map[string]*zone // the same zones by apex
}

// zone is one zone's data.
type zone struct {
	apex  string
	soa   *dns.SOA
	rrs   map[string][]dns.RR // owner → records in file order
	names map[string]bool     // every owner and every empty non-terminal
	cuts  map[string]bool     // delegation points below the apex (NS owners)
	// signed: the file has a DNSKEY set at the apex.
	signed bool
}

// maxZoneRecords bounds what one --zone load may hold; a zone file is user
// input, and a mistaken multi-gigabyte file should fail rather than fill
// memory.
const maxZoneRecords = 5_000_000

// LoadZones reads the zone files at paths. Records of one zone may be
// spread over several files.
func LoadZones(paths ...string) (*Zones, error) {
	var rrs []dns.RR
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("resolve: %w", err)
		}
		got, err := parseRRs(f, p, maxZoneRecords-len(rrs))
		f.Close()
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, got...)
	}
	return newZones(rrs, strings.Join(paths, ","))
}

// ParseZones reads zone-file text from r; name is used in messages and as
// the Server of every Answer ("zone:NAME").
func ParseZones(r io.Reader, name string) (*Zones, error) {
	rrs, err := parseRRs(r, name, maxZoneRecords)
	if err != nil {
		return nil, err
	}
	return newZones(rrs, name)
}

func parseRRs(r io.Reader, name string, limit int) ([]dns.RR, error) {
	lines := newLineLimit(r, name, MaxZoneLine)
	zp := dns.NewZoneParser(lines, ".", name)
	zp.SetIncludeAllowed(false) // $INCLUDE would let a zone file read any file
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if len(rrs) >= limit {
			return nil, fmt.Errorf("resolve: %s: more than %d records", name, maxZoneRecords)
		}
		if rr.Header().Class != dns.ClassINET {
			continue
		}
		rrs = append(rrs, rr)
	}
	if lines.err != nil {
		// The parser saw the line cut short: its own error would quote
		// the megabyte it read.
		return nil, fmt.Errorf("resolve: %w", lines.err)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("resolve: %w", ParseError{err})
	}
	return rrs, nil
}

// ErrNoSOA is returned for zone text without any SOA record: without one
// there is no apex, so no way to tell NXDOMAIN from "not my zone".
var ErrNoSOA = errors.New("resolve: zone file has no SOA record (every zone needs one to mark its apex)")

func newZones(rrs []dns.RR, source string) (*Zones, error) {
	byApex := map[string]*zone{}
	z := &Zones{source: source, byApex: byApex}
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			apex := CanonicalName(soa.Hdr.Name)
			if byApex[apex] != nil {
				return nil, fmt.Errorf("resolve: %s: two SOA records for %s", source, apex)
			}
			zn := &zone{apex: apex, soa: soa, rrs: map[string][]dns.RR{}, names: map[string]bool{}, cuts: map[string]bool{}}
			byApex[apex] = zn
			z.zones = append(z.zones, zn)
		}
	}
	if len(z.zones) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSOA, source)
	}
	slices.SortFunc(z.zones, func(a, b *zone) int { return dns.CountLabel(b.apex) - dns.CountLabel(a.apex) })
	for _, rr := range rrs {
		owner := CanonicalName(rr.Header().Name)
		zn := z.zoneOf(owner)
		if zn == nil {
			return nil, fmt.Errorf("resolve: %s: %s is outside every zone in the file (no SOA above it)", source, strings.TrimSuffix(owner, "."))
		}
		rr.Header().Name = owner
		zn.rrs[owner] = append(zn.rrs[owner], rr)
		if rr.Header().Rrtype == dns.TypeNS && owner != zn.apex {
			zn.cuts[owner] = true
		}
		if rr.Header().Rrtype == dns.TypeDNSKEY && owner == zn.apex {
			zn.signed = true
		}
		// RFC 4592 §2.2.2: every ancestor up to the apex exists, as an
		// empty non-terminal if it owns nothing. owner is at or below
		// the apex, so the walk stops there (at the root at the latest).
		for n, ok := owner, true; ok && !zn.names[n]; n, ok = dnsname.Parent(n) {
			zn.names[n] = true
			if n == zn.apex {
				break
			}
		}
	}
	if err := aliasConflict(rrs, z); err != nil {
		return nil, fmt.Errorf("resolve: %s: %w", source, err)
	}
	return z, nil
}

// aliasConflict finds, in file order, the first name with a CNAME record
// and other data, or with two CNAME records: RFC 2181 §10.1 (and RFC 1034
// §3.6.2) allow neither, and authoritative servers (Knot, BIND) refuse to
// load such a zone, so it is refused here too, not answered one way or
// the other. DNSSEC's RRSIG and NSEC records may sit beside a CNAME (RFC
// 4035 §2.5).
func aliasConflict(rrs []dns.RR, z *Zones) error {
	checked := map[string]bool{}
	for _, rr := range rrs {
		owner := rr.Header().Name
		if rr.Header().Rrtype != dns.TypeCNAME || checked[owner] {
			continue
		}
		checked[owner] = true
		targets := map[string]bool{}
		var others []string
		for _, o := range z.zoneOf(owner).rrs[owner] {
			switch t := o.Header().Rrtype; {
			case t == dns.TypeCNAME:
				targets[CanonicalName(o.(*dns.CNAME).Target)] = true
			case t != dns.TypeRRSIG && t != dns.TypeNSEC && t != dns.TypeNSEC3:
				others = append(others, dns.TypeToString[t])
			}
		}
		name := strings.TrimSuffix(owner, ".")
		slices.Sort(others)
		switch {
		case len(others) > 0:
			return fmt.Errorf("%s has a CNAME record and other data (%s): an alias can have no other records (RFC 2181 §10.1), and a server refuses the zone", name, strings.Join(slices.Compact(others), ", "))
		case len(targets) > 1:
			return fmt.Errorf("%s has %d CNAME records: an alias has exactly one (RFC 2181 §10.1), and a server refuses the zone", name, len(targets))
		}
	}
	return nil
}

// zoneOf returns the closest loaded zone containing name (canonical, as
// CanonicalName makes it): it looks the name and each of its ancestors up
// by apex, so a file of many zones costs a lookup the name's labels, not
// the number of zones (20,000 zones took 72 s to load when every record
// was compared with every apex).
func (z *Zones) zoneOf(name string) *zone {
	for n, ok := name, true; ok; n, ok = dnsname.Parent(n) {
		if zn := z.byApex[n]; zn != nil {
			return zn
		}
	}
	return nil
}

// Apexes lists the loaded zones' apexes, closest-first.
func (z *Zones) Apexes() []string {
	out := make([]string, len(z.zones))
	for i, zn := range z.zones {
		out[i] = zn.apex
	}
	return out
}

// Lookup implements Resolver.
func (z *Zones) Lookup(ctx context.Context, q Question) (*Answer, error) {
	a, err := z.lookup(ctx, q)
	if err != nil {
		return nil, err
	}
	return a.seal(), nil
}

func (z *Zones) lookup(ctx context.Context, q Question) (*Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Question: q, Rcode: -1, Err: fmt.Errorf("%w: %w", ErrTimeout, err)}
	}
	a := &Answer{Question: q, Authoritative: true, Server: "zone:" + z.source}
	name := q.Name // canonical (Q, NewQuestion)
	seen := map[string]bool{}
	a.AD = true
	for {
		zn := z.zoneOf(name)
		if zn == nil || zn.delegated(name) {
			a.AD = false
			if len(a.Answer) > 0 {
				// The chain leaves the loaded zones: return what we have,
				// as an authoritative server does; Follow asks on for
				// the target.
				return a, nil
			}
			return nil, &Error{Question: q, Server: a.Server, Rcode: -1, Err: ErrNotInZone}
		}
		a.AD = a.AD && zn.signed
		rrs, exists := zn.find(name)
		if !exists {
			// RFC 1034 §4.3.2 step 3c, RFC 6604 §2.1: the rcode is about
			// the last name of the chain.
			a.Rcode = dns.RcodeNameError
			a.Authority = []dns.RR{zn.soa}
			return a, nil
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == q.Type || q.Type == dns.TypeANY:
				a.Answer = append(a.Answer, rr)
				found = true
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		if found {
			return a, nil
		}
		if cname == nil {
			// RFC 2308 §2.2: NODATA, with the SOA for negative caching.
			a.Authority = []dns.RR{zn.soa}
			return a, nil
		}
		// RFC 1034 §4.3.2 step 3a: restart at the alias target.
		a.Answer = append(a.Answer, cname)
		seen[name] = true
		name = CanonicalName(cname.Target)
		if seen[name] || len(seen) > MaxCNAMEChain {
			// A loop: return the chain so far; Follow detects it.
			return a, nil
		}
	}
}

// delegated reports whether name is at or below a zone cut of zn (an NS
// set below the apex). Its data is the child zone's, which is not loaded.
func (zn *zone) delegated(name string) bool {
	if len(zn.cuts) == 0 {
		return false
	}
	for n, ok := name, true; ok && n != zn.apex; n, ok = dnsname.Parent(n) {
		if zn.cuts[n] {
			return true
		}
	}
	return false
}

// find returns the records owned by name, synthesising them from a wildcard
// when name does not exist (RFC 4592 §3.3.1), and whether the name exists.
func (zn *zone) find(name string) ([]dns.RR, bool) {
	if zn.names[name] {
		return zn.rrs[name], true
	}
	// The closest encloser is the longest existing ancestor (the apex
	// at the latest); only the wildcard directly below it applies (RFC
	// 4592 §3.3.1).
	for n, ok := dnsname.Parent(name); ok; n, ok = dnsname.Parent(n) {
		if !zn.names[n] {
			continue
		}
		wild, found := zn.rrs[child("*", n)]
		if !found {
			return nil, false
		}
		out := make([]dns.RR, len(wild))
		for j, rr := range wild {
			c := dns.Copy(rr)
			c.Header().Name = name
			out[j] = c
		}
		return out, true
	}
	return nil, false
}

// child is the name of label below the absolute name parent.
func child(label, parent string) string {
	if parent == "." {
		return label + "."
	}
	return label + "." + parent
}

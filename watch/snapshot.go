// Package watch keeps a domain under watch: it checks it on a schedule,
// keeps the typed facts of every check (Snapshot), computes what changed
// between two checks (Diff), and turns the changes into alerts.
//
// A change is computed on facts, never on the text of two reports: an
// exchange added or removed (RFC 5321 §5.1), Null MX (RFC 7505) or the
// implicit MX appearing, the nameservers disagreeing, an SPF (RFC 7208),
// DMARC (RFC 7489), DKIM (RFC 6376), MTA-STS (RFC 8461) or TLS-RPT
// (RFC 8460) policy weakened or strengthened, STARTTLS (RFC 3207) lost, a
// certificate renewed or about to expire, an address listed on a DNS
// blacklist (RFC 5782), a finding new or resolved. A check that could not
// be completed (a temporary failure) is never read as "removed": the
// areas it could not check are not compared.
package watch

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// SnapshotVersion is the "version" member of a Snapshot's JSON form.
// Snapshots are stored beside each result and read back by later versions
// of mxtrace: a field may be added (an old snapshot decodes with it zero,
// so Diff must not read a zero added field as a removal), never renamed or
// given another meaning without a new version.
const SnapshotVersion = 1

// ErrSnapshot is wrapped by ParseSnapshot's errors.
var ErrSnapshot = errors.New("watch: invalid snapshot")

// Snapshot is the typed facts of one check, what Diff compares. Build it
// with SnapshotOf; its JSON form is stored with the result.
type Snapshot struct {
	Version int    `json:"version"`
	Domain  string `json:"domain"`
	// At is when the facts were gathered: the SMTP probes' time when the
	// exchanges were probed. A caller that knows better (the watch
	// runner, which started the check) sets it. Certificate expiry is
	// judged against it.
	At time.Time `json:"at,omitzero"`

	// Result is the route's outcome (ok, null-mx, no-mail, nxdomain,
	// error) and Error why it is error.
	Result   route.Result `json:"result"`
	Error    string       `json:"error,omitempty"`
	Implicit bool         `json:"implicit,omitempty"`
	// Records are the MX records as served, sorted by exchange.
	Records []MX `json:"records"`
	// Hosts are the plan's exchanges (the domain itself for an implicit
	// MX) with their addresses, sorted by name.
	Hosts []Host `json:"hosts"`

	Nameservers *Nameservers `json:"nameservers,omitempty"`
	SPF         *SPF         `json:"spf,omitempty"`
	DMARC       *DMARC       `json:"dmarc,omitempty"`
	DKIM        *DKIM        `json:"dkim,omitempty"`
	MTASTS      *MTASTS      `json:"mta_sts,omitempty"`
	TLSRPT      *TLSRPT      `json:"tls_rpt,omitempty"`
	// SMTP is one entry per probed exchange address, sorted.
	SMTP []SMTP `json:"smtp,omitempty"`
	// DNSBL is one entry per address and list that answered (listed or
	// clean), sorted; a list that refused is left out, as unknown.
	DNSBL []Listing `json:"dnsbl,omitempty"`

	// Findings are every finding of the judged areas, sorted.
	Findings []Finding `json:"findings"`
	// Checked are the areas judged in full; only these are compared.
	// Incomplete are the areas that could not be judged (status error:
	// a lookup failed temporarily). An area in neither was skipped.
	Checked    []finding.Area `json:"checked"`
	Incomplete []finding.Area `json:"incomplete,omitempty"`
}

// MX is one MX record.
type MX struct {
	Exchange   string `json:"exchange"`
	Preference uint16 `json:"preference"`
	TTL        uint32 `json:"ttl"`
}

// Host is one exchange and its addresses, sorted.
type Host struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	// Unsettled: an address lookup failed temporarily (mx-lookup-failed),
	// so Addresses may be short and are not compared.
	Unsettled bool `json:"unsettled,omitempty"`
}

// Nameservers is what the zone's authoritative servers said.
type Nameservers struct {
	Apex string `json:"apex"`
	// Servers are the addresses that answered, sorted by name and
	// address.
	Servers []NSReply `json:"servers"`
	// MXAgree: every answer gave the same MX set; SerialsAgree: every SOA
	// answer gave the same serial.
	MXAgree      bool `json:"mx_agree"`
	SerialsAgree bool `json:"serials_agree"`
}

// NSReply is one server address's answers.
type NSReply struct {
	Server  string   `json:"server"`
	Address string   `json:"address"`
	Serial  *uint32  `json:"serial,omitempty"`
	MX      []string `json:"mx,omitempty"`
	// MXAnswered: the MX question got an authoritative answer (or a
	// referral), so MX is compared; Serial is nil when the SOA did not.
	MXAnswered bool `json:"mx_answered"`
}

// SPF is the domain's SPF record and its policy for the rest of the world.
type SPF struct {
	Record string `json:"record,omitempty"`
	// All is the effective "all" of the record (following redirect=):
	// "-all", "~all", "?all" or "+all" (RFC 7208 §5.1); "?all" when the
	// record ends without one (RFC 7208 §4.7: neutral); "" when there is
	// no usable record.
	All string `json:"all,omitempty"`
	// Incomplete: part of the record's tree could not be looked at (a
	// lookup failed temporarily); an All of "" is then unknown, not none.
	Incomplete bool `json:"incomplete,omitempty"`
}

// DMARC is the DMARC policy that applies to the domain.
type DMARC struct {
	Record       string `json:"record,omitempty"` // the records found, joined by " | "
	PolicyDomain string `json:"policy_domain,omitempty"`
	// Policy is what applies to mail from the domain (p, or sp when
	// inherited from the organizational domain; RFC 7489 §6.6.3);
	// Subdomain what applies to its subdomains (sp, or p); "" when no
	// record applies.
	Policy    dmarc.Policy `json:"policy,omitempty"`
	Subdomain dmarc.Policy `json:"subdomain,omitempty"`
	Percent   int          `json:"pct,omitempty"`
}

// DKIM is the keys found at the probed selectors.
type DKIM struct {
	Probed []string  `json:"probed"`
	Keys   []DKIMKey `json:"keys"`
	// Failed are the selectors whose lookup failed: not compared.
	Failed []string `json:"failed,omitempty"`
}

// DKIMKey is one key record at a selector.
type DKIMKey struct {
	Selector string       `json:"selector"`
	Text     string       `json:"text"`
	KeyType  dkim.KeyType `json:"key_type,omitempty"`
	Bits     int          `json:"bits,omitempty"`
	// Usable: it parsed and is not revoked (RFC 6376 §3.6.1, empty p=).
	Usable bool `json:"usable"`
}

// MTASTS is the MTA-STS record and, when fetched, the policy.
type MTASTS struct {
	TXT string `json:"txt,omitempty"` // the records, joined by " | "
	ID  string `json:"id,omitempty"`
	// Fetched: the policy was fetched and parsed; Mode, MaxAge and MX are
	// known only then.
	Fetched bool        `json:"fetched"`
	Mode    mtasts.Mode `json:"mode,omitempty"`
	MaxAge  int64       `json:"max_age,omitempty"`
	MX      []string    `json:"mx,omitempty"`
}

// TLSRPT is the TLS-RPT record.
type TLSRPT struct {
	Record string   `json:"record,omitempty"` // the records, joined by " | "
	RUA    []string `json:"rua,omitempty"`    // set when exactly one valid record
}

// SMTP is what one exchange address said over SMTP.
type SMTP struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	// Reached: the server answered EHLO (or HELO), so whether it offers
	// STARTTLS is known.
	Reached  bool  `json:"reached"`
	StartTLS bool  `json:"starttls"`
	Cert     *Cert `json:"cert,omitempty"`
}

// Cert is the leaf certificate an exchange presented after STARTTLS.
type Cert struct {
	// Fingerprint is the hex SHA-256 of the certificate (DER).
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
	// Verified: the chain verified for the host name at probe time.
	Verified bool `json:"verified"`
}

// Listing is one address on one DNS blacklist.
type Listing struct {
	Address string `json:"address"`
	List    string `json:"list"`
	Listed  bool   `json:"listed"`
}

// Finding is one finding, without the words that change run to run.
type Finding struct {
	Area     finding.Area     `json:"area"`
	ID       finding.ID       `json:"id"`
	Severity finding.Severity `json:"severity"`
	Subject  string           `json:"subject"`
}

// Temporary reports whether the check could not be completed: an area
// could not be judged, or an exchange's addresses could not be resolved,
// because a lookup failed temporarily.
func (s *Snapshot) Temporary() bool {
	return s != nil && (len(s.Incomplete) > 0 || slices.ContainsFunc(s.Hosts, func(h Host) bool { return h.Unsettled }))
}

// checked reports whether area was judged in full.
func (s *Snapshot) checked(area finding.Area) bool {
	return s != nil && slices.Contains(s.Checked, area)
}

// ParseSnapshot decodes a stored Snapshot. Members it does not know (a
// later version's) are ignored.
func ParseSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if s.Version < 1 {
		return nil, fmt.Errorf("%w: no version", ErrSnapshot)
	}
	return &s, nil
}

// SnapshotOf takes the facts a diff needs from a check's report. nil gives
// nil.
func SnapshotOf(r *check.Report) *Snapshot {
	if r == nil {
		return nil
	}
	s := &Snapshot{Version: SnapshotVersion, Records: []MX{}, Hosts: []Host{}, Findings: []Finding{}, Checked: []finding.Area{}}
	for _, a := range r.Areas {
		if a.Status == check.StatusError {
			s.Incomplete = append(s.Incomplete, a.Area)
		} else {
			s.Checked = append(s.Checked, a.Area)
		}
		for _, f := range a.Findings {
			s.Findings = append(s.Findings, Finding{Area: a.Area, ID: f.ID, Severity: f.Severity, Subject: f.Subject})
		}
	}
	slices.SortFunc(s.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Area, b.Area), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Subject, b.Subject))
	})
	s.Findings = slices.Compact(s.Findings)
	if p := r.Plan; p != nil {
		s.Domain, s.Result, s.Error, s.Implicit = p.Domain, p.Result, p.Error, p.Implicit
		for _, rec := range p.Records {
			s.Records = append(s.Records, MX{Exchange: lower(rec.Exchange), Preference: rec.Preference, TTL: rec.TTL})
		}
		slices.SortFunc(s.Records, func(a, b MX) int {
			return cmp.Or(cmp.Compare(a.Exchange, b.Exchange), cmp.Compare(a.Preference, b.Preference), cmp.Compare(a.TTL, b.TTL))
		})
		for h := range p.EachHost() {
			addrs := slices.Clone(h.Addresses)
			slices.Sort(addrs)
			s.Hosts = append(s.Hosts, Host{Name: lower(h.Name), Addresses: slices.Compact(addrs),
				Unsettled: slices.Contains(h.Problems, finding.MXLookupFailed)})
		}
		slices.SortFunc(s.Hosts, func(a, b Host) int { return cmp.Compare(a.Name, b.Name) })
	}
	f := r.Details
	if f == nil {
		return s
	}
	if s.Domain == "" {
		s.Domain = string(f.Domain)
	}
	s.At = f.ProbedAt.UTC()
	s.Nameservers = nameserversOf(f.Nameservers)
	s.SPF = spfOf(f.SPF)
	s.DMARC = dmarcOf(f.DMARC)
	s.DKIM = dkimOf(f.DKIM)
	s.MTASTS = mtastsOf(f.MTASTS)
	s.TLSRPT = tlsrptOf(f.TLSRPT)
	s.SMTP = smtpOf(f.SMTP)
	s.DNSBL = dnsblOf(f.DNSBL)
	return s
}

// joined is the records a domain serves, as one escaped text: the
// records come from its DNS and may hold control characters.
func joined(records []string) string { return printable.String(strings.Join(records, " | ")) }

func lower(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func nameserversOf(r *nameserver.Result) *Nameservers {
	if r == nil {
		return nil
	}
	n := &Nameservers{Apex: r.Apex, Servers: []NSReply{}, MXAgree: true, SerialsAgree: true}
	var mx []string
	var serial *uint32
	for _, srv := range r.Servers {
		for _, a := range srv.Addresses {
			rep := NSReply{Server: lower(srv.Name), Address: a.Address.String()}
			// A referral is compared like an answer (nameserver.StatusReferral).
			if a.MX.Status == nameserver.StatusOK || a.MX.Status == nameserver.StatusReferral {
				rep.MXAnswered, rep.MX = true, slices.Sorted(slices.Values(a.MX.Records))
				if mx == nil {
					mx = rep.MX
				} else if !slices.Equal(mx, rep.MX) {
					n.MXAgree = false
				}
			}
			if a.SOA.Status == nameserver.StatusOK && a.SOA.Serial != nil {
				rep.Serial = new(*a.SOA.Serial)
				if serial == nil {
					serial = rep.Serial
				} else if *serial != *rep.Serial {
					n.SerialsAgree = false
				}
			}
			if rep.MXAnswered || rep.Serial != nil {
				n.Servers = append(n.Servers, rep)
			}
		}
	}
	slices.SortFunc(n.Servers, func(a, b NSReply) int {
		return cmp.Or(cmp.Compare(a.Server, b.Server), cmp.Compare(a.Address, b.Address))
	})
	return n
}

func spfOf(a *spf.Analysis) *SPF {
	if a == nil {
		return nil
	}
	s := &SPF{Incomplete: a.Incomplete}
	if a.Tree != nil {
		s.Record = printable.String(a.Tree.Record)
		s.All = effectiveAll(a.Tree, 0)
	}
	return s
}

// effectiveAll is the "all" that ends evaluation of n's record: its own
// all mechanism, or the redirect target's (RFC 7208 §6.1: redirect is used
// only without all), or neutral when neither (RFC 7208 §4.7).
func effectiveAll(n *spf.Node, depth int) string {
	if n == nil || n.Parsed == nil || depth > 10 {
		return ""
	}
	for _, t := range n.Parsed.Terms {
		if !t.Modifier && t.Name == spf.MechAll {
			return string(rune(t.Qualifier.Effective())) + "all"
		}
	}
	if _, ok := n.Parsed.Redirect(); ok {
		for _, c := range n.Children {
			if c.Via == spf.ModRedirect {
				return effectiveAll(c, depth+1)
			}
		}
		return ""
	}
	return "?all"
}

func dmarcOf(r *dmarc.Result) *DMARC {
	if r == nil {
		return nil
	}
	d := &DMARC{Record: joined(r.Records), PolicyDomain: r.PolicyDomain, Policy: r.Policy}
	if rec := r.Record; rec != nil && r.Policy != "" {
		d.Subdomain = cmp.Or(rec.SubdomainPolicy, rec.Policy)
		d.Percent = rec.Percent
	}
	return d
}

func dkimOf(r *dkim.Result) *DKIM {
	if r == nil {
		return nil
	}
	d := &DKIM{Probed: slices.Sorted(slices.Values(r.Probed)), Keys: []DKIMKey{}, Failed: slices.Sorted(slices.Values(r.Failed))}
	d.Probed = slices.Compact(d.Probed)
	for _, k := range r.Keys {
		dk := DKIMKey{Selector: k.Selector, Text: printable.String(k.Text), Usable: k.Usable()}
		if k.Record != nil {
			dk.KeyType, dk.Bits = k.Record.KeyType, k.Record.Bits
		}
		d.Keys = append(d.Keys, dk)
	}
	slices.SortFunc(d.Keys, func(a, b DKIMKey) int {
		return cmp.Or(cmp.Compare(a.Selector, b.Selector), cmp.Compare(a.Text, b.Text))
	})
	return d
}

func mtastsOf(r *mtasts.Result) *MTASTS {
	if r == nil {
		return nil
	}
	m := &MTASTS{TXT: joined(r.TXT)}
	if r.Record != nil {
		m.ID = printable.String(r.Record.ID)
	}
	if p := r.Policy; p != nil && r.FetchErr == nil && r.PolicyErr == nil {
		m.Fetched, m.Mode, m.MaxAge = true, p.Mode, p.MaxAge
		for _, mx := range p.MX {
			m.MX = append(m.MX, printable.String(mx))
		}
		slices.Sort(m.MX)
	}
	return m
}

func tlsrptOf(r *tlsrpt.Result) *TLSRPT {
	if r == nil {
		return nil
	}
	t := &TLSRPT{Record: joined(r.Records)}
	if r.Record != nil {
		for _, u := range r.Record.RUA {
			t.RUA = append(t.RUA, printable.String(u))
		}
	}
	return t
}

func smtpOf(rs []*probe.Result) []SMTP {
	var out []SMTP
	for _, r := range rs {
		if r == nil {
			continue
		}
		s := SMTP{Host: lower(r.Host), Address: r.Address.String(), Reached: r.EHLO != nil, StartTLS: r.StartTLS}
		if r.TLS != nil && len(r.TLS.Chain) > 0 {
			leaf := r.TLS.Chain[0]
			c := &Cert{Subject: printable.String(leaf.Subject), NotAfter: leaf.NotAfter.UTC(), Verified: r.TLS.Verified}
			if len(r.Chain) > 0 {
				sum := sha256.Sum256(r.Chain[0].Raw)
				c.Fingerprint = hex.EncodeToString(sum[:])
			} else {
				// Without the DER (a report read back from JSON) the key
				// and the dates tell one certificate from another.
				c.Fingerprint = "spki:" + leaf.SPKISHA256 + "/" + leaf.NotAfter.UTC().Format(time.RFC3339)
			}
			s.Cert = c
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b SMTP) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Address, b.Address))
	})
	return out
}

func dnsblOf(r *dnsbl.Result) []Listing {
	if r == nil {
		return nil
	}
	var out []Listing
	for _, e := range r.Entries {
		if e.Status == dnsbl.Listed || e.Status == dnsbl.Clean {
			out = append(out, Listing{Address: e.Address.String(), List: e.List, Listed: e.Status == dnsbl.Listed})
		}
	}
	slices.SortFunc(out, func(a, b Listing) int {
		return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.List, b.List))
	})
	return out
}

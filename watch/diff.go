package watch

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/printable"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/route"
)

// ChangeKind names one kind of change; docs/watch.md lists them all.
type ChangeKind string

// Change kinds. A pair names both directions; a policy that is weaker
// after the change is "-weakened", stronger "-strengthened", and only
// different "-changed". A record removed is a policy weakened.
const (
	// The route (RFC 5321 §5.1).
	KindResultChanged      ChangeKind = "result-changed" // ok, no-mail, nxdomain
	KindExchangeAdded      ChangeKind = "exchange-added"
	KindExchangeRemoved    ChangeKind = "exchange-removed"
	KindPreferenceChanged  ChangeKind = "preference-changed"
	KindAddressChanged     ChangeKind = "address-changed"
	KindTTLChanged         ChangeKind = "ttl-changed"
	KindNullMXAdded        ChangeKind = "null-mx-added" // RFC 7505
	KindNullMXRemoved      ChangeKind = "null-mx-removed"
	KindImplicitMXAdded    ChangeKind = "implicit-mx-added"
	KindImplicitMXRemoved  ChangeKind = "implicit-mx-removed"
	KindNSMXDisagree       ChangeKind = "ns-mx-disagree"
	KindNSMXAgree          ChangeKind = "ns-mx-agree"
	KindNSSerialDisagree   ChangeKind = "ns-serial-disagree"
	KindNSSerialAgree      ChangeKind = "ns-serial-agree"
	KindSPFWeakened        ChangeKind = "spf-weakened"
	KindSPFStrengthened    ChangeKind = "spf-strengthened"
	KindSPFChanged         ChangeKind = "spf-changed"
	KindDMARCWeakened      ChangeKind = "dmarc-weakened"
	KindDMARCStrengthened  ChangeKind = "dmarc-strengthened"
	KindDMARCChanged       ChangeKind = "dmarc-changed"
	KindDKIMWeakened       ChangeKind = "dkim-weakened"
	KindDKIMStrengthened   ChangeKind = "dkim-strengthened"
	KindDKIMChanged        ChangeKind = "dkim-changed"
	KindMTASTSWeakened     ChangeKind = "mta-sts-weakened"
	KindMTASTSStrengthened ChangeKind = "mta-sts-strengthened"
	KindMTASTSChanged      ChangeKind = "mta-sts-changed"
	KindTLSRPTWeakened     ChangeKind = "tls-rpt-weakened"
	KindTLSRPTStrengthened ChangeKind = "tls-rpt-strengthened"
	KindTLSRPTChanged      ChangeKind = "tls-rpt-changed"
	KindStartTLSLost       ChangeKind = "starttls-lost" // RFC 3207
	KindStartTLSGained     ChangeKind = "starttls-gained"
	KindCertRenewed        ChangeKind = "cert-renewed"
	KindCertChanged        ChangeKind = "cert-changed"
	KindCertExpiring       ChangeKind = "cert-expiring"
	KindCertExpired        ChangeKind = "cert-expired"
	KindCertUnverified     ChangeKind = "cert-unverified"
	KindCertVerified       ChangeKind = "cert-verified"
	KindDNSBLListed        ChangeKind = "dnsbl-listed" // RFC 5782
	KindDNSBLDelisted      ChangeKind = "dnsbl-delisted"
	KindFindingNew         ChangeKind = "finding-new"
	KindFindingResolved    ChangeKind = "finding-resolved"
)

// Kinds lists every change kind, grouped as Diff reports them.
func Kinds() []ChangeKind {
	return []ChangeKind{
		KindResultChanged, KindNullMXAdded, KindNullMXRemoved, KindImplicitMXAdded, KindImplicitMXRemoved,
		KindExchangeAdded, KindExchangeRemoved, KindPreferenceChanged, KindTTLChanged, KindAddressChanged,
		KindNSMXDisagree, KindNSMXAgree, KindNSSerialDisagree, KindNSSerialAgree,
		KindSPFWeakened, KindSPFStrengthened, KindSPFChanged,
		KindDMARCWeakened, KindDMARCStrengthened, KindDMARCChanged,
		KindDKIMWeakened, KindDKIMStrengthened, KindDKIMChanged,
		KindMTASTSWeakened, KindMTASTSStrengthened, KindMTASTSChanged,
		KindTLSRPTWeakened, KindTLSRPTStrengthened, KindTLSRPTChanged,
		KindStartTLSLost, KindStartTLSGained, KindCertRenewed, KindCertChanged, KindCertUnverified, KindCertVerified,
		KindCertExpiring, KindCertExpired,
		KindDNSBLListed, KindDNSBLDelisted,
		KindFindingNew, KindFindingResolved,
	}
}

// MaxMessage bounds a change's message, in octets: one line of an alert,
// cut where it would list dozens of nameservers.
const MaxMessage = 512

// ExpiryWarning is how close to its end a certificate is "expiring".
const ExpiryWarning = 14 * 24 * time.Hour

// Change is one difference between two snapshots of a domain.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// Subject is what changed: an exchange, an address, a record's name.
	Subject  string           `json:"subject"`
	Severity finding.Severity `json:"severity"`
	// Message is one line for a person, as an alert shows it.
	Message string `json:"message"`
	// Old and New are the fact before and after, in short text; "" for
	// none.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Diff returns what changed from old to new, in a fixed order: the route,
// the nameservers, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, SMTP, blacklists,
// then the findings; within each, by subject. An area is compared only
// when both snapshots judged it in full: an area that could not be checked
// (a temporary failure) or was skipped is no evidence of a removal. A nil
// snapshot (no previous check) gives no changes.
//
// A finding whose change a typed kind already reports (dnsbl-listed beside
// the listing, smtp-starttls-missing beside starttls-lost) is not reported
// again as finding-new or finding-resolved.
func Diff(old, new *Snapshot) []Change {
	if old == nil || new == nil {
		return nil
	}
	d := &differ{o: old, n: new, covered: map[finding.ID][]string{}}
	d.routing()
	d.nameservers()
	d.spf()
	d.dmarc()
	d.dkim()
	d.mtasts()
	d.tlsrpt()
	d.smtp()
	d.dnsbl()
	d.findings()
	return d.out
}

type differ struct {
	o, n *Snapshot
	out  []Change
	// covered holds, per finding ID, the subjects ("" for any) whose
	// appearance or resolution a typed change has reported.
	covered map[finding.ID][]string
}

func (d *differ) add(c Change, covers ...finding.ID) {
	// The facts were escaped when the snapshot was taken; a stored
	// snapshot may have been written by anything.
	c.Message = printable.Cut(printable.Controls(c.Message), MaxMessage)
	c.Subject, c.Old, c.New = printable.Controls(c.Subject), printable.Controls(c.Old), printable.Controls(c.New)
	d.out = append(d.out, c)
	for _, id := range covers {
		d.covered[id] = append(d.covered[id], c.coverToken())
	}
}

// coverToken is the part of a finding's subject that names the same
// thing as c's subject: an address for the per-address kinds.
func (c Change) coverToken() string {
	switch c.Kind {
	case KindStartTLSLost, KindStartTLSGained, KindCertRenewed, KindCertChanged, KindCertExpiring,
		KindCertExpired, KindCertUnverified, KindCertVerified:
		if i := strings.IndexByte(c.Subject, '['); i >= 0 {
			return c.Subject[i:]
		}
	case KindDNSBLListed, KindDNSBLDelisted:
		addr, _, _ := strings.Cut(c.Subject, " ")
		return addr
	}
	return ""
}

func (d *differ) both(area finding.Area) bool { return d.o.checked(area) && d.n.checked(area) }

func (d *differ) routing() {
	if !d.both(finding.AreaRouting) {
		return
	}
	o, n := d.o, d.n
	dom := n.Domain
	if o.Result != n.Result {
		switch {
		case n.Result == route.ResultNullMX:
			// RFC 7505 §3: the domain declares it accepts no mail.
			d.add(Change{Kind: KindNullMXAdded, Subject: dom, Severity: finding.Error, Old: string(o.Result), New: string(n.Result),
				Message: dom + " now publishes a Null MX (RFC 7505): it accepts no mail."}, finding.MXNull)
		case o.Result == route.ResultNullMX:
			d.add(Change{Kind: KindNullMXRemoved, Subject: dom, Severity: resultSeverity(n.Result), Old: string(o.Result), New: string(n.Result),
				Message: fmt.Sprintf("%s no longer publishes a Null MX; the route is now %s.", dom, n.Result)}, finding.MXNull, finding.MXNoMail, finding.MXNXDomain)
		default:
			d.add(Change{Kind: KindResultChanged, Subject: dom, Severity: resultSeverity(n.Result), Old: string(o.Result), New: string(n.Result),
				Message: fmt.Sprintf("The route of %s changed from %s to %s%s.", dom, o.Result, n.Result, resultMeaning(n.Result))},
				finding.MXNoMail, finding.MXNXDomain)
		}
	}
	if o.Result == route.ResultOK && n.Result == route.ResultOK && o.Implicit != n.Implicit {
		if n.Implicit {
			// RFC 5321 §5.1: without MX records the domain's own address
			// is the exchange.
			d.add(Change{Kind: KindImplicitMXAdded, Subject: dom, Severity: finding.Warning, Old: "MX records", New: "implicit MX",
				Message: dom + " has no MX records any more: mail goes to its own address (implicit MX)."}, finding.MXImplicit)
		} else {
			d.add(Change{Kind: KindImplicitMXRemoved, Subject: dom, Severity: finding.Info, Old: "implicit MX", New: "MX records",
				Message: dom + " publishes MX records again instead of relying on the implicit MX."}, finding.MXImplicit)
		}
	}

	om, nm := exchangeMap(o.Records), exchangeMap(n.Records)
	for _, x := range sortedKeys(nm) {
		if _, ok := om[x]; !ok {
			r := nm[x]
			d.add(Change{Kind: KindExchangeAdded, Subject: x, Severity: finding.Info, New: mxText(r),
				Message: fmt.Sprintf("%s was added as an exchange of %s at preference %d.", x, dom, r.Preference)})
		}
	}
	for _, x := range sortedKeys(om) {
		if _, ok := nm[x]; !ok {
			r, sev, left := om[x], finding.Warning, ""
			if len(nm) == 0 {
				// Nothing left to deliver to.
				sev, left = finding.Error, "; no exchange is left"
			}
			d.add(Change{Kind: KindExchangeRemoved, Subject: x, Severity: sev, Old: mxText(r),
				Message: fmt.Sprintf("%s (preference %d) was removed from the exchanges of %s%s.", x, r.Preference, dom, left)})
		}
	}
	for _, x := range sortedKeys(nm) {
		a, ok := om[x]
		if !ok {
			continue
		}
		b := nm[x]
		if a.Preference != b.Preference {
			d.add(Change{Kind: KindPreferenceChanged, Subject: x, Severity: finding.Warning,
				Old: strconv.Itoa(int(a.Preference)), New: strconv.Itoa(int(b.Preference)),
				Message: fmt.Sprintf("The preference of %s changed from %d to %d.", x, a.Preference, b.Preference)})
		}
		if a.TTL != b.TTL {
			d.add(Change{Kind: KindTTLChanged, Subject: x, Severity: finding.Info,
				Old: strconv.FormatUint(uint64(a.TTL), 10), New: strconv.FormatUint(uint64(b.TTL), 10),
				Message: fmt.Sprintf("The TTL of the MX record for %s changed from %d to %d seconds.", x, a.TTL, b.TTL)})
		}
	}
	oh, nh := hostMap(o.Hosts), hostMap(n.Hosts)
	for _, name := range sortedKeys(nh) {
		a, ok := oh[name]
		b := nh[name]
		if !ok || a.Unsettled || b.Unsettled || slices.Equal(a.Addresses, b.Addresses) {
			continue
		}
		d.add(Change{Kind: KindAddressChanged, Subject: name, Severity: finding.Warning,
			Old: strings.Join(a.Addresses, " "), New: strings.Join(b.Addresses, " "),
			Message: fmt.Sprintf("The addresses of %s changed: %s.", name, addrDelta(a.Addresses, b.Addresses))})
	}
}

func resultSeverity(r route.Result) finding.Severity {
	switch r {
	case route.ResultOK:
		return finding.Info
	case route.ResultNullMX:
		return finding.Warning
	}
	return finding.Error
}

func resultMeaning(r route.Result) string {
	switch r {
	case route.ResultNoMail:
		return " (no MX and no address: mail bounces)"
	case route.ResultNXDomain:
		return " (the domain does not exist)"
	case route.ResultError:
		return " (no route can be computed)"
	}
	return ""
}

func mxText(r MX) string { return fmt.Sprintf("MX %d %s (TTL %d)", r.Preference, r.Exchange, r.TTL) }

// exchangeMap keys the records by exchange, lowest preference first; the
// Null MX record (exchange ".") is not an exchange.
func exchangeMap(rs []MX) map[string]MX {
	m := map[string]MX{}
	for _, r := range rs {
		if r.Exchange == "" {
			continue
		}
		if have, ok := m[r.Exchange]; !ok || r.Preference < have.Preference {
			m[r.Exchange] = r
		}
	}
	return m
}

func hostMap(hs []Host) map[string]Host { return firstByKey(hs, func(h Host) string { return h.Name }) }

// firstByKey indexes xs by key; the first of several with one key wins,
// on both sides of a diff alike, so a snapshot never differs from itself.
func firstByKey[T any](xs []T, key func(T) string) map[string]T {
	m := map[string]T{}
	for _, x := range xs {
		if _, ok := m[key(x)]; !ok {
			m[key(x)] = x
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// addrDelta says which addresses came and went.
func addrDelta(old, new []string) string {
	var parts []string
	if add := minus(new, old); len(add) > 0 {
		parts = append(parts, "added "+strings.Join(add, ", "))
	}
	if del := minus(old, new); len(del) > 0 {
		parts = append(parts, "removed "+strings.Join(del, ", "))
	}
	return strings.Join(parts, "; ")
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func (d *differ) nameservers() {
	if !d.both(finding.AreaNameservers) || d.o.Nameservers == nil || d.n.Nameservers == nil {
		return
	}
	o, n := d.o.Nameservers, d.n.Nameservers
	apex := n.Apex
	if o.MXAgree != n.MXAgree {
		if !n.MXAgree {
			// RFC 1034 §4.3.5: every server of a zone serves the same data.
			d.add(Change{Kind: KindNSMXDisagree, Subject: apex, Severity: finding.Error, New: nsMXText(n),
				Message: fmt.Sprintf("The nameservers of %s no longer agree on the MX set of %s: %s.", apex, d.n.Domain, nsMXText(n))}, finding.NSInconsistent)
		} else {
			d.add(Change{Kind: KindNSMXAgree, Subject: apex, Severity: finding.Info, Old: nsMXText(o),
				Message: fmt.Sprintf("The nameservers of %s agree on the MX set of %s again.", apex, d.n.Domain)}, finding.NSInconsistent)
		}
	}
	if o.SerialsAgree != n.SerialsAgree {
		if !n.SerialsAgree {
			d.add(Change{Kind: KindNSSerialDisagree, Subject: apex, Severity: finding.Warning, New: nsSerialText(n),
				Message: fmt.Sprintf("The nameservers of %s serve different SOA serials: %s.", apex, nsSerialText(n))}, finding.NSSerialMismatch)
		} else {
			d.add(Change{Kind: KindNSSerialAgree, Subject: apex, Severity: finding.Info, Old: nsSerialText(o), New: nsSerialText(n),
				Message: fmt.Sprintf("The nameservers of %s serve one SOA serial again (%s).", apex, nsSerialText(n))}, finding.NSSerialMismatch)
		}
	}
}

// nsMXText groups the servers by the MX set they answered.
func nsMXText(n *Nameservers) string {
	groups := map[string][]string{}
	for _, s := range n.Servers {
		if s.MXAnswered {
			k := strings.Join(s.MX, ", ")
			if k == "" {
				k = "no MX"
			}
			groups[k] = append(groups[k], s.Server+" "+s.Address)
		}
	}
	var parts []string
	for _, k := range sortedKeys(groups) {
		parts = append(parts, strings.Join(groups[k], ", ")+": "+k)
	}
	return strings.Join(parts, "; ")
}

func nsSerialText(n *Nameservers) string {
	groups := map[uint32][]string{}
	for _, s := range n.Servers {
		if s.Serial != nil {
			groups[*s.Serial] = append(groups[*s.Serial], s.Server+" "+s.Address)
		}
	}
	var parts []string
	for _, serial := range slices.Sorted(maps.Keys(groups)) {
		parts = append(parts, strings.Join(groups[serial], ", ")+": "+strconv.FormatUint(uint64(serial), 10))
	}
	return strings.Join(parts, "; ")
}

// verdict is a policy change named: its kind, severity, and the word for it.
type verdict struct {
	kind     ChangeKind
	severity finding.Severity
	word     string
}

// policyVerdict names a policy change from the comparison of the old and
// new strength (cmp < 0: weaker) and whether the new one protects nothing.
func policyVerdict(c int, none bool, weakened, strengthened, changed ChangeKind) verdict {
	switch {
	case c < 0 && none:
		return verdict{weakened, finding.Error, "weakened"}
	case c < 0:
		return verdict{weakened, finding.Warning, "weakened"}
	case c > 0:
		return verdict{strengthened, finding.Info, "strengthened"}
	}
	return verdict{changed, finding.Info, "changed"}
}

// spfRank orders the SPF "all" results for everyone else (RFC 7208 §2.6):
// fail, softfail, neutral, pass; no record is weakest.
func spfRank(all string) int {
	return map[string]int{"-all": 4, "~all": 3, "?all": 2, "+all": 1}[all]
}

func (d *differ) spf() {
	if !d.both(finding.AreaSPF) || d.o.SPF == nil || d.n.SPF == nil || *d.o.SPF == *d.n.SPF {
		return
	}
	o, n := d.o.SPF, d.n.SPF
	unknown := func(s *SPF) bool { return s.All == "" && s.Record != "" && s.Incomplete }
	if o.Record == n.Record && (unknown(o) || unknown(n)) {
		return // the same record, only not evaluated in full this time
	}
	rn, c := spfRank(n.All), cmp.Compare(spfRank(n.All), spfRank(o.All))
	if unknown(o) || unknown(n) {
		c = 0 // a policy not known is not ranked
	}
	v := policyVerdict(c, rn <= 1, KindSPFWeakened, KindSPFStrengthened, KindSPFChanged)
	msg := fmt.Sprintf("The SPF policy of %s was %s: %s → %s.", d.n.Domain, v.word, spfText(o), spfText(n))
	switch {
	case o.Record == "":
		msg = fmt.Sprintf("%s now publishes an SPF record (%s).", d.n.Domain, spfText(n))
	case n.Record == "":
		msg = fmt.Sprintf("The SPF record of %s was removed.", d.n.Domain)
	case unknown(o) || unknown(n):
		msg = fmt.Sprintf("The SPF record of %s changed (its policy could not be evaluated in full).", d.n.Domain)
	case v.kind == KindSPFChanged:
		msg = fmt.Sprintf("The SPF record of %s changed; its policy is still %s.", d.n.Domain, spfText(n))
	}
	d.add(Change{Kind: v.kind, Subject: d.n.Domain, Severity: v.severity, Old: o.Record, New: n.Record, Message: msg},
		finding.SPFMissing, finding.SPFPlusAll, finding.SPFNeutralAll)
}

func spfText(s *SPF) string {
	switch {
	case s.Record == "":
		return "no record"
	case s.All == "":
		return "unusable record"
	}
	return s.All
}

// dmarcRank orders DMARC policies (RFC 7489 §6.3 "p"): reject,
// quarantine, none; no policy is weakest.
func dmarcRank(p dmarc.Policy) int {
	return map[dmarc.Policy]int{dmarc.Reject: 3, dmarc.Quarantine: 2, dmarc.None: 1}[p]
}

// dmarcCompare ranks p, sp and pct each (RFC 7489 §6.3; pct is the share
// of failing mail the policy applies to, meaningless under p=none): some
// weaker and none stronger is weaker, the reverse stronger. Mixed
// (one part weaker, another stronger) is 0 with mixed set.
func dmarcCompare(o, n *DMARC) (c int, mixed bool) {
	parts := []int{
		cmp.Compare(dmarcRank(n.Policy), dmarcRank(o.Policy)),
		cmp.Compare(dmarcRank(n.Subdomain), dmarcRank(o.Subdomain)),
	}
	if dmarcRank(o.Policy) > 1 && dmarcRank(n.Policy) > 1 {
		parts = append(parts, cmp.Compare(n.Percent, o.Percent))
	}
	weaker, stronger := slices.Contains(parts, -1), slices.Contains(parts, 1)
	switch {
	case weaker && stronger:
		return 0, true
	case weaker:
		return -1, false
	case stronger:
		return 1, false
	}
	return 0, false
}

func (d *differ) dmarc() {
	if !d.both(finding.AreaDMARC) || d.o.DMARC == nil || d.n.DMARC == nil || *d.o.DMARC == *d.n.DMARC {
		return
	}
	o, n := d.o.DMARC, d.n.DMARC
	c, mixed := dmarcCompare(o, n)
	v := policyVerdict(c, dmarcRank(n.Policy) <= 1, KindDMARCWeakened, KindDMARCStrengthened, KindDMARCChanged)
	msg := fmt.Sprintf("The DMARC policy of %s was %s: %s → %s.", d.n.Domain, v.word, dmarcText(o), dmarcText(n))
	switch {
	case mixed:
		v.severity = finding.Warning
		msg = fmt.Sprintf("The DMARC policy of %s is weaker in part and stronger in part: %s → %s.", d.n.Domain, dmarcText(o), dmarcText(n))
	case o.Policy == "" && n.Policy != "":
		msg = fmt.Sprintf("%s now has a DMARC policy (%s).", d.n.Domain, dmarcText(n))
	case o.Policy != "" && n.Policy == "":
		msg = fmt.Sprintf("The DMARC policy of %s was removed (%s).", d.n.Domain, dmarcText(n))
	case v.kind == KindDMARCChanged:
		msg = fmt.Sprintf("The DMARC record of %s changed; its policy is still %s.", d.n.Domain, dmarcText(n))
	}
	d.add(Change{Kind: v.kind, Subject: "_dmarc." + d.n.Domain, Severity: v.severity, Old: o.Record, New: n.Record, Message: msg},
		finding.DMARCMissing, finding.DMARCPolicyNone)
}

func dmarcText(d *DMARC) string {
	if d.Policy == "" {
		if d.Record != "" {
			return "no usable record"
		}
		return "no record"
	}
	s := fmt.Sprintf("p=%s sp=%s pct=%d", d.Policy, d.Subdomain, d.Percent)
	if d.PolicyDomain != "" {
		s += " at " + d.PolicyDomain
	}
	return s
}

// dkimStrength is the best usable key of a selector: RSA by its bits,
// Ed25519 (RFC 8463) as strong as RSA 3072 (128-bit security); 0 when no
// key is usable.
func dkimStrength(keys []DKIMKey) int {
	best := 0
	for _, k := range keys {
		if !k.Usable {
			continue
		}
		s := max(k.Bits, 1)
		if k.KeyType == dkim.Ed25519 {
			s = 3072
		}
		best = max(best, s)
	}
	return best
}

func (d *differ) dkim() {
	if !d.both(finding.AreaDKIM) || d.o.DKIM == nil || d.n.DKIM == nil {
		return
	}
	o, n := d.o.DKIM, d.n.DKIM
	bySel := func(k *DKIM) map[string][]DKIMKey {
		m := map[string][]DKIMKey{}
		for _, key := range k.Keys {
			m[key.Selector] = append(m[key.Selector], key)
		}
		return m
	}
	ok, nk := bySel(o), bySel(n)
	anyLeft := dkimStrength(n.Keys) > 0
	for _, sel := range n.Probed {
		// A selector asked only once, or whose lookup failed, says nothing.
		if !slices.Contains(o.Probed, sel) || slices.Contains(o.Failed, sel) || slices.Contains(n.Failed, sel) {
			continue
		}
		a, b := ok[sel], nk[sel]
		if slices.Equal(a, b) {
			continue
		}
		sa, sb := dkimStrength(a), dkimStrength(b)
		v := policyVerdict(cmp.Compare(sb, sa), !anyLeft, KindDKIMWeakened, KindDKIMStrengthened, KindDKIMChanged)
		name := sel + "._domainkey." + d.n.Domain
		msg := fmt.Sprintf("The DKIM key at %s was %s: %s → %s.", name, v.word, dkimText(a), dkimText(b))
		switch {
		case len(a) == 0:
			msg = fmt.Sprintf("A DKIM key was published at %s (%s).", name, dkimText(b))
		case len(b) == 0:
			msg = fmt.Sprintf("The DKIM key at %s was removed.", name)
		case v.kind == KindDKIMChanged:
			msg = fmt.Sprintf("The DKIM key at %s was replaced (%s).", name, dkimText(b))
		}
		if v.kind == KindDKIMWeakened && !anyLeft {
			msg += " No usable DKIM key is left at the probed selectors."
		}
		d.add(Change{Kind: v.kind, Subject: name, Severity: v.severity, Old: keyTexts(a), New: keyTexts(b), Message: msg},
			finding.DKIMNoneFound, finding.DKIMWeakKey)
	}
}

func dkimText(keys []DKIMKey) string {
	if len(keys) == 0 {
		return "no key"
	}
	var parts []string
	for _, k := range keys {
		switch {
		case !k.Usable:
			parts = append(parts, "unusable key")
		case k.Bits > 0:
			parts = append(parts, fmt.Sprintf("%s %d bits", k.KeyType, k.Bits))
		default:
			parts = append(parts, string(k.KeyType))
		}
	}
	return strings.Join(parts, ", ")
}

func keyTexts(keys []DKIMKey) string {
	var t []string
	for _, k := range keys {
		t = append(t, k.Text)
	}
	return strings.Join(t, " | ")
}

// mtastsRank orders MTA-STS modes (RFC 8461 §5): enforce, testing, none;
// no record is weakest; -1 when a record is published but its policy was
// not fetched, which cannot be ranked.
func mtastsRank(m *MTASTS) int {
	switch {
	case m.TXT == "":
		return 0
	case !m.Fetched:
		return -1
	}
	return map[mtasts.Mode]int{mtasts.ModeEnforce: 3, mtasts.ModeTesting: 2, mtasts.ModeNone: 1}[m.Mode]
}

func (d *differ) mtasts() {
	if !d.both(finding.AreaMTASTS) || d.o.MTASTS == nil || d.n.MTASTS == nil {
		return
	}
	o, n := d.o.MTASTS, d.n.MTASTS
	if o.TXT == n.TXT && o.ID == n.ID && (!o.Fetched || !n.Fetched ||
		o.Mode == n.Mode && o.MaxAge == n.MaxAge && slices.Equal(o.MX, n.MX)) {
		return
	}
	ro, rn := mtastsRank(o), mtastsRank(n)
	c := 0
	switch {
	case ro >= 0 && rn >= 0:
		c = cmp.Compare(rn, ro)
	case rn == 0:
		c = -1 // the record was removed
	case ro == 0:
		c = 1
	}
	v := policyVerdict(c, rn <= 1, KindMTASTSWeakened, KindMTASTSStrengthened, KindMTASTSChanged)
	msg := fmt.Sprintf("The MTA-STS policy of %s was %s: %s → %s.", d.n.Domain, v.word, mtastsText(o), mtastsText(n))
	switch {
	case o.TXT == "":
		msg = fmt.Sprintf("%s now publishes MTA-STS (%s).", d.n.Domain, mtastsText(n))
	case n.TXT == "":
		msg = fmt.Sprintf("The MTA-STS record of %s was removed; senders stop enforcing once their cached policy expires.", d.n.Domain)
	case v.kind == KindMTASTSChanged:
		msg = fmt.Sprintf("The MTA-STS policy of %s changed: %s → %s.", d.n.Domain, mtastsText(o), mtastsText(n))
	}
	d.add(Change{Kind: v.kind, Subject: "_mta-sts." + d.n.Domain, Severity: v.severity, Old: mtastsText(o), New: mtastsText(n), Message: msg},
		finding.MTASTSMissing, finding.MTASTSTesting)
}

func mtastsText(m *MTASTS) string {
	switch {
	case m.TXT == "":
		return "no record"
	case !m.Fetched:
		return "id=" + m.ID + " (policy not fetched)"
	}
	return fmt.Sprintf("id=%s mode=%s max_age=%d mx=%s", m.ID, m.Mode, m.MaxAge, strings.Join(m.MX, ","))
}

func (d *differ) tlsrpt() {
	if !d.both(finding.AreaTLSRPT) || d.o.TLSRPT == nil || d.n.TLSRPT == nil || d.o.TLSRPT.Record == d.n.TLSRPT.Record {
		return
	}
	o, n := d.o.TLSRPT, d.n.TLSRPT
	rank := func(t *TLSRPT) int { return min(len(t.RUA), 1) }
	// Reports only: losing them is a warning, never an error.
	v := policyVerdict(cmp.Compare(rank(n), rank(o)), false, KindTLSRPTWeakened, KindTLSRPTStrengthened, KindTLSRPTChanged)
	name := "_smtp._tls." + d.n.Domain
	msg := fmt.Sprintf("The TLS-RPT record at %s changed: reports go to %s.", name, ruaText(n))
	switch {
	case v.kind == KindTLSRPTWeakened && n.Record == "":
		msg = fmt.Sprintf("The TLS-RPT record at %s was removed: no more TLS failure reports.", name)
	case v.kind == KindTLSRPTWeakened:
		msg = fmt.Sprintf("The TLS-RPT record at %s is no longer usable: no more TLS failure reports.", name)
	case v.kind == KindTLSRPTStrengthened:
		msg = fmt.Sprintf("%s now publishes TLS-RPT: reports go to %s.", d.n.Domain, ruaText(n))
	}
	d.add(Change{Kind: v.kind, Subject: name, Severity: v.severity, Old: o.Record, New: n.Record, Message: msg},
		finding.TLSRPTMissing, finding.TLSRPTInvalid)
}

func ruaText(t *TLSRPT) string {
	if len(t.RUA) == 0 {
		return "nowhere"
	}
	return strings.Join(t.RUA, ", ")
}

// certState is where a certificate stands at a time: 0 valid, 1
// expiring within ExpiryWarning, 2 expired.
func certState(c *Cert, at time.Time) int {
	switch left := c.NotAfter.Sub(at); {
	case left <= 0:
		return 2
	case left <= ExpiryWarning:
		return 1
	}
	return 0
}

func (d *differ) smtp() {
	if !d.both(finding.AreaSMTP) {
		return
	}
	key := func(s SMTP) string { return s.Host + "[" + s.Address + "]" }
	om, seen := firstByKey(d.o.SMTP, key), map[string]bool{}
	for _, b := range d.n.SMTP {
		subject := key(b)
		a, ok := om[subject]
		if !ok || seen[subject] {
			continue
		}
		seen[subject] = true
		// RFC 3207: whether STARTTLS is offered is known only from an
		// EHLO answer; an address that did not answer has lost nothing.
		if a.Reached && b.Reached && a.StartTLS != b.StartTLS {
			if !b.StartTLS {
				d.add(Change{Kind: KindStartTLSLost, Subject: subject, Severity: finding.Error, Old: "STARTTLS", New: "no STARTTLS",
					Message: subject + " no longer offers STARTTLS: mail to it travels in clear text."}, finding.SMTPStartTLSMissing)
			} else {
				d.add(Change{Kind: KindStartTLSGained, Subject: subject, Severity: finding.Info, Old: "no STARTTLS", New: "STARTTLS",
					Message: subject + " offers STARTTLS now."}, finding.SMTPStartTLSMissing)
			}
		}
		if a.Cert == nil || b.Cert == nil {
			continue
		}
		if a.Cert.Fingerprint != b.Cert.Fingerprint {
			if b.Cert.NotAfter.After(a.Cert.NotAfter) {
				d.add(Change{Kind: KindCertRenewed, Subject: subject, Severity: finding.Info, Old: certText(a.Cert), New: certText(b.Cert),
					Message: fmt.Sprintf("The certificate of %s was renewed: valid until %s.", subject, day(b.Cert.NotAfter))},
					finding.SMTPCertExpiring, finding.SMTPCertExpired)
			} else {
				d.add(Change{Kind: KindCertChanged, Subject: subject, Severity: finding.Warning, Old: certText(a.Cert), New: certText(b.Cert),
					Message: fmt.Sprintf("%s presents another certificate, which does not last longer: valid until %s (was %s).", subject, day(b.Cert.NotAfter), day(a.Cert.NotAfter))})
			}
		}
		if a.Cert.Verified != b.Cert.Verified {
			if !b.Cert.Verified {
				d.add(Change{Kind: KindCertUnverified, Subject: subject, Severity: finding.Error, Old: "verified", New: "not verified",
					Message: "The certificate of " + subject + " no longer verifies for its name (RFC 6125)."},
					finding.SMTPCertUntrusted, finding.SMTPCertNameMismatch)
			} else {
				d.add(Change{Kind: KindCertVerified, Subject: subject, Severity: finding.Info, Old: "not verified", New: "verified",
					Message: "The certificate of " + subject + " verifies now."},
					finding.SMTPCertUntrusted, finding.SMTPCertNameMismatch)
			}
		}
		if d.o.At.IsZero() || d.n.At.IsZero() {
			continue
		}
		so, sn := certState(a.Cert, d.o.At), certState(b.Cert, d.n.At)
		switch {
		case sn > so && sn == 2:
			d.add(Change{Kind: KindCertExpired, Subject: subject, Severity: finding.Error, New: certText(b.Cert),
				Message: fmt.Sprintf("The certificate of %s expired on %s.", subject, day(b.Cert.NotAfter))}, finding.SMTPCertExpired, finding.SMTPCertExpiring)
		case sn > so:
			left := int(b.Cert.NotAfter.Sub(d.n.At).Hours() / 24)
			d.add(Change{Kind: KindCertExpiring, Subject: subject, Severity: finding.Warning, New: certText(b.Cert),
				Message: fmt.Sprintf("The certificate of %s expires on %s, in %d days.", subject, day(b.Cert.NotAfter), left)}, finding.SMTPCertExpiring)
		}
	}
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func certText(c *Cert) string {
	return fmt.Sprintf("%s sha256:%s until %s", c.Subject, c.Fingerprint, c.NotAfter.UTC().Format(time.RFC3339))
}

func (d *differ) dnsbl() {
	if !d.both(finding.AreaDNSBL) {
		return
	}
	key := func(l Listing) string { return l.Address + " on " + l.List }
	om, seen := firstByKey(d.o.DNSBL, key), map[string]bool{}
	for _, l := range d.n.DNSBL {
		subject := key(l)
		was, ok := om[subject]
		if !ok || seen[subject] {
			continue
		}
		seen[subject] = true
		if was.Listed == l.Listed {
			continue
		}
		if l.Listed {
			d.add(Change{Kind: KindDNSBLListed, Subject: subject, Severity: finding.Error, Old: "clean", New: "listed",
				Message: fmt.Sprintf("%s is listed on %s now: mail from it may be refused.", l.Address, l.List)}, finding.DNSBLListed)
		} else {
			d.add(Change{Kind: KindDNSBLDelisted, Subject: subject, Severity: finding.Info, Old: "listed", New: "clean",
				Message: fmt.Sprintf("%s is no longer listed on %s.", l.Address, l.List)}, finding.DNSBLListed)
		}
	}
}

// temporaryFindings report a lookup that failed, which Snapshot.Temporary
// says: the watch alerts on it once the next check confirms it.
var temporaryFindings = []finding.ID{finding.MXLookupFailed}

func (d *differ) findings() {
	type key struct {
		id      finding.ID
		subject string
	}
	index := func(s *Snapshot) map[key]Finding {
		m := map[key]Finding{}
		for _, f := range s.Findings {
			if d.both(f.Area) && !slices.Contains(temporaryFindings, f.ID) {
				m[key{f.ID, f.Subject}] = f
			}
		}
		return m
	}
	om, nm := index(d.o), index(d.n)
	done := map[key]bool{}
	for _, f := range d.n.Findings {
		k := key{f.ID, f.Subject}
		if _, ok := nm[k]; !ok || done[k] || f.Severity < finding.Error {
			continue
		}
		done[k] = true
		if _, was := om[key{f.ID, f.Subject}]; was || d.isCovered(f) {
			continue
		}
		d.add(Change{Kind: KindFindingNew, Subject: f.Subject, Severity: finding.Error, New: string(f.ID),
			Message: fmt.Sprintf("New error %s about %s: %s.", f.ID, f.Subject, title(f.ID))})
	}
	clear(done)
	for _, f := range d.o.Findings {
		k := key{f.ID, f.Subject}
		if _, ok := om[k]; !ok || done[k] || f.Severity < finding.Warning {
			continue
		}
		done[k] = true
		if _, still := nm[key{f.ID, f.Subject}]; still || d.isCovered(f) {
			continue
		}
		d.add(Change{Kind: KindFindingResolved, Subject: f.Subject, Severity: finding.Info, Old: string(f.ID),
			Message: fmt.Sprintf("Resolved: %s about %s is no longer reported.", f.ID, f.Subject)})
	}
}

func (d *differ) isCovered(f Finding) bool {
	for _, tok := range d.covered[f.ID] {
		if tok == "" || f.Subject == tok || strings.Contains(f.Subject, tok) {
			return true
		}
	}
	return false
}

func title(id finding.ID) string {
	if e, ok := finding.Lookup(id); ok {
		return strings.TrimSuffix(e.Title, ".")
	}
	return string(id)
}

package main

// The audit world (-audit): the records "mxtrace scan --mode check" looks
// at beside the delivery plan, for realistic shares of the domains, and
// the findings each domain must get (findings.jsonl). bench/audit.sh
// serves it from knot and scores the scan's findings against it.
//
// Shares (of the domains that exist, per mille; the kinds that publish
// each are named):
//
//	SPF       500  provider, own, implicit, cname (no-mail has "v=spf1 -all")
//	          of which ?all 40, include of a name without SPF 30, an include
//	          chain over the 10-lookup limit 30, redirect 50, redirect to a
//	          name without SPF 15, two records 10, syntax error 10, ptr 10,
//	          three void a: lookups 10
//	DMARC     300  any: p=none 450, quarantine 250, reject 300; rua none
//	          200, in the domain 450, external and consenting 250,
//	          external without consent 100; syntax error 15
//	DKIM      150  any: one key at a common selector; RSA-2048 600,
//	          Ed25519 250, RSA-1024 (weak) 120, truncated key 30
//	MTA-STS    30  provider, own: of which 150 with an invalid id
//	TLS-RPT    40  provider, own: of which 150 with an rua that is no URI
//	TLSA       50  own: 3 1 1 for every exchange; 150 of them 1 1 1
//	PTR            providers: right, but smallisp has none and hostco's
//	               backup names a host that does not exist; own IPv4 (500
//	               shared addresses): 700 right, 200 none, 100 a name that
//	               does not resolve back; own IPv6: 650 the exchange, 350 none
//	NS             every zone: ns1 and ns2, both 127.0.0.1 (the rig's knot,
//	               asked with --ns-port); no zone is signed
//
// The MTA-STS policy itself is fetched over HTTPS, which the rig does not
// serve: the policy host has no address, and the fetch findings
// (unscoredFindings) are left out of the score.

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// nsAddress is where the zones' nameservers are: the rig's knot, asked on
// its port (mxtrace --ns-port).
const nsAddress = "127.0.0.1"

// unscoredFindings come from the MTA-STS policy fetch over HTTPS, which
// the bench world does not serve.
var unscoredFindings = []string{"mta-sts-policy-unreachable", "mta-sts-policy-invalid", "mta-sts-mx-not-covered",
	"mta-sts-testing", "mta-sts-fetch-refused"}

// dkimSelectors are the DefaultSelectors of package dkim, in its order:
// the audit asks every one of them once _domainkey exists.
var dkimSelectors = []string{"default", "dkim", "mail", "email", "smtp", "selector1", "selector2", "google",
	"k1", "k2", "k3", "mandrill", "s1", "s2", "smtpapi", "mxvault", "fm1", "fm2", "fm3", "protonmail",
	"protonmail2", "protonmail3", "sig1", "zendesk1", "zendesk2", "ctct1", "ctct2"}

// Published DKIM keys: RSA public keys (SubjectPublicKeyInfo, base64) of
// 2048 and 1024 bits, made once with openssl; Ed25519 keys are derived
// from the seed.
const (
	rsa2048 = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6aLZ9n4+p5DlV7e0o11WEd6T0O5/8pwg1QG/YqhZA/5APWVpe91rcTVIz2+vcC3pu1DXiEOpmpd/cPeBRtqSHwzCIMoc/Huy2/B+wULAoCRXhYp+eAhzOR8eGwCCMWhUx36teRVVpjPdcz4mDQcl3u9F+lhDPavWvPXoNZNYpg4rhf0RDZ/4dQL5qZmJDZ/uhHqHe3WXa0kiLGSSQhW4Fjizyzsz/GgQMNq6OTca96puZ4NG3XS3ZiqLHHjTQrw2AyTDsiQoc9t4aS3zkG7DLaTDDI348oNU8+TSZ+BncEcHvQ0csur4ShBMKCFaYdssdDRUUU+L8FaV6H79m9WIgwIDAQAB"
	rsa1024 = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCy5OJ02G5GJ8OC1JSPhrSd4jfZQJ0COn8XeO3B3n8PkpI3lQroT0qZMYTsybbWBJTkt9DAQ32OVL0dn67BZIDZwhIcbEhICYiM5Y8fmQDMIZxVqeUQs+ZcSU7SuIM9yo1MBWZz052MNaNhQmxTfkKj0EG5d1YqOlfnmvXrBgdvuwIDAQAB"
)

// Names the audit world adds (RFC 2606 §2).
const (
	hostingZone    = "hosting.example."       // PTR names of the own domains' shared addresses
	reportsZone    = "dmarc-reports.example." // an external DMARC report destination
	bulkSPFZone    = "bulkspf.example."       // an SPF include chain over the limit
	retiredSPF     = "_spf.retired.example."  // an include target that does not exist
	goneSPF        = "_spf.gone.example."     // a redirect target that does not exist
	mismatchTarget = "192.0.2.200"            // where a mismatched PTR name points instead
)

// reverseZones are the reverse zones of the documentation ranges.
var reverseZones = []string{"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."}

// auditFacts is what the audit part of one domain adds.
type auditFacts struct {
	rrs      []string     // in the domain's zone
	other    []zoneRecord // in the shared zones (PTR, DMARC report consent)
	findings []string     // IDs, each once
	// questions the audit asks through the resolver, in a plausible
	// order; the perfect-cache stream keeps the first of each.
	questions []string
}

// sharedAuditZones writes the records every audit world has beside the
// domains': the reverse zones' provider PTRs, the hosting names, the SPF
// chain and the providers' SPF records.
func sharedAuditZones(add func(origin string) (*bufio.Writer, error), provZones map[string]*bufio.Writer) (map[string]*bufio.Writer, error) {
	out := map[string]*bufio.Writer{}
	for _, z := range append([]string{hostingZone, reportsZone, bulkSPFZone}, reverseZones...) {
		zw, err := add(z)
		if err != nil {
			return nil, err
		}
		out[z] = zw
	}
	// Providers: an SPF record each, and PTRs for their addresses.
	for _, p := range providers {
		fmt.Fprintf(provZones[p.zone], "_spf.%s %d IN TXT \"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all\"\n", p.zone, ttl)
		for _, h := range p.hosts {
			for _, a := range h.addrs {
				name := h.label + "." + p.zone
				switch {
				case p.zone == "smallisp.example.":
					continue // no PTR at all
				case p.zone == "hostco.example." && h.label == "backup":
					name = "relay.hostco-old.example." // does not exist
				}
				rev, zone := reverseOf(a)
				fmt.Fprintf(out[zone], "%s %d IN PTR %s\n", rev, ttl, name)
			}
		}
	}
	// Own IPv4 addresses: 500 shared by the own domains.
	for k := range 500 {
		a := ownV4ByIndex(k)
		rev, zone := reverseOf(a)
		switch ptrState(k) {
		case ptrRight:
			fmt.Fprintf(out[zone], "%s %d IN PTR h%d.%s\n", rev, ttl, k, hostingZone)
			fmt.Fprintf(out[hostingZone], "h%d.%s %d IN A %s\n", k, hostingZone, ttl, a)
		case ptrMismatch:
			fmt.Fprintf(out[zone], "%s %d IN PTR h%d.%s\n", rev, ttl, k, hostingZone)
			fmt.Fprintf(out[hostingZone], "h%d.%s %d IN A %s\n", k, hostingZone, ttl, mismatchTarget)
		}
	}
	// An include chain of 1 + 11 DNS-querying terms (RFC 7208 §4.6.4).
	var chain []string
	for n := 1; n <= 11; n++ {
		chain = append(chain, fmt.Sprintf("include:s%d.%s", n, bulkSPFZone))
		fmt.Fprintf(out[bulkSPFZone], "s%d.%s %d IN TXT \"v=spf1 ip4:192.0.2.%d -all\"\n", n, bulkSPFZone, ttl, n)
	}
	fmt.Fprintf(out[bulkSPFZone], "_spf.%s %d IN TXT \"v=spf1 %s -all\"\n", bulkSPFZone, ttl, strings.Join(chain, " "))
	return out, nil
}

// zoneRecord is a record for one of the shared zones.
type zoneRecord struct{ zone, rr string }

type ptrStatus uint8

const (
	ptrRight ptrStatus = iota
	ptrNone
	ptrMismatch
)

// ptrState is the PTR of own IPv4 address k: 7 in 10 right, 2 none, 1 a
// name that does not resolve back.
func ptrState(k int) ptrStatus {
	switch k % 10 {
	case 7, 8:
		return ptrNone
	case 9:
		return ptrMismatch
	}
	return ptrRight
}

// ownV4Index is the index (0–499) of ownV4(i, j, v).
func ownV4Index(i, j, v int) int { return (i*7 + j*2 + v) % 500 }

func ownV4ByIndex(k int) string {
	if k < 250 {
		return fmt.Sprintf("198.51.100.%d", 1+k)
	}
	return fmt.Sprintf("203.0.113.%d", 1+k-250)
}

// reverseOf returns the PTR owner of address a and its reverse zone.
func reverseOf(a string) (owner, zone string) {
	owner, err := dns.ReverseAddr(a)
	if err != nil {
		panic(err) // the generator's own addresses
	}
	for _, z := range reverseZones {
		if strings.HasSuffix(owner, "."+z) {
			return owner, z
		}
	}
	panic("no reverse zone for " + a)
}

// providerPTR reports the PTR finding of a provider address, or "".
func providerPTR(p *provider, h pHost) string {
	switch {
	case p.zone == "smallisp.example.":
		return "ptr-missing"
	case p.zone == "hostco.example." && h.label == "backup":
		return "ptr-mismatch"
	}
	return ""
}

// audit derives the audit records and findings of domain i (d is its
// routing part) from the seed, on a random stream of its own so that the
// routing world is the same with and without -audit.
func (w *world) auditOf(i int, d *domain) auditFacts {
	rng := rand.New(rand.NewPCG(w.seed^0xa0d17, uint64(i)+1))
	k := w.kinds[i]
	name := d.name
	zone := w.zones[d.zone]
	var f auditFacts
	rr := func(format string, args ...any) { f.rrs = append(f.rrs, fmt.Sprintf(format, args...)) }
	ask := func(n, t string) { f.questions = append(f.questions, n+" "+t) }
	find := func(ids ...string) {
		for _, id := range ids {
			if !slices.Contains(f.findings, id) {
				f.findings = append(f.findings, id)
			}
		}
	}

	// The questions every audit asks, whatever the domain: the plan's MX,
	// the nameserver audit (the name's SOA and NS, the zone's NS, SOA,
	// DNSKEY and DS, the servers' addresses), SPF, DMARC at the domain and
	// at the organizational domain (the zone, under .test: RFC 7489 §3.2
	// with no public suffix known), DKIM's _domainkey, MTA-STS, TLS-RPT.
	ask(name, "MX")
	ask(name, "SOA")
	ask(name, "NS")
	ask(zone, "NS")
	ask(zone, "SOA")
	ask(zone, "DNSKEY")
	ask(zone, "DS")
	for _, ns := range []string{"ns1.", "ns2."} {
		ask(ns+zone, "A")
		ask(ns+zone, "AAAA")
	}
	ask(name, "TXT")
	ask("_dmarc."+name, "TXT")
	ask("_dmarc."+zone, "TXT")
	ask("_domainkey."+name, "TXT")
	ask("_mta-sts."+name, "TXT")
	ask("_smtp._tls."+name, "TXT")
	find("dnssec-unsigned")

	if k == kindNXDomain {
		find("mx-nxdomain")
		return f
	}
	w.routeFindings(i, d, find)
	w.addressAudit(i, d, rng, rr, ask, find, &f)

	mailKind := k == kindProvider || k == kindOwn || k == kindImplicit || k == kindCNAME
	hosted := k == kindProvider || k == kindOwn

	// SPF (RFC 7208).
	switch {
	case k == kindNoMail:
		// The routing world's "v=spf1 -all".
	case mailKind && rng.IntN(1000) < 500:
		w.spf(i, d, rng, rr, ask, find)
	default:
		find("spf-missing")
	}

	// DMARC (RFC 7489).
	if rng.IntN(1000) < 300 {
		p := []string{"none", "quarantine", "reject"}[pick(rng, 450, 250, 300)]
		rec := "v=DMARC1; p=" + p
		switch pick(rng, 200, 450, 250, 100) {
		case 0:
			find("dmarc-no-rua")
		case 1:
			rec += "; rua=mailto:dmarc@" + strings.TrimSuffix(name, ".")
		case 2:
			rec += "; rua=mailto:agg@" + strings.TrimSuffix(reportsZone, ".")
			f.other = append(f.other, zoneRecord{reportsZone, fmt.Sprintf("%s_report._dmarc.%s %d IN TXT \"v=DMARC1\"", name, reportsZone, ttl)})
			ask(name+"_report._dmarc."+reportsZone, "TXT")
		case 3:
			rec += "; rua=mailto:agg@" + strings.TrimSuffix(reportsZone, ".")
			ask(name+"_report._dmarc."+reportsZone, "TXT")
			find("dmarc-rua-unauthorized")
		}
		if p == "none" {
			find("dmarc-policy-none")
		}
		if rng.IntN(1000) < 15 {
			rec = "v=DMARC1; p=block"
			f.findings = slices.DeleteFunc(f.findings, func(id string) bool { return strings.HasPrefix(id, "dmarc-") })
			f.questions = slices.DeleteFunc(f.questions, func(q string) bool { return strings.Contains(q, "._report._dmarc.") })
			f.other = slices.DeleteFunc(f.other, func(r zoneRecord) bool { return r.zone == reportsZone })
			find("dmarc-syntax")
		}
		rr("_dmarc.%s %d IN TXT \"%s\"", name, ttl, rec)
	} else {
		find("dmarc-missing")
	}

	// DKIM (RFC 6376): a key at a common selector makes _domainkey exist,
	// so the audit asks every selector of its list.
	if rng.IntN(1000) < 150 {
		sel := []string{"default", "selector1", "google", "k1", "s1", "dkim", "mail"}[rng.IntN(7)]
		var rec string
		switch pick(rng, 600, 250, 120, 30) {
		case 0:
			rec = "v=DKIM1; k=rsa; p=" + rsa2048
		case 1:
			var seed [ed25519.SeedSize]byte
			for b := range seed {
				seed[b] = byte(rng.Uint32())
			}
			pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
			rec = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
		case 2:
			rec = "v=DKIM1; k=rsa; p=" + rsa1024
			find("dkim-weak-key")
		case 3:
			// A key that does not parse is no key found either.
			rec = "v=DKIM1; k=rsa; p=MIGfMA0G"
			find("dkim-syntax", "dkim-none-found")
		}
		rr("%s._domainkey.%s %d IN TXT %s", sel, name, ttl, txtStrings(rec))
		for _, s := range dkimSelectors {
			ask(s+"._domainkey."+name, "TXT")
		}
	} else {
		find("dkim-none-found")
	}

	// MTA-STS (RFC 8461): the record only; the policy host has no address.
	if hosted && rng.IntN(1000) < 30 {
		if rng.IntN(1000) < 150 {
			rr("_mta-sts.%s %d IN TXT \"v=STSv1; id=2026-12-01\"", name, ttl)
			find("mta-sts-txt-invalid")
		} else {
			rr("_mta-sts.%s %d IN TXT \"v=STSv1; id=20261201T000000\"", name, ttl)
		}
		// The policy is fetched either way: its host's addresses.
		ask("mta-sts."+name, "A")
		ask("mta-sts."+name, "AAAA")
	} else {
		find("mta-sts-missing")
	}

	// TLS-RPT (RFC 8460).
	if hosted && rng.IntN(1000) < 40 {
		if rng.IntN(1000) < 150 {
			rr("_smtp._tls.%s %d IN TXT \"v=TLSRPTv1; rua=tlsrpt@%s\"", name, ttl, strings.TrimSuffix(name, "."))
			find("tlsrpt-invalid")
		} else {
			rr("_smtp._tls.%s %d IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@%s\"", name, ttl, strings.TrimSuffix(name, "."))
		}
	} else {
		find("tlsrpt-missing")
	}
	slices.Sort(f.findings)
	return f
}

// pick returns the index of the share rng falls in; the shares are per
// mille and sum to 1000.
func pick(rng *rand.Rand, shares ...int) int {
	r := rng.IntN(1000)
	for i, s := range shares {
		if r < s {
			return i
		}
		r -= s
	}
	return len(shares) - 1
}

// txtStrings writes s as the character-strings of a TXT record, each at
// most 255 octets (RFC 1035 §3.3.14).
func txtStrings(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}

// routeFindings adds the routing area's findings of domain i.
func (w *world) routeFindings(i int, d *domain, find func(...string)) {
	switch w.kinds[i] {
	case kindImplicit:
		find("mx-implicit")
	case kindNoMail:
		find("mx-no-mail")
	case kindNullMX:
		find("mx-null")
	case kindDangling:
		find("mx-target-nxdomain")
	case kindCNAME:
		find("mx-target-cname")
	case kindIPLiteral:
		find("mx-target-ip")
	}
	// One address for all mail; no IPv6 anywhere (route's classify).
	addrs, v6 := 0, false
	for _, as := range d.truth.Hosts {
		addrs += len(as)
		for _, a := range as {
			v6 = v6 || strings.Contains(a, ":")
		}
	}
	if addrs == 1 {
		find("mx-single-point")
	}
	if addrs > 0 && !v6 {
		find("mx-no-ipv6")
	}
}

// addressAudit adds what the exchanges' addresses bring: the questions
// for them (addresses, TLSA, PTR and the PTR names' forward confirmation)
// and the PTR and DANE findings, and for the own domains the TLSA and
// IPv6 PTR records.
func (w *world) addressAudit(i int, d *domain, rng *rand.Rand, rr func(string, ...any), ask func(string, string), find func(...string), f *auditFacts) {
	k := w.kinds[i]
	if k == kindProvider {
		p := providerOf(d)
		for _, h := range p.hosts {
			x := h.label + "." + p.zone
			ask(x, "A")
			ask(x, "AAAA")
			ask("_25._tcp."+x, "TLSA")
			for _, a := range h.addrs {
				rev, _ := reverseOf(a)
				ask(rev, "PTR")
				switch providerPTR(p, h) {
				case "":
					ask(x, addrType(a))
				case "ptr-mismatch":
					ask("relay.hostco-old.example.", addrType(a))
				}
				if id := providerPTR(p, h); id != "" {
					find(id)
				}
			}
		}
		return
	}
	if len(d.exchanges) == 0 {
		return
	}
	tlsa := k == kindOwn && rng.IntN(1000) < 50
	invalid := tlsa && rng.IntN(1000) < 150
	for j, x := range d.exchanges {
		ask(x, "A")
		ask(x, "AAAA")
		addrs := d.truth.Hosts[strings.TrimSuffix(x, ".")]
		if len(addrs) == 0 {
			continue
		}
		ask("_25._tcp."+x, "TLSA")
		if tlsa {
			usage := 3
			if invalid {
				usage = 1
				find("dane-tlsa-invalid")
			}
			rr("_25._tcp.%s %d IN TLSA %d 1 1 %064x", x, ttl, usage, uint64(i)<<8|uint64(j))
			find("dane-tlsa-insecure")
		}
		for v, a := range addrs {
			rev, _ := reverseOf(a)
			ask(rev, "PTR")
			if strings.Contains(a, ":") {
				if rng.IntN(1000) < 650 {
					_, z := reverseOf(a)
					f.other = append(f.other, zoneRecord{z, fmt.Sprintf("%s %d IN PTR %s", rev, ttl, x)})
					ask(x, "AAAA")
				} else {
					find("ptr-missing")
				}
				continue
			}
			kk := ownV4Index(i, j, v)
			switch ptrState(kk) {
			case ptrRight:
				ask(fmt.Sprintf("h%d.%s", kk, hostingZone), "A")
			case ptrNone:
				find("ptr-missing")
			case ptrMismatch:
				ask(fmt.Sprintf("h%d.%s", kk, hostingZone), "A")
				find("ptr-mismatch")
			}
		}
	}
}

// providerOf returns the provider a provider domain's exchanges are in.
func providerOf(d *domain) *provider {
	for h := range d.truth.Hosts {
		for pi := range providers {
			if strings.HasSuffix(h+".", "."+providers[pi].zone) {
				return &providers[pi]
			}
		}
	}
	panic("provider domain without a provider: " + d.name)
}

// spf publishes the SPF record of a mail domain and adds its findings and
// questions.
func (w *world) spf(i int, d *domain, rng *rand.Rand, rr func(string, ...any), ask func(string, string), find func(...string)) {
	name := d.name
	base := "mx"
	if w.kinds[i] == kindImplicit {
		base = "a"
	}
	if w.kinds[i] == kindProvider {
		p := providerOf(d)
		base = "include:_spf." + p.zone
		ask("_spf."+p.zone, "TXT")
	} else {
		// The mx (or a) term asks the domain's MX and its exchanges'
		// addresses, which the plan asked already.
		ask(name, "MX")
	}
	rec := "v=spf1 " + base + " -all"
	switch pick(rng, 40, 30, 30, 50, 15, 10, 10, 10, 10, 795) {
	case 0:
		rec = "v=spf1 " + base + " ?all"
		find("spf-neutral-all")
	case 1:
		rec = "v=spf1 " + base + " include:" + retiredSPF + " -all"
		ask(retiredSPF, "TXT")
		find("spf-include-none")
	case 2:
		rec = "v=spf1 " + base + " include:_spf." + bulkSPFZone + " -all"
		ask("_spf."+bulkSPFZone, "TXT")
		for n := 1; n <= 11; n++ {
			ask(fmt.Sprintf("s%d.%s", n, bulkSPFZone), "TXT")
		}
		find("spf-lookup-limit")
	case 3:
		if w.kinds[i] == kindProvider {
			rec = "v=spf1 redirect=_spf." + providerOf(d).zone
		}
	case 4:
		rec = "v=spf1 redirect=" + goneSPF
		ask(goneSPF, "TXT")
		find("spf-redirect-none")
	case 5:
		rr("%s %d IN TXT \"v=spf1 -all\"", name, ttl)
		find("spf-multiple")
	case 6:
		rec = "v=spf1 ip4:192.0.2.300 -all"
		find("spf-syntax")
	case 7:
		rec = "v=spf1 ptr " + base + " -all"
		find("spf-ptr")
	case 8:
		rec = fmt.Sprintf("v=spf1 a:v1.%s a:v2.%s a:v3.%s -all", name, name, name)
		for n := 1; n <= 3; n++ {
			ask(fmt.Sprintf("v%d.%s", n, name), "A")
			ask(fmt.Sprintf("v%d.%s", n, name), "AAAA")
		}
		find("spf-void-lookups")
	}
	rr("%s %d IN TXT \"%s\"", name, ttl, rec)
}

// auditCounts is world.json's "audit": the questions a perfect cache
// needs for the audit of every domain. Recursive questions go to the
// resolver (knot, or unbound from knot); direct ones are the nameserver
// audit's questions to each server of the zone (RFC 1034 §4.3.1), which
// always go to knot, since they test the server itself: the domain's MX
// per distinct server address, and the zone's SOA once per address.
type auditCounts struct {
	Recursive        int     `json:"recursive_queries"`
	Direct           int     `json:"direct_queries"`
	Queries          int     `json:"queries"`
	QueriesPerDomain float64 `json:"queries_per_domain"`
	// RecursivePerDomain is what a resolver in between is asked.
	RecursivePerDomain float64 `json:"recursive_queries_per_domain"`
}

// auditStream writes audit-queries.txt (recursive) and audit-direct.txt
// in input order, each question once.
type auditStream struct {
	rec, direct *bufio.Writer
	seen        map[string]struct{} // questions outside the domain's own names
	nRec, nDir  int
}

func newAuditStream(files *fileSet, dir string) (*auditStream, error) {
	rec, err := files.create(filepath.Join(dir, "audit-queries.txt"))
	if err != nil {
		return nil, err
	}
	direct, err := files.create(filepath.Join(dir, "audit-direct.txt"))
	if err != nil {
		return nil, err
	}
	return &auditStream{rec: rec, direct: direct, seen: map[string]struct{}{}}, nil
}

// add writes the first asking of each of a domain's questions. A name at
// or below the domain is asked for no other domain, so only the others
// are remembered across domains: the map holds the shared names, not
// every question of a million domains.
func (s *auditStream) add(d *domain, f auditFacts, zone string) {
	own := map[string]struct{}{}
	for _, q := range f.questions {
		qname, _, _ := strings.Cut(q, " ")
		set := s.seen
		if qname == d.name || strings.HasSuffix(qname, "."+d.name) {
			set = own
		}
		if _, ok := set[q]; ok {
			continue
		}
		set[q] = struct{}{}
		s.rec.WriteString(q)
		s.rec.WriteByte('\n')
		s.nRec++
	}
	// Direct: both nameservers are at one address, so the domain's MX is
	// one question to it, and the zone's SOA one per zone.
	fmt.Fprintf(s.direct, "%s MX\n", d.name)
	s.nDir++
	if _, ok := s.seen["direct "+zone]; !ok {
		s.seen["direct "+zone] = struct{}{}
		fmt.Fprintf(s.direct, "%s SOA\n", zone)
		s.nDir++
	}
}

func (s *auditStream) counts(n int) *auditCounts {
	return &auditCounts{Recursive: s.nRec, Direct: s.nDir, Queries: s.nRec + s.nDir,
		QueriesPerDomain: float64(s.nRec+s.nDir) / float64(n), RecursivePerDomain: float64(s.nRec) / float64(n)}
}

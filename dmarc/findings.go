package dmarc

import (
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/finding"
)

// Findings turns a Lookup result into findings:
//
//   - dmarc-missing: no record at the domain nor at its organizational domain;
//   - dmarc-multiple: more than one record, so none applies (§6.6.3);
//   - dmarc-syntax: every problem Parse found, in one finding;
//   - dmarc-policy-none: the policy that applies to the domain's mail is
//     none. That covers p=none; an inherited sp=none (or p=none without
//     sp); a record without a valid p that receivers read as p=none
//     (§6.6.3); p=quarantine with pct=0, which §6.6.4 turns into none for
//     every message; and, on an organizational domain, sp=none beside a
//     stronger p, which leaves every subdomain — including names that do
//     not exist, a forger's favourite — without protection;
//   - dmarc-no-rua: no valid aggregate report URI;
//   - dmarc-rua-unauthorized: one per rua/ruf URI whose external domain has
//     not published its consent record (§7.1). Destinations whose consent
//     query failed (Unknown) give no finding; Lookup returned the error.
func Findings(res *Result) []finding.Finding {
	if res == nil {
		return nil
	}
	var fs []finding.Finding
	if len(res.Records) == 0 {
		// Most domains of a scan: the message is built in one go.
		nor := ""
		if res.OrgDomain != res.Domain {
			nor = " nor at _dmarc." + res.OrgDomain + ", its organizational domain"
		}
		return append(fs, finding.New(finding.DMARCMissing, "_dmarc."+res.Domain,
			"No DMARC record at _dmarc."+res.Domain+nor+"; receivers apply no DMARC policy to mail from "+res.Domain+"."))
	}
	subject := "_dmarc." + res.PolicyDomain
	switch len(res.Records) {
	case 1:
	default:
		return append(fs, finding.Newf(finding.DMARCMultiple, subject,
			"_dmarc.%s has %d records starting with v=DMARC1; receivers then apply no DMARC policy at all (RFC 7489 §6.6.3).",
			res.PolicyDomain, len(res.Records)))
	}
	if len(res.Problems) > 0 {
		msg := fmt.Sprintf("The DMARC record at %s has errors: %s.", subject, strings.Join(res.Problems, "; "))
		if res.Record == nil {
			msg += fmt.Sprintf(" Receivers ignore it, so %s has no DMARC policy.", res.Domain)
		}
		fs = append(fs, finding.New(finding.DMARCSyntax, subject, msg))
	}
	rec := res.Record
	if rec == nil {
		return fs
	}
	if msg := policyNone(res); msg != "" {
		fs = append(fs, finding.New(finding.DMARCPolicyNone, subject, msg))
	}
	if len(rec.AggregateURIs) == 0 {
		fs = append(fs, finding.Newf(finding.DMARCNoRUA, subject,
			"The DMARC record at %s has no valid rua, so no receiver sends aggregate reports about mail from %s.", subject, res.Domain))
	}
	reported := map[string]bool{}
	for _, d := range res.Destinations {
		if d.Consent != Unauthorized || reported[d.Tag+" "+d.URI] {
			continue
		}
		reported[d.Tag+" "+d.URI] = true
		fs = append(fs, finding.Newf(finding.DMARCRUAUnauth, d.Query,
			"%s=%s sends reports to %s, which has not published %s TXT \"v=DMARC1\", so receivers do not send them (RFC 7489 §7.1).",
			d.Tag, d.URI, d.Domain, d.Query))
	}
	return fs
}

// policyNone explains why the policy applied to res.Domain is none, or
// returns "".
func policyNone(res *Result) string {
	rec := res.Record
	switch {
	case res.Inherited() && res.Policy == None && rec.SubdomainPolicy == None:
		return fmt.Sprintf("%s has no DMARC record of its own, and the one of %s applies sp=none to subdomains: forged mail is delivered as usual.",
			res.Domain, res.PolicyDomain)
	case res.Inherited() && res.Policy == None:
		return fmt.Sprintf("%s has no DMARC record of its own, and the one of %s has p=none and no sp: forged mail is delivered as usual.",
			res.Domain, res.PolicyDomain)
	case res.Policy == None:
		return fmt.Sprintf("The DMARC policy of %s is none: receivers report forged mail but still deliver it.", res.Domain)
	case res.Policy == Quarantine && rec.Percent == 0:
		// RFC 7489 §6.6.4: messages outside the pct sample get the next
		// lower policy, and pct=0 leaves every message outside it.
		return fmt.Sprintf("The DMARC record of %s has p=quarantine with pct=0, which applies none to every message (RFC 7489 §6.6.4).", res.Domain)
	case !res.Inherited() && res.Domain == res.OrgDomain && rec.SubdomainPolicy == None:
		// RFC 7489 §6.3 "sp"; it matters only on an organizational domain,
		// where subdomains without their own record inherit it (§6.6.3).
		return fmt.Sprintf("The DMARC record of %s has p=%s but sp=none, so its subdomains (including names that do not exist) get no protection against forgery.",
			res.Domain, res.Policy)
	}
	return ""
}

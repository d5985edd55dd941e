package probe

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/finding"
)

// DANEStatus is the verdict of matching a live server against its
// exchange's TLSA records.
type DANEStatus string

// DANE statuses.
const (
	DANENone     DANEStatus = "none"          // no TLSA records: DANE does not apply
	DANEInsecure DANEStatus = "insecure"      // records not DNSSEC-validated: senders ignore them
	DANEUnusable DANEStatus = "unusable"      // no record SMTP can use: senders use TLS unauthenticated
	DANEMatch    DANEStatus = "match"         // a usable record matches the presented chain
	DANEMismatch DANEStatus = "mismatch"      // usable records, none matches: DANE senders do not deliver
	DANENoTLS    DANEStatus = "no-tls"        // usable records, but no TLS session: DANE senders do not deliver
	DANENotReach DANEStatus = "not-reached"   // the probe did not get as far as STARTTLS
	DANELookup   DANEStatus = "lookup-failed" // the TLSA lookup failed: a DANE sender defers the mail
)

// DANECheck is the DANE verdict on one probed endpoint.
type DANECheck struct {
	Host    string     `json:"host"`
	Address netip.Addr `json:"address"`
	Port    int        `json:"port"`
	Status  DANEStatus `json:"status"`
	// Record is the TLSA record that matched, for DANEMatch.
	Record string `json:"record,omitempty"`
	// Reason says why the chain did not match, or why DANE does not
	// apply.
	Reason string `json:"reason,omitempty"`
}

// MatchDANE matches the chain a probe recorded against the TLSA records
// of its exchange, as a DANE sender does (RFC 7672 §2.2, §3): only
// DNSSEC-validated records of an exchange whose address records are
// validated count; with usable records the sender insists on TLS and on a
// chain that one of them matches (dane.Match: DANE-EE and DANE-TA, both
// selectors, every matching type). d nil means no TLSA records were found.
func MatchDANE(r *Result, d *dane.Result) *DANECheck {
	c := &DANECheck{Host: r.Host, Address: r.Address, Port: r.Port}
	switch {
	case d == nil || len(d.Records) == 0:
		c.Status = DANENone
		return c
	case !d.Secure || !d.AddressSecure:
		// RFC 7672 §2.2: without validated TLSA and address records the
		// sender does not use DANE (dane-tlsa-insecure says so).
		c.Status, c.Reason = DANEInsecure, "the TLSA records or the exchange's addresses are not DNSSEC-validated"
		return c
	}
	usable := d.Usable()
	if len(usable) == 0 {
		c.Status, c.Reason = DANEUnusable, "no TLSA record has a usage SMTP accepts (dane-tlsa-invalid)"
		return c
	}
	if r.TLS == nil {
		if r.Err != nil && (r.Err.Step == StepStartTLS || r.Err.Step == StepTLS) {
			// RFC 7672 §2.2: with usable TLSA records a sender must use
			// TLS; a failed STARTTLS defers the mail.
			c.Status, c.Reason = DANENoTLS, "STARTTLS failed: "+r.Err.Message
		} else if r.EHLO != nil && !r.StartTLS {
			c.Status, c.Reason = DANENoTLS, "the server does not offer STARTTLS"
		} else {
			c.Status = DANENotReach
			if r.Err != nil {
				c.Reason = r.Err.Error()
			}
		}
		return c
	}
	// RFC 7672 §3.2.3: the reference identifiers are the TLSA base
	// domain and, when different, the MX host name.
	names := []string{d.Host}
	if d.Base != "" && d.Base != d.Host {
		names = []string{d.Base, d.Host}
	}
	_, matched, err := dane.Match(usable, r.Chain, names...)
	if err != nil {
		c.Status, c.Reason = DANEMismatch, strings.TrimPrefix(err.Error(), dane.ErrNoMatch.Error()+": ")
		return c
	}
	c.Status = DANEMatch
	if rec, err := dane.FromRR(matched); err == nil {
		c.Record = rec.String()
	}
	return c
}

// MatchTLSA matches every probed endpoint (nil ones are skipped) against
// the TLSA records of its exchange, as GatherTLSA gathered them for hosts
// (tlsa and errs in the order of hosts). An endpoint whose exchange's
// lookup failed is DANELookup, with the error as its reason: a DANE
// sender that cannot learn the records defers the mail (RFC 7672 §2.2),
// so it is not DANENone. An exchange not in hosts has no records.
func MatchTLSA(results []*Result, hosts []string, tlsa []*dane.Result, errs []error) []*DANECheck {
	byHost := make(map[string]int, len(hosts))
	for i, h := range hosts {
		byHost[h] = i
	}
	checks := make([]*DANECheck, 0, len(results))
	for _, r := range results {
		if r == nil {
			continue
		}
		i, ok := byHost[r.Host]
		var d *dane.Result
		if ok && i < len(tlsa) {
			d = tlsa[i]
		}
		c := MatchDANE(r, d)
		if ok && i < len(errs) && errs[i] != nil {
			c.Status, c.Reason = DANELookup, errs[i].Error()
		}
		checks = append(checks, c)
	}
	return checks
}

// DANEFindings reports dane-tlsa-mismatch for every endpoint whose usable
// TLSA records do not let a DANE sender deliver (DANEMismatch and
// DANENoTLS).
func DANEFindings(checks []*DANECheck) []finding.Finding {
	var fs []finding.Finding
	for _, c := range checks {
		if c == nil {
			continue
		}
		subj := (&Result{Host: c.Host, Address: c.Address, Port: c.Port}).Subject()
		switch c.Status {
		case DANEMismatch:
			// RFC 7672 §3.1: no usable record matches the chain.
			fs = append(fs, finding.Newf(finding.DANEMismatch, subj, "%s has usable TLSA records, but none matches its certificate chain: %s.", subj, c.Reason))
		case DANENoTLS:
			// RFC 7672 §2.2: TLS is mandatory once usable records exist.
			fs = append(fs, finding.Newf(finding.DANEMismatch, subj, "%s has usable TLSA records, but no TLS session (%s), so DANE senders do not deliver to it.", subj, c.Reason))
		}
	}
	return fs
}

// String is the check in one line, for logs.
func (c *DANECheck) String() string {
	s := fmt.Sprintf("%s[%s]:%d %s", c.Host, c.Address, c.Port, c.Status)
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

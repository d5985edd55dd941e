package nameserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// DNSSECState is what the recursive resolvers say about the zone's DNSSEC.
type DNSSECState string

// DNSSEC states.
const (
	// DNSSECSecure: the resolver set AD on the zone's SOA and on the MX
	// answer (RFC 4035 §3.2.3): it validated them.
	DNSSECSecure DNSSECState = "secure"
	// DNSSECUnsigned: no DS record at the parent (RFC 4035 §5.2: the
	// delegation is insecure), and the resolver did not vouch for the data.
	DNSSECUnsigned DNSSECState = "unsigned"
	// DNSSECBogus: the resolver answered SERVFAIL, and answered the same
	// question with the CD bit set (RFC 4035 §5.5).
	DNSSECBogus DNSSECState = "bogus"
	// DNSSECUnknown: it could not be told. Either a lookup failed, or the
	// parent publishes a DS record but the resolver did not set AD, which
	// means it does not validate (or the parent zone is unsigned). Note
	// says which.
	DNSSECUnknown DNSSECState = "unknown"
)

// DNSSEC is the zone's DNSSEC state and the facts it rests on.
type DNSSEC struct {
	State DNSSECState `json:"state"`
	// DS: the parent publishes DS records for the apex.
	DS bool `json:"ds"`
	// DNSKEY: the apex has DNSKEY records.
	DNSKEY bool `json:"dnskey"`
	// AD: the resolver vouched for the zone's SOA and the name's MX answer.
	AD bool `json:"ad"`
	// Failing lists the questions answered SERVFAIL without the CD bit and
	// answered with it: the evidence for DNSSECBogus.
	Failing []string `json:"failing,omitempty"`
	// Note explains an unknown state, or qualifies another.
	Note string `json:"note,omitempty"`
}

// check is one recursive lookup made for the DNSSEC verdict.
type check struct {
	q      resolve.Question
	a      *resolve.Answer
	cdOnly bool
	err    error
}

// dnssecQuestions and dnssecFrom decide the zone's DNSSEC state. It asks,
// at once, the apex's SOA
// and DNSKEY and the name's MX set (the zone's own data, which a
// validating resolver refuses to return when it is bogus), and the DS set
// of the apex (which lives in the parent zone, RFC 4034 §5). The order of
// the decision:
//
//  1. an answer obtained only with CD: bogus;
//  2. a failed lookup of the zone's data: unknown;
//  3. AD on both the SOA and the MX answer: secure, however the chain of
//     trust was built (a DS at the parent or a configured trust anchor);
//  4. a DS record at the parent without AD: unknown (the resolver does not
//     validate, or the parent is unsigned);
//  5. no DS (NODATA or NXDOMAIN): unsigned;
//  6. the DS lookup failed: unknown.
//
// dnssecQuestions are the questions; dnssecFrom decides from the recursive
// resolver's replies to them (asking again with CD after a SERVFAIL).
func dnssecQuestions(apex, name string) []resolve.Question {
	qs := []resolve.Question{
		resolve.Q(apex, dns.TypeSOA),
		resolve.Q(name, dns.TypeMX),
		resolve.Q(apex, dns.TypeDNSKEY),
		resolve.Q(apex, dns.TypeDS),
	}
	if apex == "." {
		// The root has no parent and no DS; only AD can tell.
		qs = qs[:3]
	}
	return qs
}

func (au *audit) dnssecFrom(ctx context.Context, apex string, qs []resolve.Question, replies []resolve.Reply) DNSSEC {
	checks := make([]check, len(qs))
	for i, q := range qs {
		checks[i].q = q
		checks[i].a, checks[i].cdOnly, checks[i].err = au.fallback(ctx, q, replies[i].Answer, replies[i].Err)
	}
	soa, mx, key := &checks[0], &checks[1], &checks[2]

	var d DNSSEC
	d.DNSKEY = key.err == nil && hasOwned(key.a, apex, dns.TypeDNSKEY)
	for _, c := range checks[:3] {
		if c.cdOnly {
			d.Failing = append(d.Failing, display(c.q.Name)+" "+dns.TypeToString[c.q.Type])
		}
	}
	if len(d.Failing) > 0 {
		d.State = DNSSECBogus
		return d
	}
	for _, c := range checks[:2] {
		if c.err != nil {
			d.State = DNSSECUnknown
			d.Note = fmt.Sprintf("the DNSSEC state could not be told: %v", c.err)
			if au.CDResolver == nil && errors.Is(c.err, resolve.ErrServerFailure) {
				d.Note += " (without a resolver asked with the CD bit, a DNSSEC-bogus zone cannot be told apart from a failing one)"
			}
			return d
		}
	}
	d.AD = soa.a.AD && mx.a.AD
	if d.AD {
		// RFC 4035 §3.2.3: AD says the resolver validated the answer.
		d.State = DNSSECSecure
		return d
	}
	if apex == "." {
		d.State = DNSSECUnknown
		d.Note = "the resolver did not set AD for the root zone: it does not validate"
		return d
	}
	ds := &checks[3]
	if ds.err != nil {
		d.State = DNSSECUnknown
		d.Note = fmt.Sprintf("the DS lookup at the parent failed: %v", ds.err)
		return d
	}
	d.DS = hasOwned(ds.a, apex, dns.TypeDS)
	if ds.cdOnly {
		// The DS set is the parent's data: a failure there is the
		// parent zone's problem, not this zone's signatures.
		d.Note = fmt.Sprintf("the DS lookup for %s fails validation in the parent zone", display(apex))
	}
	if d.DS {
		d.State = DNSSECUnknown
		d.Note = joinNotes(d.Note, fmt.Sprintf("the parent publishes a DS record for %s, but the resolver did not set AD: it does not validate DNSSEC (or the parent zone is unsigned), so whether the zone validates could not be checked; ask through a validating resolver",
			display(apex)))
		return d
	}
	// RFC 4035 §5.2: without a DS at the parent the delegation is
	// insecure; validators treat the zone as unsigned.
	d.State = DNSSECUnsigned
	return d
}

// dnssecFindings reports dnssec-bogus and dnssec-unsigned from the state.
func dnssecFindings(res *Result) []finding.Finding {
	d, apex := res.DNSSEC, res.Apex
	switch d.State {
	case DNSSECBogus:
		// RFC 4035 §5.5: a validating resolver returns SERVFAIL for bogus data.
		return []finding.Finding{finding.Newf(finding.DNSSECBogus, apex,
			"%s fails DNSSEC validation: the validating resolver answered SERVFAIL for %s, and answered with checking disabled (CD), so validating senders cannot look up its records.",
			apex, strings.Join(d.Failing, ", "))}
	case DNSSECUnsigned:
		msg := fmt.Sprintf("%s is not DNSSEC-signed: its parent zone has no DS record for it.", apex)
		if d.DNSKEY {
			msg = fmt.Sprintf("%s publishes DNSKEY records, but its parent zone has no DS record for it, so validators treat it as unsigned.", apex)
		}
		return []finding.Finding{finding.New(finding.DNSSECUnsigned, apex, msg)}
	}
	return nil
}

// hasOwned reports whether a's answer holds a record of type t owned by name.
func hasOwned(a *resolve.Answer, name string, t uint16) bool {
	if a == nil {
		return false
	}
	for _, rr := range a.Answer {
		if rr.Header().Rrtype == t && resolve.EqualNames(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

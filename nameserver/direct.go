package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// Direct asks one authoritative server one question, without recursion.
// Implementations report what the server said as an *resolve.Answer
// (Authoritative is the AA bit) and a failure as an error wrapping the
// resolve sentinels (ErrTimeout, ErrRefused, ErrServerFailure, ErrRcode,
// ErrBadResponse); they must be safe for concurrent use and honour ctx.
type Direct interface {
	Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error)
}

// StubDirect is the Direct used by default: a stub.Stub per question,
// with RD clear (RFC 1034 §4.3.1), over UDP with EDNS0 and TCP fallback on
// truncation, one server and no fail-over.
type StubDirect struct {
	// Timeout bounds each attempt; 0 means stub.DefaultTimeout.
	Timeout time.Duration
	// Attempts is the number of UDP tries; 0 means stub.DefaultAttempts.
	Attempts int
	// Logger receives one debug line per question; nil is silent.
	Logger *slog.Logger
}

// Ask implements Direct.
func (d StubDirect) Ask(ctx context.Context, server netip.AddrPort, q resolve.Question) (*resolve.Answer, error) {
	s, err := stub.New(stub.Config{
		Servers:     []string{server.String()},
		Timeout:     d.Timeout,
		Attempts:    d.Attempts,
		NoRecursion: true,
		Logger:      d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("nameserver: %w", err)
	}
	return s.Lookup(ctx, q)
}

// classify turns one server's reply to qname/qtype into a Reply. apex is
// the zone the server is listed for.
func classify(a *resolve.Answer, err error, apex, qname string, qtype uint16) Reply {
	if err != nil {
		return classifyError(err)
	}
	r := Reply{Status: StatusOK, Rcode: rcodeName(a.Rcode)}
	if !a.Authoritative {
		// RFC 1034 §4.3.2 step 3b: a referral has no answer, and the NS
		// set of a zone cut at or above the name in its authority section.
		if owner, targets := referral(a, qname); owner != "" {
			r.Referral = display(owner)
			r.Records = targets
			if dns.IsSubDomain(apex, owner) && !resolve.EqualNames(owner, apex) {
				// A cut below the apex: the server knows a delegation the
				// recursive view does not. Not lame; compared as an answer.
				r.Status = StatusReferral
				return r
			}
			// A referral to the zone itself or upwards: the server does
			// not hold the zone (RFC 8499 §7, lame delegation).
			r.Status = StatusLame
			to := display(owner)
			if owner == "." {
				to = "the root"
			}
			r.Reason = fmt.Sprintf("answered with a referral to %s instead of an authoritative answer", to)
			return r
		}
		r.Status = StatusLame
		r.Reason = "answered without the AA bit"
		return r
	}
	if a.NXDomain() || len(a.Answer) == 0 {
		// RFC 2308 §3: a negative answer carries the SOA of the zone it
		// comes from; one from another zone means the server answers for
		// a different zone than the one it is listed for.
		if owner := negativeSOA(a.Authority, qname); owner != "" && !resolve.EqualNames(owner, apex) {
			r.Status = StatusLame
			r.Reason = fmt.Sprintf("answered %s from zone %s, not %s", negativeWord(a), display(owner), display(apex))
			return r
		}
	}
	switch qtype {
	case dns.TypeSOA:
		for _, rr := range a.Answer {
			if soa, ok := rr.(*dns.SOA); ok && resolve.EqualNames(soa.Hdr.Name, apex) {
				serial := soa.Serial
				r.Serial = &serial
				return r
			}
		}
		// Authoritative, yet no SOA at what the NS set calls the apex.
		r.Status = StatusLame
		r.Reason = fmt.Sprintf("answered %s for the SOA of %s: it does not serve the zone", negativeWord(a), display(apex))
		return r
	default:
		if a.NXDomain() {
			return r
		}
		for _, rr := range a.Answer {
			if !resolve.EqualNames(rr.Header().Name, qname) {
				continue
			}
			switch v := rr.(type) {
			case *dns.MX:
				r.Records = append(r.Records, "MX "+strconv.Itoa(int(v.Preference))+" "+display(dns.CanonicalName(v.Mx)))
			case *dns.CNAME:
				r.Records = append(r.Records, "CNAME "+display(dns.CanonicalName(v.Target)))
			}
		}
		// The set is compared whatever the order served (RFC 2181 §5:
		// an RRset has no order). Sorting by preference keeps it readable.
		slices.SortFunc(r.Records, compareRecords)
		r.Records = slices.Compact(r.Records)
		return r
	}
}

// classifyError classifies a failure to get an answer.
func classifyError(err error) Reply {
	rerr, _ := errors.AsType[*resolve.Error](err)
	rcode := ""
	if rerr != nil && rerr.Rcode >= 0 {
		rcode = rcodeName(rerr.Rcode)
	}
	switch {
	case errors.Is(err, resolve.ErrRefused), errors.Is(err, resolve.ErrServerFailure), errors.Is(err, resolve.ErrRcode):
		// RFC 1912 §2.8: a listed server that refuses or fails the zone's
		// questions is lame.
		return Reply{Status: StatusLame, Rcode: rcode, Reason: "answered " + rcode}
	case errors.Is(err, resolve.ErrBadResponse):
		return Reply{Status: StatusLame, Rcode: rcode, Reason: "answered with a malformed reply (" + cause(err) + ")"}
	case errors.Is(err, resolve.ErrTimeout):
		return Reply{Status: StatusUnreachable, Reason: "gave no reply before the deadline"}
	}
	if se, ok := errors.AsType[*os.SyscallError](err); ok {
		// "connection refused" (ICMP port unreachable), "no route to
		// host": the same for every query, without the socket addresses.
		return Reply{Status: StatusUnreachable, Reason: "could not be reached (" + se.Err.Error() + ")"}
	}
	return Reply{Status: StatusUnreachable, Reason: "could not be reached (" + cause(err) + ")"}
}

// cause is err's message without the "lookup NAME TYPE at SERVER: " prefix
// of a *resolve.Error, which the finding states already.
func cause(err error) string {
	if rerr, ok := errors.AsType[*resolve.Error](err); ok && rerr.Err != nil {
		return rerr.Err.Error()
	}
	return err.Error()
}

// referral returns the owner and targets of the NS set in a's authority
// section when a is a referral for qname: no answer records, no SOA, and
// NS records owned by qname or one of its ancestors.
func referral(a *resolve.Answer, qname string) (string, []string) {
	if len(a.Answer) > 0 || a.NXDomain() || hasType(a.Authority, dns.TypeSOA) {
		return "", nil
	}
	owner := ""
	var targets []string
	for _, rr := range a.Authority {
		ns, ok := rr.(*dns.NS)
		if !ok || !dns.IsSubDomain(ns.Hdr.Name, qname) {
			continue
		}
		if owner == "" {
			owner = dns.CanonicalName(ns.Hdr.Name)
		}
		if resolve.EqualNames(ns.Hdr.Name, owner) {
			targets = append(targets, "NS "+display(dns.CanonicalName(ns.Ns)))
		}
	}
	slices.Sort(targets)
	return owner, slices.Compact(targets)
}

// compareRecords orders "MX pref name" records by preference, then text.
func compareRecords(a, b string) int {
	pa, oka := mxPreference(a)
	pb, okb := mxPreference(b)
	if oka && okb && pa != pb {
		return pa - pb
	}
	return strings.Compare(a, b)
}

// mxPreference reads the preference of an "MX pref name" record, as
// written above, without fmt's scanner: records are sorted on every
// audit, and two fmt.Sscanf per comparison were 1 % of a check scan's
// allocations.
func mxPreference(r string) (int, bool) {
	rest, ok := strings.CutPrefix(r, "MX ")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, " ")
	p, err := strconv.Atoi(num)
	return p, err == nil
}

func negativeWord(a *resolve.Answer) string {
	if a.NXDomain() {
		return "NXDOMAIN"
	}
	if len(a.Answer) == 0 {
		return "NODATA"
	}
	return "other records"
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

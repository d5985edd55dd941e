// Package rdns checks reverse DNS for mail servers: the PTR record of an
// address (RFC 1035 §3.5, RFC 3596 §2.5) and forward-confirmed reverse DNS,
// where one of the PTR names must resolve back to the address (RFC 8601
// §3, "iprev"). Receivers commonly distrust or reject mail from addresses
// without it, so an exchange that also sends mail needs it.
package rdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/lookuplog"
	"github.com/mxtrace/mxtrace/resolve"
)

// MaxNames bounds how many PTR names are forward-checked, as RFC 7208 §4.6.4
// bounds the same walk for SPF's ptr mechanism.
const MaxNames = 10

// Result is the reverse DNS of one address.
type Result struct {
	Address netip.Addr `json:"address"`
	// Names are the PTR targets, in the order served, without the final dot.
	Names []string `json:"names"`
	// Confirmed is the first name whose A/AAAA records include Address.
	Confirmed string `json:"confirmed,omitempty"`
}

// Lookup finds the PTR names of addr and confirms them forward, asking for
// every name at once. A failure of the PTR lookup is an error, and so is a
// temporary failure of a forward lookup (time-out, SERVFAIL) when no other
// name confirms the address: whether that name resolves back is not known,
// and must not become ptr-mismatch (a receiver such as Postfix's
// reject_unknown_client_hostname answers 450, try later, in that case, not
// 550). Other failures (REFUSED, a malformed answer) leave the name
// unconfirmed, as a name that does not resolve.
func Lookup(ctx context.Context, r resolve.Resolver, addr netip.Addr, opts Options) (*Result, error) {
	return lookuplog.Run(opts.Logger, "rdns lookup", []any{"address", addr},
		func() (*Result, error) {
			res, errs := lookupAll(ctx, r, []netip.Addr{addr})
			return res[0], errs[0]
		},
		logged)
}

// LookupAll is Lookup for several addresses at once, in two batches
// (resolve.FollowAll): the PTR questions of every address, then the
// forward questions of every name found. Results and errors are in the
// order of addrs: a result is nil where that address's lookup failed, and
// its error says why. With a Logger, each address is logged as Lookup
// logs it, the duration being the whole batch's.
func LookupAll(ctx context.Context, r resolve.Resolver, addrs []netip.Addr, opts Options) ([]*Result, []error) {
	// As lookuplog.Run: nothing is built for a logger that drops it (a
	// scan's, at warning level).
	if opts.Logger == nil || !opts.Logger.Enabled(ctx, slog.LevelDebug) {
		return lookupAll(ctx, r, addrs)
	}
	start := time.Now()
	res, errs := lookupAll(ctx, r, addrs)
	d := time.Since(start)
	for i, a := range addrs {
		args := []any{"address", a, "duration", d}
		if res[i] != nil {
			args = append(args, logged(res[i])...)
		}
		if errs[i] != nil {
			args = append(args, "err", errs[i])
		}
		opts.Logger.Debug("rdns lookup", args...)
	}
	return res, errs
}

// logged is what a lookup's log line says about its Result.
func logged(res *Result) []any { return []any{"names", len(res.Names), "confirmed", res.Confirmed} }

// Options configure Lookup; the zero value is ready to use.
type Options struct {
	Logger *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

func lookupAll(ctx context.Context, r resolve.Resolver, addrs []netip.Addr) ([]*Result, []error) {
	res := make([]*Result, len(addrs))
	errs := make([]error, len(addrs))
	results := make([]Result, len(addrs)) // one allocation, not one per address
	// The PTR questions of every address, and whose each one is.
	qs := make([]resolve.Question, 0, len(addrs))
	of := make([]int, 0, len(addrs))
	for i, addr := range addrs {
		addr = addr.Unmap()
		if !addr.IsValid() {
			errs[i] = errors.New("rdns: no address")
			continue
		}
		results[i] = Result{Address: addr, Names: []string{}}
		res[i] = &results[i]
		qs = append(qs, resolve.Question{Name: ReverseName(addr), Type: dns.TypePTR})
		of = append(of, i)
	}
	// The forward questions of every name (at most MaxNames an
	// address), in the order of the addresses and of their names.
	type forward struct {
		addr int // the index in addrs
		name string
	}
	var fwd []forward
	var fqs []resolve.Question
	// Each outcome is read once (resolve.Batch.FollowedInto keeps no
	// Result per question).
	var scratch resolve.Result
	ptrs := resolve.AskFollow(ctx, r, qs, 0)
	for k := range qs {
		p := ptrs.FollowedInto(k, &scratch)
		i := of[k]
		if p.Err != nil {
			res[i], errs[i] = nil, p.Err
			continue
		}
		qtype := dns.TypeA
		if res[i].Address.Is6() {
			qtype = dns.TypeAAAA
		}
		for k, rr := range p.Result.Records {
			// The name without its dot is what the result shows; the
			// question, asked only of the first MaxNames, keeps it.
			fq := resolve.CanonicalName(rr.(*dns.PTR).Ptr)
			n := strings.TrimSuffix(fq, ".")
			res[i].Names = append(res[i].Names, n)
			if k < MaxNames {
				fqs = append(fqs, resolve.Question{Name: fq, Type: qtype})
				fwd = append(fwd, forward{i, n})
			}
		}
	}
	// The first name, in the order served, whose records hold the
	// address confirms it (RFC 8601 §3). failed keeps each address's
	// first failed forward lookup.
	failed := make([]error, len(addrs))
	fwds := resolve.AskFollow(ctx, r, fqs, 0)
	for k := range fqs {
		f := fwds.FollowedInto(k, &scratch)
		i := fwd[k].addr
		switch {
		case res[i].Confirmed != "":
		case f.Err != nil:
			if failed[i] == nil && temporary(f.Err) {
				failed[i] = fmt.Errorf("rdns: %s: the forward lookup of its PTR name %s failed: %w", res[i].Address, fwd[k].name, f.Err)
			}
		case slices.ContainsFunc(f.Result.Records, func(rr dns.RR) bool {
			a, ok := resolve.AddrOf(rr)
			return ok && a == res[i].Address
		}):
			res[i].Confirmed = fwd[k].name
		}
	}
	for i, err := range failed {
		if err != nil && res[i].Confirmed == "" {
			res[i], errs[i] = nil, err
		}
	}
	return res, errs
}

// Findings reports ptr-missing or ptr-mismatch for one address of the
// exchange host (the plan's name for it, which the messages quote).
func Findings(res *Result, host string) []finding.Finding {
	switch {
	case res == nil:
		return nil
	case len(res.Names) == 0:
		return []finding.Finding{finding.Newf(finding.PTRMissing, res.Address.String(), "%s (%s) has no PTR record.", res.Address, host)}
	case res.Confirmed == "":
		return []finding.Finding{finding.Newf(finding.PTRMismatch, res.Address.String(),
			"%s (%s) has PTR %s, but that name does not resolve back to %s.", res.Address, host, strings.Join(res.Names, ", "), res.Address)}
	}
	return nil
}

// temporary reports whether err says nothing about the name: a time-out,
// a SERVFAIL, or the caller giving up.
func temporary(err error) bool {
	return errors.Is(err, resolve.ErrTimeout) || errors.Is(err, resolve.ErrServerFailure) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ReverseName is the name under which addr's PTR records are published,
// fully qualified and in resolve's canonical form: its octets in reverse
// order under in-addr.arpa (RFC 1035 §3.5), or its 32 nibbles in reverse
// order, in lower-case hex, under ip6.arpa (RFC 3596 §2.5). miekg/dns's
// ReverseAddr builds the same name from a string, so an address already
// parsed would be printed and parsed again: three allocations an address
// where this makes one, on a scan's path of every exchange address.
func ReverseName(addr netip.Addr) string {
	addr = addr.Unmap()
	b := make([]byte, 0, 64+len("ip6.arpa."))
	b = AppendReversed(b, addr)
	if addr.Is4() {
		return string(append(b, "in-addr.arpa."...))
	}
	return string(append(b, "ip6.arpa."...))
}

// AppendReversed appends addr's labels in reverse order, each followed by
// a dot: the octets in decimal for IPv4, the 32 nibbles in lower-case hex
// for IPv6. Under in-addr.arpa or ip6.arpa that is the PTR name; under a
// blacklist's zone, its query name (RFC 5782 §2.1, §2.4). An IPv4 address
// mapped into IPv6 is its IPv4 form.
func AppendReversed(b []byte, addr netip.Addr) []byte {
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		for i := len(a) - 1; i >= 0; i-- {
			b = strconv.AppendUint(b, uint64(a[i]), 10)
			b = append(b, '.')
		}
		return b
	}
	const hex = "0123456789abcdef"
	a := addr.As16()
	for i := len(a) - 1; i >= 0; i-- {
		b = append(b, hex[a[i]&0xf], '.', hex[a[i]>>4], '.')
	}
	return b
}

package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/mail"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
)

// Bounds on the work one message may cause.
const (
	// MaxDKIMSignatures is the most DKIM-Signature fields verified per
	// message (each costs a key lookup); the rest are ignored (RFC 6376
	// §6.1 lets a verifier limit the signatures it checks).
	MaxDKIMSignatures = 5
	// MaxFromDomains is the most distinct RFC5322.From domains evaluated
	// (RFC 7489 §6.6.1); a From field with more is refused.
	MaxFromDomains = 8
	// maxHeaderValue cuts client-supplied text put into a header field.
	maxHeaderValue = 255
)

// Authenticator is the relay's sender policy, the one the primary applies:
// SPF (RFC 7208) for the SMTP identities, recorded in a Received-SPF field,
// and DMARC (RFC 7489) for the message's author domain, with DKIM (RFC 6376)
// verified through the same resolver. It is safe for concurrent use.
type Authenticator struct {
	// SPF evaluates check_host(); nil: a Checker on Resolver with
	// Hostname as the receiver (%{r}, RFC 7208 §7.2).
	SPF *spf.Checker
	// Resolver answers the DKIM key and DMARC policy lookups.
	Resolver resolve.Resolver
	// Hostname is the relay's name: the receiver in Received-SPF and the
	// authserv-id of Authentication-Results (RFC 8601 §2.5).
	Hostname string
	// Sample returns a number in [0, 100) for DMARC's pct (RFC 7489
	// §6.6.4); nil draws one with math/rand/v2.
	Sample func() int
	// Logger gets one debug line per message judged; nil: silent.
	Logger *slog.Logger
}

// SenderCheck is the SPF verdict on one SMTP transaction's sender, taken
// at MAIL FROM (CheckSender) and carried to the end of DATA (CheckMessage),
// where DMARC needs it.
type SenderCheck struct {
	// Client is the SMTP client's address.
	Client netip.Addr
	// HELO is the name the client gave in EHLO or HELO.
	HELO string
	// MailFrom is the MAIL FROM address, "" for the null sender.
	MailFrom string
	// Identity is the identity SPF checked (RFC 7208 §9.1): "mailfrom",
	// or "helo" when the reverse-path is null (RFC 7208 §2.3, §2.4).
	Identity string
	// Result is check_host()'s result; its Domain is the domain checked.
	Result *spf.Result

	receiver string
}

// Identities of Received-SPF (RFC 7208 §9.1).
const (
	IdentityMailFrom = "mailfrom"
	IdentityHELO     = "helo"
)

// CheckSender evaluates SPF for a transaction (RFC 7208 §4): for the MAIL
// FROM identity, or, when the reverse-path is null, for the HELO identity
// (postmaster@HELO, RFC 7208 §2.3, §2.4). It never refuses: SPF's result
// is recorded (SenderCheck.Header) and judged by DMARC at the end of the
// data (CheckMessage), as RFC 7489 §6.6.2 has it; a fail alone does not
// reject, since RFC 7489 §10.1 warns that rejecting on SPF fail before
// DMARC defeats DKIM-authenticated mail.
func (a *Authenticator) CheckSender(ctx context.Context, client netip.Addr, helo, mailFrom string) *SenderCheck {
	mailFrom = strings.TrimSuffix(strings.TrimPrefix(mailFrom, "<"), ">")
	sc := &SenderCheck{Client: client, HELO: helo, MailFrom: mailFrom, Identity: IdentityMailFrom, receiver: a.Hostname}
	if mailFrom == "" {
		sc.Identity = IdentityHELO
	}
	checker := a.SPF
	if checker == nil {
		checker = &spf.Checker{Resolver: a.Resolver, Receiver: a.Hostname, Logger: a.Logger}
	}
	sc.Result = checker.CheckHost(ctx, spf.Query{IP: client.Unmap(), Sender: mailFrom, HELO: helo})
	return sc
}

// Domain is the domain whose policy SPF checked, in canonical form, and
// false when it is not a usable name (check_host() then gave none).
func (sc *SenderCheck) Domain() (dnsname.Name, bool) {
	if sc == nil || sc.Result == nil {
		return "", false
	}
	d, err := dnsname.Parse(sc.Result.Domain)
	return d, err == nil
}

// Header is the Received-SPF header field (RFC 7208 §9.1), without its
// final CRLF and folded onto lines below 78 octets where it has spaces:
//
//	Received-SPF: pass (relay.example: domain of a@example.com designates
//	 192.0.2.1 as permitted sender) receiver=relay.example;
//	 client-ip=192.0.2.1; envelope-from="a@example.com"; helo=mx.example;
//	 identity=mailfrom
//
// Text from the client (HELO, MAIL FROM) is stripped of control characters
// and quoted, so it cannot end the field or add one.
func (sc *SenderCheck) Header() string {
	res := sc.Result
	receiver := cleanText(sc.receiver)
	if receiver == "" {
		receiver = "unknown"
	}
	sender := sc.MailFrom
	if sender == "" {
		sender = "postmaster@" + sc.HELO
	}
	var comment string
	ip := sc.Client.Unmap().String()
	switch res.Status {
	case spf.Pass:
		comment = fmt.Sprintf("domain of %s designates %s as permitted sender", sender, ip)
	case spf.Fail:
		comment = fmt.Sprintf("domain of %s does not designate %s as permitted sender", sender, ip)
	case spf.SoftFail:
		comment = fmt.Sprintf("domain of transitioning %s does not designate %s as permitted sender", sender, ip)
	case spf.Neutral:
		comment = fmt.Sprintf("%s is neither permitted nor denied by domain of %s", ip, sender)
	case spf.None:
		comment = fmt.Sprintf("domain of %s does not designate permitted sender hosts", sender)
	default:
		comment = fmt.Sprintf("error in processing during lookup of %s", sender)
	}
	pairs := []string{
		"receiver=" + kvValue(receiver),
		// An IPv6 address is no dot-atom: quoted (RFC 7208 §9.1).
		"client-ip=" + kvValue(ip),
		"envelope-from=" + kvValue(sc.MailFrom),
		"helo=" + kvValue(sc.HELO),
		"identity=" + sc.Identity,
	}
	// RFC 7208 §9.1: problem= says why for the errors.
	if (res.Status == spf.TempError || res.Status == spf.PermError) && res.Err != nil {
		pairs = append(pairs, "problem="+kvValue(res.Err.Error()))
	}
	words := append([]string{string(res.Status)}, strings.Fields("("+commentText(receiver+": "+comment)+")")...)
	for i, p := range pairs {
		if i < len(pairs)-1 {
			p += ";"
		}
		words = append(words, p)
	}
	return fold("Received-SPF:", words)
}

// CheckMessage applies DMARC (RFC 7489 §6.6) to a message received from
// the transaction sc describes (nil: no SPF result, as when CheckSender was
// not called), and returns the verdict and the header fields to add: one
// Authentication-Results field (RFC 8601) with the spf, dkim and dmarc
// results, without its final CRLF. The Received-SPF field is sc.Header(),
// not repeated here.
//
// The author domain is that of the RFC5322.From field (RFC 7489 §3.1,
// §6.6.1), which must appear once (RFC 5322 §3.6):
//
//   - several From fields: refused, 550 5.7.1, Reason "from-invalid"; a
//     second From is the classic way to show the reader one domain and be
//     judged on another;
//   - a From field from which no domain can be taken: refused the same way,
//     for the same reason;
//   - no From field: nothing to protect, so DMARC does not apply: accepted,
//     dmarc=none;
//   - one From field with addresses of several domains: each domain is
//     evaluated and the strictest result applies (RFC 7489 §6.6.1); more
//     than MaxFromDomains is refused.
//
// A domain passes when SPF passed for an aligned domain or a valid DKIM
// signature has an aligned d= (RFC 7489 §3.1, relaxed: the same
// organizational domain, strict: the same name; §4.2). A failing message
// is refused with 550 5.7.1, Reason "dmarc-reject", when the policy that
// applies (p, or sp for a subdomain, §6.3) is reject and pct selects it
// (§6.6.4: a message outside pct gets the next policy down, quarantine).
// quarantine and none accept; the failure is in Authentication-Results
// for the primary to file.
//
// Temporary errors never refuse for good (RFC 7489 §6.6.3 leaves DNS
// errors to the receiver): a failing message whose outcome a temporary
// error may have decided (the policy lookup failed, or SPF or an
// unverified DKIM signature had temperror while the policy is reject) is
// deferred with 451 4.7.0, Reason "dmarc-temperror", so the sender retries
// and the next try is judged in full; when the policy is known and is not
// reject, the message is accepted with dmarc=temperror or fail recorded.
func (a *Authenticator) CheckMessage(ctx context.Context, sc *SenderCheck, data []byte) (Verdict, []string) {
	var results []authres.Result
	if sc != nil && sc.Result != nil {
		results = append(results, &authres.SPFResult{Value: spfValue(sc.Result.Status), From: cleanText(sc.MailFrom), Helo: cleanText(sc.HELO)})
	}
	header := headerSection(data)
	domains, fromErr := authorDomains(header)
	if fromErr != nil {
		a.log(ctx, "", "from-invalid", fromErr)
		return Verdict{Code: 550, Enhanced: "5.7.1", Message: "message refused: " + fromErr.Error() + " (RFC 5322 §3.6)", Reason: "from-invalid"}, nil
	}
	sigs := a.verifyDKIM(ctx, data, header)
	for _, s := range sigs {
		r := &authres.DKIMResult{Value: s.value, Domain: s.domain, Reason: s.reason}
		results = append(results, r)
	}
	verdict := Verdict{}
	if len(domains) == 0 {
		results = append(results, &authres.DMARCResult{Value: authres.ResultNone, Reason: "no From field"})
	}
	for _, d := range domains {
		o := a.evaluate(ctx, d, sc, sigs)
		results = append(results, &authres.DMARCResult{Value: o.value, From: string(d), Reason: o.reason})
		// The strictest verdict wins: a refusal over a deferral over an
		// acceptance (RFC 7489 §6.6.1).
		if o.verdict.Code > verdict.Code {
			verdict = o.verdict
		}
		a.log(ctx, string(d), string(o.value), nil)
	}
	return verdict, []string{formatAuthResults(a.Hostname, results)}
}

func (a *Authenticator) log(ctx context.Context, domain, result string, err error) {
	if a.Logger == nil {
		return
	}
	a.Logger.DebugContext(ctx, "dmarc", "from_domain", domain, "result", result, "err", err)
}

// dmarcOutcome is the evaluation of one author domain.
type dmarcOutcome struct {
	value   authres.ResultValue
	reason  string
	verdict Verdict
}

// evaluate is RFC 7489 §6.6.2–§6.6.4 for one author domain.
func (a *Authenticator) evaluate(ctx context.Context, from dnsname.Name, sc *SenderCheck, sigs []dkimSig) dmarcOutcome {
	tempfail := dmarcOutcome{value: authres.ResultTempError,
		verdict: Verdict{Code: 451, Enhanced: "4.7.0", Message: "temporary failure evaluating the sender's DMARC policy, try again later", Reason: "dmarc-temperror"}}
	res, err := dmarc.Lookup(ctx, a.Resolver, from, dmarc.Options{})
	if res == nil {
		// RFC 7489 §6.6.3: the policy could not be found for now. Whether
		// the message fails matters only if the policy is reject, which
		// is unknown: defer unless it passes anyway.
		tempfail.reason = cleanText(err.Error())
		if a.aligned(from, sc, sigs, dmarc.Relaxed, dmarc.Relaxed) {
			// Aligned in the loosest mode, and only a strict mode could
			// make it fail: recorded, and accepted.
			tempfail.verdict = Verdict{}
		}
		return tempfail
	}
	// A failed report-consent query (RFC 7489 §7.1) leaves the policy
	// usable; only the policy matters here.
	rec := res.Record
	if rec == nil {
		// No record, several (§6.6.3 step 5), or one a receiver discards:
		// no DMARC policy applies.
		return dmarcOutcome{value: authres.ResultNone}
	}
	if a.aligned(from, sc, sigs, rec.SPFAlignment, rec.DKIMAlignment) {
		return dmarcOutcome{value: authres.ResultPass}
	}
	policy := res.Policy
	// RFC 7489 §6.6.4: pct selects the messages the policy applies to;
	// the others get the next policy down (reject → quarantine).
	if policy == dmarc.Reject && rec.Percent < 100 && a.sample() >= rec.Percent {
		policy = dmarc.Quarantine
	}
	fail := dmarcOutcome{value: authres.ResultFail, reason: "policy " + string(policy)}
	if policy != dmarc.Reject {
		return fail
	}
	if a.tempErrors(from, sc, sigs, rec.SPFAlignment, rec.DKIMAlignment) {
		tempfail.reason = "SPF or DKIM temporary error"
		return tempfail
	}
	fail.verdict = Verdict{Code: 550, Enhanced: "5.7.1",
		Message: fmt.Sprintf("message refused: the DMARC policy of %s rejects mail that fails authentication (RFC 7489 §6.6)", from),
		Reason:  "dmarc-reject"}
	return fail
}

func (a *Authenticator) sample() int {
	if a.Sample != nil {
		return a.Sample()
	}
	return rand.IntN(100)
}

// aligned reports whether an SPF pass or a valid DKIM signature is for a
// domain aligned with from (RFC 7489 §3.1.1, §3.1.2).
func (a *Authenticator) aligned(from dnsname.Name, sc *SenderCheck, sigs []dkimSig, aspf, adkim dmarc.Alignment) bool {
	if d, ok := sc.Domain(); ok && sc.Result.Status == spf.Pass && alignedNames(from, d, aspf) {
		return true
	}
	for _, s := range sigs {
		if s.value == authres.ResultPass && alignedNames(from, dnsname.Name(s.domain), adkim) {
			return true
		}
	}
	return false
}

// tempErrors reports a temporary error in SPF for an aligned domain, or
// in a DKIM signature with an aligned d=: had it worked, the result might
// have been a pass, so the failure is not final.
func (a *Authenticator) tempErrors(from dnsname.Name, sc *SenderCheck, sigs []dkimSig, aspf, adkim dmarc.Alignment) bool {
	if d, ok := sc.Domain(); ok && sc.Result.Status == spf.TempError && alignedNames(from, d, aspf) {
		return true
	}
	return slices.ContainsFunc(sigs, func(s dkimSig) bool {
		return s.value == authres.ResultTempError && alignedNames(from, dnsname.Name(s.domain), adkim)
	})
}

// alignedNames is identifier alignment (RFC 7489 §3.1): strict, the same
// name; relaxed, the same organizational domain (§3.2).
func alignedNames(from, other dnsname.Name, mode dmarc.Alignment) bool {
	if from == other {
		return true
	}
	return mode != dmarc.Strict && dmarc.OrganizationalDomain(from) == dmarc.OrganizationalDomain(other)
}

// dkimSig is one verified (or failed) DKIM signature.
type dkimSig struct {
	value  authres.ResultValue
	domain string // d=, canonical; "" when not a name
	reason string
}

// verifyDKIM verifies up to MaxDKIMSignatures signatures (RFC 6376 §6),
// asking for keys through a.Resolver.
func (a *Authenticator) verifyDKIM(ctx context.Context, data, header []byte) []dkimSig {
	if !hasField(header, "DKIM-Signature") {
		return nil
	}
	opts := &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return a.lookupTXT(ctx, name) },
		MaxVerifications: MaxDKIMSignatures,
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(data), opts)
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The message cannot be read as one (a header without its end):
		// no signature verifies.
		return []dkimSig{{value: authres.ResultPermError, reason: cleanText(err.Error())}}
	}
	var out []dkimSig
	for _, v := range verifs {
		s := dkimSig{value: authres.ResultPass}
		if d, err := dnsname.Parse(v.Domain); err == nil {
			s.domain = string(d)
		}
		switch {
		case v.Err == nil && s.domain == "":
			s.value, s.reason = authres.ResultPermError, "d= is not a domain name"
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			s.value, s.reason = authres.ResultTempError, cleanText(v.Err.Error())
		case dkim.IsPermFail(v.Err):
			s.value, s.reason = authres.ResultPermError, cleanText(v.Err.Error())
		default:
			s.value, s.reason = authres.ResultFail, cleanText(v.Err.Error())
		}
		out = append(out, s)
	}
	return out
}

// tempDNSError is a failed key lookup as go-msgauth knows a temporary one:
// a net.Error whose Temporary is true.
type tempDNSError struct{ err error }

func (e tempDNSError) Error() string   { return e.err.Error() }
func (e tempDNSError) Unwrap() error   { return e.err }
func (e tempDNSError) Timeout() bool   { return errors.Is(e.err, resolve.ErrTimeout) }
func (e tempDNSError) Temporary() bool { return true }

var _ net.Error = tempDNSError{}

// lookupTXT is the DKIM key lookup (RFC 6376 §3.6.2.2) through a.Resolver:
// one string per TXT record, its strings concatenated. NXDOMAIN and NODATA
// are no records (a permanent failure of the signature); every other
// failure is temporary.
func (a *Authenticator) lookupTXT(ctx context.Context, name string) ([]string, error) {
	q, err := resolve.NewQuestion(dns.Fqdn(name), dns.TypeTXT)
	if err != nil {
		return nil, fmt.Errorf("dkim key %q: %w", name, err)
	}
	res, err := resolve.Follow(ctx, a.Resolver, q)
	if err != nil {
		return nil, tempDNSError{err}
	}
	var out []string
	for _, rr := range res.Records {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, resolve.TXTData(t))
		}
	}
	return out, nil
}

// headerSection is the message's header: everything before the first
// empty line (RFC 5322 §2.1), or all of it when there is none.
func headerSection(data []byte) []byte {
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			break
		}
		line := bytes.TrimSuffix(data[i:i+j], []byte("\r"))
		if len(line) == 0 {
			return data[:i]
		}
		i += j + 1
	}
	return data
}

// fields yields the header's fields unfolded (RFC 5322 §2.2.3): name and
// value. A line that is neither a field nor a continuation is skipped,
// leniently, as readers do.
func fields(header []byte, yield func(name, value string) bool) {
	var name string
	var value strings.Builder
	flush := func() bool {
		if name == "" {
			return true
		}
		ok := yield(name, value.String())
		name = ""
		value.Reset()
		return ok
	}
	sc := bufio.NewScanner(bytes.NewReader(header))
	sc.Buffer(nil, len(header)+1)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if name != "" {
				value.WriteString(line)
			}
			continue
		}
		if !flush() {
			return
		}
		if n, v, ok := strings.Cut(line, ":"); ok {
			// RFC 5322 §4.5 obs-optional: spaces before the colon.
			name = strings.TrimRight(n, " \t")
			value.WriteString(v)
		}
	}
	flush()
}

func hasField(header []byte, want string) bool {
	found := false
	fields(header, func(name, _ string) bool {
		found = strings.EqualFold(name, want)
		return !found
	})
	return found
}

// authorDomains returns the distinct domains of the RFC5322.From field
// (RFC 7489 §3.1, §6.6.1): none when there is no From field, an error
// when there are several or a domain cannot be taken from it.
func authorDomains(header []byte) ([]dnsname.Name, error) {
	var froms []string
	fields(header, func(name, value string) bool {
		if strings.EqualFold(name, "From") {
			froms = append(froms, value)
		}
		return len(froms) < 2
	})
	switch len(froms) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errors.New("more than one From field")
	}
	var addrs []string
	if list, err := mail.ParseAddressList(froms[0]); err == nil {
		for _, m := range list {
			addrs = append(addrs, m.Address)
		}
	} else {
		// Not RFC 5322 as net/mail reads it (obsolete syntax, raw 8-bit
		// display names): take the addr-spec a reader would show, the
		// one in angle brackets, else the whole value.
		v := froms[0]
		if i := strings.LastIndexByte(v, '<'); i >= 0 {
			v, _, _ = strings.Cut(v[i+1:], ">")
		}
		addrs = append(addrs, strings.TrimSpace(v))
	}
	var out []dnsname.Name
	for _, addr := range addrs {
		at := strings.LastIndexByte(addr, '@')
		if at < 0 {
			return nil, errors.New("a From address without a domain")
		}
		d, err := dnsname.Parse(addr[at+1:])
		if err != nil {
			return nil, errors.New("a From address whose domain is not a domain name")
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
		if len(out) > MaxFromDomains {
			return nil, fmt.Errorf("a From field with more than %d domains", MaxFromDomains)
		}
	}
	return out, nil
}

func spfValue(s spf.Status) authres.ResultValue {
	switch s {
	case spf.Pass:
		return authres.ResultPass
	case spf.Fail:
		return authres.ResultFail
	case spf.SoftFail:
		return authres.ResultSoftFail
	case spf.Neutral:
		return authres.ResultNeutral
	case spf.TempError:
		return authres.ResultTempError
	case spf.PermError:
		return authres.ResultPermError
	}
	return authres.ResultNone
}

// formatAuthResults is the Authentication-Results field (RFC 8601 §2.2).
func formatAuthResults(hostname string, results []authres.Result) string {
	id := cleanText(hostname)
	if id == "" {
		id = "unknown"
	}
	v := authres.Format(id, results)
	return fold("Authentication-Results:", strings.Fields(v))
}

// cleanText makes client- or DNS-supplied text safe inside a header field
// value: valid UTF-8, no control characters, no quote or backslash (which
// go-msgauth's quoting does not escape), at most maxHeaderValue octets.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxHeaderValue {
		s = s[:maxHeaderValue]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// kvValue is a Received-SPF key-value (RFC 7208 §9.1: dot-atom or
// quoted-string, RFC 5322 §3.2.4).
func kvValue(s string) string {
	s = cleanText(s)
	if isDotAtom(s) {
		return s
	}
	return `"` + s + `"`
}

// commentText escapes a comment's text (RFC 5322 §3.2.2: "(", ")" and
// "\" are quoted-pairs).
func commentText(s string) string {
	s = cleanText(s)
	return strings.NewReplacer("(", `\(`, ")", `\)`).Replace(s)
}

// isDotAtom reports RFC 5322 §3.2.3 dot-atom-text.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r):
		default:
			return false
		}
	}
	return true
}

// fold writes a header field from its name and the words of its value,
// breaking lines before a word that would pass 78 octets (RFC 5322 §2.1.1,
// §2.2.3). A word is never split; words have no spaces of their own that
// matter (a folded space is still a space).
func fold(name string, words []string) string {
	var b strings.Builder
	b.WriteString(name)
	n := len(name)
	for _, w := range words {
		if n+1+len(w) > 78 && n > len(name) {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		n += 1 + len(w)
	}
	return b.String()
}

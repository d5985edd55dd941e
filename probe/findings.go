package probe

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// CertExpiryWarning is how close to its end a certificate is reported as
// expiring (smtp-cert-expiring).
const CertExpiryWarning = 14 * 24 * time.Hour

// Findings judges probe results: the SMTP findings of the catalogue, in
// result order, each with the probed endpoint (Result.Subject) as its
// subject. ptr maps addresses to their PTR names, which a greeting may
// carry instead of the MX name; nil is fine. Certificate dates are judged
// at now (the zero time means time.Now()).
//
// A result whose probe the caller canceled, or our own deadline cut
// short (KindOutOfTime: OutOfTime is the error to report), yields
// nothing: there is no verdict on a server that was not given its time.
func Findings(results []*Result, now time.Time, ptr map[netip.Addr][]string) []finding.Finding {
	if now.IsZero() {
		now = time.Now()
	}
	var fs []finding.Finding
	for _, r := range results {
		if r == nil || (r.Err != nil && (r.Err.Kind == KindCanceled || r.Err.Kind == KindOutOfTime)) {
			continue
		}
		fs = append(fs, judge(r, now, ptr[r.Address])...)
	}
	return fs
}

func judge(r *Result, now time.Time, ptr []string) []finding.Finding {
	var fs []finding.Finding
	subj := r.Subject()
	add := func(id finding.ID, format string, args ...any) {
		fs = append(fs, finding.Newf(id, subj, format, args...))
	}
	failed := Step("")
	if r.Err != nil {
		failed = r.Err.Step
	}
	switch {
	case failed == StepConnect && r.Err.Kind == KindForbidden:
		// Not probed: the Dialer refuses non-public addresses
		// (docs/security.md#what-serve-refuses), which says nothing of
		// the server.
		why := r.Address.String() + " is not a public address"
		if fe, ok := errors.AsType[*dial.ForbiddenError]((&dial.Policy{}).Check(r.Address)); ok {
			why = fe.Reason()
		}
		add(finding.SMTPTargetRefused, "%s was not probed: %s, and this server connects to public addresses only.", subj, why)
		return fs
	case failed == StepConnect:
		// RFC 5321 §5.1: a sender skips an address it cannot connect to.
		add(finding.SMTPUnreachable, "%s does not accept SMTP connections: %s.", subj, r.Err.Message)
		return fs
	case failed == StepBanner:
		// RFC 5321 §4.2, §4.3.1: the greeting is a 220 reply.
		add(finding.SMTPBannerInvalid, "%s %s.", subj, bannerProblem(r))
		return fs
	}
	if b := r.Banner; b != nil && b.Slow {
		// RFC 5321 §4.5.3.2: senders wait, but many give up much sooner
		// than the 5 minutes the RFC asks for.
		add(finding.SMTPBannerSlow, "%s took %s to greet.", subj, (time.Duration(b.MS) * time.Millisecond).Round(10*time.Millisecond))
	}
	if b := r.Banner; b != nil && !bannerNameOK(b.Host, r, ptr) {
		// RFC 5321 §4.3.1: the greeting names the server's host.
		if b.Host == "" {
			// b.Text and b.Host are escaped (internal/printable) already:
			// quoting them with %q would escape them twice.
			add(finding.SMTPBannerName, "%s greets without a host name (\"%s\").", subj, b.Text)
		} else {
			add(finding.SMTPBannerName, "%s greets as \"%s\", which is not %s.", subj, b.Host, nameChoices(r, ptr))
		}
	}
	if failed == StepEHLO && r.TLS == nil {
		add(finding.SMTPEHLOFailed, "%s greets, but fails EHLO and HELO: %s.", subj, r.Err.Message)
		return fs
	}
	if r.EHLO != nil && !r.StartTLS {
		// RFC 3207 §4: STARTTLS is announced in the EHLO reply.
		if r.EHLO.Command == "HELO" {
			add(finding.SMTPStartTLSMissing, "%s does not understand EHLO, so it cannot offer STARTTLS; mail to it travels in clear text.", subj)
		} else {
			add(finding.SMTPStartTLSMissing, "%s does not offer STARTTLS; mail to it travels in clear text.", subj)
		}
	}
	switch {
	case failed == StepStartTLS, failed == StepTLS:
		// RFC 3207 §4.1: 454 or a failed handshake.
		add(finding.SMTPTLSFailed, "%s offers STARTTLS, but %s.", subj, r.Err.Message)
	case failed == StepEHLO && r.TLS != nil:
		add(finding.SMTPTLSFailed, "%s completes the TLS handshake, but then fails EHLO: %s.", subj, r.Err.Message)
	}
	if t := r.TLS; t != nil {
		fs = append(fs, judgeCert(subj, r.Host, t, now)...)
	}
	if r.Relay != nil && r.Relay.Open {
		// RFC 5321 §3.6.2: relaying for anyone is an open relay.
		add(finding.SMTPOpenRelay, "%s accepted RCPT TO:<%s> from an unauthenticated client (%03d %s).", subj, r.Relay.Recipient, r.Relay.RcptCode, r.Relay.RcptText)
	}
	return fs
}

func judgeCert(subj, host string, t *TLS, now time.Time) []finding.Finding {
	var fs []finding.Finding
	add := func(id finding.ID, format string, args ...any) {
		fs = append(fs, finding.Newf(id, subj, format, args...))
	}
	if t.VersionID != 0 && t.VersionID < tls.VersionTLS12 {
		// RFC 8996: TLS 1.0 and 1.1 are deprecated.
		add(finding.SMTPTLSOld, "%s negotiated %s, older than TLS 1.2.", subj, t.Version)
	}
	if len(t.Chain) == 0 {
		add(finding.SMTPCertUntrusted, "%s presented no certificate.", subj)
		return fs
	}
	leaf := t.Chain[0]
	expired := t.Expired
	for _, c := range t.Chain {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			expired = true
		}
	}
	// RFC 5280 §4.1.2.5: valid only between notBefore and notAfter.
	switch {
	case expired && now.Before(leaf.NotBefore):
		add(finding.SMTPCertExpired, "The certificate of %s is not valid before %s.", subj, leaf.NotBefore.Format(time.DateOnly))
	case expired && now.After(leaf.NotAfter):
		add(finding.SMTPCertExpired, "The certificate of %s expired on %s.", subj, leaf.NotAfter.Format(time.DateOnly))
	case expired:
		add(finding.SMTPCertExpired, "A certificate in the chain of %s is outside its validity dates.", subj)
	case leaf.NotAfter.Sub(now) < CertExpiryWarning:
		add(finding.SMTPCertExpiring, "The certificate of %s expires on %s, in %s.", subj, leaf.NotAfter.Format(time.DateOnly), days(leaf.NotAfter.Sub(now)))
	}
	if !t.NameOK {
		// RFC 6125 §6, RFC 8461 §4.2: the MX host name must be among the
		// certificate's names.
		names := strings.Join(leaf.SANs[:min(len(leaf.SANs), 5)], ", ")
		if names == "" {
			names = "no DNS names, subject " + leaf.Subject
		}
		add(finding.SMTPCertNameMismatch, "The certificate of %s is not valid for %s (it names %s).", subj, host, names)
	}
	if !t.Trusted {
		// RFC 5280 §6: no path to a trusted root.
		add(finding.SMTPCertUntrusted, "The certificate chain of %s does not verify: %s.", subj, t.VerifyError)
	}
	return fs
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n < 1 {
		return "less than a day"
	}
	return prose.Count(n, "day")
}

// bannerProblem says what is wrong with a failed greeting.
func bannerProblem(r *Result) string {
	e := *r.Err
	e.Message = strings.TrimPrefix(e.Message, "greeting: ")
	switch e.Kind {
	case KindTimeout:
		if e.Partial != "" {
			return "sent only part of a greeting: " + e.Message
		}
		return "sent no greeting: " + e.Message
	case KindReply:
		return fmt.Sprintf("greets with %03d instead of 220 (%s)", e.Code, r.Banner.Text)
	case KindClosed:
		if e.Partial != "" {
			return "closed the connection in the middle of its greeting: " + e.Message
		}
		return "closed the connection without a complete greeting"
	case KindMalformed:
		return "sent a greeting that is not an SMTP reply: " + e.Message
	case KindTooLong:
		return "sent a greeting over the size limits: " + e.Message
	}
	return "failed during the greeting: " + e.Message
}

// bannerNameOK reports whether the greeting's host is the MX name, one of
// the address's PTR names, or the address literal. With nothing to
// compare against, there is nothing to report.
func bannerNameOK(name string, r *Result, ptr []string) bool {
	if r.Host == "" && len(ptr) == 0 {
		return true
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return false
	}
	if name == r.Host {
		return true
	}
	for _, p := range ptr {
		if name == strings.ToLower(strings.TrimSuffix(p, ".")) {
			return true
		}
	}
	// RFC 5321 §4.1.3: an address literal, [192.0.2.1] or
	// [IPv6:2001:db8::1].
	lit := strings.TrimPrefix(strings.Trim(name, "[]"), "ipv6:")
	if a, err := netip.ParseAddr(lit); err == nil && a.Unmap() == r.Address {
		return true
	}
	return false
}

func nameChoices(r *Result, ptr []string) string {
	var c []string
	if r.Host != "" {
		c = append(c, "the MX name "+r.Host)
	}
	if len(ptr) > 0 {
		c = append(c, "the PTR name "+strings.Join(ptr[:min(len(ptr), 3)], ", "))
	}
	return strings.Join(c, " or ")
}

// isAddressLiteral reports whether host is an IP address (with or
// without brackets) rather than a name.
func isAddressLiteral(host string) bool {
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

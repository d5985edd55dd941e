package finding

// SMTP, tier and DANE-match finding IDs (docs/findings.md): what probe sees
// when it talks to the exchanges, and what check concludes by comparing the
// tiers of a plan.
const (
	SMTPUnreachable      ID = "smtp-unreachable"
	SMTPTargetRefused    ID = "smtp-target-refused"
	SMTPBannerInvalid    ID = "smtp-banner-invalid"
	SMTPEHLOFailed       ID = "smtp-ehlo-failed"
	SMTPBannerSlow       ID = "smtp-banner-slow"
	SMTPBannerName       ID = "smtp-banner-name-mismatch"
	SMTPStartTLSMissing  ID = "smtp-starttls-missing"
	SMTPTLSFailed        ID = "smtp-tls-failed"
	SMTPTLSOld           ID = "smtp-tls-old"
	SMTPCertExpired      ID = "smtp-cert-expired"
	SMTPCertExpiring     ID = "smtp-cert-expiring"
	SMTPCertNameMismatch ID = "smtp-cert-name-mismatch"
	SMTPCertUntrusted    ID = "smtp-cert-untrusted"
	SMTPOpenRelay        ID = "smtp-open-relay"
	MXBackupWeaker       ID = "mx-backup-weaker"
	MXNolisting          ID = "mx-nolisting"
	DANEMismatch         ID = "dane-tlsa-mismatch"
)

var transportEntries = []Entry{
	{SMTPUnreachable, AreaSMTP, Error,
		"An exchange address does not accept SMTP connections (refused, time-out, or no reachable route), so senders must skip it.",
		"RFC 5321 §5.1", "Start the MTA or open port 25 to the Internet on that address, or remove the address or the MX record.",
		"connect 192.0.2.10:25: connection refused"},
	{SMTPTargetRefused, AreaSMTP, Info,
		"An exchange address is not public (loopback, private, link-local or another special-purpose range), and this server (mxtrace serve) connects to no such address, since an MX record is a pointer any domain owner controls: it was not probed.",
		"RFC 6890", "Nothing, if the exchange is meant to be internal; otherwise publish its public address. `mxtrace check` on the command line, or a server started with `serve --allow-private`, probes such addresses.",
		"`mx A 192.168.1.25` checked through `mxtrace serve`"},
	{SMTPBannerInvalid, AreaSMTP, Error,
		"The server's greeting is not a well-formed `220` reply (garbage, another code, over-long lines, or nothing before the deadline).",
		"RFC 5321 §4.2, §4.3.1", "Make the MTA send `220 host.name ESMTP` promptly; check for a middlebox that rewrites or blocks SMTP.",
		"the server answers `554 no service` or sends binary data"},
	{SMTPEHLOFailed, AreaSMTP, Error,
		"The server greets, but rejects or breaks both EHLO and HELO, so senders cannot deliver to it.",
		"RFC 5321 §4.1.1.1, §3.2", "Check the MTA's HELO/EHLO restrictions and any middlebox that inspects SMTP.",
		"EHLO answered 421; the connection closes after EHLO; an endless EHLO reply"},
	{SMTPBannerSlow, AreaSMTP, Warning,
		"The greeting took longer than a few seconds; senders with short timeouts give up and some treat it as a failure.",
		"RFC 5321 §4.5.3.2", "Find the delay (reverse DNS lookups of clients, an overloaded filter, a greet-pause policy) and shorten it.",
		"220 arrives after 12 s"},
	{SMTPBannerName, AreaSMTP, Info,
		"The host name in the greeting is not the MX name, nor the name its address points back to.",
		"RFC 5321 §4.3.1", "Set the MTA's host name (Postfix `myhostname`) to the exchange's MX name.",
		"MX `mx1.example.com`, banner `220 localhost.localdomain ESMTP`"},
	{SMTPStartTLSMissing, AreaSMTP, Warning,
		"The server does not offer STARTTLS, so mail to it travels in clear text.",
		"RFC 3207 §4; RFC 8314", "Enable STARTTLS with a certificate for the MX name (Postfix `smtpd_tls_security_level = may`).",
		"EHLO reply without `250-STARTTLS`"},
	{SMTPTLSFailed, AreaSMTP, Error,
		"STARTTLS is offered but the TLS handshake fails, so opportunistic senders fall back to clear text or defer.",
		"RFC 3207 §4.1", "Check the certificate and key files and the protocol and cipher settings of the MTA.",
		"`454 TLS not available` after STARTTLS, or a handshake alert"},
	{SMTPTLSOld, AreaSMTP, Warning,
		"The best TLS version the server offers is older than TLS 1.2.",
		"RFC 8996; RFC 7525 §3.1.1", "Enable TLS 1.2 and 1.3 in the MTA.",
		"negotiated TLS 1.0"},
	{SMTPCertExpired, AreaSMTP, Error,
		"The server's certificate has expired (or is not yet valid); MTA-STS and DANE-TA senders refuse to deliver.",
		"RFC 5280 §4.1.2.5; RFC 8461 §4.2", "Renew the certificate and reload the MTA.",
		"notAfter 2026-01-01, now 2026-11-24"},
	{SMTPCertExpiring, AreaSMTP, Warning,
		"The server's certificate expires within 14 days.",
		"RFC 5280 §4.1.2.5", "Renew the certificate now, and check that renewal is automatic.",
		"notAfter in 6 days"},
	{SMTPCertNameMismatch, AreaSMTP, Warning,
		"The certificate does not name the exchange's MX host name, so MTA-STS senders refuse it.",
		"RFC 8461 §4.2; RFC 6125 §6", "Get a certificate whose subjectAltName lists the MX host name.",
		"MX `mx1.example.com`, certificate for `mail.example.net`"},
	{SMTPCertUntrusted, AreaSMTP, Warning,
		"The certificate chain does not verify against the trusted roots (self-signed, unknown CA, or missing intermediate).",
		"RFC 8461 §4.2; RFC 5280 §6", "Serve the full chain from a public CA, or publish a DANE-EE TLSA record in a signed zone.",
		"x509: certificate signed by unknown authority"},
	{SMTPOpenRelay, AreaSMTP, Error,
		"The server accepted a recipient in a domain it has no business relaying for: it is an open relay and will be abused for spam.",
		"RFC 5321 §3.6.2; RFC 2505 §2", "Accept only your own domains and authenticated clients (Postfix `smtpd_relay_restrictions`).",
		"`RCPT TO:<test@relay-target.example>` answered 250 without authentication"},
	{MXBackupWeaker, AreaTiers, Warning,
		"A backup tier lacks a protection the primary tier has (STARTTLS, a valid certificate, TLS 1.2+, reverse DNS, a clean blacklist record), so an attacker can push mail through the backup by blocking the primary.",
		"RFC 5321 §5.1; RFC 7672 §2.2.1", "Give the backup the same TLS setup, certificate and reputation as the primary, or remove the backup MX.",
		"primary offers STARTTLS with a valid certificate, `MX 20 backup` has none"},
	{MXNolisting, AreaTiers, Info,
		"The primary tier refuses connections while a backup accepts: this looks like nolisting, which delays legitimate mail and breaks senders that do not retry.",
		"RFC 5321 §5.1", "Run a real MTA on the primary, or drop the dead primary MX record.",
		"`MX 10 mx0` refuses on port 25, `MX 20 mx1` answers"},
	{DANEMismatch, AreaDANE, Error,
		"The exchange's usable TLSA records match neither its certificate nor a CA in its chain, so DANE senders refuse to deliver.",
		"RFC 7672 §3.1", "Publish TLSA records for the certificate in use (roll them before changing keys), or serve the certificate they name.",
		"`TLSA 3 1 1` digest differs from the SHA-256 of the server's public key"},
}

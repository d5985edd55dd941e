package finding

// Nameserver, reverse DNS, mail-authentication, transport-security and
// blacklist finding IDs, reported by check (docs/findings.md).
const (
	NSInconsistent    ID = "ns-inconsistent"
	NSSerialMismatch  ID = "ns-serial-mismatch"
	NSUnreachable     ID = "ns-unreachable"
	NSLame            ID = "ns-lame"
	NSTargetRefused   ID = "ns-target-refused"
	DNSSECUnsigned    ID = "dnssec-unsigned"
	DNSSECBogus       ID = "dnssec-bogus"
	PTRMissing        ID = "ptr-missing"
	PTRMismatch       ID = "ptr-mismatch"
	SPFMissing        ID = "spf-missing"
	SPFMultiple       ID = "spf-multiple"
	SPFIncludeNone    ID = "spf-include-none"
	SPFRedirectNone   ID = "spf-redirect-none"
	SPFSyntax         ID = "spf-syntax"
	SPFLookupLimit    ID = "spf-lookup-limit"
	SPFVoidLookups    ID = "spf-void-lookups"
	SPFPlusAll        ID = "spf-plus-all"
	SPFNeutralAll     ID = "spf-neutral-all"
	SPFPTR            ID = "spf-ptr"
	DMARCMissing      ID = "dmarc-missing"
	DMARCMultiple     ID = "dmarc-multiple"
	DMARCSyntax       ID = "dmarc-syntax"
	DMARCPolicyNone   ID = "dmarc-policy-none"
	DMARCNoRUA        ID = "dmarc-no-rua"
	DMARCRUAUnauth    ID = "dmarc-rua-unauthorized"
	DKIMNoneFound     ID = "dkim-none-found"
	DKIMSyntax        ID = "dkim-syntax"
	DKIMWeakKey       ID = "dkim-weak-key"
	MTASTSMissing     ID = "mta-sts-missing"
	MTASTSTXTInvalid  ID = "mta-sts-txt-invalid"
	MTASTSUnreachable ID = "mta-sts-policy-unreachable"
	MTASTSInvalid     ID = "mta-sts-policy-invalid"
	MTASTSNotCovered  ID = "mta-sts-mx-not-covered"
	MTASTSTesting     ID = "mta-sts-testing"
	MTASTSRefused     ID = "mta-sts-fetch-refused"
	TLSRPTMissing     ID = "tlsrpt-missing"
	TLSRPTInvalid     ID = "tlsrpt-invalid"
	DANEInsecure      ID = "dane-tlsa-insecure"
	DANEInvalid       ID = "dane-tlsa-invalid"
	DNSBLListed       ID = "dnsbl-listed"
	DNSBLUnusable     ID = "dnsbl-unusable"
)

var auditEntries = []Entry{
	{NSInconsistent, AreaNameservers, Error,
		"The zone's authoritative servers give different MX sets, so senders route differently depending on which server they ask.",
		"RFC 1034 §4.3.5; RFC 5321 §5.1", "Make every authoritative server serve the same zone: fix the zone transfer (AXFR/IXFR, NOTIFY) or the provider's sync.",
		"ns1 answers `MX 10 mx1`, ns2 answers `MX 10 old-mx`"},
	{NSSerialMismatch, AreaNameservers, Warning,
		"The authoritative servers report different SOA serials: a secondary has not picked up the latest zone.",
		"RFC 1996; RFC 1034 §4.3.5", "Check that the primary sends NOTIFY and the secondaries can transfer the zone; bump the serial on every change.",
		"ns1 serial 2026112201, ns2 serial 2026110901"},
	{NSUnreachable, AreaNameservers, Error,
		"An authoritative server of the zone did not answer (time-out or refused connection).",
		"RFC 1034 §4.3.1", "Bring the server back, or remove it from the NS set at the parent and in the zone.",
		"ns2.example.net does not answer on port 53"},
	{NSLame, AreaNameservers, Error,
		"A server listed as authoritative for the zone does not answer authoritatively for it (lame delegation).",
		"RFC 1912 §2.8; RFC 8499 §7", "Configure the zone on that server, or remove it from the NS set.",
		"ns3 answers REFUSED or without the AA bit"},
	{NSTargetRefused, AreaNameservers, Info,
		"An address of an authoritative server is not public (loopback, private, link-local or another special-purpose range), and this server (mxtrace serve) asks no such address, since an NS record is a pointer any domain owner controls: it was not asked.",
		"RFC 6890", "Nothing, if the address is meant to be internal; otherwise publish the server's public address. `mxtrace check` on the command line, or a server started with `serve --allow-private`, asks such addresses.",
		"`ns2 A 10.0.0.53` checked through `mxtrace serve`"},
	{DNSSECUnsigned, AreaNameservers, Info,
		"The zone is not DNSSEC-signed, so its MX, TLSA and policy records can be forged on the path; DANE cannot be used.",
		"RFC 4033; RFC 7672 §2.2", "Sign the zone and publish the DS record at the parent.",
		"no DS record for the zone at its parent"},
	{DNSSECBogus, AreaNameservers, Error,
		"The zone's DNSSEC signatures do not validate: validating resolvers answer SERVFAIL, so mail to the domain stops.",
		"RFC 4035 §5.5", "Fix the signatures (expired RRSIG, DS that matches no DNSKEY) or remove the DS at the parent.",
		"the DS at the parent matches no DNSKEY in the zone"},
	{PTRMissing, AreaPTR, Warning,
		"An exchange address has no PTR record; many receivers distrust mail from, and some senders log warnings about, such hosts.",
		"RFC 1912 §2.1; RFC 8499", "Ask the address's owner (the hosting provider) to publish a PTR with the exchange's name.",
		"no PTR for 192.0.2.10"},
	{PTRMismatch, AreaPTR, Warning,
		"Forward-confirmed reverse DNS fails: the PTR name of an exchange address does not resolve back to that address.",
		"RFC 1912 §2.1; RFC 8601 §3", "Make the PTR name's A/AAAA records include the address, or change the PTR to the exchange's name.",
		"192.0.2.10 PTR host.example.net, but host.example.net A 192.0.2.99"},
	{SPFMissing, AreaSPF, Warning,
		"The domain publishes no SPF record, so receivers cannot tell authorised senders from forgers.",
		"RFC 7208 §4.5", "Publish a TXT record starting with `v=spf1` that lists the domain's senders, or `v=spf1 -all` if it sends no mail.",
		"no TXT record starting with `v=spf1`"},
	{SPFMultiple, AreaSPF, Error,
		"The domain publishes more than one SPF record; evaluation ends in permerror.",
		"RFC 7208 §4.5", "Merge the records into one.",
		"two TXT records starting with `v=spf1`"},
	{SPFIncludeNone, AreaSPF, Error,
		"An `include:` points at a domain that publishes no SPF record, so the include, and with it the whole evaluation, ends in permerror whenever it is reached.",
		"RFC 7208 §5.2", "Correct the included name (often a typo or a provider's retired name), remove the include, or have that domain publish its SPF record.",
		"`include:_spf.example.com` where `_spf.example.com` has no TXT record starting with `v=spf1`"},
	{SPFRedirectNone, AreaSPF, Error,
		"A `redirect=` points at a domain that publishes no SPF record, so every evaluation that reaches it ends in permerror, not none.",
		"RFC 7208 §6.1", "Point `redirect=` at a domain with an SPF record, or replace it with that record's terms.",
		"`v=spf1 redirect=_spf.example.com` where `_spf.example.com` does not exist"},
	{SPFSyntax, AreaSPF, Error,
		"The SPF record does not parse; evaluation ends in permerror, as if the domain had a broken policy.",
		"RFC 7208 §4.6, §12", "Correct the term at the reported position.",
		"`v=spf1 ip4:192.0.2.300 -all`"},
	{SPFLookupLimit, AreaSPF, Error,
		"Evaluating the SPF record needs more than 10 DNS-querying terms (include, a, mx, ptr, exists, redirect, nested includes counted); receivers return permerror.",
		"RFC 7208 §4.6.4", "Replace includes with ip4/ip6 ranges, or drop senders you no longer use.",
		"an include chain with 12 include/a/mx terms"},
	{SPFVoidLookups, AreaSPF, Error,
		"More than two DNS lookups made while evaluating the record return no data or NXDOMAIN; receivers return permerror.",
		"RFC 7208 §4.6.4", "Remove the mechanisms that point at names with no records.",
		"`include:gone1.example include:gone2.example include:gone3.example`"},
	{SPFPlusAll, AreaSPF, Error,
		"The SPF record ends in `+all`: every host on the Internet may send as the domain.",
		"RFC 7208 §5.1", "End the record with `-all` (or `~all` while testing).",
		"`v=spf1 +all`"},
	{SPFNeutralAll, AreaSPF, Warning,
		"The SPF record ends in `?all`: it says nothing about unlisted senders, so forgeries pass as neutral.",
		"RFC 7208 §8.2", "End the record with `-all` or `~all`.",
		"`v=spf1 mx ?all`"},
	{SPFPTR, AreaSPF, Warning,
		"The SPF record uses the `ptr` mechanism, which is slow, unreliable and should not be used.",
		"RFC 7208 §5.5", "Replace `ptr` with ip4/ip6 or a/mx mechanisms.",
		"`v=spf1 ptr -all`"},
	{DMARCMissing, AreaDMARC, Warning,
		"No DMARC record at `_dmarc` of the domain or of its organizational domain; receivers apply no policy to forged mail.",
		"RFC 7489 §6.1", "Publish `_dmarc.DOMAIN TXT \"v=DMARC1; p=none; rua=mailto:...\"` and tighten p once reports look right.",
		"no TXT at `_dmarc.example.com`"},
	{DMARCMultiple, AreaDMARC, Error,
		"More than one DMARC record is published; receivers ignore them all.",
		"RFC 7489 §6.6.3", "Keep exactly one record.",
		"two TXT records starting with `v=DMARC1`"},
	{DMARCSyntax, AreaDMARC, Error,
		"The DMARC record does not parse, or has a tag value out of range.",
		"RFC 7489 §6.3, §6.4", "Correct the tag named in the message.",
		"`v=DMARC1; p=block`"},
	{DMARCPolicyNone, AreaDMARC, Info,
		"The DMARC policy is `none`: reports are collected but forged mail is not rejected or quarantined.",
		"RFC 7489 §6.3", "Move to `p=quarantine` then `p=reject` once the reports show all legitimate mail aligned.",
		"`v=DMARC1; p=none`"},
	{DMARCNoRUA, AreaDMARC, Warning,
		"The DMARC record asks for no aggregate reports (`rua`), so the domain owner never learns who sends as the domain.",
		"RFC 7489 §7.2", "Add `rua=mailto:` with a mailbox that collects reports.",
		"`v=DMARC1; p=reject`"},
	{DMARCRUAUnauth, AreaDMARC, Warning,
		"A report address is in another domain that has not agreed to receive reports for this one; receivers will not send them.",
		"RFC 7489 §7.1", "Have the report domain publish `DOMAIN._report._dmarc.REPORTDOMAIN TXT \"v=DMARC1\"`, or use an address in the domain.",
		"`rua=mailto:d@reports.example.net` without `example.com._report._dmarc.reports.example.net`"},
	{DKIMNoneFound, AreaDKIM, Info,
		"No DKIM key was found at the probed selectors. Selectors cannot be listed, so the domain may still sign with another one.",
		"RFC 6376 §3.6.2.1", "Pass the selector you use with `--dkim-selector`, or publish a key and sign outgoing mail.",
		"no TXT at `default._domainkey`, `selector1._domainkey`, ..."},
	{DKIMSyntax, AreaDKIM, Error,
		"A DKIM key record does not parse; signatures made with it fail.",
		"RFC 6376 §3.6.1", "Correct the tag named in the message (often a truncated or split `p=`).",
		"`v=DKIM1; k=rsa; p=MIGfMA0G` (truncated key)"},
	{DKIMWeakKey, AreaDKIM, Warning,
		"A DKIM RSA key is shorter than 2048 bits (an error below 1024 bits, which receivers ignore).",
		"RFC 8301 §3.2", "Publish a 2048-bit RSA or an Ed25519 key under a new selector and switch signing to it.",
		"a 1024-bit RSA key"},
	{MTASTSMissing, AreaMTASTS, Info,
		"The domain publishes no MTA-STS policy, so senders fall back to opportunistic TLS that an attacker can strip.",
		"RFC 8461 §3", "Publish `_mta-sts` TXT and a policy at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.",
		"no TXT at `_mta-sts.example.com`"},
	{MTASTSTXTInvalid, AreaMTASTS, Error,
		"The `_mta-sts` TXT record is malformed or there is more than one; senders ignore the policy.",
		"RFC 8461 §3.1", "Publish exactly one `v=STSv1; id=...` record with an id of 1–32 letters and digits.",
		"`v=STSv1; id=2026-11-22` (hyphens are not allowed in id)"},
	{MTASTSUnreachable, AreaMTASTS, Error,
		"The MTA-STS policy could not be fetched over HTTPS (connection, certificate, redirect, status, size or time-out).",
		"RFC 8461 §3.3", "Serve the policy at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` with a valid certificate, status 200 and no redirect.",
		"the policy host redirects to another URL"},
	{MTASTSInvalid, AreaMTASTS, Error,
		"The MTA-STS policy file does not parse.",
		"RFC 8461 §3.2", "Correct the policy: `version: STSv1`, `mode`, `max_age` and one `mx:` line per exchange pattern.",
		"a policy without `max_age`"},
	{MTASTSNotCovered, AreaMTASTS, Error,
		"An exchange is not matched by any `mx:` pattern of the MTA-STS policy; in enforce mode senders refuse to deliver to it.",
		"RFC 8461 §4.1", "Add the exchange (or a `*.` pattern for its parent) to the policy.",
		"policy `mx: mail.example.com`, MX `mx2.example.com`"},
	{MTASTSTesting, AreaMTASTS, Info,
		"The MTA-STS policy is in `testing` mode: failures are reported but not enforced.",
		"RFC 8461 §5", "Switch to `mode: enforce` once TLS reports show no failures.",
		"`mode: testing`"},
	{MTASTSRefused, AreaMTASTS, Info,
		"Every address of the MTA-STS policy host is not public (loopback, private, link-local or another special-purpose range), and this server (mxtrace serve) connects to no such address, since the policy host's name is a pointer any domain owner controls: the policy was not fetched.",
		"RFC 6890; RFC 8461 §3.3", "Nothing, if the policy host is meant to be internal; otherwise publish its public address. `mxtrace check` on the command line, or a server started with `serve --allow-private`, fetches from such addresses.",
		"`mta-sts A 127.0.0.1` checked through `mxtrace serve`"},
	{TLSRPTMissing, AreaTLSRPT, Info,
		"No TLS reporting record: the domain never hears of senders that fail to negotiate TLS with it.",
		"RFC 8460 §3", "Publish `_smtp._tls.DOMAIN TXT \"v=TLSRPTv1; rua=mailto:...\"`.",
		"no TXT at `_smtp._tls.example.com`"},
	{TLSRPTInvalid, AreaTLSRPT, Error,
		"The TLS reporting record is malformed, or more than one is published.",
		"RFC 8460 §3", "Publish exactly one `v=TLSRPTv1; rua=mailto:...` (or `https:`) record.",
		"`v=TLSRPTv1; rua=reports@example.com` (no URI scheme)"},
	{DANEInsecure, AreaDANE, Warning,
		"TLSA records are published for an exchange in a zone that is not DNSSEC-signed; senders ignore them.",
		"RFC 7672 §2.2", "Sign the exchange's zone, or remove the TLSA records.",
		"`_25._tcp.mx.example.com TLSA 3 1 1 ...` in an unsigned zone"},
	{DANEInvalid, AreaDANE, Error,
		"A TLSA record for an exchange is malformed or uses parameters SMTP senders do not accept (usages 0 and 1, unknown selector or matching type, wrong digest length).",
		"RFC 7672 §3.1; RFC 6698 §2.1", "Publish TLSA `3 1 1` (or `2 1 1`) records with a correct SHA-256 digest.",
		"`_25._tcp.mx.example.com TLSA 1 1 1 ...`"},
	{DNSBLListed, AreaDNSBL, Error,
		"An exchange address is listed on a DNS blacklist, so some receivers reject its mail.",
		"RFC 5782 §2.1", "Find why (the TXT reason), fix it, then ask the list to delist the address.",
		"`10.2.0.192.zen.example` A 127.0.0.2"},
	{DNSBLUnusable, AreaDNSBL, Info,
		"A DNS blacklist refused to answer (a public-resolver or quota block code such as 127.255.255.254), so the address could not be checked.",
		"RFC 5782 §2.1", "Query the list through your own resolver, or with a registered key, or drop it with `--dnsbl`.",
		"`...zen.spamhaus.org` answers 127.255.255.254"},
}

package finding

import "slices"

// Routing finding IDs: what the plan yields (docs/routing.md, one section
// per rule, says which rule yields which).
const (
	MXNXDomain         ID = "mx-nxdomain"
	MXLookupFailed     ID = "mx-lookup-failed"
	MXImplicit         ID = "mx-implicit"
	MXNoMail           ID = "mx-no-mail"
	MXNull             ID = "mx-null"
	MXNullMixed        ID = "mx-null-mixed"
	MXTargetIP         ID = "mx-target-ip"
	MXTargetCNAME      ID = "mx-target-cname"
	MXTargetNXDomain   ID = "mx-target-nxdomain"
	MXTargetNoAddress  ID = "mx-target-no-address"
	MXTargetPrivate    ID = "mx-target-private"
	MXDuplicate        ID = "mx-duplicate"
	MXSinglePoint      ID = "mx-single-point"
	MXNoIPv6           ID = "mx-no-ipv6"
	MXTTL              ID = "mx-ttl"
	MXTooManyExchanges ID = "mx-too-many-exchanges"
	MXTooManyAddresses ID = "mx-too-many-addresses"
	MXAliasChain       ID = "mx-alias"
	MXSelfLoop         ID = "mx-self-loop"

	MXAliasLoop          ID = "mx-alias-loop"
	MXAliasTooLong       ID = "mx-alias-too-long"
	MXTargetAliasLoop    ID = "mx-target-alias-loop"
	MXTargetAliasTooLong ID = "mx-target-alias-too-long"
	MXNotInZones         ID = "mx-not-in-zones"
)

// Catalogue lists every finding ID mxtrace can report, in documentation
// order. docs/findings.md is generated from it (go test ./finding -update).
var Catalogue = slices.Concat(routingEntries, auditEntries, transportEntries)

var routingEntries = []Entry{
	{MXNXDomain, AreaRouting, Error,
		"The domain does not exist (NXDOMAIN), so it cannot receive mail.",
		"RFC 5321 §5.1", "Create the domain, or stop using addresses at it.",
		"`mxtrace route nosuch.example` where the registry has no such name"},
	{MXLookupFailed, AreaRouting, Error,
		"A lookup needed for the route failed temporarily (SERVFAIL, REFUSED or time-out); this is not the same as having no MX.",
		"RFC 5321 §5.1", "Ask again through another resolver (--resolver): if it answers, the first resolver was at fault; if it fails too, make every authoritative server answer for the zone, and check the delegation and the DNSSEC signatures.",
		"the only nameserver of the zone is down"},
	{MXImplicit, AreaRouting, Warning,
		"The domain has no MX records, so senders fall back to its A/AAAA records (implicit MX).",
		"RFC 5321 §5.1", "Publish an explicit MX record, or a Null MX (`MX 0 .`) if the domain receives no mail.",
		"`example.test. A 192.0.2.1` and no MX"},
	{MXNoMail, AreaRouting, Warning,
		"The domain has neither MX nor address records: mail to it bounces.",
		"RFC 5321 §5.1", "Publish MX records, or a Null MX (`MX 0 .`) to say explicitly that the domain takes no mail.",
		"a name with only TXT records"},
	{MXNull, AreaRouting, Info,
		"The domain publishes a Null MX: it accepts no mail, and senders reject mail to it at once.",
		"RFC 7505 §3", "Nothing, if the domain really takes no mail.",
		"`example.test. MX 0 .`"},
	{MXNullMixed, AreaRouting, Error,
		"A Null MX is published beside other MX records; senders disagree on what that means.",
		"RFC 7505 §3", "Remove either the `MX 0 .` record or the other MX records.",
		"`MX 0 .` and `MX 10 mx.example.test.`"},
	{MXTargetIP, AreaRouting, Error,
		"An MX record names an IP address instead of a host name; many senders will not deliver to it.",
		"RFC 5321 §5.1; RFC 7505 §1", "Give the server a host name with A/AAAA records and point the MX at that name.",
		"`MX 10 192.0.2.1.`"},
	{MXTargetCNAME, AreaRouting, Warning,
		"An MX record points at an alias (CNAME); it works with most senders but is forbidden.",
		"RFC 2181 §10.3; RFC 5321 §5.1", "Point the MX at the canonical name the CNAME leads to.",
		"`MX 10 mail.example.test.` and `mail CNAME host.example.net.`"},
	{MXTargetNXDomain, AreaRouting, Error,
		"An MX record points at a name that does not exist.",
		"RFC 5321 §5.1", "Create the exchange's A/AAAA records or remove the MX record.",
		"`MX 10 gone.example.test.` with no such name"},
	{MXTargetNoAddress, AreaRouting, Error,
		"An MX record points at a name that has no A or AAAA record.",
		"RFC 5321 §5.1", "Add A/AAAA records for the exchange or remove the MX record.",
		"`MX 10 mx.example.test.` where mx has only TXT"},
	{MXTargetPrivate, AreaRouting, Error,
		"An exchange resolves to an address that is not reachable from the Internet (private, loopback, link-local, documentation or other reserved range).",
		"RFC 6890", "Publish the server's public address; the message names the range and the RFC that reserves it.",
		"`mx A 10.0.0.5`"},
	{MXDuplicate, AreaRouting, Warning,
		"The same exchange is listed more than once, or two exchanges share an address; it adds no redundancy.",
		"RFC 5321 §5.1", "Remove the duplicate, or give the backup its own server.",
		"`MX 10 mx.example.test.` and `MX 20 mx.example.test.`"},
	{MXSinglePoint, AreaRouting, Warning,
		"All mail depends on one address: if it is down, mail is delayed until it returns.",
		"RFC 5321 §5.1", "Add a second exchange, or a second address, on a separate network.",
		"one MX with one A record"},
	{MXNoIPv6, AreaRouting, Info,
		"No exchange has an IPv6 address, so IPv6-only senders cannot deliver.",
		"RFC 3974", "Give at least the primary exchanges AAAA records.",
		"every exchange has only A records"},
	{MXTTL, AreaRouting, Warning,
		"The MX TTL is outside the usual range (5 minutes to 1 week): very short TTLs load resolvers and slow mail, very long ones slow changes.",
		"RFC 1035 §3.2.1", "Use a TTL between 300 seconds and one week; an hour to a day is usual.",
		"`example.test. 30 MX 10 mx.example.test.`"},
	{MXTooManyExchanges, AreaRouting, Warning,
		"More exchanges are published than a sender resolves; the ones past the limit are ignored.",
		"RFC 5321 §5.1", "Publish fewer MX records.",
		"65 MX records"},
	{MXTooManyAddresses, AreaRouting, Warning,
		"An exchange has more addresses than a sender tries; the ones past the limit are ignored.",
		"RFC 5321 §5.1", "Publish fewer addresses per exchange.",
		"an exchange with 20 A records"},
	{MXAliasChain, AreaRouting, Info,
		"The domain is an alias (CNAME); mail is routed by the MX records of the name it leads to.",
		"RFC 5321 §5.1", "Nothing, if the alias is intended.",
		"`example.test. CNAME example.net.`"},
	{MXAliasLoop, AreaRouting, Error,
		"The domain is an alias (CNAME) whose chain loops back on itself, so it leads to no MX records: mail to it cannot be routed. This is the zone's configuration, not a temporary failure.",
		"RFC 1034 §3.6.2; RFC 5321 §5.1", "Break the loop: point the last alias at the name that owns the MX records, or publish the MX records at the domain instead of the CNAME.",
		"`d.test. CNAME e.test.` and `e.test. CNAME d.test.`"},
	{MXAliasTooLong, AreaRouting, Error,
		"The domain is an alias whose chain is longer than resolvers follow (8 aliases), so senders give up before its MX records. This is the zone's configuration, not a temporary failure.",
		"RFC 1034 §3.6.2; RFC 1912 §2.4", "Point the alias straight at the canonical name, or publish the MX records at the domain.",
		"`d.test. CNAME c1.test.`, `c1 CNAME c2`, … nine aliases in a row"},
	{MXTargetAliasLoop, AreaRouting, Error,
		"An exchange's name is an alias (CNAME) whose chain loops, so it has no address: senders cannot reach it. This is the zone's configuration, not a temporary failure.",
		"RFC 2181 §10.3; RFC 1034 §3.6.2", "Point the MX record at the server's canonical host name, which owns its A/AAAA records (no CNAME).",
		"`MX 10 mx.d.test.` with `mx CNAME mx2` and `mx2 CNAME mx`"},
	{MXTargetAliasTooLong, AreaRouting, Error,
		"An exchange's name is an alias chain longer than resolvers follow (8 aliases), so senders find no address for it. This is the zone's configuration, not a temporary failure.",
		"RFC 2181 §10.3; RFC 1034 §3.6.2", "Point the MX record at the server's canonical host name, which owns its A/AAAA records (no CNAME).",
		"`MX 10 c1.d.test.` where c1 starts a chain of nine aliases"},
	{MXNotInZones, AreaRouting, Warning,
		"A name the route needs is outside the zone files given with --zone, so it was not looked up; nothing says it is wrong.",
		"", "Not in the zone files: add the zone file that holds it with another --zone, or add --resolver to look up names outside the files on the network.",
		"`route --zone d.zone d.test` where d.test's MX is `mx.elsewhere.example.`"},
	{MXSelfLoop, AreaRouting, Error,
		"The sending host is the most preferred exchange of the domain (--self), so it has nowhere to relay: a mail loop.",
		"RFC 5321 §5.1", "Publish a more preferred exchange, or deliver the mail locally.",
		"`--self mx1.example.test` where mx1 has the lowest preference"},
}

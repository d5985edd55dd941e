package dnstest

// AuditZone is a domain, d.test, with every record check looks at: two
// exchanges in two tiers with their addresses, SPF with an include and an
// mx term, DMARC with a report address, MTA-STS and TLS-RPT records, a DKIM
// key at selector "mail", reverse zones for the exchanges' addresses, and
// a delegation whose nameserver is 127.0.0.1 (the test server itself, asked
// directly on its port). Latency benchmarks of a whole audit serve it with
// WithDelay: check's, and serve's through the API.
const AuditZone = `
$TTL 3600
$ORIGIN test.
@ SOA ns.d.test. h.test. 1 7200 900 1209600 300
$ORIGIN d.test.
@ SOA ns.d.test. h.test. 1 7200 900 1209600 300
@ NS ns.d.test.
ns A 127.0.0.1
$ORIGIN test.
d MX 10 mx1.d.test.
d MX 20 mx2.d.test.
mx1.d A 192.0.2.1
mx1.d AAAA 2001:db8::1
mx2.d A 192.0.2.2
d TXT "v=spf1 mx include:_spf.d.test -all"
_spf.d TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.d TXT "v=DMARC1; p=reject; rua=mailto:r@d.test"
_mta-sts.d TXT "v=STSv1; id=1"
_smtp._tls.d TXT "v=TLSRPTv1; rua=mailto:t@d.test"
mail._domainkey.d TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
$ORIGIN 2.0.192.in-addr.arpa.
@ SOA ns.d.test. h.test. 1 7200 900 1209600 300
1 PTR mx1.d.test.
2 PTR mx2.d.test.
$ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.
@ SOA ns.d.test. h.test. 1 7200 900 1209600 300
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mx1.d.test.
`

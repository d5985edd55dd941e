// Package spf implements the Sender Policy Framework (RFC 7208): parsing
// SPF records, evaluating them with check_host(), and auditing a domain's
// record tree.
//
// SPF lets a domain list the hosts allowed to send mail with its name in
// MAIL FROM (and HELO). The list is a TXT record starting with "v=spf1",
// made of mechanisms (ip4, ip6, a, mx, ptr, exists, include, all) and
// modifiers (redirect, exp); a receiver evaluates it for the connecting
// client's address and gets pass, fail, softfail, neutral, none, temperror
// or permerror.
//
// The package has these parts:
//
//   - Parse reads a record into Terms, checking the whole RFC 7208 §12
//     grammar, macros included (§7). A *SyntaxError names the byte
//     position of the problem; Record.String formats the record back.
//   - Checker.CheckHost is check_host() (§4): it returns the result with
//     the path that decided it (which record, which term, through which
//     includes and redirects), the explanation of a fail (exp=, §6.2) and
//     the DNS lookup counts. It enforces the limits of §4.6.4: 10
//     DNS-querying terms, 2 void lookups, 10 MX and PTR names. It passes
//     the RFC 7208 test suite (testdata/rfc7208-tests.yml).
//   - Lookup walks a domain's record and everything it includes or
//     redirects to, independently of any client, into an Analysis, and
//     Findings judges it (spf-missing, spf-include-none, spf-redirect-none, spf-multiple,
//     spf-syntax, spf-lookup-limit, spf-void-lookups, spf-plus-all,
//     spf-neutral-all, spf-ptr).
//   - Evaluate runs both for one client, as "mxtrace spf" and its HTTP
//     API do, into an Evaluation; Request.Query builds its input from the
//     text a person typed (a *RequestError when it cannot be used).
//
// Every DNS question goes through a resolve.Resolver. A temporary DNS
// failure gives temperror (and an error from Lookup), never "none" or
// "spf-missing".
package spf

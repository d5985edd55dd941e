package dkim

import (
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/finding"
)

// Key-size thresholds (RFC 8301 §3.2: signers MUST use at least 1024-bit
// RSA keys and SHOULD use 2048; verifiers MUST accept 1024 to 4096 and many
// ignore shorter keys).
const (
	MinRSABits         = 1024
	RecommendedRSABits = 2048
)

// Findings turns a Lookup result into findings:
//
//   - dkim-syntax: one per key record that does not parse, with every
//     problem;
//   - dkim-weak-key: an RSA key under 2048 bits (Warning) or under 1024
//     bits (Error), or a key whose h= excludes sha256, leaving only
//     rsa-sha1, which verifiers must not accept (RFC 8301 §3.1; Error);
//   - dkim-none-found: no usable key (parsed and not revoked) at any probed
//     selector, and no failed query that could have hidden one. Revoked
//     keys are in the Result but are no finding of their own.
func Findings(res *Result) []finding.Finding {
	if res == nil {
		return nil
	}
	var fs []finding.Finding
	usable := 0
	var revoked, broken []string
	for _, k := range res.Keys {
		switch {
		case k.Record == nil:
			broken = append(broken, k.Selector)
			fs = append(fs, finding.Newf(finding.DKIMSyntax, k.Name,
				"The DKIM key record at %s has errors: %s.", k.Name, strings.Join(k.Problems, "; ")))
			continue
		case k.Record.Revoked():
			revoked = append(revoked, k.Selector)
			continue
		}
		usable++
		if f, ok := weak(k); ok {
			fs = append(fs, f)
		}
	}
	if usable == 0 && len(res.Failed) == 0 {
		var msg string
		switch {
		case res.NoKeyTree && len(res.Probed) == 0:
			msg = fmt.Sprintf("No DKIM key for %s: _domainkey.%s does not exist, so no selector below it can (RFC 8020)", res.Domain, res.Domain)
		case res.NoKeyTree:
			msg = fmt.Sprintf("No DKIM key for %s: _domainkey.%s does not exist, so no selector below it can (RFC 8020), including %s", res.Domain, res.Domain, strings.Join(res.Probed, ", "))
		default:
			msg = fmt.Sprintf("No DKIM key for %s at any of the %d probed selectors (%s)", res.Domain, len(res.Probed), strings.Join(res.Probed, ", "))
		}
		if len(revoked) > 0 {
			msg += fmt.Sprintf("; revoked keys (empty p=) at %s", strings.Join(revoked, ", "))
		}
		if len(broken) > 0 {
			msg += fmt.Sprintf("; unusable records at %s", strings.Join(broken, ", "))
		}
		fs = append(fs, finding.New(finding.DKIMNoneFound, res.Domain, msg+"."))
	}
	return fs
}

// weak judges a usable key's strength.
func weak(k Key) (finding.Finding, bool) {
	r := k.Record
	switch {
	case !r.AllowsSHA256():
		// RFC 8301 §3.1: rsa-sha1 signatures MUST NOT be considered valid,
		// and h= lists the only hashes the key may be used with.
		f := finding.Newf(finding.DKIMWeakKey, k.Name,
			"The DKIM key at %s allows only h=%s; verifiers reject SHA-1 signatures (RFC 8301 §3.1), so every signature with it fails.",
			k.Name, strings.Join(r.Hashes, ":"))
		f.Severity = finding.Error
		return f, true
	case r.KeyType == RSA && r.Bits < MinRSABits:
		f := finding.Newf(finding.DKIMWeakKey, k.Name,
			"The DKIM key at %s is a %d-bit RSA key; verifiers ignore keys under %d bits (RFC 8301 §3.2), so its signatures count for nothing.",
			k.Name, r.Bits, MinRSABits)
		f.Severity = finding.Error
		return f, true
	case r.KeyType == RSA && r.Bits < RecommendedRSABits:
		return finding.Newf(finding.DKIMWeakKey, k.Name,
			"The DKIM key at %s is a %d-bit RSA key; %d bits is the recommended minimum (RFC 8301 §3.2).",
			k.Name, r.Bits, RecommendedRSABits), true
	}
	return finding.Finding{}, false
}

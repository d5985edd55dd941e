package report

import "regexp"

// goPrefixes matches the package prefixes of the library's error texts
// ("spf: ", "dmarc: ", "resolve: "), at the start of the text or of a
// wrapped error after ": ".
var goPrefixes = regexp.MustCompile(`(^|: )(?:(?:check|dane|dial|dkim|dmarc|dnsbl|dnsname|mta-sts|mtasts|mux|nameserver|probe|rdns|resolve|route|scan|send|spf|stub|tlsrpt): )+`)

// plain returns an error's text for a person: without the Go package
// prefixes its sentinels carry for programs and logs ("spf: included
// domain ..." reads "included domain ..."). The errors themselves, and
// the JSON that quotes them, keep the prefixes.
func plain(text string) string {
	return goPrefixes.ReplaceAllString(text, "$1")
}

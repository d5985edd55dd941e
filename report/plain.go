package report

import (
	"regexp"
	"strings"

	"github.com/mxtrace/mxtrace/internal/printable"
)

// goPrefixes matches the package prefixes of the library's error texts
// ("spf: ", "dmarc: ", "resolve: ", and miekg/dns's "dns: "), at the start
// of the text or of a wrapped error after ": ".
var goPrefixes = regexp.MustCompile(`(^|: )(?:(?:check|dane|dial|dkim|dmarc|dns|dnsbl|dnsname|mta-sts|mtasts|mux|nameserver|probe|rdns|resolve|route|scan|send|spf|stub|tlsrpt): )+`)

// Plain returns an error's text for a person: without the Go package
// prefixes its sentinels carry for programs and logs ("spf: included
// domain ..." reads "included domain ..."), and with any control
// character left in it escaped (internal/printable), as the last guard
// before the terminal: an error can quote what a server sent. The errors
// themselves, and the JSON that quotes them, keep the prefixes.
func Plain(text string) string {
	// errors.Join puts a newline between the errors; one line reads them
	// as a list.
	text = strings.ReplaceAll(text, "\n", "; ")
	return goPrefixes.ReplaceAllString(printable.Controls(text), "$1")
}

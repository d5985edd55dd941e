package dnstest

import (
	"os"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/resolve"
)

// ZoneCase loads a test zone file and the domain its "; domain: NAME"
// comment names: the form of the per-finding cases under each package's
// testdata/.
func ZoneCase(tb testing.TB, path string) (*resolve.Zones, dnsname.Name) {
	tb.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var domain dnsname.Name
	for line := range strings.Lines(string(text)) {
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "; domain: "); ok {
			domain = dnsname.MustParse(d)
		}
	}
	if domain == "" {
		tb.Fatalf("%s: no '; domain:' line", path)
	}
	z, err := resolve.ParseZones(strings.NewReader(string(text)), path)
	if err != nil {
		tb.Fatal(err)
	}
	return z, domain
}

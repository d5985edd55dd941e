package resolve_test

import (
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/resolve"
)

// TestZonesAliasConflict: a name with a CNAME and other data, or with two
// CNAMEs, is refused as Knot and BIND refuse it (RFC 2181 §10.1); it was
// answered, CNAME for one type and the data for another. RRSIG and NSEC
// beside a CNAME are allowed (RFC 4035 §2.5), and a CNAME written twice
// is one.
func TestZonesAliasConflict(t *testing.T) {
	const head = "$ORIGIN x.test.\n@ 300 SOA ns h 1 2 3 4 5\n"
	for _, tt := range []struct {
		name, zone, want string
	}{
		{"CNAME and MX", "a CNAME b\na MX 10 mx\na A 192.0.2.1\n", "a.x.test has a CNAME record and other data (A, MX)"},
		{"two CNAMEs", "a CNAME b\na CNAME c\n", "a.x.test has 2 CNAME records"},
		{"CNAME and RRSIG", "a CNAME b\na RRSIG CNAME 13 3 300 20300101000000 20200101000000 1 x.test. AAAA\n", ""},
		{"one CNAME twice", "a CNAME b\na CNAME b.x.test.\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve.ParseZones(strings.NewReader(head+tt.zone), "x.zone")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

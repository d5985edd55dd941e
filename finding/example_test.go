package finding_test

import (
	"fmt"

	"github.com/mxtrace/mxtrace/finding"
)

// A check builds a finding from its catalogue ID: the severity, RFC
// reference and fix come from the catalogue, the subject and message from
// what was found. Sort puts the worst first; Worst decides the exit status
// against --fail-on. A message that ends with an absolute name keeps one
// final period, not two.
func Example() {
	fs := []finding.Finding{
		finding.New(finding.MXNoIPv6, "example.org", "No exchange of example.org has an IPv6 address."),
		finding.Newf(finding.MXTargetCNAME, "mx.example.org", "The exchange %s is an alias (CNAME) of %s.", "mx.example.org", "host.example.net."),
	}
	finding.Sort(fs)
	for _, f := range fs {
		fmt.Printf("%s %s: %s\n  fix: %s (%s)\n", f.Severity, f.ID, f.Message, f.Fix, f.Reference)
	}
	failOn, _ := finding.ParseSeverity("warning")
	fmt.Println("fails at warning:", finding.Worst(fs) >= failOn)
	// Output:
	// warning mx-target-cname: The exchange mx.example.org is an alias (CNAME) of host.example.net.
	//   fix: Point the MX at the canonical name the CNAME leads to. (RFC 2181 §10.3; RFC 5321 §5.1)
	// info mx-no-ipv6: No exchange of example.org has an IPv6 address.
	//   fix: Give at least the primary exchanges AAAA records. (RFC 3974)
	// fails at warning: true
}

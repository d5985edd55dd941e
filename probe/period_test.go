package probe

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFindingsOnePeriod: a server reply that ends with a period, quoted at
// the end of a finding's sentence, does not make it end in "..".
func TestFindingsOnePeriod(t *testing.T) {
	for _, step := range []Step{StepConnect, StepEHLO, StepStartTLS} {
		r := &Result{Host: "mx.example.", Address: netip.MustParseAddr("192.0.2.1"), Port: 25, Connected: step != StepConnect,
			Err: &StepError{Step: step, Kind: KindReply, Code: 554, Message: "554 5.7.1 Go away."}}
		for _, f := range Findings([]*Result{r}, time.Unix(1700000000, 0), nil) {
			if strings.HasSuffix(f.Message, "..") {
				t.Errorf("%s: %s %q", step, f.ID, f.Message)
			}
		}
	}
}

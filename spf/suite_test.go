package spf

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/spfsuite"
)

// The RFC 7208 test suite (openspf.org, release 2014.04), copied from the
// shared test data with its licence: testdata/rfc7208-tests.yml. The same
// cases run through the mxtrace command in cmd/mxtrace/spfsuite_test.go.
const suiteFile = "../" + spfsuite.File

// suiteDiffers lists the suite's cases where we deliberately give another
// answer than the suite expects, with the reason. Keys are "scenario/test".
// Every entry must still differ (the test fails when one starts to pass, so
// the list stays true).
var suiteDiffers = map[string]string{}

func TestRFC7208Suite(t *testing.T) {
	scenarios, err := spfsuite.Load(suiteFile)
	if err != nil {
		t.Fatal(err)
	}
	stillDiffer := map[string]bool{}
	ran := 0
	for _, sc := range scenarios {
		r, err := spfsuite.NewResolver(sc.ZoneData)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sc.Names() {
			tc := sc.Tests[name]
			key := spfsuite.Key(sc, name)
			t.Run(key, func(t *testing.T) {
				ran++
				ip, err := netip.ParseAddr(tc.Host)
				if err != nil {
					t.Fatal(err)
				}
				c := &Checker{Resolver: r, Receiver: "receiver.example", Now: func() time.Time { return time.Unix(1700000000, 0) }}
				res := c.CheckHost(t.Context(), Query{IP: ip, Sender: tc.MailFrom, HELO: tc.Helo})
				ok := tc.Agrees(key, string(res.Status), res.Explanation)
				if why, listed := suiteDiffers[key]; listed {
					if ok {
						t.Errorf("listed in suiteDiffers (%s) but now agrees with the suite: remove it", why)
					}
					stillDiffer[key] = true
					return
				}
				if !ok {
					t.Errorf("%s\nresult %s, explanation %q (%v)\nwant %v, explanation %q\npath: %+v",
						tc.Description, res.Status, res.Explanation, res.Err, tc.Result, tc.Explanation, res.Path)
				}
			})
		}
	}
	if ran < 200 {
		t.Errorf("ran %d cases; the suite has more than 200", ran)
	}
	for k := range suiteDiffers {
		if !stillDiffer[k] {
			t.Errorf("suiteDiffers lists %q, which is not in the suite", k)
		}
	}
}

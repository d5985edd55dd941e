package spf

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/spfsuite"
	"github.com/mxtrace/mxtrace/resolve"
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

// TestRFC7208SuiteZones runs the suite again from zone files, as --zone
// does: each scenario's data is one zone at the root (spfsuite's
// ZoneText), its names with spaces and other octets escaped as \DDD,
// which SPF's macro expansion asks for raw (macro-mania-in-domain asks
// for "macro%percent  space%20url-space.example.com"). A zone file cannot
// time out: scenarios with TIMEOUT entries run in TestRFC7208Suite only.
func TestRFC7208SuiteZones(t *testing.T) {
	scenarios, err := spfsuite.Load(suiteFile)
	if err != nil {
		t.Fatal(err)
	}
	ran, mania := 0, false
	for _, sc := range scenarios {
		f, err := spfsuite.NewResolver(sc.ZoneData)
		if err != nil {
			t.Fatal(err)
		}
		text, ok := f.ZoneText()
		if !ok {
			continue
		}
		z, err := resolve.ParseZones(strings.NewReader(text), "suite")
		if err != nil {
			t.Errorf("%s: %v\n%s", sc.Description, err, text)
			continue
		}
		for _, name := range sc.Names() {
			tc, key := sc.Tests[name], spfsuite.Key(sc, name)
			t.Run(key, func(t *testing.T) {
				ran++
				mania = mania || key == "Macro expansion rules/macro-mania-in-domain"
				c := &Checker{Resolver: z, Receiver: "receiver.example", Now: func() time.Time { return time.Unix(1700000000, 0) }}
				res := c.CheckHost(t.Context(), Query{IP: netip.MustParseAddr(tc.Host), Sender: tc.MailFrom, HELO: tc.Helo})
				if !tc.Agrees(key, string(res.Status), res.Explanation) {
					t.Errorf("%s\nresult %s, explanation %q (%v)\nwant %v, explanation %q\npath: %+v",
						tc.Description, res.Status, res.Explanation, res.Err, tc.Result, tc.Explanation, res.Path)
				}
			})
		}
	}
	if ran < 130 || !mania {
		t.Errorf("ran %d cases from zone files (macro-mania-in-domain among them: %v)", ran, mania)
	}
}

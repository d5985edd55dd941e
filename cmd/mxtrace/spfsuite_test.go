package main

import (
	"encoding/json"
	"testing"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/internal/spfsuite"
)

// suiteExpectedFailures lists the RFC 7208 suite's cases that do not pass
// through the command yet, by spfsuite.Key, with the reason. Every entry
// must still fail (the test says when one starts to pass, so the list
// stays true).
var suiteExpectedFailures = map[string]string{}

// TestSPFSuite runs every case of the RFC 7208 test suite through the spf
// command, as a receiving server would ask it (--ip, --sender, --helo and
// no DOMAIN: the domain comes from the session), against an in-process
// DNS server on loopback that serves the scenario's zone data
// (spfsuite.Resolver; a TIMEOUT entry is answered with SERVFAIL), and
// compares the result, and the explanation where the suite gives one, in
// the JSON the command prints.
func TestSPFSuite(t *testing.T) {
	scenarios, err := spfsuite.Load("../../" + spfsuite.File)
	if err != nil {
		t.Fatal(err)
	}
	ran, stillFail := 0, map[string]bool{}
	for _, sc := range scenarios {
		r, err := spfsuite.NewResolver(sc.ZoneData)
		if err != nil {
			t.Fatal(err)
		}
		srv := dnstest.New(t, dnstest.Authoritative(r))
		for _, name := range sc.Names() {
			tc, key := sc.Tests[name], spfsuite.Key(sc, name)
			t.Run(key, func(t *testing.T) {
				ran++
				code, out, errOut := mxtrace(t, "spf", "--json", "--resolver", srv.Addr, "--timeout", "4s",
					"--ip", tc.Host, "--sender", tc.MailFrom, "--helo", tc.Helo)
				var o struct{ Result, Explanation, Reason string }
				if err := json.Unmarshal([]byte(out), &o); err != nil {
					t.Fatalf("exit %d, %v in %q; stderr %s", code, err, out, errOut)
				}
				ok := tc.Agrees(key, o.Result, o.Explanation)
				if why, listed := suiteExpectedFailures[key]; listed {
					if ok {
						t.Errorf("listed as an expected failure (%s) but passes now: remove it", why)
					}
					stillFail[key] = true
					return
				}
				if !ok {
					t.Errorf("%s\nresult %s, explanation %q (%s)\nwant %v, explanation %q\n%s",
						tc.Description, o.Result, o.Explanation, o.Reason, tc.Result, tc.Explanation, out)
				}
			})
		}
	}
	if ran < 200 {
		t.Errorf("ran %d cases; the suite has more than 200", ran)
	}
	for k := range suiteExpectedFailures {
		if !stillFail[k] {
			t.Errorf("suiteExpectedFailures lists %q, which is not in the suite", k)
		}
	}
}

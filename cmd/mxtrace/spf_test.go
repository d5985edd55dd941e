package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const spfZone = "testdata/spf-example.zone"

func TestSPFText(t *testing.T) {
	code, out, errOut := mxtrace(t, "spf", "--zone", spfZone, "Shop.Example.Test.", "--ip", "198.51.100.7")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{
		"shop.example.test  pass  for 198.51.100.7 (sender postmaster@shop.example.test, helo shop.example.test)",
		"shop.example.test: include:_spf.shop.example.test  pass",
		"include → _spf.shop.example.test: ip4:198.51.100.0/24  pass  (198.51.100.7 is in 198.51.100.0/24)",
		"evaluation: 2 DNS-querying terms, 0 void lookups (limits 10 and 2)",
		"record tree: 2 DNS-querying terms, 0 void lookups in all",
		`shop.example.test  "v=spf1 mx include:_spf.shop.example.test ~all"  [2 lookups]`,
		`└─ include:_spf.shop.example.test  "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:5::/48 -all"  [0 lookups]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSPFJSON(t *testing.T) {
	for _, tc := range []struct {
		args                []string
		result, explanation string
		lookups, pathLen    int
		findings            []string
	}{
		{[]string{"joe@strict.example.test", "--ip", "192.0.2.99"}, "fail", "192.0.2.99 is not allowed to send mail as strict.example.test.", 1, 1, nil},
		{[]string{"strict.example.test", "--ip", "192.0.2.20"}, "pass", "", 1, 1, nil},
		{[]string{"shop.example.test", "--ip", "2001:db8:5::1", "--helo", "mail.example.net", "--sender", "x@shop.example.test"}, "pass", "", 2, 2, nil},
		{[]string{"shop.example.test", "--ip", "203.0.113.1"}, "softfail", "", 2, 1, nil},
		{[]string{"open.example.test", "--ip", "203.0.113.1"}, "pass", "", 0, 1, []string{"spf-plus-all"}},
		{[]string{"broken.example.test", "--ip", "192.0.2.1"}, "permerror", "", 0, 1, []string{"spf-syntax"}},
		{[]string{"nothing.example.test", "--ip", "192.0.2.1"}, "none", "", 0, 1, []string{"spf-missing"}},
	} {
		args := append([]string{"spf", "--zone", spfZone, "--json"}, tc.args...)
		code, out, errOut := mxtrace(t, args...)
		if code != exitOK {
			t.Errorf("%v: exit %d, stderr %s", tc.args, code, errOut)
			continue
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("%v: want one line of JSON, got %q", tc.args, out)
		}
		var o struct {
			Schema      int    `json:"schema"`
			Result      string `json:"result"`
			Domain      string `json:"domain"`
			IP          string `json:"ip"`
			Explanation string `json:"explanation"`
			Path        []struct {
				Domain, Term, Result string
			} `json:"path"`
			Tree *struct {
				Domain string `json:"domain"`
			} `json:"tree"`
			Lookups     *int `json:"lookups"`
			VoidLookups *int `json:"void_lookups"`
			Findings    []struct {
				ID string `json:"id"`
			} `json:"findings"`
		}
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Errorf("%v: %v in %s", tc.args, err, out)
			continue
		}
		var ids []string
		for _, f := range o.Findings {
			ids = append(ids, f.ID)
		}
		if o.Schema != 1 || o.Result != tc.result || o.Explanation != tc.explanation || o.IP == "" || o.Domain == "" ||
			o.Lookups == nil || *o.Lookups != tc.lookups || o.VoidLookups == nil || len(o.Path) != tc.pathLen ||
			o.Tree == nil || o.Tree.Domain != o.Domain || strings.Join(ids, " ") != strings.Join(tc.findings, " ") {
			t.Errorf("%v: got %s", tc.args, out)
		}
	}
}

func TestSPFExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bad..example", "--ip", "192.0.2.1"}, exitUsage, "empty label"},
		{[]string{"shop.example.test", "--ip", "192.0.2.300"}, exitUsage, "not an IP address"},
		{[]string{"shop.example.test"}, exitUsage, "--ip is required"},
		{[]string{"shop.example.test", "--ip", "192.0.2.1", "--sender", "nobody"}, exitUsage, "not an e-mail address"},
		{[]string{"a.example.test", "b.example.test", "--ip", "192.0.2.1"}, exitUsage, "accepts at most 1 arg"},
		// Outside every loaded zone: nothing could answer.
		{[]string{"other.example", "--ip", "192.0.2.1"}, exitFailed, "not in any loaded zone"},
		// The record is there but its include cannot be looked up.
		{[]string{"away.example.test", "--ip", "192.0.2.1"}, exitFailed, "not in any loaded zone"},
	} {
		code, out, errOut := mxtrace(t, append([]string{"spf", "--zone", spfZone}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
		if tc.code == exitUsage && out != "" {
			t.Errorf("%v: printed %q before rejecting the input", tc.args, out)
		}
		if tc.code == exitFailed && !strings.Contains(out, "temperror") {
			t.Errorf("%v: the result was not printed: %q", tc.args, out)
		}
	}
}

func TestSPFHelp(t *testing.T) {
	code, out, _ := mxtrace(t, "spf", "--help")
	if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--ip") || !strings.Contains(out, "check_host") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}

// TestSPFSession: without a DOMAIN, spf takes its input as a receiving
// server sees it (RFC 7208 §2.3, §2.4, §4.3): the sender's domain, or the
// HELO name for a null sender, with postmaster as the local-part when
// there is none. A malformed domain from the session is the result none
// with the reason, exit 0; a malformed DOMAIN typed as the argument is bad
// usage.
func TestSPFSession(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		args                           []string
		code                           int
		result, domain, sender, reason string
		tree                           bool
	}{
		{[]string{"--sender", "joe@shop.example.test", "--ip", "198.51.100.7"}, exitOK, "pass", "shop.example.test", "joe@shop.example.test", "", true},
		{[]string{"--sender", "<joe@shop.example.test>", "--ip", "203.0.113.1"}, exitOK, "softfail", "shop.example.test", "joe@shop.example.test", "", true},
		{[]string{"--sender", "<>", "--helo", "shop.example.test", "--ip", "198.51.100.7"}, exitOK, "pass", "shop.example.test", "postmaster@shop.example.test", "", true},
		{[]string{"--sender", "", "--helo", "strict.example.test", "--ip", "192.0.2.99"}, exitOK, "fail", "strict.example.test", "postmaster@strict.example.test", "", true},
		{[]string{"--helo", "strict.example.test", "--ip", "192.0.2.20"}, exitOK, "pass", "strict.example.test", "postmaster@strict.example.test", "", true},
		{[]string{"--sender", "@strict.example.test", "--ip", "192.0.2.20"}, exitOK, "pass", "strict.example.test", "postmaster@strict.example.test", "", true},
		// Malformed domains from the session: none, with the reason.
		{[]string{"--sender", "<>", "--helo", "[1.2.3.5]", "--ip", "1.2.3.5"}, exitOK, "none", "[1.2.3.5]", "postmaster@[1.2.3.5]", "is an address literal", false},
		{[]string{"--sender", "joe@bad..example.test", "--ip", "192.0.2.1"}, exitOK, "none", "bad..example.test", "joe@bad..example.test", "has an empty label", false},
		{[]string{"--sender", "joe@" + long + ".example.test", "--ip", "192.0.2.1"}, exitOK, "none", long + ".example.test", "joe@" + long + ".example.test", "has a label of 64 octets", false},
		{[]string{"--sender", "", "--helo", "hosed", "--ip", "192.0.2.1"}, exitOK, "none", "hosed", "postmaster@hosed", "is a single label", false},
	} {
		args := append([]string{"spf", "--zone", spfZone, "--json"}, tc.args...)
		code, out, errOut := mxtrace(t, args...)
		var o struct {
			Result, Domain, Sender, Reason string
			Tree                           *struct{ Domain string }
		}
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Errorf("%q: %v in %q (stderr %s)", tc.args, err, out, errOut)
			continue
		}
		if code != tc.code || o.Result != tc.result || o.Domain != tc.domain || o.Sender != tc.sender ||
			!strings.Contains(o.Reason, tc.reason) || (o.Tree != nil) != tc.tree {
			t.Errorf("%q: exit %d, got %s (stderr %s)", tc.args, code, out, errOut)
		}
	}
	// The text form says why.
	_, out, _ := mxtrace(t, "spf", "--zone", spfZone, "--sender", "<>", "--helo", "[1.2.3.5]", "--ip", "1.2.3.5")
	if !strings.Contains(out, "[1.2.3.5]  none") || !strings.Contains(out, `why: not a usable domain name: "[1.2.3.5]" is an address literal`) {
		t.Errorf("text output:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ip", "192.0.2.1"}, "give a DOMAIN, or the session"},
		{[]string{"--ip", "192.0.2.1", "--sender", "<>"}, "give a DOMAIN, or the session"},
		{[]string{"--ip", "192.0.2.1", "--sender", "nobody"}, "not an e-mail address"},
		{[]string{"bad..example.test", "--ip", "192.0.2.1", "--helo", "x.example"}, "empty label"},
		{[]string{"[1.2.3.5]", "--ip", "192.0.2.1"}, "is an address literal, not a domain name"},
		{[]string{"192.0.2.1", "--ip", "192.0.2.1"}, "192.0.2.1 is an IP address, not a domain name; the client address goes in --ip"},
	} {
		code, out, errOut := mxtrace(t, append([]string{"spf", "--zone", spfZone}, tc.args...)...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, exitUsage, tc.want)
		}
	}
}

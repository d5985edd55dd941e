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
		{[]string{"a.example.test", "b.example.test", "--ip", "192.0.2.1"}, exitUsage, "accepts 1 arg"},
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

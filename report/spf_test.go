package report_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/spf"
)

// TestSPFPathLookupFailed: an included domain whose lookup failed is
// "(lookup failed)" on the path, not "(no record)": nothing says it has
// none.
func TestSPFPathLookupFailed(t *testing.T) {
	err := errors.New("spf: DNS lookup failed: lookup _spf.d.test. TXT: server failure (SERVFAIL)")
	o := &report.SPF{Result: &spf.Result{Status: spf.TempError, Domain: "d.test", Err: err, Reason: err.Error(), Path: []spf.Step{
		{Domain: "d.test", Record: "v=spf1 include:_spf.d.test -all", Term: "include:_spf.d.test", Result: spf.TempError, Detail: "the included domain's evaluation ended in temperror"},
		{Domain: "_spf.d.test", Via: "include", Position: -1, Result: spf.TempError, Detail: err.Error()},
	}}}
	var b bytes.Buffer
	if err := report.WriteSPF(&b, o, report.Style{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "include → _spf.d.test: (lookup failed)  temperror\n") {
		t.Errorf("output:\n%s", b.String())
	}
}

// TestSPFEmptyDomain: a domain and HELO name taken from the session may be
// empty (--sender '@'); the result line shows them as "", not as nothing
// (it began with two spaces and ended 'helo )').
func TestSPFEmptyDomain(t *testing.T) {
	err := errors.New(`spf: not a usable domain name: "" is empty (RFC 7208 §4.3)`)
	o := &report.SPF{Result: &spf.Result{Status: spf.None, Err: err, Reason: err.Error()}}
	var b bytes.Buffer
	if err := report.WriteSPF(&b, o, report.Style{}); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(b.String(), "\n")
	if !strings.HasPrefix(first, `""  none  for `) || !strings.Contains(first, `helo "")`) {
		t.Errorf("result line %q", first)
	}
}

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
	o := &spf.Evaluation{Result: &spf.Result{Status: spf.TempError, Domain: "d.test", Err: err, Reason: err.Error(), Path: []spf.Step{
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
	o := &spf.Evaluation{Result: &spf.Result{Status: spf.None, Err: err, Reason: err.Error()}}
	var b bytes.Buffer
	if err := report.WriteSPF(&b, o, report.Style{}); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(b.String(), "\n")
	if !strings.HasPrefix(first, `""  none  for `) || !strings.Contains(first, `helo "")`) {
		t.Errorf("result line %q", first)
	}
}

// TestSPFLongSender: a sender whose local part is over 64 octets (RFC 5321
// §4.5.3.1.1), and a long explanation and reason, are printed cut, with
// their length; the sender was printed whole before.
func TestSPFLongSender(t *testing.T) {
	local := strings.Repeat("x", 100000)
	err := errors.New("spf: something about " + local)
	o := &spf.Evaluation{Result: &spf.Result{Status: spf.Fail, Domain: "d.test", Sender: local + "@d.test", HELO: "h.test",
		Explanation: local, Err: err, Reason: err.Error()}}
	var b bytes.Buffer
	if err := report.WriteSPF(&b, o, report.Style{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if b.Len() > 4000 {
		t.Errorf("%d bytes printed", b.Len())
	}
	for _, want := range []string{
		"(sender " + strings.Repeat("x", 64) + "…@d.test [local part of 100000 octets, more than the 64 of RFC 5321 §4.5.3.1.1], helo h.test)",
		"  explanation: " + strings.Repeat("x", 512) + "… (100000 octets in all)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %.80q… in:\n%.2000s", want, out)
		}
	}
	short := &spf.Evaluation{Result: &spf.Result{Status: spf.Pass, Domain: "d.test", Sender: strings.Repeat("y", 64) + "@d.test", HELO: "h.test"}}
	b.Reset()
	if err := report.WriteSPF(&b, short, report.Style{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(sender "+strings.Repeat("y", 64)+"@d.test, helo h.test)") {
		t.Errorf("a 64-octet local part is cut:\n%s", b.String())
	}
}

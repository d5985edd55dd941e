package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

const exampleZone = "../../examples/example.zone"

// mxtrace runs one command line, with nothing on standard input, and
// returns its exit status and output.
func mxtrace(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return mxtraceInput(t, strings.NewReader(""), args...)
}

// mxtraceInput runs one command line reading stdin.
func mxtraceInput(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

// closedUDP is a loopback UDP address where nothing listens: a query to
// it is refused (port unreachable).
func closedUDP(t *testing.T) string {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.LocalAddr().String()
}

// TestInvalidInput: every malformed name gets exit status 2 and one line
// that names the problem, before any query is sent.
func TestInvalidInput(t *testing.T) {
	for _, tt := range []struct {
		input, want string
	}{
		{"a..example", "empty label"},
		{"", "empty"},
		{strings.Repeat("a", 64) + ".example", "64 octets"},
		{strings.Repeat("abcdefghi.", 26) + "example", "more than 253"},
		{"bad name.example", "white space"},
		{"-lead.example", "starts with a hyphen"},
		{"trail-.example", "ends with a hyphen"},
		{"user@exa$mple.test", "not allowed"},
		{"192.0.2.1", "192.0.2.1 is an IP address, not a domain name; give a mail domain instead, or talk to that server with mxtrace probe 192.0.2.1"},
		{"2001:db8::25", "2001:db8::25 is an IP address"},
		{"postmaster@[IPv6:2001:db8::25]", "is an address literal, not a domain name; give a mail domain instead, or talk to that server with mxtrace probe 2001:db8::25"},
		{"10.1", "looks like an IP address"},
	} {
		code, out, errOut := mxtrace(t, "route", "--zone", exampleZone, "--", "tiers.example", tt.input)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", tt.input, code, exitUsage)
		}
		if out != "" {
			t.Errorf("%q: printed results before rejecting the input: %q", tt.input, out)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: stderr %q, want one line mentioning %q", tt.input, errOut, tt.want)
		}
	}
}

// TestRouteJSON: --json prints one object per domain, in input order,
// whatever order they finished in, in the shape README.md gives.
func TestRouteJSON(t *testing.T) {
	domains := []string{"bigtiers.example", "nullmx.example", "postmaster@Tiers.Example.", "implicit.example", "nosuch.example", "nomail.example"}
	code, out, errOut := mxtrace(t, append([]string{"route", "--zone", exampleZone, "--json", "--seed", "3", "--fail-on", "never"}, domains...)...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(domains) {
		t.Fatalf("%d lines for %d domains:\n%s", len(lines), len(domains), out)
	}
	want := []struct{ domain, result string }{
		{"bigtiers.example", "ok"}, {"nullmx.example", "null-mx"}, {"tiers.example", "ok"},
		{"implicit.example", "ok"}, {"nosuch.example", "nxdomain"}, {"nomail.example", "no-mail"},
	}
	for i, l := range lines {
		var p struct {
			Schema   int    `json:"schema"`
			Domain   string `json:"domain"`
			Result   string `json:"result"`
			Implicit bool   `json:"implicit"`
			Order    []string
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if p.Schema != 1 || p.Domain != want[i].domain || p.Result != want[i].result {
			t.Errorf("line %d: %s %s schema %d, want %s %s schema 1", i+1, p.Domain, p.Result, p.Schema, want[i].domain, want[i].result)
		}
		if p.Domain == "implicit.example" && !p.Implicit {
			t.Errorf("implicit.example: implicit false")
		}
		if p.Domain == "bigtiers.example" && (len(p.Order) != 11 || p.Order[10] != "mx-in-last.bigtiers.example") {
			t.Errorf("bigtiers order %v: want 11 hosts ending with the preference-100 one", p.Order)
		}
	}
	// --seed makes the run reproducible.
	_, again, _ := mxtrace(t, append([]string{"route", "--zone", exampleZone, "--json", "--seed", "3", "--fail-on", "never"}, domains...)...)
	if stripElapsed(again) != stripElapsed(out) {
		t.Error("two runs with --seed 3 differ")
	}
}

func stripElapsed(s string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if i := strings.Index(l, `"elapsed_ms"`); i >= 0 {
			l = l[:i]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestExitStatus: --fail-on decides between 0 and 1; a name outside the
// --zone files (no network to ask) is 3.
func TestExitStatus(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"tiers.example"}, exitOK},                                             // info findings only
		{[]string{"--fail-on", "info", "nullmx.example"}, exitFindings},                 // mx-null is info
		{[]string{"dangling.example"}, exitFindings},                                    // mx-target-nxdomain is an error
		{[]string{"--fail-on", "never", "dangling.example"}, exitOK},                    // never
		{[]string{"--fail-on", "warning", "implicit.example"}, exitFindings},            // mx-implicit is a warning
		{[]string{"--fail-on", "bogus", "tiers.example"}, exitUsage},                    // bad flag value
		{[]string{"--timeout", "0", "tiers.example"}, exitUsage},                        // no time at all
		{[]string{"--self", "alln-mx-01.tiers.example", "tiers.example"}, exitFindings}, // a mail loop is an answer
		{[]string{"--timeout", "-5s", "tiers.example"}, exitUsage},
		{[]string{"-4", "-6", "tiers.example"}, exitUsage},               // exclusive flags
		{[]string{"--fail-on", "never", "mail.example.org"}, exitFailed}, // outside the zone files
		{[]string{"--fail-on", "never", "--no-such-flag", "x.example"}, exitUsage},
	} {
		code, _, errOut := mxtrace(t, append([]string{"route", "--zone", exampleZone}, tt.args...)...)
		if code != tt.want {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tt.args, code, tt.want, errOut)
		}
	}
}

// TestUsageMessages: a bad --fail-on or --timeout says what is wanted.
func TestUsageMessages(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--fail-on", "bogus"}, `--fail-on "bogus": want error, warning, info or never`},
		{[]string{"--timeout", "0"}, "--timeout 0s: want a positive duration"},
		{[]string{"--timeout", "-1m"}, "--timeout -1m0s: want a positive duration"},
	} {
		for _, cmd := range [][]string{{"route", "tiers.example"}, {"check", "tiers.example"}, {"spf", "tiers.example", "--ip", "192.0.2.1"},
			{"scan", "list.txt"}, {"probe", "tiers.example"}, {"send", "--to", "a@tiers.example"}} {
			code, out, errOut := mxtrace(t, append(cmd, tt.args...)...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want %d and %q", cmd, tt.args, code, out, errOut, exitUsage, tt.want)
			}
		}
	}
}

// TestRouteText: the human table shows tiers, addresses, problems and the
// order; no colour codes when the output is not a terminal.
func TestRouteText(t *testing.T) {
	_, out, _ := mxtrace(t, "route", "--zone", exampleZone, "--seed", "1", "tiers.example", "cname-mx.example")
	for _, want := range []string{
		"tiers.example  ok  3 exchanges in 3 tiers",
		"10    alln-mx-01.tiers.example",
		"2001:db8::10",
		"order: alln-mx-01.tiers.example, rcdn-mx-01.tiers.example, aer-mx-01.tiers.example",
		"mail.cname-mx.example → host.cname-mx.example",
		"mx-target-cname",
		"fix: Point the MX at the canonical name",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour escape codes in output that is not a terminal")
	}
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space in %q", l)
		}
	}
}

// TestHelp: every command documents itself with examples.
func TestHelp(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"route", "--help"}} {
		code, out, _ := mxtrace(t, cmd...)
		if code != exitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, output %q", cmd, code, out)
		}
		if slices.Contains(cmd, "route") && !strings.Contains(out, "Examples:") {
			t.Errorf("route --help has no examples")
		}
	}
}

// TestNoResolverAnswers: a resolver where nothing listens (connection
// refused) means the job could not be done: exit 3, not a finding about
// the domain.
func TestNoResolverAnswers(t *testing.T) {
	closed := closedUDP(t)
	for _, cmd := range []string{"route", "check"} {
		code, _, errOut := mxtrace(t, cmd, "--resolver", closed, "--timeout", "4s", "--fail-on", "never", "example.com")
		if code != exitFailed || !strings.Contains(errOut, closed+" refused the query (port unreachable)") {
			t.Errorf("%s: exit %d, want %d; stderr %q", cmd, code, exitFailed, errOut)
		}
	}
}

// TestErrorLineOneSentence: a command that could not do its job says so
// on standard error in one sentence: what failed, for which name, why and
// what to do, without Go package prefixes or the context each layer
// added ("routing: route d: temporary DNS failure: lookup d MX ...",
// "spf: DNS lookup failed: ..."). The JSON keeps the whole error.
func TestErrorLineOneSentence(t *testing.T) {
	closed := closedUDP(t)
	why := closed + " refused the query (port unreachable); check that a DNS server answers at " + closed + ", or name another with --resolver\n"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "example.com"}, "mxtrace: lookup example.com. MX: " + why},
		{[]string{"check", "--no-smtp", "example.com"}, "mxtrace: could not check routing: lookup example.com. MX: " + why},
		{[]string{"spf", "example.com", "--ip", "192.0.2.1"}, "mxtrace: lookup example.com. TXT: " + why},
		{[]string{"probe", "example.com"}, "mxtrace: lookup example.com. MX: " + why},
		{[]string{"send", "--to", "a@example.com"}, "mxtrace: lookup example.com. MX: " + why},
	} {
		code, _, errOut := mxtrace(t, append(tt.args, "--resolver", closed, "--timeout", "4s")...)
		if code != exitFailed || errOut != tt.want {
			t.Errorf("%q: exit %d, stderr\n %q\nwant\n %q", tt.args, code, errOut, tt.want)
		}
	}
	code, _, errOut := mxtrace(t, "route", "--zone", exampleZone, "x.test")
	if want := "mxtrace: lookup x.test. MX at zone:" + exampleZone + ": name is not in any loaded zone file; add its zone with --zone, or look names outside the files up on the network with --resolver\n"; code != exitFailed || errOut != want {
		t.Errorf("outside the zones: exit %d, stderr\n %q\nwant\n %q", code, errOut, want)
	}
	_, out, _ := mxtrace(t, "route", "--json", "--resolver", closed, "example.com")
	if !strings.Contains(out, `"error":"temporary DNS failure: lookup example.com. MX: `+closed) {
		t.Errorf("the JSON lost the error's context: %s", out)
	}
}

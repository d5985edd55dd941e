package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootZone is a zone file at the root, as a lab or a test driver writes
// one: every name hangs below its apex ".", and a wildcard sits right
// below it.
const rootZone = `. 3600 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
. 3600 IN NS ns.lab.test.
ns.lab.test. 3600 IN A 192.0.2.53
example.com. 3600 IN MX 10 mx.example.com.
example.com. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx.example.com. 3600 IN A 192.0.2.25
*.wild.test. 3600 IN MX 10 mx.example.com.
`

// runBounded runs one command line, failing the test rather than hanging
// when the command never returns (a walk over labels that does not end
// ignores every deadline).
func runBounded(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := mxtrace(t, args...)
		done <- result{code, out, errOut}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.err
	case <-time.After(time.Minute):
		t.Fatalf("mxtrace %s did not return within a minute", strings.Join(args, " "))
		return 0, "", ""
	}
}

// TestRootApexZone: a zone file whose apex is the root answers route,
// check, spf and scan (it used to spin for ever walking from "com." to ""
// and never reaching the apex ".").
func TestRootApexZone(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "root.zone")
	if err := os.WriteFile(zone, []byte(rootZone), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("example.com\nnosuch.test\nx.wild.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"route", "example.com", "nosuch.test", "x.wild.test"}, []string{"mx.example.com", "192.0.2.25", "nosuch.test", "does not exist"}},
		{[]string{"check", "--no-smtp", "--no-dnsbl", "example.com"}, []string{"mx.example.com"}},
		{[]string{"spf", "example.com", "--ip", "192.0.2.7"}, []string{"pass"}},
		{[]string{"scan", list}, []string{`"domain":"example.com","result":"ok"`, `"domain":"nosuch.test","result":"nxdomain"`, `"domain":"x.wild.test","result":"ok"`}},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			args := append(append([]string{}, tt.args...), "--zone", zone, "--fail-on", "never", "--timeout", "5s")
			code, out, errOut := runBounded(t, args...)
			if code != exitOK {
				t.Errorf("exit %d, stderr %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

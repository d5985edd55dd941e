package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileInput: hostile or mistaken input on the command line gets one
// short line naming the problem and the status README.md gives, never a
// hang, a huge message or a quiet fall-back to the network.
func TestHostileInput(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zone := file("ok.zone", []byte("$ORIGIN d.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ 300 MX 10 mx\nmx 300 A 192.0.2.1\n"))
	zeros := file("zeros.zone", make([]byte, 2<<20))
	nul := file("nul.zone", append([]byte("$ORIGIN x.\n@ 300 SOA ns h 1 2 3 4 5\n"), append(make([]byte, 500_000), '\n')...))
	garbage := file("garbage.zone", []byte("garbage here\n"))
	list := file("list.txt", []byte("d.test\n"))
	aliasZone := file("alias.zone", []byte("$ORIGIN d.test.\n@ 300 SOA ns h 1 2 3 4 5\na 300 CNAME b\na 300 MX 10 mx\n"))
	bigCA := file("big.pem", bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\n"), 400_000))
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in the error line
	}{
		{"zone of zeros", []string{"route", "--zone", zeros, "d.test"}, exitUsage, "line 1 is longer than 1048576 octets"},
		{"zone of zeros, scan", []string{"scan", "--zone", zone, "--from-zone", zeros}, exitFailed, "line 1 is longer than 1048576 octets"},
		{"long garbage line", []string{"check", "--zone", nul, "x"}, exitUsage, "at line: 3:500000"},
		{"huge --ca", []string{"check", "--zone", zone, "--ca", bigCA, "d.test"}, exitUsage, "--ca: " + bigCA + " is larger than"},
		{"empty --zone", []string{"route", "--zone", "", "d.test"}, exitUsage, "--zone: an empty value"},
		{"empty --zone in a list", []string{"route", "--zone", zone + ",", "d.test"}, exitUsage, "--zone: an empty value"},
		{"empty --resolver", []string{"check", "--resolver", "", "d.test"}, exitUsage, "--resolver: an empty value"},
		{"empty --ca", []string{"probe", "--ca", "", "192.0.2.1"}, exitUsage, "--ca: an empty value"},
		{"two dots", []string{"route", "--zone", zone, ".."}, exitUsage, "empty label"},
		{"xn-- alone", []string{"check", "--zone", zone, "xn--.d.test"}, exitUsage, `label "xn--" is empty once converted`},
		// Errors read for people: no Go package prefixes, no Go parser
		// names.
		{"zone syntax", []string{"route", "--zone", garbage, "d.test"}, exitUsage, "mxtrace: --zone: " + garbage + `: not a TTL: "here" at line: 1:12`},
		{"bad resolver", []string{"route", "--resolver", "bad host", "d.test"}, exitUsage, `mxtrace: --resolver: server "bad host": not an IP address`},
		{"timeout without unit", []string{"route", "--timeout", "1", "d.test"}, exitUsage, `mxtrace: --timeout "1": want a duration with its unit, such as 20s or 1m`},
		{"seed", []string{"route", "--seed", "abc", "d.test"}, exitUsage, `mxtrace: --seed "abc": want a whole number, 0 or more`},
		{"concurrency", []string{"scan", "--concurrency", "x"}, exitUsage, `mxtrace: --concurrency "x": want a whole number`},
		// A selector or list that cannot be one was an area that could
		// not be checked (exit 3); an empty one meant the defaults.
		{"bad selector", []string{"check", "--zone", zone, "--dkim-selector", "a..b", "d.test"}, exitUsage, `--dkim-selector "a..b": not a selector`},
		{"bad selector, scan", []string{"scan", "--mode", "check", "--zone", zone, "--dkim-selector", "a b", list}, exitUsage, `--dkim-selector "a b": not a selector`},
		{"empty selector", []string{"check", "--zone", zone, "--dkim-selector", "", "d.test"}, exitUsage, "--dkim-selector: an empty value"},
		{"bad list", []string{"check", "--zone", zone, "--dnsbl", "x..y", "d.test"}, exitUsage, `--dnsbl: invalid domain name "x..y"`},
		{"empty list", []string{"check", "--zone", zone, "--dnsbl", "", "d.test"}, exitUsage, "--dnsbl: an empty value"},
		// Brackets only as a pair: "[::1" was taken for ::1.
		{"unbalanced bracket", []string{"probe", "--zone", zone, "[::1"}, exitUsage, `contains the character '['`},
		{"bracket at the end", []string{"probe", "--zone", zone, "::1]"}, exitUsage, `contains the character`},
		// A name with a CNAME and other data: refused as servers refuse it.
		{"CNAME and other data", []string{"route", "--zone", aliasZone, "a.d.test"}, exitUsage, "a.d.test has a CNAME record and other data (MX)"},
		// NaN passed the "at least 1" check (NaN < 1 is false).
		{"retry factor NaN", []string{"send", "--zone", zone, "--retry", "--retry-factor", "NaN", "--to", "a@d.test"}, exitUsage, "--retry-factor a number at least 1"},
		{"retry factor Inf", []string{"send", "--zone", zone, "--retry", "--retry-factor", "Inf", "--to", "a@d.test"}, exitUsage, "--retry-factor a number at least 1"},
		{"qps NaN", []string{"scan", "--zone", zone, "--qps", "NaN", list}, exitUsage, "--qps NaN: want a number"},
		// --concurrency 100000000 crashed: out of memory making its buffers.
		{"concurrency too high", []string{"scan", "--zone", zone, "--concurrency", "70000", list}, exitUsage, "--concurrency 70000: want at most 65536"},
		{"window too high", []string{"scan", "--zone", zone, "--window", "300000", list}, exitUsage, "--window 300000: want at most 262144"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := mxtrace(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want %d; stderr %.300q, want %q\n%.300s", code, tt.code, errOut, tt.want, out)
			}
			if strings.Contains(errOut, "strconv.") || strings.Contains(errOut, "time: ") {
				t.Errorf("stderr names Go's parser: %q", errOut)
			}
			if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) > 3 || len(errOut) > 600 {
				t.Errorf("stderr of %d lines, %d octets: %.300q", len(lines), len(errOut), errOut)
			}
		})
	}
}

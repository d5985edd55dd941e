package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/scan"
)

// scanDomains are example-zone domains of every result, an address, a
// duplicate and a line that is not a domain.
var scanDomains = []string{"tiers.example", "bigtiers.example", "nullmx.example", "implicit.example", "nomail.example",
	"cname-mx.example", "postmaster@good.example", "nosuch.example", "tiers.example"}

func writeList(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScanIsRouteJSON: each line scan writes is exactly what route --json
// prints for that domain (and check --json --no-smtp for --mode check), in
// input order.
func TestScanIsRouteJSON(t *testing.T) {
	list := writeList(t, scanDomains...)
	for _, tt := range []struct {
		mode string
		cmd  []string
	}{
		{"route", []string{"route", "--json"}},
		{"check", []string{"check", "--json", "--no-smtp", "--zone", reverseZone}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			code, out, errOut := mxtrace(t, "scan", "--mode", tt.mode, "--zone", exampleZone, "--zone", reverseZone, "--seed", "1", list)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			args := append(append(tt.cmd, "--zone", exampleZone, "--seed", "1", "--fail-on", "never"), scanDomains...)
			if tt.mode == "route" {
				args = append(args, "--zone", reverseZone)
			}
			_, want, _ := mxtrace(t, args...)
			if stable(out) != stable(want) {
				t.Errorf("scan --mode %s wrote\n%s\n%s prints\n%s", tt.mode, out, strings.Join(tt.cmd, " "), want)
			}
			if !strings.Contains(errOut, "scanned 9 entries") {
				t.Errorf("no summary on stderr: %q", errOut)
			}
		})
	}
}

func TestScanInvalidLines(t *testing.T) {
	list := writeList(t, "tiers.example", "# comment", "", "bad..name", "nullmx.example")
	code, out, errOut := mxtrace(t, "scan", "--zone", exampleZone, list)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines for 3 entries:\n%s", len(lines), out)
	}
	var e scan.ErrorRecord
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Domain != "bad..name" || e.Result != "error" || e.Kind != scan.KindInvalidInput || e.Line != 4 || !strings.Contains(e.Error, "empty label") {
		t.Errorf("error line %+v", e)
	}
}

// TestScanOutputResume: -o refuses to overwrite, --resume repairs a torn
// line and completes the file to what one run writes, --summary is JSON.
func TestScanOutputResume(t *testing.T) {
	dir := t.TempDir()
	list := writeList(t, scanDomains...)
	full, sumPath := filepath.Join(dir, "full.jsonl"), filepath.Join(dir, "sum.json")
	if code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", "-o", full, "--summary", sumPath, list); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, _ := os.ReadFile(full)

	var sum scan.Summary
	b, _ := os.ReadFile(sumPath)
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Written != int64(len(scanDomains)) || sum.Results["ok"] != 6 || sum.Mode != "route" {
		t.Errorf("summary %s", b)
	}

	// An existing output is not overwritten.
	if code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "-o", full, list); code != exitUsage || !strings.Contains(errOut, "--resume") {
		t.Errorf("overwrite: exit %d, %q", code, errOut)
	}

	// Kill mid-line: keep four lines and a half.
	part := filepath.Join(dir, "part.jsonl")
	lines := strings.SplitAfter(string(want), "\n")
	os.WriteFile(part, []byte(strings.Join(lines[:4], "")+lines[4][:20]), 0o644)
	code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", "-o", part, "--resume", list)
	if code != exitOK || !strings.Contains(errOut, "torn") || !strings.Contains(errOut, "4 already done") {
		t.Fatalf("resume: exit %d: %s", code, errOut)
	}
	if got, _ := os.ReadFile(part); stable(string(got)) != stable(string(want)) {
		t.Errorf("resumed file:\n%s\nwant:\n%s", got, want)
	}
	// Resuming with another list is refused.
	other := writeList(t, "good.example")
	if code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "-o", part, "--resume", other); code != exitUsage || !strings.Contains(errOut, "not the same input") {
		t.Errorf("resume with another list: exit %d, %q", code, errOut)
	}
}

func TestScanCSV(t *testing.T) {
	list := writeList(t, "rank,domain", "1,tiers.example", "2,nullmx.example")
	code, out, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--column", "domain", "--format", "csv", list)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || rows[0] != strings.Join(scan.CSVHeader(), ",") || !strings.HasPrefix(rows[1], "2,tiers.example,ok,false,3,3,3,alln-mx-01.tiers.example,tiers.example,5,") || !strings.HasPrefix(rows[2], "3,nullmx.example,null-mx,") {
		t.Errorf("csv:\n%s", out)
	}
	// By number, the header skipped with --header.
	code, out, _ = mxtrace(t, "scan", "--zone", exampleZone, "--column", "2", "--header", list)
	if ds := domainsOf(t, out); code != exitOK || !slices.Equal(ds, []string{"tiers.example", "nullmx.example"}) {
		t.Errorf("--column 2 --header: exit %d, %q", code, ds)
	}
}

func domainsOf(t *testing.T, out string) []string {
	t.Helper()
	var ds []string
	for l := range strings.Lines(out) {
		var v struct{ Domain string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		ds = append(ds, v.Domain)
	}
	return ds
}

func TestScanFromZone(t *testing.T) {
	code, out, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--from-zone", exampleZone)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ds := domainsOf(t, out)
	for _, d := range []string{"example", "tiers.example", "nullmx.example", "good.example"} {
		if !slices.Contains(ds, d) {
			t.Errorf("%s (with NS or MX) not scanned: %q", d, ds)
		}
	}
	for _, d := range []string{"implicit.example", "alias.example", "ns.example"} {
		if slices.Contains(ds, d) {
			t.Errorf("%s has neither NS nor MX but was scanned", d)
		}
	}
}

// TestScanShards: the shards of a list, scanned separately, are together
// the whole list, each entry once.
func TestScanShards(t *testing.T) {
	var entries []string
	for _, d := range []string{"tiers", "bigtiers", "nullmx", "implicit", "nomail", "good", "nosuch", "alias", "multihomed", "cname-mx"} {
		entries = append(entries, d+".example")
	}
	list := writeList(t, entries...)
	var all []string
	for _, s := range []string{"0/3", "1/3", "2/3"} {
		code, out, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--shard", s, list)
		if code != exitOK {
			t.Fatalf("shard %s: exit %d: %s", s, code, errOut)
		}
		all = append(all, domainsOf(t, out)...)
	}
	slices.Sort(all)
	slices.Sort(entries)
	if !slices.Equal(all, entries) {
		t.Errorf("the shards together: %q", all)
	}
}

func TestScanUsage(t *testing.T) {
	list := writeList(t, "tiers.example")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "probe", list}, "--mode"},
		{[]string{"--format", "xml", list}, "--format"},
		{[]string{"--shard", "3/3", list}, "--shard"},
		{[]string{"--resume", list}, "--resume needs --output"},
		{[]string{"--from-zone", exampleZone, list}, "not both"},
		{[]string{"--column", "0", list}, "count from 1"},
		{[]string{"--header", list}, "--header goes with --column"},
		{[]string{"--concurrency", "0", list}, "--concurrency"},
		{[]string{"--smtp", list}, "--smtp goes with --mode check"},
		{[]string{"--column", "2", "--comma", "ab", list}, "--comma"},
		{[]string{filepath.Join(t.TempDir(), "missing.txt")}, "no such file"},
	} {
		code, _, errOut := mxtrace(t, append([]string{"scan", "--zone", exampleZone}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, %q; want %d mentioning %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
}

// TestScanInterrupted: an interrupted scan exits 3, says how to continue,
// and leaves a valid file.
func TestScanInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"scan", "--zone", exampleZone, "-o", out, writeList(t, scanDomains...)}, strings.NewReader(""), &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("exit %d, %q", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil || (len(b) > 0 && b[len(b)-1] != '\n') {
		t.Errorf("output %q, %v", b, err)
	}
}

// TestScanNoAnswers: when no domain gets an answer (the resolver is
// silent), the scan could not be done: exit 3, every line an error.
func TestScanNoAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func() *dnstest.Server
	}{
		{"Silent", func() *dnstest.Server { return dnstest.New(t, dnstest.Silent()) }},
		{"FORMERR", func() *dnstest.Server { return dnstest.New(t, dnstest.Rcode(dns.RcodeFormatError)) }},
		{"AlwaysTruncated+BrokenTCP", func() *dnstest.Server {
			return dnstest.NewZone(t, hostileDNSZone, dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn))
		}},
	} {
		srv := tc.srv()
		start := time.Now()
		code, out, errOut := mxtrace(t, "scan", "--resolver", srv.Addr, "--timeout", "400ms", "--retries", "0", writeList(t, "a.example", "b.example"))
		if code != exitFailed || !strings.Contains(errOut, "no domain got an answer") {
			t.Errorf("%s: exit %d: %s", tc.name, code, errOut)
		}
		if n := strings.Count(out, `"result":"error"`); n != 2 {
			t.Errorf("%s: %d error lines, want 2:\n%s", tc.name, n, out)
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s: took %v", tc.name, time.Since(start))
		}
	}
}

func TestScanStdin(t *testing.T) {
	o := &scanOptions{}
	in, err := o.input([]string{"-"}, scan.Shard{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.total != nil {
		t.Error("standard input is counted for the progress line")
	}
	in.stdin = strings.NewReader("a.example\n# c\nb.example\n")
	r, closeIn, err := in.open()
	if err != nil {
		t.Fatal(err)
	}
	defer closeIn()
	n, err := scan.Count(t.Context(), in.source(r), scan.Shard{})
	if err != nil || n != 2 {
		t.Errorf("read %d entries from standard input, %v", n, err)
	}
}

// TestScanNetwork: through resolvers on the network (the Mux, with the
// prefetch), a scan writes what it writes offline from the same zone, and
// its summary says what went on the wire; --cpuprofile and --memprofile
// write profiles (gzip-compressed protocol buffers); --qps paces the queries to each
// server.
func TestScanNetwork(t *testing.T) {
	zone, err := os.ReadFile(exampleZone)
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.NewZone(t, string(zone))
	list := writeList(t, scanDomains...)
	_, want, _ := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", list)
	profile := filepath.Join(t.TempDir(), "scan.cpu")
	heap := filepath.Join(t.TempDir(), "scan.heap")
	code, out, errOut := mxtrace(t, "scan", "--resolver", srv.Addr, "--seed", "1", "--cpuprofile", profile, "--memprofile", heap, list)
	if code != exitOK || stable(out) != stable(want) {
		t.Errorf("exit %d (%s); through the network:\n%s\noffline:\n%s", code, errOut, out, want)
	}
	if !strings.Contains(errOut, "dns: ") || !strings.Contains(errOut, "queries sent (0 retries") {
		t.Errorf("no DNS counts in the summary: %s", errOut)
	}
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("--cpuprofile wrote %d bytes (%v), not a gzip-compressed profile", len(b), err)
	}
	if b, err := os.ReadFile(heap); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("--memprofile wrote %d bytes (%v), not a gzip-compressed profile", len(b), err)
	}

	// At 100 queries a second (bursts of 5) the run cannot be faster
	// than its queries allow.
	before := srv.Queries()
	start := time.Now()
	code, out, errOut = mxtrace(t, "scan", "--resolver", srv.Addr, "--seed", "1", "--qps", "100", list)
	elapsed, queries := time.Since(start), srv.Queries()-before
	if code != exitOK || stable(out) != stable(want) {
		t.Errorf("--qps: exit %d (%s)", code, errOut)
	}
	if floor := time.Duration(float64(queries-5) / 100 * float64(time.Second)); elapsed < floor*8/10 {
		t.Errorf("%d queries in %v at --qps 100: faster than the limit allows (%v)", queries, elapsed, floor)
	}
}

// TestScanDeadResolver: the first --resolver swallows every query. The
// scan writes what it writes through the good one alone, says on standard
// error that the first stopped answering, and counts it in the summary
// (--summary's dns.queries.down).
func TestScanDeadResolver(t *testing.T) {
	zone, err := os.ReadFile(exampleZone)
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.NewZone(t, string(zone))
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	list := writeList(t, scanDomains...)
	_, want, _ := mxtrace(t, "scan", "--resolver", srv.Addr, "--seed", "1", list)
	summary := filepath.Join(t.TempDir(), "summary.json")
	code, out, errOut := mxtrace(t, "scan", "--resolver", silent.LocalAddr().String(), "--resolver", srv.Addr, "--seed", "1", "--summary", summary, list)
	if code != exitOK || stable(out) != stable(want) {
		t.Errorf("exit %d (%s); with a dead first resolver:\n%s\nthrough the good one:\n%s", code, errOut, out, want)
	}
	if !strings.Contains(errOut, "dns server not answering") || !strings.Contains(errOut, silent.LocalAddr().String()) {
		t.Errorf("no warning about the dead resolver: %s", errOut)
	}
	var sum struct {
		DNS struct {
			Queries struct {
				Down int64 `json:"down"`
			} `json:"queries"`
		} `json:"dns"`
	}
	if b, err := os.ReadFile(summary); err != nil || json.Unmarshal(b, &sum) != nil || sum.DNS.Queries.Down != 1 {
		t.Errorf("summary: down %d, want 1 (%v)", sum.DNS.Queries.Down, err)
	}
}

// TestScanResumeNew: --resume on an output that does not exist yet starts
// it, so one command line serves the first run and every restart.
func TestScanResumeNew(t *testing.T) {
	out := filepath.Join(t.TempDir(), "new.jsonl")
	list := writeList(t, "tiers.example", "nullmx.example")
	for range 2 {
		if code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "-o", out, "--resume", list); code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	}
	b, _ := os.ReadFile(out)
	if ds := domainsOf(t, string(b)); !slices.Equal(ds, []string{"tiers.example", "nullmx.example"}) {
		t.Errorf("after two runs: %q", ds)
	}
}

// TestScanReadsPipedStdin: without a FILE, scan reads standard input when
// it is not a terminal (mxtrace scan < list.txt), and writes what it
// writes for the same list in a file; on a terminal it is bad usage.
func TestScanReadsPipedStdin(t *testing.T) {
	_, want, _ := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", writeList(t, scanDomains...))
	code, out, errOut := mxtraceInput(t, strings.NewReader(strings.Join(scanDomains, "\n")+"\n"), "scan", "--zone", exampleZone, "--seed", "1")
	if code != exitOK || stable(out) != stable(want) {
		t.Errorf("exit %d (%s); from standard input:\n%s\nfrom the file:\n%s", code, errOut, out, want)
	}

	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no terminal to test with: %v", err)
	}
	defer tty.Close()
	if !isTerminal(tty) {
		t.Skip("/dev/ptmx is not a terminal here")
	}
	code, out, errOut = mxtraceInput(t, tty, "scan", "--zone", exampleZone)
	if code != exitUsage || out != "" || !strings.Contains(errOut, "no input: give a FILE, --from-zone FILE, or a list on standard input") {
		t.Errorf("on a terminal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestScanFailOn: a scan's status ignores the domains' findings unless
// --fail-on is given; with it, exit 1 when a line has a finding at or
// above it.
func TestScanFailOn(t *testing.T) {
	broken := writeList(t, "tiers.example", "dangling.example") // mx-target-nxdomain is an error
	clean := writeList(t, "nullmx.example")                     // mx-null is info
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{broken}, exitOK},
		{[]string{"--fail-on", "error", broken}, exitFindings},
		{[]string{"--fail-on", "never", broken}, exitOK},
		{[]string{"--fail-on", "error", clean}, exitOK},
		{[]string{"--fail-on", "info", clean}, exitFindings},
		{[]string{"--fail-on", "error", "--mode", "check", broken}, exitFindings},
	} {
		code, out, errOut := mxtrace(t, append([]string{"scan", "--zone", exampleZone}, tc.args...)...)
		if code != tc.want || strings.Count(out, "\n") != strings.Count(mustRead(t, tc.args[len(tc.args)-1]), "\n") {
			t.Errorf("%q: exit %d, want %d (stderr %s)\n%s", tc.args, code, tc.want, errOut, out)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScanInterruptedOneLine: the interrupted scan's count agrees with
// its noun ('1 line written', not '1 lines').
func TestScanInterruptedOneLine(t *testing.T) {
	for n, want := range map[int64]string{1: "; 1 line written to out.jsonl,", 2: "; 2 lines written to out.jsonl,"} {
		err := interrupted(scan.ErrInterrupted, n, "out.jsonl")
		if !strings.Contains(err.Error(), want) || !errors.Is(err, scan.ErrInterrupted) {
			t.Errorf("%d lines: %q, want it to contain %q", n, err, want)
		}
	}
}

// TestScanCheckNetwork: --mode check through the network (the scan's
// lookups through waitAsync, the nameserver audit's through muxDirect)
// writes what check --json prints through a stub, and the nameserver
// audit asks the two NS names' one address each question once.
func TestScanCheckNetwork(t *testing.T) {
	srv := dnstest.NewZone(t, `$ORIGIN net.test.
@ 3600 IN SOA ns1 hostmaster 7 3600 900 604800 300
@ 3600 IN NS ns1
@ 3600 IN NS ns2
ns1 3600 IN A 127.0.0.1
ns2 3600 IN A 127.0.0.1
a 3600 IN MX 10 mx.a
mx.a 3600 IN A 192.0.2.1
a 3600 IN TXT "v=spf1 mx -all"
_dmarc.a 3600 IN TXT "v=DMARC1; p=none"
b 3600 IN MX 0 .
`)
	_, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	domains := []string{"a.net.test", "b.net.test", "c.net.test"}
	list := writeList(t, domains...)
	common := []string{"--resolver", srv.Addr, "--ns-port", port, "--seed", "1", "--no-dnsbl", "--fail-on", "never"}
	code, out, errOut := mxtrace(t, append(append([]string{"scan", "--mode", "check"}, common...), list)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := srv.QueriesFor("a.net.test.", dns.TypeMX); got != 2 {
		t.Errorf("a.net.test MX asked %d times, want 2 (the resolver's, and once directly of 127.0.0.1 for both NS names)", got)
	}
	_, want, _ := mxtrace(t, append(append([]string{"check", "--json", "--no-smtp"}, common...), domains...)...)
	if stable(out) != stable(want) {
		t.Errorf("scan --mode check wrote\n%s\ncheck --json prints\n%s", out, want)
	}
	if !strings.Contains(out, `"id":"dmarc-policy-none"`) || strings.Contains(out, `"id":"ns-`) {
		t.Errorf("the audit did not judge the zone's records, or a server looks broken:\n%s", out)
	}
}

// TestScanRouteWindow: in input order, a domain whose first query is lost
// holds every line after it until the query is sent again. A route scan's
// default window (routeWindowPerWorker per worker) lets the other workers
// go on meanwhile for more entries than scan's default of 4 per worker
// would; --window still sets it. The lines stay in input order.
func TestScanRouteWindow(t *testing.T) {
	zone, err := os.ReadFile(exampleZone)
	if err != nil {
		t.Fatal(err)
	}
	var lost atomic.Bool
	dropFirst := dnstest.WithMiddleware(func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			if req.Question[0].Name == "tiers.example." && req.Question[0].Qtype == dns.TypeMX && lost.CompareAndSwap(false, true) {
				return
			}
			next.ServeDNS(w, req)
		})
	})
	srv := dnstest.NewZone(t, string(zone), dropFirst)
	lines := []string{"tiers.example"}
	for range 40 {
		lines = append(lines, "bigtiers.example", "nullmx.example", "implicit.example", "nomail.example")
	}
	list := writeList(t, lines...)
	const concurrency = 2
	for _, c := range []struct {
		flags    []string
		min, max int64
	}{
		{nil, 4*concurrency + 1, routeWindowPerWorker * concurrency},
		{[]string{"--window", "5"}, 1, 5},
	} {
		lost.Store(false)
		summary := filepath.Join(t.TempDir(), "summary.json")
		args := append([]string{"scan", "--resolver", srv.Addr, "--concurrency", "2", "--summary", summary, list}, c.flags...)
		code, out, errOut := mxtrace(t, args...)
		if code != exitOK || !strings.HasPrefix(out, `{"schema":1,"domain":"tiers.example"`) {
			t.Fatalf("%v: exit %d (%s), first line %.60s", c.flags, code, errOut, out)
		}
		var sum scan.Summary
		if b, err := os.ReadFile(summary); err != nil || json.Unmarshal(b, &sum) != nil {
			t.Fatalf("%v: summary %v", c.flags, err)
		}
		if !lost.Load() || sum.MaxReordered < c.min || sum.MaxReordered > c.max {
			t.Errorf("%v: lost %v, %d lines held for the first, want %d..%d", c.flags, lost.Load(), sum.MaxReordered, c.min, c.max)
		}
	}
}

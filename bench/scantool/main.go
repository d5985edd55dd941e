// Command scantool holds the small helpers of the scan benchmark
// (bench/scan.sh), so that the script needs nothing beyond bash, Go and the
// Debian packages knot, unbound, dnsperf and time:
//
//	scantool freeport
//	    print a free UDP+TCP port on 127.0.0.1
//	scantool ready -server 127.0.0.1:PORT -zones zones.txt [-timeout 120s]
//	    wait until an authoritative server answers the SOA of every zone
//	scantool ready -server 127.0.0.1:PORT -localhost
//	    wait until a resolver answers localhost. A, which it answers from
//	    its built-in local zone (RFC 6761 §6.3), so its cache stays cold
//	scantool get FILE KEY
//	    print one member of a JSON file (KEY may be a dotted path)
//	scantool verify -truth truth.jsonl -out scan.jsonl [-json FILE]
//	    compare scan's output with the ground truth of bench/scanworld:
//	    result, MX records, exchanges and the address set of each
//	    (sets, since the order inside a tier is random)
//	scantool audit -truth findings.jsonl -out scan.jsonl [-unscored ID,ID] [-json FILE]
//	    score "scan --mode check" against the audit world's ground truth
//	    (bench/scanworld -audit): per finding ID, precision and recall over
//	    the domains; exit status 0 whatever the score (the rig reports it)
//	scantool dnsperf FILE...
//	    read dnsperf reports and print the best "Queries per second"
//
// It talks to loopback only.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/bench/internal/truth"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "freeport":
		err = freePort()
	case "ready":
		err = ready(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	case "dnsperf":
		err = dnsperfBest(os.Args[2:])
	case "audit":
		err = auditScore(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scantool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: scantool freeport | ready | verify | audit | dnsperf | get (see the package doc)")
	os.Exit(2)
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort() error {
	for range 50 {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		t.Close()
		fmt.Println(port)
		return nil
	}
	return errors.New("no free port found")
}

// readZones reads zones.txt: "ORIGIN FILE" per line.
func readZones(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var origins []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 2 {
			origins = append(origins, fs[0])
		}
	}
	return origins, sc.Err()
}

// ready polls the server until every zone's SOA is answered.
func ready(args []string) error {
	fl := flag.NewFlagSet("ready", flag.ExitOnError)
	server := fl.String("server", "", "server `HOST:PORT` (loopback)")
	zones := fl.String("zones", "", "zones.txt of the world")
	localhost := fl.Bool("localhost", false, "the server is a resolver: ask it localhost. A (cache stays cold)")
	timeout := fl.Duration("timeout", 120*time.Second, "give up after this long")
	fl.Parse(args)
	if err := loopback(*server); err != nil {
		return err
	}
	var origins []string
	if *localhost {
		origins = []string{"localhost."}
	} else {
		var err error
		if origins, err = readZones(*zones); err != nil {
			return err
		}
	}
	c := &dns.Client{Timeout: time.Second}
	deadline := time.Now().Add(*timeout)
	var last error
	for time.Now().Before(deadline) {
		last = nil
		for _, o := range origins {
			m := new(dns.Msg)
			qtype := dns.TypeSOA
			if *localhost {
				qtype = dns.TypeA
			}
			m.SetQuestion(o, qtype)
			m.RecursionDesired = *localhost
			r, _, err := c.Exchange(m, *server)
			switch {
			case err != nil:
				last = err
			case r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0:
				last = fmt.Errorf("%s: %s, %d records", o, dns.RcodeToString[r.Rcode], len(r.Answer))
			case !*localhost && !r.Authoritative:
				last = fmt.Errorf("%s SOA: not authoritative", o)
			}
			if last != nil {
				break
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %w", *server, *timeout, last)
}

func loopback(hostport string) error {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return fmt.Errorf("server %q: %w", hostport, err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("server %s is not on loopback", hostport)
	}
	return nil
}

// verifyReport is what verify prints (and writes with -json).
type verifyReport struct {
	Expected   int            `json:"expected"`
	Lines      int            `json:"lines"`
	Correct    int            `json:"correct"`
	Percent    float64        `json:"percent_correct"`
	Missing    int            `json:"missing"`
	Duplicates int            `json:"duplicates"`
	Unknown    int            `json:"unknown"`
	Wrong      map[string]int `json:"wrong_by_kind_and_reason"`
	Examples   []string       `json:"examples"`
}

// checkOutput compares a scan's output with the truth. A domain is correct
// when it has exactly one line and that line matches its truth.
func checkOutput(truthPath, outPath string) (*verifyReport, error) {
	want := map[string]*truth.Domain{}
	if err := eachLine(truthPath, func(b []byte) error {
		t := &truth.Domain{}
		if err := json.Unmarshal(b, t); err != nil {
			return err
		}
		want[t.Domain] = t
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", truthPath, err)
	}
	rep := &verifyReport{Expected: len(want), Wrong: map[string]int{}}
	const (
		matched = iota + 1
		differs
		repeated
	)
	state := make(map[string]int8, len(want))
	wrong := func(kind, why, example string) {
		rep.Wrong[kind+": "+why]++
		if len(rep.Examples) < 20 {
			rep.Examples = append(rep.Examples, example)
		}
	}
	if err := eachLine(outPath, func(b []byte) error {
		rep.Lines++
		var p truth.Plan
		if err := json.Unmarshal(b, &p); err != nil {
			wrong("?", "not JSON", string(b))
			return nil
		}
		t, ok := want[p.Domain]
		if !ok {
			rep.Unknown++
			wrong("?", "domain not in the world", p.Domain)
			return nil
		}
		if state[p.Domain] != 0 {
			rep.Duplicates++
			state[p.Domain] = repeated
			wrong(t.Kind, "more than one line", p.Domain)
			return nil
		}
		if why := truth.Compare(t, &p); why != "" {
			state[p.Domain] = differs
			wrong(t.Kind, why, p.Domain+": "+why+" "+p.Error)
			return nil
		}
		state[p.Domain] = matched
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", outPath, err)
	}
	for _, st := range state {
		if st == matched {
			rep.Correct++
		}
	}
	rep.Missing = rep.Expected - len(state)
	if rep.Expected > 0 {
		rep.Percent = 100 * float64(rep.Correct) / float64(rep.Expected)
	}
	return rep, nil
}

func verify(args []string) error {
	fl := flag.NewFlagSet("verify", flag.ExitOnError)
	truthPath := fl.String("truth", "", "truth.jsonl")
	outPath := fl.String("out", "", "scan output (JSON Lines)")
	jsonPath := fl.String("json", "", "also write the report as JSON to `FILE`")
	fl.Parse(args)
	rep, err := checkOutput(*truthPath, *outPath)
	if err != nil {
		return err
	}
	fmt.Printf("correct %d of %d (%.3f%%); lines %d, missing %d, duplicates %d, unknown %d\n",
		rep.Correct, rep.Expected, rep.Percent, rep.Lines, rep.Missing, rep.Duplicates, rep.Unknown)
	keys := make([]string, 0, len(rep.Wrong))
	for k := range rep.Wrong {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  wrong %-50s %d\n", k, rep.Wrong[k])
	}
	for _, e := range rep.Examples[:min(5, len(rep.Examples))] {
		fmt.Printf("  e.g. %s\n", e)
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
	}
	return nil
}

// eachLine calls fn with every non-empty line of path.
func eachLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// get prints member key of the JSON object in file; a dotted key
// ("dns.queries.sent") names a member of a member.
func get(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: get FILE KEY")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	v, err := member(b, args[1])
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	fmt.Println(v)
	return nil
}

// member returns the member at the dotted path key of the JSON object b,
// a string without its quotes.
func member(b []byte, key string) (string, error) {
	v := json.RawMessage(b)
	for _, k := range strings.Split(key, ".") {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return "", err
		}
		next, ok := m[k]
		if !ok {
			return "", fmt.Errorf("no member %q", key)
		}
		v = next
	}
	return strings.Trim(string(v), `"`), nil
}

var qpsLine = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)

// dnsperfBest prints the highest "Queries per second" of the reports.
func dnsperfBest(files []string) error {
	best, err := bestQPS(files)
	if err != nil {
		return err
	}
	fmt.Printf("%.0f\n", best)
	return nil
}

// bestQPS reads dnsperf reports and returns the highest rate.
func bestQPS(files []string) (float64, error) {
	best := 0.0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		m := qpsLine.FindSubmatch(b)
		if m == nil {
			return 0, fmt.Errorf("%s: no \"Queries per second\" line", f)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			return 0, err
		}
		best = max(best, v)
	}
	return best, nil
}

// scoreAudit reads the truth and the scan's lines and scores them.
func scoreAudit(truthPath, outPath string, unscored []string) (*truth.AuditScore, error) {
	var want []truth.AuditDomain
	if err := eachLine(truthPath, func(b []byte) error {
		var d truth.AuditDomain
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		want = append(want, d)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", truthPath, err)
	}
	s := truth.NewScorer(want, unscored)
	if err := eachLine(outPath, func(b []byte) error {
		var r truth.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		s.Add(&r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", outPath, err)
	}
	return s.Score(), nil
}

func auditScore(args []string) error {
	fl := flag.NewFlagSet("audit", flag.ExitOnError)
	truthPath := fl.String("truth", "", "findings.jsonl")
	outPath := fl.String("out", "", "scan --mode check output (JSON Lines)")
	unscored := fl.String("unscored", "", "comma-separated finding `IDs` left out of the score")
	jsonPath := fl.String("json", "", "also write the score as JSON to `FILE`")
	fl.Parse(args)
	var skip []string
	if *unscored != "" {
		skip = strings.Split(*unscored, ",")
	}
	sc, err := scoreAudit(*truthPath, *outPath, skip)
	if err != nil {
		return err
	}
	verdict := "every finding ID at 100% precision and recall"
	if !sc.Exact {
		verdict = "NOT exact"
	}
	fmt.Printf("findings: %s; domains %d, lines %d, missing %d, duplicates %d, unknown %d\n",
		verdict, sc.Domains, sc.Lines, sc.Missing, sc.Duplicates, sc.Unknown)
	ids := make([]string, 0, len(sc.IDs))
	for id := range sc.IDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := sc.IDs[id]
		fmt.Printf("  %-28s precision %7.3f%%  recall %7.3f%%  (TP %d, FP %d, FN %d)\n", id, 100*c.Precision, 100*c.Recall,
			c.TruePositives, c.FalsePositives, c.FalseNegatives)
	}
	for id, n := range sc.Unscored {
		fmt.Printf("  %-28s not scored: %d\n", id, n)
	}
	for _, e := range sc.Examples[:min(10, len(sc.Examples))] {
		fmt.Printf("  e.g. %s\n", e)
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(sc, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
	}
	return nil
}

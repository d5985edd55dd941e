package spf

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// zoneCase is one file of testdata/analyze: zone text whose leading
// comments say what to analyse and what to expect.
type zoneCase struct {
	domain          string
	want            []finding.ID
	lookups, voids  int
	zones           *resolve.Zones
	path, rawHeader string
}

func loadZoneCase(t *testing.T, path string) zoneCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := zoneCase{path: path, lookups: -1, voids: -1}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ";") {
			break
		}
		key, value, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, ";")), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "domain":
			c.domain = value
		case "want":
			for _, id := range strings.Fields(value) {
				c.want = append(c.want, finding.ID(id))
			}
		case "lookups":
			c.lookups, err = strconv.Atoi(value)
		case "voids":
			c.voids, err = strconv.Atoi(value)
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", path, key, err)
		}
	}
	if c.domain == "" || c.lookups < 0 || c.voids < 0 {
		t.Fatalf("%s: needs ; domain:, ; want:, ; lookups: and ; voids: lines", path)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if c.zones, err = resolve.ParseZones(f, filepath.Base(path)); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAnalyzeZones runs every case in testdata/analyze. The findings must be
// exactly the listed IDs, so each case is also a "must not trigger" case for
// every other SPF ID; pairs such as lookups-at-limit/lookups-over-limit
// and neutral-all/neutral-all-include are the near misses.
func TestLookupZones(t *testing.T) {
	paths, err := filepath.Glob("testdata/analyze/*.zone")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	triggered := map[finding.ID]bool{}
	absent := map[finding.ID]bool{}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".zone"), func(t *testing.T) {
			c := loadZoneCase(t, p)
			an, err := Lookup(t.Context(), c.zones, dnsname.MustParse(c.domain), Options{})
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			var got []finding.ID
			for _, f := range Findings(an) {
				if !slices.Contains(got, f.ID) {
					got = append(got, f.ID)
				}
				if f.Subject == "" || f.Message == "" || f.Reference == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("findings %v, want %v\n%+v", got, want, Findings(an))
			}
			if an.Lookups != c.lookups || an.VoidLookups != c.voids {
				t.Errorf("lookups %d, void lookups %d; want %d and %d", an.Lookups, an.VoidLookups, c.lookups, c.voids)
			}
			for _, id := range spfIDs {
				if slices.Contains(got, id) {
					triggered[id] = true
				} else {
					absent[id] = true
				}
			}
		})
	}
	for _, id := range spfIDs {
		if !triggered[id] || !absent[id] {
			t.Errorf("%s: triggered by a case %v, absent from a case %v; both are needed", id, triggered[id], absent[id])
		}
	}
}

// spfIDs are the finding IDs this package produces.
var spfIDs = []finding.ID{
	finding.SPFMissing, finding.SPFMultiple, finding.SPFIncludeNone, finding.SPFRedirectNone, finding.SPFSyntax, finding.SPFLookupLimit,
	finding.SPFVoidLookups, finding.SPFPlusAll, finding.SPFNeutralAll, finding.SPFPTR,
}

func analyzeCase(t *testing.T, name string) *Analysis {
	t.Helper()
	c := loadZoneCase(t, filepath.Join("testdata/analyze", name+".zone"))
	an, err := Lookup(t.Context(), c.zones, dnsname.MustParse(c.domain), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return an
}

func TestLookupSyntaxMessageHasPosition(t *testing.T) {
	an := analyzeCase(t, "syntax")
	if len(Findings(an)) != 1 {
		t.Fatalf("findings %+v", Findings(an))
	}
	msg := Findings(an)[0].Message
	if !strings.Contains(msg, `position 21: unknown mechanism "incude"`) {
		t.Errorf("message %q does not name the position and the term", msg)
	}
}

func TestLookupTree(t *testing.T) {
	an := analyzeCase(t, "lookups-over-limit")
	root := an.Tree
	if root.Domain != "example.test" || root.Lookups != 2 || root.TotalLookups != 11 {
		t.Fatalf("root %s lookups %d total %d", root.Domain, root.Lookups, root.TotalLookups)
	}
	if len(root.Children) != 1 {
		t.Fatalf("children %+v", root.Children)
	}
	spf := root.Children[0]
	if spf.Domain != "_spf.example.test" || spf.Via != "include" || spf.Term != "include:_spf.example.test" || spf.Lookups != 5 || spf.TotalLookups != 9 {
		t.Errorf("child %+v", spf)
	}
	if len(spf.Children) != 1 || spf.Children[0].Domain != "_spf2.example.test" || spf.Children[0].TotalLookups != 4 {
		t.Errorf("grandchild %+v", spf.Children)
	}
	if len(root.Terms) != 4 || root.Terms[1] != "include:_spf.example.test" {
		t.Errorf("terms %q", root.Terms)
	}

	loop := analyzeCase(t, "loop")
	if !loop.Loop || len(loop.Tree.Children) != 1 || len(loop.Tree.Children[0].Children) != 1 ||
		len(loop.Tree.Children[0].Children[0].Errors) == 0 {
		t.Errorf("loop not detected: %+v", loop.Tree)
	}
}

// A temporary failure at the domain itself is an error, never spf-missing.
func TestLookupTemporaryFailure(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader("$ORIGIN example.test.\n@ 300 SOA ns hostmaster 1 2 3 4 5\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	an, err := Lookup(t.Context(), zones, dnsname.MustParse("other.example"), Options{})
	if err == nil || !errors.Is(err, ErrDNS) || !errors.Is(err, resolve.ErrNotInZone) {
		t.Fatalf("err %v, want ErrDNS wrapping ErrNotInZone", err)
	}
	if an == nil || len(Findings(an)) != 0 {
		t.Errorf("findings on a failed lookup: %+v", an)
	}

	// Below the root, a failure marks the analysis incomplete, and is not
	// spf-missing either.
	zones, err = resolve.ParseZones(strings.NewReader("$ORIGIN example.test.\n@ 300 SOA ns hostmaster 1 2 3 4 5\n@ TXT \"v=spf1 include:spf.other.example -all\"\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	an, err = Lookup(t.Context(), zones, dnsname.MustParse("example.test"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !an.Incomplete || len(Findings(an)) != 0 {
		t.Errorf("incomplete %v, findings %+v", an.Incomplete, Findings(an))
	}
}

// The analysis is bounded: a tree of many distinct includes stops at
// MaxRecords and says it is incomplete.
func TestLookupBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN example.test.\n@ 300 SOA ns hostmaster 1 2 3 4 5\n")
	b.WriteString("@ TXT \"v=spf1 include:n0.example.test include:m0.example.test -all\"\n")
	for i := range 200 {
		b.WriteString("n" + strconv.Itoa(i) + " TXT \"v=spf1 include:n" + strconv.Itoa(i+1) + ".example.test include:m" + strconv.Itoa(i+1) + ".example.test\"\n")
		b.WriteString("m" + strconv.Itoa(i) + " TXT \"v=spf1 include:n" + strconv.Itoa(i+1) + ".example.test\"\n")
	}
	zones, err := resolve.ParseZones(strings.NewReader(b.String()), "t")
	if err != nil {
		t.Fatal(err)
	}
	an, err := Lookup(t.Context(), zones, dnsname.MustParse("example.test"), Options{MaxRecords: 20})
	if err != nil {
		t.Fatal(err)
	}
	if !an.Incomplete {
		t.Error("not marked incomplete")
	}
	count := 0
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.Record != "" {
			count++
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(an.Tree)
	if count > 20 {
		t.Errorf("%d records fetched, bound 20", count)
	}
	if !slices.ContainsFunc(Findings(an), func(f finding.Finding) bool { return f.ID == finding.SPFLookupLimit }) {
		t.Errorf("no spf-lookup-limit: %+v", Findings(an))
	}
}

// TestFindingWords: finding messages are for people: spf-multiple says how
// many records, once ("publishes more than one SPF record: spf: more than
// one SPF record at ... (2 records)" before), and spf-missing for a name
// that is not usable (a single label) carries no "spf: ".
func TestFindingWords(t *testing.T) {
	zones, err := resolve.ParseZones(strings.NewReader(`$ORIGIN example.test.
@ 300 SOA ns hostmaster 1 2 3 4 5
@ TXT "v=spf1 include:multi.example.test -all"
multi TXT "v=spf1 a -all"
multi TXT "v=spf1 mx -all"
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, name := range []string{"example.test", "test"} {
		an, _ := Lookup(t.Context(), zones, dnsname.MustParse(name), Options{})
		for _, f := range Findings(an) {
			msgs = append(msgs, f.Message)
		}
	}
	for _, want := range []string{
		"multi.example.test publishes 2 SPF records (reached by include:multi.example.test from example.test); receivers then return permerror, as if it had a broken one.",
		`test publishes no SPF record (not a usable domain name: "test").`,
	} {
		if !slices.Contains(msgs, want) {
			t.Errorf("findings %q lack %q", msgs, want)
		}
	}
}

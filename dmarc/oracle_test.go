package dmarc

import (
	"math/rand/v2"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dmarc"
	"github.com/google/go-cmp/cmp"
)

// oracleView is the part of a record both parsers describe, in go-msgauth's
// terms.
type oracleView struct {
	P, SP, ADKIM, ASPF string
	Pct                int
	FO                 msgauth.FailureOptions
	RF                 []string
	RI                 int
	RUA, RUF           []string
}

func viewOfOracle(r *msgauth.Record) oracleView {
	v := oracleView{P: string(r.Policy), SP: string(r.SubdomainPolicy), ADKIM: string(r.DKIMAlignment),
		ASPF: string(r.SPFAlignment), Pct: 100, FO: r.FailureOptions, RI: 86400,
		RUA: r.ReportURIAggregate, RUF: r.ReportURIFailure, RF: []string{"afrf"}}
	if r.Percent != nil {
		v.Pct = *r.Percent
	}
	if r.FailureOptions == 0 {
		v.FO = msgauth.FailureAll // the default, fo=0
	}
	if r.ReportFormat != nil {
		v.RF = nil
		for _, f := range r.ReportFormat {
			v.RF = append(v.RF, string(f))
		}
	}
	if r.ReportInterval != 0 {
		v.RI = int(r.ReportInterval.Seconds())
	}
	return v
}

func viewOfOurs(r *Record) oracleView {
	v := oracleView{P: string(r.Policy), SP: string(r.SubdomainPolicy), ADKIM: string(r.DKIMAlignment),
		ASPF: string(r.SPFAlignment), Pct: r.Percent, RF: r.ReportFormats, RI: int(r.ReportInterval)}
	for _, o := range r.FailureOptions {
		v.FO |= map[string]msgauth.FailureOptions{"0": msgauth.FailureAll, "1": msgauth.FailureAny, "d": msgauth.FailureDKIM, "s": msgauth.FailureSPF}[o]
	}
	for _, u := range r.AggregateURIs {
		v.RUA = append(v.RUA, u.String())
	}
	for _, u := range r.FailureURIs {
		v.RUF = append(v.RUF, u.String())
	}
	return v
}

// TestOracle compares Parse with github.com/emersion/go-msgauth/dmarc on
// generated records. Where ours accepts a record without problems, the
// oracle must accept it and read the same values. The generator keeps to
// lower-case values and ri>0, where go-msgauth is stricter than RFC 7489's
// case-insensitive ABNF; and the oracle does not check URIs, require v
// first or reject duplicates, so a record it accepts may still fail ours.
func TestOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(7489, 1))
	// good and bad values per tag; a bad one is picked one time in ten.
	good := map[string][]string{
		"p":     {"none", "quarantine", "reject"},
		"sp":    {"none", "quarantine", "reject"},
		"adkim": {"r", "s"},
		"aspf":  {"r", "s"},
		"pct":   {"0", "25", "100", "07"},
		"fo":    {"0", "1", "d:s", "0:1:d:s", "1 : d"},
		"rf":    {"afrf", "afrf:afrf"},
		"ri":    {"1", "3600", "86400"},
		"rua":   {"mailto:a@example.com", "mailto:a@example.com,mailto:b@example.net!10m", "mailto:a@example.com , https://r.example/x!5"},
		"ruf":   {"mailto:f@example.com", "mailto:f@example.com!1g", "mailto:f@example.com?subject=x!0"},
		"np":    {"reject"},
	}
	bad := map[string][]string{
		"p":     {"block", ""},
		"sp":    {"all"},
		"adkim": {"x"},
		"aspf":  {"strict"},
		"pct":   {"101", "-5", "abc"},
		"fo":    {"2"},
		"rf":    {"iodef"},
		"ri":    {"0x10", "-1"},
		"rua":   {"a@example.com", "mailto:nobody"},
		"ruf":   {"ftp://x.example/!k"},
		"np":    {""},
	}
	tags := []string{"p", "sp", "adkim", "aspf", "pct", "fo", "rf", "ri", "rua", "ruf", "np"}
	agreed, compared := 0, 0
	for range 3000 {
		parts := []string{"v=DMARC1"}
		for _, i := range rng.Perm(len(tags))[:rng.IntN(len(tags)+1)] {
			vals := good[tags[i]]
			if rng.IntN(10) == 0 {
				vals = bad[tags[i]]
			}
			parts = append(parts, tags[i]+"="+vals[rng.IntN(len(vals))])
		}
		txt := strings.Join(parts, "; ")
		ours, err := Parse(txt)
		theirs, oerr := msgauth.Parse(txt)
		if err != nil {
			continue
		}
		compared++
		if oerr != nil {
			t.Errorf("%q: ours accepts, go-msgauth says %v", txt, oerr)
			continue
		}
		if d := cmp.Diff(viewOfOracle(theirs), viewOfOurs(ours)); d != "" {
			t.Errorf("%q: parsers disagree (-go-msgauth +ours):\n%s", txt, d)
			continue
		}
		agreed++
	}
	if compared < 500 {
		t.Fatalf("only %d generated records parsed cleanly; the generator is broken", compared)
	}
	t.Logf("%d records compared, %d agreed", compared, agreed)
}

// TestOracleRejects: records go-msgauth rejects must not pass ours cleanly,
// except where RFC 7489's grammar is case-insensitive or allows ri=0.
func TestOracleRejects(t *testing.T) {
	lenient := map[string]string{
		"v=DMARC1; p=Reject":        "ABNF literals are case-insensitive (RFC 5234 §2.3)",
		"V=DMARC1; p=reject":        "tag names are ABNF literals too",
		"v=DMARC1; p=none; ri=0":    "dmarc-ainterval is 1*DIGIT, 0 included",
		"v=DMARC1; p=none; fo=D":    "case-insensitive",
		"v=DMARC1; p=none; rf=AFRF": "case-insensitive",
	}
	for _, txt := range []string{
		"v=DMARC1",
		"v=DMARC1; p=block",
		"v=DMARC1; p=none; pct=101",
		"v=DMARC1; p=none; adkim=x",
		"v=DMARC1; p=none; fo=2",
		"v=DMARC1; p=none; rf=iodef",
		"v=DMARC1; p=none; ri=-5",
		"v=DMARC2; p=none",
		"v=DMARC1; p=none; sp=all",
		"v=DMARC1; p=none; junk",
	} {
		if _, err := msgauth.Parse(txt); err == nil {
			t.Errorf("%q: go-msgauth accepts it; pick another example", txt)
		}
		if _, err := Parse(txt); err == nil {
			t.Errorf("%q: go-msgauth rejects it but ours accepts it without a problem", txt)
		}
	}
	for txt, why := range lenient {
		_, oerr := msgauth.Parse(txt)
		_, err := Parse(txt)
		if oerr == nil || err != nil {
			t.Errorf("%q: documented difference (%s) no longer holds: go-msgauth %v, ours %v", txt, why, oerr, err)
		}
	}
}

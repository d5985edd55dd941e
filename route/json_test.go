package route_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// encodingJSON is what report.WriteJSON wrote for a plan before
// AppendJSON: encoding/json's Encoder with HTML escaping off, newline
// included.
func encodingJSON(t testing.TB, p *route.Plan) []byte {
	t.Helper()
	b, err := jsonenc.AppendReflect(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// checkPlanJSON fails unless AppendJSON writes encoding/json's bytes for p.
func checkPlanJSON(t testing.TB, name string, p *route.Plan) {
	t.Helper()
	prefix := []byte("prefix ") // AppendJSON appends: what is there stays
	got := append(p.AppendJSON(prefix[:len(prefix):len(prefix)]), '\n')
	want := append([]byte("prefix "), encodingJSON(t, p)...)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: AppendJSON writes\n%s\nencoding/json writes\n%s", name, got, want)
	}
}

// TestPlanJSONGolden: the plan of every golden test zone, of the
// benchmarks' zone and of a domain past the bounds.
func TestPlanJSONGolden(t *testing.T) {
	for _, name := range caseNames(t) {
		p, _ := loadCase(t, name).plan(t)
		checkPlanJSON(t, name, p)
		p.ElapsedMS = 0
		checkPlanJSON(t, name+" (elapsed 0)", p)
	}
	var zone strings.Builder
	zone.WriteString("$ORIGIN test.\n@ 3600 SOA ns.test. h.test. 1 2 3 4 300\n")
	for i := range 70 {
		fmt.Fprintf(&zone, "d 60 MX %d mx%d.d.test.\nmx%d.d 3600 A 192.0.2.%d\n", i%5, i, i, i%250+1)
	}
	for i := range 20 {
		fmt.Fprintf(&zone, "mx1.d 3600 AAAA 2001:db8::%x\n", i+1)
	}
	for name, text := range map[string]string{"five exchanges": fiveExchanges, "bounds": zone.String()} {
		z, err := resolve.ParseZones(strings.NewReader(text), name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := (&route.Planner{Resolver: z, Seed: 1, HasSeed: true}).Plan(t.Context(), "d.test")
		if err != nil || len(p.Hosts()) < 5 {
			t.Fatalf("%s: %d hosts, %v", name, len(p.Hosts()), err)
		}
		checkPlanJSON(t, name, p)
	}
}

// awkward are strings encoding/json escapes, or could be thought to.
var awkward = []string{
	"",
	`quote " backslash \ slash / \u0041`,
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \x7f",
	"<script>a && b > c</script>",
	"line\u2028separator\u2029paragraph",
	"invalid \xff\xfe \xc0\x80 \xed\xa0\x80 \xe2\x80 end\xe2",
	"é ñ 日本語 🙂 \ufffd \U0010ffff",
	"mx1.d.test",
}

// TestPlanJSONHandMade: every slice nil and empty, the omitempty members
// set and not, every severity, awkward strings, extreme numbers.
func TestPlanJSONHandMade(t *testing.T) {
	for _, s := range awkward {
		f := finding.Finding{ID: finding.ID(s), Severity: finding.Warning, Subject: s, Message: s, Reference: s, Fix: s}
		p := &route.Plan{
			Schema: math.MinInt, Domain: s, Result: route.Result(s), Error: s, Implicit: true,
			AliasChain: []string{s, s},
			Records:    []route.Record{{Preference: math.MaxUint16, Exchange: s, TTL: math.MaxUint32}},
			Tiers: []route.Tier{{Preference: math.MaxUint16, Hosts: []route.Host{
				{Name: s, CanonicalName: s, Addresses: []string{s}, Problems: []finding.ID{finding.ID(s), ""}},
			}}},
			Order:     []string{s},
			Findings:  []finding.Finding{f, f},
			ElapsedMS: math.MaxInt64,
		}
		checkPlanJSON(t, fmt.Sprintf("%+q", s), p)
	}

	// Every slice nil, then every slice empty, then one element each.
	checkPlanJSON(t, "zero", &route.Plan{})
	checkPlanJSON(t, "empty", &route.Plan{AliasChain: []string{}, Records: []route.Record{},
		Tiers: []route.Tier{}, Order: []string{}, Findings: []finding.Finding{}})
	for _, hosts := range [][]route.Host{nil, {}, {{}}, {{Addresses: []string{}, Problems: []finding.ID{}}}} {
		p := &route.Plan{Tiers: []route.Tier{{Hosts: hosts}, {Preference: 10}}}
		checkPlanJSON(t, fmt.Sprintf("hosts %#v", hosts), p)
	}
	checkPlanJSON(t, "zero elements", &route.Plan{AliasChain: []string{""}, Records: []route.Record{{}},
		Tiers: []route.Tier{{}}, Order: []string{""}, Findings: []finding.Finding{{}}})

	for _, sev := range []finding.Severity{0, finding.Info, finding.Warning, finding.Error, 4, -1, math.MaxInt} {
		p := &route.Plan{Result: route.ResultOK, Findings: []finding.Finding{{ID: finding.MXNull, Severity: sev}}}
		checkPlanJSON(t, "severity "+sev.String(), p)
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		checkPlanJSON(t, fmt.Sprint(n), &route.Plan{Schema: int(n), ElapsedMS: n, Error: "e"})
	}
	for _, c := range []string{"", "c.d.test"} {
		p := &route.Plan{Tiers: []route.Tier{{Hosts: []route.Host{{Name: "a", CanonicalName: c}}}}}
		checkPlanJSON(t, "canonical "+c, p)
	}

	var nilPlan *route.Plan
	if got := string(nilPlan.AppendJSON([]byte("x"))); got != "xnull" {
		t.Errorf("nil plan: %s", got)
	}
}

// typicalPlan is a scan's usual line: three exchanges in two tiers, one
// finding.
func typicalPlan() *route.Plan {
	return &route.Plan{
		Schema: route.SchemaVersion, Domain: "example.test", Result: route.ResultOK,
		AliasChain: []string{},
		Records: []route.Record{
			{Preference: 10, Exchange: "mx1.mail.example.net", TTL: 3600},
			{Preference: 10, Exchange: "mx2.mail.example.net", TTL: 3600},
			{Preference: 20, Exchange: "backup.example.org", TTL: 3600},
		},
		Tiers: []route.Tier{
			{Preference: 10, Hosts: []route.Host{
				{Name: "mx2.mail.example.net", Addresses: []string{"192.0.2.2", "2001:db8::2"}, Problems: []finding.ID{}},
				{Name: "mx1.mail.example.net", Addresses: []string{"192.0.2.1", "2001:db8::1"}, Problems: []finding.ID{}},
			}},
			{Preference: 20, Hosts: []route.Host{
				{Name: "backup.example.org", Addresses: []string{"198.51.100.7"}, Problems: []finding.ID{finding.MXNoIPv6}},
			}},
		},
		Order:     []string{"mx2.mail.example.net", "mx1.mail.example.net", "backup.example.org"},
		Findings:  []finding.Finding{finding.New(finding.MXNoIPv6, "backup.example.org", "The exchange backup.example.org has no IPv6 address.")},
		ElapsedMS: 12,
	}
}

// TestPlanJSONNoAllocs: AppendJSON into a large enough buffer allocates
// nothing.
func TestPlanJSONNoAllocs(t *testing.T) {
	p := typicalPlan()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(20, func() { buf = p.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON: %v allocations, want 0", n)
	}
	checkPlanJSON(t, "typical", p)
}

// The types route.AppendJSON was written for, as jsonenc.Fields describes
// them.
const (
	planFields = `Schema int json:"schema"
Domain string json:"domain"
Result route.Result json:"result"
Error string json:"error,omitempty"
Implicit bool json:"implicit"
AliasChain []string json:"alias_chain"
Records []route.Record json:"records"
RecordsOmitted int json:"records_omitted,omitempty"
Tiers []route.Tier json:"tiers"
Order []string json:"order"
Findings []finding.Finding json:"findings"
ElapsedMS int64 json:"elapsed_ms"
`
	recordFields = `Preference uint16 json:"preference"
Exchange string json:"exchange"
TTL uint32 json:"ttl"
`
	tierFields = `Preference uint16 json:"preference"
Hosts []route.Host json:"hosts"
`
	hostFields = `Name string json:"name"
CanonicalName string json:"canonical_name,omitempty"
Addresses []string json:"addresses"
Problems []finding.ID json:"problems"
`
)

// TestPlanJSONFields fails when Plan, Record, Tier or Host change under
// AppendJSON (a field, a type, a tag, a marshaler): update route/json.go
// and the descriptions above.
func TestPlanJSONFields(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[route.Plan](), planFields},
		{reflect.TypeFor[route.Record](), recordFields},
		{reflect.TypeFor[route.Tier](), tierFields},
		{reflect.TypeFor[route.Host](), hostFields},
	} {
		if got := jsonenc.Fields(tt.typ); got != tt.want {
			t.Errorf("%s is now\n%s\nAppendJSON was written for\n%s", tt.typ, got, tt.want)
		}
	}
}

// FuzzPlanJSON builds plans from fuzzed strings and numbers: AppendJSON
// must write encoding/json's bytes.
func FuzzPlanJSON(f *testing.F) {
	f.Add("d.test", "", "a.test,b.test", "mx.d.test", "", "192.0.2.1", "mx-no-ipv6", "info", 1, uint16(10), uint32(3600), int64(3), uint16(0))
	f.Add("<&>", "\u2028", "\xff", "\"\\", "\x00\x1f\x7f", "é", "🙂", "\xe2\x80", 2, uint16(math.MaxUint16), uint32(math.MaxUint32), int64(-1), uint16(0xffff))
	for _, s := range awkward {
		f.Add(s, s, s, s, s, s, s, s, 0, uint16(0), uint32(0), int64(math.MinInt64), uint16(0x5555))
	}
	f.Fuzz(func(t *testing.T, domain, errText, aliases, exchange, canonical, addrs, id, text string,
		severity int, pref uint16, ttl uint32, elapsed int64, shape uint16) {
		// Each bit of shape makes one slice nil instead of a list.
		list := func(bit uint, s string) []string {
			if shape&(1<<bit) != 0 {
				return nil
			}
			return strings.Split(s, ",") // "" gives one empty element
		}
		ids := func(bit uint, s string) []finding.ID {
			if shape&(1<<bit) != 0 {
				return nil
			}
			if s == "" {
				return []finding.ID{}
			}
			return []finding.ID{finding.ID(s), finding.ID(text)}
		}
		host := route.Host{Name: exchange, CanonicalName: canonical, Addresses: list(0, addrs), Problems: ids(1, id)}
		p := &route.Plan{
			Schema: severity, Domain: domain, Result: route.Result(text), Error: errText, Implicit: shape&(1<<2) != 0,
			AliasChain: list(3, aliases),
			Order:      list(4, exchange),
			ElapsedMS:  elapsed,
		}
		if ttl%3 == 0 {
			p.RecordsOmitted = int(elapsed)
		}
		if shape&(1<<5) == 0 {
			p.Records = []route.Record{{Preference: pref, Exchange: exchange, TTL: ttl}, {Exchange: canonical}}[:int(pref)%3%2+int(ttl)%2]
		}
		if shape&(1<<6) == 0 {
			var hosts []route.Host
			if shape&(1<<7) == 0 {
				hosts = []route.Host{host, {Name: canonical}, host}[:int(shape>>12)%4]
			}
			p.Tiers = []route.Tier{{Preference: pref, Hosts: hosts}, {Preference: ^pref, Hosts: []route.Host{host}}}[:int(shape>>8)%3]
		}
		if shape&(1<<10) == 0 {
			fd := finding.Finding{ID: finding.ID(id), Severity: finding.Severity(severity), Subject: exchange,
				Message: text, Reference: addrs, Fix: errText}
			p.Findings = []finding.Finding{fd, {Severity: finding.Severity(int(pref) % 5)}}[:int(shape>>11)%2+int(ttl)%2]
		}
		checkPlanJSON(t, "fuzzed", p)
	})
}

// BenchmarkPlanJSON encodes a typical plan as report.WriteJSON did
// (encoding/json) and as it does now (AppendJSON).
func BenchmarkPlanJSON(b *testing.B) {
	p := typicalPlan()
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(p); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = append(p.AppendJSON(buf[:0]), '\n')
		}
		b.SetBytes(int64(len(buf)))
	})
}

package check_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/dkim"
	"github.com/mxtrace/mxtrace/dmarc"
	"github.com/mxtrace/mxtrace/dnsbl"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/nameserver"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/rdns"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
	"github.com/mxtrace/mxtrace/tlsrpt"
)

// checkReportJSON fails unless Report.AppendJSON and report.AppendJSON
// write what encoding/json writes for r with HTML escaping off, or fail
// when it fails, leaving the buffer as it was.
func checkReportJSON(t testing.TB, name string, r *check.Report) {
	t.Helper()
	prefix := []byte("prefix ") // AppendJSON appends: what is there stays
	got, err := r.AppendJSON(prefix[:len(prefix):len(prefix)])
	want, wantErr := jsonenc.AppendReflect([]byte("prefix "), r)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("%s: AppendJSON writes (error %v)\n%s\nencoding/json writes (error %v)\n%s", name, err, got, wantErr, want)
	}
	line, err := report.AppendJSON(prefix[:len(prefix):len(prefix)], r)
	if wantErr == nil {
		want = append(want, '\n')
	}
	if (err != nil) != (wantErr != nil) || !bytes.Equal(line, want) {
		t.Fatalf("%s: report.AppendJSON writes (error %v)\n%s\nwant\n%s", name, err, line, want)
	}
}

// goldenDomains are the domains of the golden check reports of
// cmd/mxtrace (the offline run over every example domain).
func goldenDomains(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("../cmd/mxtrace/testdata/check.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var domains []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Domain string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		domains = append(domains, line.Domain)
	}
	if err := sc.Err(); err != nil || len(domains) < 10 {
		t.Fatalf("%d golden domains, %v", len(domains), err)
	}
	return domains
}

// TestReportJSONGolden: the reports of every golden check report in the
// repository (check/testdata/audit.json, with nameservers and blacklists,
// and cmd/mxtrace/testdata/check.json, every example domain offline), as
// they are and with each part missing.
func TestReportJSONGolden(t *testing.T) {
	reps := goldenReports(t)
	a := auditor(resolve.NewCache(exampleZones(t), 0))
	for _, d := range goldenDomains(t) {
		reps = append(reps, a.Audit(t.Context(), dnsname.MustParse(d)))
	}
	for _, r := range reps {
		name := r.Domain
		checkReportJSON(t, name, r)
		for _, variant := range []struct {
			name   string
			change func(*check.Report)
		}{
			{"no plan", func(r *check.Report) { r.Plan = nil }},
			{"no details", func(r *check.Report) { r.Details = nil }},
			{"nil lists", func(r *check.Report) { r.Findings, r.Areas, r.Skipped = nil, nil, nil }},
			{"extreme elapsed", func(r *check.Report) { r.ElapsedMS = math.MinInt64 }},
			{"no facts", func(r *check.Report) { r.Details = &check.Facts{} }},
		} {
			c := *r
			variant.change(&c)
			checkReportJSON(t, name+" "+variant.name, &c)
		}
	}
	checkReportJSON(t, "nil", nil)
}

// TestReportJSONSMTP: the SMTP probes, which AppendJSON leaves to
// encoding/json, and the DANE records matched against them.
func TestReportJSONSMTP(t *testing.T) {
	w := newSMTPWorld(t)
	for _, d := range []string{"weak.smtp.test", "dane.smtp.test", "badane.smtp.test"} {
		r := w.auditor.Audit(t.Context(), dnsname.MustParse(d))
		if len(r.Details.SMTP) == 0 {
			t.Fatalf("%s: no SMTP probe", d)
		}
		checkReportJSON(t, d, r)
	}
	// A certificate date encoding/json cannot write: both fail.
	r := w.auditor.Audit(t.Context(), dnsname.MustParse("dane.smtp.test"))
	if p := r.Details.SMTP[0]; p.TLS == nil || len(p.TLS.Chain) == 0 {
		t.Fatalf("no certificate: %+v", p)
	}
	r.Details.SMTP[0].TLS.Chain[0].NotAfter = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := r.AppendJSON(nil); err == nil {
		t.Error("a year past 9999 encodes")
	}
	checkReportJSON(t, "year 10000", r)
}

// jsonTypes are the types AppendJSON writes by hand, as jsonenc.Fields
// described them when the encoders were written.
var jsonTypes = []struct {
	typ  reflect.Type
	want string
}{
	{reflect.TypeFor[check.Report](), `Plan *route.Plan
Findings []finding.Finding json:"findings"
Areas []check.AreaResult json:"areas"
Skipped []check.Skip json:"skipped"
Details *check.Facts json:"details"
ElapsedMS int64 json:"elapsed_ms"
`},
	{reflect.TypeFor[check.AreaResult](), `Area finding.Area json:"area"
Status check.Status json:"status"
Summary string json:"summary"
Error string json:"error,omitempty"
Findings []finding.Finding json:"findings"
err error
`},
	{reflect.TypeFor[check.Skip](), `Area finding.Area json:"area"
Reason string json:"reason"
`},
	{reflect.TypeFor[check.Facts](), `Domain dnsname.Name json:"-"
Plan *route.Plan json:"-"
PlanErr error json:"-"
Nameservers *nameserver.Result json:"nameservers,omitempty" json:*nameserver.Result
NameserversErr error json:"-"
PTR []probe.HostPTR json:"ptr"
SPF *spf.Analysis json:"spf,omitempty" json:*spf.Analysis
SPFErr error json:"-"
DMARC *dmarc.Result json:"dmarc,omitempty"
DMARCErr error json:"-"
DKIM *dkim.Result json:"dkim,omitempty"
DKIMErr error json:"-"
MTASTS *mtasts.Result json:"mta_sts,omitempty" json:*mtasts.Result
MTASTSErr error json:"-"
TLSRPT *tlsrpt.Result json:"tls_rpt,omitempty"
TLSRPTErr error json:"-"
DANE []*dane.Result json:"dane"
DANEErrs []error json:"-"
DNSBL *dnsbl.Result json:"dnsbl,omitzero" json:*dnsbl.Result
DNSBLErr error json:"-"
SMTP []*probe.Result json:"smtp,omitempty"
ProbedAt time.Time json:"-" json:time.Time text:time.Time json:*time.Time text:*time.Time
`},
	{reflect.TypeFor[nameserver.Result](), `Domain string json:"domain"
Name string json:"name"
AliasChain []string json:"alias_chain"
NXDomain bool json:"nxdomain"
Apex string json:"apex"
Servers []nameserver.Server json:"servers"
ServersOmitted int json:"servers_omitted,omitempty"
DNSSEC nameserver.DNSSEC json:"dnssec"
Notes []string json:"notes"
port uint16
judged bool
findings []finding.Finding
`},
	{reflect.TypeFor[nameserver.Server](), `Name string json:"name"
Addresses []nameserver.Address json:"addresses"
AddressesOmitted int json:"addresses_omitted,omitempty"
Problem string json:"problem,omitempty"
unresolved string
`},
	{reflect.TypeFor[nameserver.Address](), `Address netip.Addr json:"address" text:netip.Addr text:*netip.Addr
MX nameserver.Reply json:"mx"
SOA nameserver.Reply json:"soa"
`},
	{reflect.TypeFor[nameserver.Reply](), `Status nameserver.Status json:"status"
Rcode string json:"rcode,omitempty"
Records []string json:"records,omitempty"
Serial *uint32 json:"serial,omitempty"
Reason string json:"reason,omitempty"
Referral string json:"referral,omitempty"
`},
	{reflect.TypeFor[nameserver.DNSSEC](), `State nameserver.DNSSECState json:"state"
DS bool json:"ds"
DNSKEY bool json:"dnskey"
AD bool json:"ad"
Failing []string json:"failing,omitempty"
Note string json:"note,omitempty"
`},
	{reflect.TypeFor[probe.HostPTR](), `Host string json:"host"
Results []*rdns.Result json:"results"
Errors []string json:"errors,omitempty"
Outside int json:"outside,omitempty"
`},
	{reflect.TypeFor[rdns.Result](), `Address netip.Addr json:"address" text:netip.Addr text:*netip.Addr
Names []string json:"names"
Confirmed string json:"confirmed,omitempty"
`},
	{reflect.TypeFor[spf.Analysis](), `Domain string json:"domain"
Tree *spf.Node json:"tree"
Lookups int json:"lookups"
VoidLookups int json:"void_lookups"
Loop bool json:"loop,omitempty"
Incomplete bool json:"incomplete,omitempty"
ElapsedMS int64 json:"elapsed_ms"
`},
	{reflect.TypeFor[spf.Node](), `Domain string json:"domain"
Via string json:"via,omitempty"
Term string json:"term,omitempty"
Record string json:"record,omitempty"
Terms []string json:"terms,omitempty"
Lookups int json:"lookups"
TotalLookups int json:"total_lookups"
VoidLookups int json:"void_lookups"
TotalVoidLookups int json:"total_void_lookups"
Children []*spf.Node json:"children,omitempty"
Errors []string json:"errors,omitempty"
Parsed *spf.Record json:"-"
inRedirectChain bool
kind spf.nodeProblem
problemErr error
records int
`},
	{reflect.TypeFor[dmarc.Result](), `Domain string json:"domain"
OrgDomain string json:"org_domain"
PolicyDomain string json:"policy_domain,omitempty"
Records []string json:"records"
Record *dmarc.Record json:"record,omitempty"
Problems []string json:"problems,omitempty"
Policy dmarc.Policy json:"policy,omitempty"
Destinations []dmarc.Destination json:"destinations,omitempty"
`},
	{reflect.TypeFor[dmarc.Record](), `Policy dmarc.Policy json:"p"
SubdomainPolicy dmarc.Policy json:"sp,omitempty"
DKIMAlignment dmarc.Alignment json:"adkim"
SPFAlignment dmarc.Alignment json:"aspf"
Percent int json:"pct"
FailureOptions []string json:"fo"
ReportFormats []string json:"rf"
ReportInterval uint32 json:"ri"
AggregateURIs []dmarc.URI json:"rua,omitempty"
FailureURIs []dmarc.URI json:"ruf,omitempty"
Unknown []dmarc.Tag json:"unknown,omitempty"
`},
	{reflect.TypeFor[dmarc.URI](), `URI string json:"uri"
Size string json:"size,omitempty"
`},
	{reflect.TypeFor[dmarc.Tag](), `Name string json:"name"
Value string json:"value"
`},
	{reflect.TypeFor[dmarc.Destination](), `Tag string json:"tag"
URI string json:"uri"
Domain string json:"domain,omitempty"
Query string json:"query,omitempty"
Consent dmarc.Consent json:"consent"
`},
	{reflect.TypeFor[dkim.Result](), `Domain string json:"domain"
Probed []string json:"probed"
NoKeyTree bool json:"no_key_tree,omitempty"
Keys []dkim.Key json:"keys"
Failed []string json:"failed,omitempty"
`},
	{reflect.TypeFor[dkim.Key](), `Selector string json:"selector"
Name string json:"name"
Text string json:"text"
Record *dkim.Record json:"record,omitempty"
Problems []string json:"problems,omitempty"
`},
	{reflect.TypeFor[dkim.Record](), `Version string json:"v,omitempty"
KeyType dkim.KeyType json:"k"
Hashes []string json:"h,omitempty"
Services []string json:"s,omitempty"
Flags []string json:"t,omitempty"
Notes string json:"n,omitempty"
Unknown []dkim.Tag json:"unknown,omitempty"
PublicKey []uint8 json:"p"
Bits int json:"bits"
`},
	{reflect.TypeFor[dkim.Tag](), `Name string json:"name"
Value string json:"value"
`},
	{reflect.TypeFor[mtasts.Result](), `Domain string json:"domain"
TXT []string json:"txt"
Record *mtasts.Record json:"record,omitempty"
TXTErr error json:"-"
PolicyURL string json:"policy_url,omitempty"
Policy *mtasts.Policy json:"policy,omitempty"
FetchErr error json:"-"
PolicyErr error json:"-"
`},
	{reflect.TypeFor[mtasts.Record](), `ID string json:"id"
Extensions []mtasts.Extension json:"extensions,omitempty"
`},
	{reflect.TypeFor[mtasts.Extension](), `Name string json:"name"
Value string json:"value"
`},
	{reflect.TypeFor[mtasts.Policy](), `Mode mtasts.Mode json:"mode"
MX []string json:"mx"
MaxAge int64 json:"max_age"
Extensions []mtasts.Extension json:"extensions,omitempty"
`},
	{reflect.TypeFor[tlsrpt.Result](), `Domain string json:"domain"
Name string json:"name"
Records []string json:"records"
Record *tlsrpt.Record json:"record,omitempty"
Problems []string json:"problems,omitempty"
`},
	{reflect.TypeFor[tlsrpt.Record](), `RUA []string json:"rua"
Extensions []tlsrpt.Extension json:"extensions,omitempty"
`},
	{reflect.TypeFor[tlsrpt.Extension](), `Name string json:"name"
Value string json:"value"
`},
	{reflect.TypeFor[dane.Result](), `Host string json:"host"
Base string json:"base,omitempty"
Name string json:"name"
Records []dane.Record json:"records" text:dane.Record text:*dane.Record
RRs []*dns.TLSA json:"-"
Secure bool json:"secure"
AddressSecure bool json:"address_secure"
`},
	{reflect.TypeFor[dane.Record](), `Usage dane.Usage
Selector dane.Selector
MatchingType dane.MatchingType
Data []uint8
`},
	{reflect.TypeFor[dnsbl.Result](), `Entries []dnsbl.Entry
`},
	{reflect.TypeFor[dnsbl.Entry](), `List string json:"list"
Address netip.Addr json:"address" text:netip.Addr text:*netip.Addr
Status dnsbl.Status json:"status"
Codes []string json:"codes,omitempty"
Reason string json:"reason,omitempty"
`},
}

// TestJSONFields fails when a type Report.AppendJSON writes by hand changes
// (a field, a type, a tag, a marshaler): update the type's json.go and
// the description above. route.Plan and finding.Finding have their own.
// What a MarshalJSON method adds (nameserver, spf, mtasts) is checked by
// the differential tests and FuzzReportJSON.
func TestJSONFields(t *testing.T) {
	for _, tt := range jsonTypes {
		if got := jsonenc.Fields(tt.typ); got != tt.want {
			t.Errorf("%s is now\n%s\nits AppendJSON was written for\n%s", tt.typ, got, tt.want)
		}
	}
}

// filler builds values of any type from fuzz bytes, by reflection, so
// that a field added later is filled (and compared) too. It reads the
// bytes round and round, so that a short input builds a whole report.
type filler struct {
	data   []byte
	next   int // the next byte is data[next%len(data)]
	budget int // values left to build; then slices are nil, pointers nil
}

// awkwardStrings are strings encoding/json escapes, or could be thought to.
var awkwardStrings = []string{
	"", "mx1.example.test", `quote " backslash \ slash /`, "\x00\x01\x1f \x7f \b\f\n\r\t",
	"<script>a && b > c</script>", "line\u2028separator\u2029paragraph", "invalid \xff\xfe \xc0\x80 \xed\xa0\x80 end\xe2",
	"é ñ 日本語 🙂 \ufffd \U0010ffff", "v=spf1 include:<&> -all",
}

func (f *filler) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	c := f.data[f.next%len(f.data)]
	f.next++
	return c
}

// string is one of awkwardStrings, or up to 31 bytes of the input as
// they are.
func (f *filler) string() string {
	c := f.byte()
	if c < 0x80 {
		return awkwardStrings[int(c)%len(awkwardStrings)]
	}
	s := make([]byte, c&0x1f)
	for i := range s {
		s[i] = f.byte()
	}
	return string(s)
}

// int is small, or an extreme.
func (f *filler) int() int64 {
	c := f.byte()
	switch c % 8 {
	case 0:
		return math.MaxInt64
	case 1:
		return math.MinInt64
	case 2:
		return -int64(f.byte())
	}
	return int64(c)
}

func (f *filler) addr() netip.Addr {
	c := f.byte()
	switch c % 5 {
	case 0:
		return netip.Addr{}
	case 1:
		return netip.AddrFrom4([4]byte{192, 0, 2, f.byte()})
	case 2:
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: f.byte()})
	case 3:
		return netip.AddrFrom16([16]byte{0xfe, 0x80, 15: 1}).WithZone(f.string())
	}
	return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: f.byte()})
}

// err is nil, a plain error, or an mtasts.FetchError, wrapped or not.
func (f *filler) err() error {
	switch f.byte() % 4 {
	case 0:
		return nil
	case 1:
		return errors.New(f.string())
	case 2:
		return &mtasts.FetchError{URL: f.string(), Stage: mtasts.Stage(f.string()), Err: errors.New(f.string())}
	}
	return fmt.Errorf("%s: %w", f.string(), &mtasts.FetchError{Stage: mtasts.Stage(f.string())})
}

var (
	errorType = reflect.TypeFor[error]()
	addrType  = reflect.TypeFor[netip.Addr]()
	timeType  = reflect.TypeFor[time.Time]()
)

// fill sets v from the input. It fills every exported field but those
// encoding/json leaves out ("-"), except errors, which MarshalJSON
// methods write as text.
func (f *filler) fill(v reflect.Value, depth int) {
	f.budget--
	switch v.Type() {
	case errorType:
		if err := f.err(); err != nil {
			v.Set(reflect.ValueOf(err))
		}
		return
	case addrType:
		v.Set(reflect.ValueOf(f.addr()))
		return
	case timeType: // years beyond 9999 make encoding/json fail
		v.Set(reflect.ValueOf(time.Unix(f.int()%(1<<40), 0).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(f.string())
	case reflect.Bool:
		v.SetBool(f.byte()&1 != 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := f.int()
		if v.OverflowInt(n) {
			n = int64(int8(n))
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := uint64(f.int())
		if v.OverflowUint(n) {
			n = uint64(uint8(n))
		}
		v.SetUint(n)
	case reflect.Slice:
		c := f.byte()
		if c%4 == 0 || f.budget <= 0 {
			return // nil
		}
		n := int(c/4) % 4
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			f.fill(v.Index(i), depth+1)
		}
	case reflect.Pointer:
		if f.byte()%4 == 0 || f.budget <= 0 || depth > 8 {
			return // nil
		}
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() || sf.Tag.Get("json") == "-" && sf.Type != errorType {
				continue
			}
			f.fill(v.Field(i), depth+1)
		}
	}
}

// FuzzReportJSON builds reports from fuzz bytes (every member, strings
// with control characters, invalid UTF-8, U+2028, <>&, nil and empty
// lists, extreme numbers): Report.AppendJSON must write encoding/json's
// bytes.
func FuzzReportJSON(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1, 5, 9, 0x83, 'a', '<', '>'}, 64))
	f.Add(bytes.Repeat([]byte{0xff, 0xe2, 0x80, 0xa8, 3, 7, 0x21}, 128))
	for i := range 8 {
		seed := make([]byte, 512)
		for j := range seed {
			seed[j] = byte(j*(2*i+1) + i)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl := &filler{data: data, budget: 2000}
		var r check.Report
		fl.fill(reflect.ValueOf(&r).Elem(), 0)
		if r.Details != nil && r.Details.SPF != nil {
			dropNilChildren(r.Details.SPF.Tree)
		}
		checkReportJSON(t, "fuzzed", &r)
	})
}

// dropNilChildren removes the nil children the filler makes: spf.Findings
// (which MarshalJSON calls too) walks every child, and a tree spf.Lookup
// builds has none.
func dropNilChildren(n *spf.Node) {
	if n == nil {
		return
	}
	n.Children = slices.DeleteFunc(n.Children, func(c *spf.Node) bool { return c == nil })
	for _, c := range n.Children {
		dropNilChildren(c)
	}
}

// BenchmarkReportJSON encodes the report of a domain with every detail
// (TestAuditGolden's good.example: nameservers, PTR, SPF, DMARC, DKIM,
// MTA-STS, TLS-RPT, DANE, a blacklist) as report.AppendJSON did
// (encoding/json) and does (Report.AppendJSON).
func BenchmarkReportJSON(b *testing.B) {
	r := goldenReports(b)[0]
	b.Run("encoding-json", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = jsonenc.AppendReflect(buf[:0], r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = r.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

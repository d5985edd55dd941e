package resolve_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/internal/resolvetest"
)

// testZones are the names the resolver tests ask about, shared with the
// transports' tests.
const testZones = resolvetest.Zones

func loadTestZones(t *testing.T) *resolve.Zones {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(testZones), "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestZonesSemantics checks the answers an authoritative server gives
// (RFC 1034 §4.3.2, RFC 2308, RFC 4592) for every kind of question.
func TestZonesSemantics(t *testing.T) {
	z := loadTestZones(t)
	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answer  []string // expected answer records, owner TYPE data, in order
		soa     bool     // a negative answer must carry the SOA
		soaFrom string
	}{
		{"d.test.", dns.TypeMX, dns.RcodeSuccess, []string{"d.test. MX 10 mx.d.test.", "d.test. MX 20 mx2.d.test."}, false, ""},
		{"mx.d.test.", dns.TypeA, dns.RcodeSuccess, []string{"mx.d.test. A 192.0.2.1", "mx.d.test. A 192.0.2.3"}, false, ""},
		{"MX.D.TEST.", dns.TypeAAAA, dns.RcodeSuccess, []string{"mx.d.test. AAAA 2001:db8::1"}, false, ""},
		// NODATA: the name exists without the type.
		{"txt.d.test.", dns.TypeMX, dns.RcodeSuccess, nil, true, "test."},
		// NXDOMAIN.
		{"nope.test.", dns.TypeA, dns.RcodeNameError, nil, true, "test."},
		// An empty non-terminal exists (RFC 4592 §2.2.2): NODATA, not NXDOMAIN.
		{"b.ent.test.", dns.TypeA, dns.RcodeSuccess, nil, true, "test."},
		// CNAME chains are followed inside the loaded zones.
		{"chain.test.", dns.TypeMX, dns.RcodeSuccess, []string{"chain.test. CNAME alias.test.", "alias.test. CNAME d.test.", "d.test. MX 10 mx.d.test.", "d.test. MX 20 mx2.d.test."}, false, ""},
		// Asking for the CNAME itself does not follow it.
		{"alias.test.", dns.TypeCNAME, dns.RcodeSuccess, []string{"alias.test. CNAME d.test."}, false, ""},
		// A chain into the other zone of the file; its negative SOA is that zone's.
		{"into-other.test.", dns.TypeA, dns.RcodeSuccess, []string{"into-other.test. CNAME host.other.test.", "host.other.test. A 192.0.2.77"}, false, ""},
		{"host.other.test.", dns.TypeMX, dns.RcodeSuccess, nil, true, "other.test."},
		{"gone.other.test.", dns.TypeMX, dns.RcodeNameError, nil, true, "other.test."},
		// A chain that leaves the loaded zones stops at the last alias.
		{"out.test.", dns.TypeA, dns.RcodeSuccess, []string{"out.test. CNAME mx.other.example."}, false, ""},
		// A loop stops; Follow reports it.
		{"loop1.test.", dns.TypeA, dns.RcodeSuccess, []string{"loop1.test. CNAME loop2.test.", "loop2.test. CNAME loop1.test."}, false, ""},
		// Wildcards synthesise records with the asked owner (RFC 4592 §3.3.1)...
		{"x.wild.test.", dns.TypeMX, dns.RcodeSuccess, []string{"x.wild.test. MX 5 mx.d.test."}, false, ""},
		// ...only one label deep below the closest encloser...
		{"y.x.wild.test.", dns.TypeMX, dns.RcodeSuccess, []string{"y.x.wild.test. MX 5 mx.d.test."}, false, ""},
		// ...NODATA for other types...
		{"x.wild.test.", dns.TypeA, dns.RcodeSuccess, nil, true, "test."},
		// ...and not for names that exist.
		{"wild.test.", dns.TypeMX, dns.RcodeSuccess, nil, true, "test."},
	}
	for _, tt := range tests {
		t.Run(tt.name+dns.TypeToString[tt.qtype], func(t *testing.T) {
			a, err := z.Lookup(t.Context(), resolve.Q(tt.name, tt.qtype))
			if err != nil {
				t.Fatal(err)
			}
			if a.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[tt.rcode])
			}
			var got []string
			for _, rr := range a.Answer {
				got = append(got, rrText(rr))
			}
			if !slices.Equal(got, tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", got, tt.answer)
			}
			hasSOA := len(a.Authority) == 1 && a.Authority[0].Header().Rrtype == dns.TypeSOA
			if hasSOA != tt.soa || (tt.soa && a.Authority[0].Header().Name != tt.soaFrom) {
				t.Errorf("authority %v, want SOA of %q: %v", a.Authority, tt.soaFrom, tt.soa)
			}
			if !a.Authoritative {
				t.Error("AA bit not set")
			}
		})
	}
}

// rrText is "owner TYPE rdata" without TTL and class.
func rrText(rr dns.RR) string {
	f := strings.Fields(rr.String())
	return strings.Join(append([]string{f[0], f[3]}, f[4:]...), " ")
}

// TestZonesOutside: names outside every zone, and below a delegation, are
// not the zone files' to answer: an error that Fallback passes on.
func TestZonesOutside(t *testing.T) {
	z := loadTestZones(t)
	for _, name := range []string{"example.com.", "host.sub.test.", "sub.test."} {
		_, err := z.Lookup(t.Context(), resolve.Q(name, dns.TypeA))
		if !errors.Is(err, resolve.ErrNotInZone) {
			t.Errorf("%s: err = %v, want ErrNotInZone", name, err)
		}
		if _, ok := errors.AsType[*resolve.Error](err); !ok {
			t.Errorf("%s: err is %T, want *resolve.Error", name, err)
		}
	}
}

// TestZonesTTL: the negative TTL is the lower of the SOA's TTL and MINIMUM
// (RFC 2308 §5); a positive one the records'.
func TestZonesTTL(t *testing.T) {
	z := loadTestZones(t)
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  uint32
	}{
		{"d.test.", dns.TypeMX, 3600},
		{"nope.test.", dns.TypeMX, 300},
		{"gone.other.test.", dns.TypeMX, 60},
	} {
		a, err := z.Lookup(t.Context(), resolve.Q(tt.name, tt.qtype))
		if err != nil {
			t.Fatal(err)
		}
		if a.TTL() != tt.want {
			t.Errorf("%s: TTL %d, want %d", tt.name, a.TTL(), tt.want)
		}
		// An answer built by hand has no TTL worked out in advance: the
		// same value, from the records.
		b := &resolve.Answer{Question: a.Question, Rcode: a.Rcode, Answer: a.Answer, Authority: a.Authority}
		if b.TTL() != tt.want {
			t.Errorf("%s: TTL of the same answer built by hand %d, want %d", tt.name, b.TTL(), tt.want)
		}
	}
}

func TestZonesErrors(t *testing.T) {
	for _, tt := range []struct {
		text, want string
	}{
		{"$ORIGIN test.\nd 60 MX 10 mx.d.test.\n", "no SOA"},
		{"$ORIGIN test.\n@ 60 SOA a. b. 1 2 3 4 5\n@ 60 SOA a. b. 1 2 3 4 5\n", "two SOA"},
		{"$ORIGIN test.\n@ 60 SOA a. b. 1 2 3 4 5\nd.example. 60 A 192.0.2.1\n", "outside every zone"},
		{"$ORIGIN test.\n@ 60 SOA a. b. 1 2 3 4 5\nd 60 MX ten mx.\n", "MX"},
		{"$INCLUDE /etc/passwd\n", "include"},
	} {
		_, err := resolve.ParseZones(strings.NewReader(tt.text), "bad")
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.want)) {
			t.Errorf("%q: err = %v, want one mentioning %q", tt.text, err, tt.want)
		}
	}
}

// TestLoadZones: several files make one set; a zone may span files.
func TestLoadZones(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.zone")
	b := filepath.Join(dir, "b.zone")
	os.WriteFile(a, []byte("$ORIGIN test.\n@ 60 SOA a. b. 1 2 3 4 5\n"), 0o644)
	os.WriteFile(b, []byte("$ORIGIN test.\nd 60 MX 10 mx.d.test.\n"), 0o644)
	z, err := resolve.LoadZones(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := z.Lookup(t.Context(), resolve.Q("d.test.", dns.TypeMX))
	if err != nil || len(ans.Answer) != 1 {
		t.Fatalf("d.test MX = %v, %v; want the record from the second file", ans, err)
	}
	if _, err := resolve.LoadZones(filepath.Join(dir, "missing.zone")); err == nil {
		t.Error("a missing file loaded without error")
	}
}

// TestFallback: the zone files answer their own names, the secondary the rest.
func TestFallback(t *testing.T) {
	z := loadTestZones(t)
	other, err := resolve.ParseZones(strings.NewReader("$ORIGIN example.\n@ 60 SOA a. b. 1 2 3 4 5\nmx.other 60 A 192.0.2.200\n"), "net")
	if err != nil {
		t.Fatal(err)
	}
	f := resolve.Fallback{Primary: z, Secondary: other}
	r, err := resolve.Follow(t.Context(), f, resolve.Q("out.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "mx.other.example." || len(r.Records) != 1 || !slices.Equal(r.Chain, []string{"mx.other.example."}) {
		t.Errorf("out.test A through the fallback = %+v", r)
	}
	// An NXDOMAIN from the files is final: the network is not asked.
	a, err := f.Lookup(t.Context(), resolve.Q("nope.test.", dns.TypeA))
	if err != nil || !a.NXDomain() || a.Server != "zone:test" {
		t.Errorf("nope.test = %+v, %v; want NXDOMAIN from the zone files", a, err)
	}
}

// TestZonesSigned: a zone file with a DNSKEY set at its apex answers with
// AD, standing in for the validating resolver it will have once published;
// an unsigned one, or a chain that crosses one, does not.
func TestZonesSigned(t *testing.T) {
	const text = `
signed.test.   300 SOA ns.signed.test. h.signed.test. 1 7200 900 1209600 300
signed.test.   300 DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
signed.test.   300 MX 10 mx.signed.test.
mx.signed.test. 300 A 192.0.2.1
_25._tcp.mx.signed.test. 300 TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
alias.signed.test. 300 CNAME mx.plain.test.
plain.test.    300 SOA ns.plain.test. h.plain.test. 1 7200 900 1209600 300
plain.test.    300 MX 10 mx.plain.test.
mx.plain.test. 300 A 192.0.2.2
`
	z, err := resolve.ParseZones(strings.NewReader(text), "signed")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		qtype uint16
		ad    bool
	}{
		{"signed.test.", dns.TypeMX, true},
		{"_25._tcp.mx.signed.test.", dns.TypeTLSA, true},
		{"nosuch.signed.test.", dns.TypeA, true}, // authenticated denial
		{"plain.test.", dns.TypeMX, false},
		{"alias.signed.test.", dns.TypeA, false}, // the chain ends in plain.test
	} {
		a, err := z.Lookup(t.Context(), resolve.Q(tt.name, tt.qtype))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if a.AD != tt.ad {
			t.Errorf("%s %s: AD %v, want %v", tt.name, dns.TypeToString[tt.qtype], a.AD, tt.ad)
		}
	}
}

// TestZonesSpellings: a name with octets that need escapes is found
// whichever way it is spelled, in the zone file (escaped as "\032" or
// "\ ") and in the question (raw, as an SPF macro expansion hands it over,
// or escaped either way), directly, through Follow's chain and through a
// cache.
func TestZonesSpellings(t *testing.T) {
	const text = `
$ORIGIN example.com.
@                                    60 SOA ns h 1 2 3 4 5
macro%percent\032\032space%20url-space 60 A 1.2.3.4
c\ d                                 60 TXT "spaced"
at\@sign                             60 A 192.0.2.1
semi\059colon                        60 A 192.0.2.2
back\\slash                          60 A 192.0.2.3
\195\169t\195\169                    60 A 192.0.2.4
Dot\.Inside                          60 A 192.0.2.5
alias                                60 CNAME c\032d
alias2                               60 CNAME C\ D.example.com.
*.w\ ild                             60 TXT "wild"
`
	z, err := resolve.ParseZones(strings.NewReader(text), "spell")
	if err != nil {
		t.Fatal(err)
	}
	c := resolve.NewCache(z, 0)
	for _, tt := range []struct {
		spellings []string
		qtype     uint16
		want      string
	}{
		{[]string{"macro%percent  space%20url-space.example.com.", `macro%percent\032\032space%20url-space.example.com.`, `MACRO%percent\ \ space%20url-space.example.com.`}, dns.TypeA, "1.2.3.4"},
		{[]string{"c d.example.com.", `c\032d.example.com.`, `C\ D.example.com.`}, dns.TypeTXT, `"spaced"`},
		{[]string{"alias.example.com.", "alias2.example.com."}, dns.TypeTXT, `"spaced"`},
		{[]string{"at@sign.example.com.", `at\064sign.example.com.`}, dns.TypeA, "192.0.2.1"},
		{[]string{"semi;colon.example.com.", `semi\;colon.example.com.`}, dns.TypeA, "192.0.2.2"},
		{[]string{`back\\slash.example.com.`, `back\092slash.example.com.`}, dns.TypeA, "192.0.2.3"},
		{[]string{"été.example.com.", `\195\169t\195\169.example.com.`}, dns.TypeA, "192.0.2.4"},
		{[]string{`dot\.inside.example.com.`, `dot\046inside.example.com.`}, dns.TypeA, "192.0.2.5"},
		{[]string{"x.w ild.example.com.", `x.w\032ild.example.com.`}, dns.TypeTXT, `"wild"`},
	} {
		for _, name := range tt.spellings {
			for _, r := range []resolve.Resolver{z, c} {
				res, err := resolve.Follow(t.Context(), r, resolve.Q(name, tt.qtype))
				if err != nil {
					t.Errorf("%q: %v", name, err)
					continue
				}
				if len(res.Records) != 1 || !strings.HasSuffix(res.Records[0].String(), "\t"+tt.want) {
					t.Errorf("%q %s: %v (NXDOMAIN %v), want %s", name, dns.TypeToString[tt.qtype], res.Records, res.NXDomain, tt.want)
				}
			}
		}
	}
	// One octet apart is another name.
	if a, err := z.Lookup(t.Context(), resolve.Q(`c\033d.example.com.`, dns.TypeTXT)); err != nil || !a.NXDomain() {
		t.Errorf(`c\033d: %v, %v; want NXDOMAIN`, a, err)
	}
}

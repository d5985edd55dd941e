package dmarc

import (
	"errors"
	"github.com/mxtrace/mxtrace/resolve"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// rec builds the expected record: the defaults plus changes.
func rec(change func(*Record)) *Record {
	r := &Record{
		DKIMAlignment: Relaxed, SPFAlignment: Relaxed, Percent: 100,
		FailureOptions: []string{"0"}, ReportFormats: []string{"afrf"}, ReportInterval: 86400,
	}
	change(r)
	return r
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Record // nil: discarded
		// problems: substrings expected in the problems, in order; nil
		// means the record must parse without error.
		problems []string
	}{
		// RFC 7489 Appendix B.2.1.
		{"B.2.1 monitoring", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
			rec(func(r *Record) {
				r.Policy = None
				r.AggregateURIs = []URI{{URI: "mailto:dmarc-feedback@example.com"}}
			}), nil},
		// RFC 7489 Appendix B.2.2.
		{"B.2.2 failure reports", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
			rec(func(r *Record) {
				r.Policy = None
				r.AggregateURIs = []URI{{URI: "mailto:dmarc-feedback@example.com"}}
				r.FailureURIs = []URI{{URI: "mailto:auth-reports@thirdparty.example.net"}}
			}), nil},
		// RFC 7489 Appendix B.2.3 (the size limit of §6.2).
		{"B.2.3 quarantine sample", "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
			rec(func(r *Record) {
				r.Policy, r.Percent = Quarantine, 25
				r.AggregateURIs = []URI{{URI: "mailto:dmarc-feedback@example.com"}, {URI: "mailto:tld-test@thirdparty.example.net", Size: "10m"}}
			}), nil},
		{"every tag, any order, odd case and spacing", "V = DMARC1 ;P=Reject; sp = quarantine;ADKIM=s; aspf=S; pct=007; fo = 1 : d:S; rf=AFRF; ri=3600; ruf=https://r.example/x!1G , mailto:f@example.com;",
			rec(func(r *Record) {
				r.Policy, r.SubdomainPolicy, r.DKIMAlignment, r.SPFAlignment = Reject, Quarantine, Strict, Strict
				r.Percent, r.FailureOptions, r.ReportInterval = 7, []string{"1", "d", "s"}, 3600
				r.FailureURIs = []URI{{URI: "https://r.example/x", Size: "1g"}, {URI: "mailto:f@example.com"}}
			}), nil},
		{"unknown tags kept (DMARCbis np)", "v=DMARC1; p=reject; np=reject; psd=n",
			rec(func(r *Record) {
				r.Policy = Reject
				r.Unknown = []Tag{{"np", "reject"}, {"psd", "n"}}
			}), nil},
		{"empty segments skipped", "v=DMARC1;; p=reject; ;",
			rec(func(r *Record) { r.Policy = Reject }), nil},
		{"percent-encoded comma in a mailto", "v=DMARC1; p=reject; rua=mailto:a%2Cb@example.com",
			rec(func(r *Record) { r.Policy = Reject; r.AggregateURIs = []URI{{URI: "mailto:a%2Cb@example.com"}} }), nil},

		// Discarded records.
		{"v not first", "p=reject; v=DMARC1", nil, []string{"must start with v=DMARC1"}},
		{"leading space", " v=DMARC1; p=reject", nil, []string{"must start with v=DMARC1"}},
		{"wrong version", "v=DMARC2; p=reject", nil, []string{"exactly DMARC1"}},
		{"version lower case", "v=dmarc1; p=reject", nil, []string{"exactly DMARC1"}},
		{"missing semicolon", "v=DMARC1 p=reject", nil, []string{"a semicolon must follow"}},
		{"no p and no rua", "v=DMARC1", nil, []string{"p tag (policy) is missing", "discard"}},
		{"bad p and no rua", "v=DMARC1; p=block", nil, []string{"p=block: the policy must be", "discard"}},
		{"bad sp and no rua", "v=DMARC1; p=reject; sp=yes", nil, []string{"sp=yes", "discard"}},

		// RFC 7489 §6.6.3 step 6: no valid p, but a valid rua: p=none.
		{"no p but rua", "v=DMARC1; rua=mailto:d@example.com",
			rec(func(r *Record) { r.Policy = None; r.AggregateURIs = []URI{{URI: "mailto:d@example.com"}} }),
			[]string{"p tag (policy) is missing", "as p=none"}},
		{"bad sp but rua", "v=DMARC1; p=reject; sp=block; rua=mailto:d@example.com",
			rec(func(r *Record) { r.Policy = None; r.AggregateURIs = []URI{{URI: "mailto:d@example.com"}} }),
			[]string{"sp=block", "as p=none"}},

		// RFC 7489 §6.3: other errors fall back to defaults.
		{"pct out of range", "v=DMARC1; p=reject; pct=150", rec(func(r *Record) { r.Policy = Reject }), []string{"pct=150: must be a whole number from 0 to 100"}},
		{"pct negative", "v=DMARC1; p=reject; pct=-1", rec(func(r *Record) { r.Policy = Reject }), []string{"pct=-1"}},
		{"pct four digits", "v=DMARC1; p=reject; pct=0100", rec(func(r *Record) { r.Policy = Reject }), []string{"pct=0100"}},
		{"bad alignment", "v=DMARC1; p=reject; adkim=strict", rec(func(r *Record) { r.Policy = Reject }), []string{"adkim=strict: the alignment mode must be r"}},
		{"bad fo", "v=DMARC1; p=reject; fo=0:x", rec(func(r *Record) { r.Policy = Reject }), []string{"fo=0:x"}},
		{"bad rf", "v=DMARC1; p=reject; rf=iodef", rec(func(r *Record) { r.Policy = Reject }), []string{"rf=iodef: the only report format is afrf"}},
		{"ri too big", "v=DMARC1; p=reject; ri=4294967296", rec(func(r *Record) { r.Policy = Reject }), []string{"ri=4294967296"}},
		{"rua without scheme", "v=DMARC1; p=reject; rua=d@example.com", rec(func(r *Record) { r.Policy = Reject }), []string{"write mailto:d@example.com"}},
		{"one bad URI of two", "v=DMARC1; p=reject; rua=mailto:a@example.com, mailto:nobody",
			rec(func(r *Record) { r.Policy = Reject; r.AggregateURIs = []URI{{URI: "mailto:a@example.com"}} }), []string{"has no mailbox"}},
		{"bad size", "v=DMARC1; p=reject; rua=mailto:a@example.com!10x", rec(func(r *Record) { r.Policy = Reject }), []string{"size limit"}},
		{"size overflows uint64", "v=DMARC1; p=reject; rua=mailto:a@example.com!18446744073709551616", rec(func(r *Record) { r.Policy = Reject }), []string{"size limit"}},
		{"space in URI", "v=DMARC1; p=reject; rua=mailto:a b@example.com", rec(func(r *Record) { r.Policy = Reject }), []string{"must be percent-encoded"}},
		{"bad mailto domain", "v=DMARC1; p=reject; rua=mailto:a@exa_mple..com", rec(func(r *Record) { r.Policy = Reject }), []string{"invalid domain name"}},
		{"duplicate tag", "v=DMARC1; p=reject; p=none", rec(func(r *Record) { r.Policy = Reject }), []string{"p appears more than once"}},
		{"no equals sign", "v=DMARC1; p=reject; rua", rec(func(r *Record) { r.Policy = Reject }), []string{`"rua" is not a tag=value pair`}},
		{"bad tag name", "v=DMARC1; p=reject; r-u-a=x", rec(func(r *Record) { r.Policy = Reject }), []string{"not a valid tag name"}},
		{"empty value", "v=DMARC1; p=reject; rua=", rec(func(r *Record) { r.Policy = Reject }), []string{"rua has an empty value"}},
		{"non-ASCII tag name that lower-cases to ASCII", "v=DMARC1; p=reject; \u212a=1", rec(func(r *Record) { r.Policy = Reject }), []string{"not a valid tag name"}},
		{"control character", "v=DMARC1; p=reject; x=a\x01b", rec(func(r *Record) { r.Policy = Reject }), []string{"not printable US-ASCII"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Parse(%q) record (-want +got):\n%s", tt.in, d)
			}
			if tt.problems == nil {
				if err != nil {
					t.Errorf("Parse(%q) error %v, want none", tt.in, err)
				}
				return
			}
			se, ok := errors.AsType[*SyntaxError](err)
			if !ok || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v, want a *SyntaxError", tt.in, err)
			}
			all := strings.Join(se.Problems, " | ")
			rest := all
			for _, p := range tt.problems {
				i := strings.Index(rest, p)
				if i < 0 {
					t.Errorf("Parse(%q) problems %q lack %q (in order)", tt.in, all, p)
					break
				}
				rest = rest[i+len(p):]
			}
		})
	}
}

func TestIsDMARC(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"v=DMARC1; p=none", true},
		{"v=DMARC1", true},
		{"V = DMARC1;p=none", true},
		{"v=DMARC1 p=none", true}, // a candidate that Parse rejects
		{"v=spf1 -all", false},
		{"p=none; v=DMARC1", false},
		{" v=DMARC1; p=none", false},
		{"v=dmarc1; p=none", false},
		{"google-site-verification=abc", false},
		{"", false},
	} {
		if got := IsDMARC(tt.in); got != tt.want {
			t.Errorf("IsDMARC(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, in := range []string{
		"v=DMARC1; p=reject",
		"v=DMARC1; p=none; sp=reject; adkim=s; aspf=s; pct=0; fo=1:d; ri=60; rua=mailto:a@example.com!10m,https://r.example/; ruf=mailto:f@example.com; np=reject",
	} {
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != in {
			t.Errorf("String() = %q, want %q", got, in)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	r := rec(func(r *Record) { r.Policy = Reject })
	if r.PolicyFor(true) != Reject || r.PolicyFor(false) != Reject {
		t.Errorf("without sp, subdomains must get p")
	}
	r.SubdomainPolicy = None
	if r.PolicyFor(true) != None || r.PolicyFor(false) != Reject {
		t.Errorf("with sp=none: got %s for subdomains, %s for the domain", r.PolicyFor(true), r.PolicyFor(false))
	}
}

func TestMaxBytes(t *testing.T) {
	for _, tt := range []struct {
		size string
		want uint64
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"512", 512, true},
		{"10k", 10 << 10, true},
		{"10m", 10 << 20, true},
		{"2g", 2 << 30, true},
		{"1t", 1 << 40, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551615t", 1<<64 - 1, true}, // saturates
	} {
		got, ok := URI{URI: "mailto:a@example.com", Size: tt.size}.MaxBytes()
		if got != tt.want || ok != tt.ok {
			t.Errorf("MaxBytes(!%s) = %d, %v; want %d, %v", tt.size, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMailtoDomain(t *testing.T) {
	for _, tt := range []struct {
		uri, want string
		ok        bool
	}{
		{"mailto:d@Reports.Example.NET", "reports.example.net", true},
		{"MAILTO:d@example.com?subject=dmarc", "example.com", true},
		{"mailto:%22a@b%22@example.org", "example.org", true},
		{"mailto:d@bücher.example", "xn--bcher-kva.example", true},
		{"https://example.com/r", "", false},
		{"mailto:nobody", "", false},
	} {
		got, ok := URI{URI: tt.uri}.MailtoDomain()
		if ok != tt.ok || got.String() != tt.want {
			t.Errorf("MailtoDomain(%s) = %q, %v; want %q, %v", tt.uri, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTXTData(t *testing.T) {
	for _, tt := range []struct {
		zone, want string
	}{
		{`x TXT "v=DMARC1; " "p=none"`, "v=DMARC1; p=none"},
		{`x TXT "a\"b\\c\059d"`, `a"b\c;d`},
	} {
		rr, err := dns.NewRR(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := resolve.TXTData(rr.(*dns.TXT)); got != tt.want {
			t.Errorf("resolve.TXTData(%s) = %q, want %q", tt.zone, got, tt.want)
		}
	}
}

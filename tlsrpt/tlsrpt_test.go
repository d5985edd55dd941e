package tlsrpt

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     *Record
		problems []string // substrings, in order; nil: must parse
	}{
		// RFC 8460 §3.1.1 and §3.1.2.
		{"RFC 8460 §3.1.1", "v=TLSRPTv1;rua=mailto:reports@example.com",
			&Record{RUA: []string{"mailto:reports@example.com"}}, nil},
		{"RFC 8460 §3.1.2", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
			&Record{RUA: []string{"https://reporting.example.com/v1/tlsrpt"}}, nil},
		{"two URIs, extension, spacing, trailing delimiter", "v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example/x?d=1;  ext_1.a-b=x:y ;",
			&Record{RUA: []string{"mailto:a@example.com", "https://r.example/x?d=1"}, Extensions: []Extension{{"ext_1.a-b", "x:y"}}}, nil},
		{"upper-case field is an extension", "v=TLSRPTv1; rua=mailto:a@example.com; RUA=x",
			&Record{RUA: []string{"mailto:a@example.com"}, Extensions: []Extension{{"RUA", "x"}}}, nil},

		{"not first", "rua=mailto:a@example.com; v=TLSRPTv1", nil, []string{"must start with v=TLSRPTv1"}},
		{"leading space", " v=TLSRPTv1; rua=mailto:a@example.com", nil, []string{"must start with v=TLSRPTv1"}},
		{"wrong version", "v=TLSRPTv2; rua=mailto:a@example.com", nil, []string{"must start with v=TLSRPTv1"}},
		{"version case", "v=tlsrptv1; rua=mailto:a@example.com", nil, []string{"must start with v=TLSRPTv1"}},
		{"missing semicolon", "v=TLSRPTv1 rua=mailto:a@example.com", nil, []string{"a semicolon must follow"}},
		{"version only", "v=TLSRPTv1", nil, []string{"rua field (where to send reports) is missing"}},
		{"missing rua", "v=TLSRPTv1; ruf=mailto:a@example.com", nil, []string{"rua field"}},
		{"no scheme", "v=TLSRPTv1; rua=reports@example.com", nil, []string{"write mailto:reports@example.com"}},
		{"unsupported scheme", "v=TLSRPTv1; rua=ftp://example.com/r", nil, []string{"only to mailto: or https:"}},
		{"http is not https", "v=TLSRPTv1; rua=http://example.com/r", nil, []string{"only to mailto: or https:"}},
		{"https without host", "v=TLSRPTv1; rua=https:/r", nil, []string{"has no host"}},
		{"mailbox without domain", "v=TLSRPTv1; rua=mailto:reports", nil, []string{"has no mailbox"}},
		{"one bad URI of two", "v=TLSRPTv1; rua=mailto:a@example.com,mailto:b@", nil, []string{"mailto:b@"}},
		{"empty URI", "v=TLSRPTv1; rua=mailto:a@example.com,", nil, []string{"empty URI"}},
		{"rua twice", "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", nil, []string{"more than once"}},
		{"spaces around =", "v=TLSRPTv1; rua = mailto:a@example.com", nil, []string{"no spaces are allowed", "rua field"}},
		{"DMARC-style size", "v=TLSRPTv1; rua=mailto:a@example.com!10m", nil, []string{`character '!'`}},
		{"bad extension name", "v=TLSRPTv1; rua=mailto:a@example.com; _x=1", nil, []string{`"_x" is not a valid field name`}},
		{"bad extension value", "v=TLSRPTv1; rua=mailto:a@example.com; x=a=b", nil, []string{"extension value"}},
		{"field without value", "v=TLSRPTv1; rua=mailto:a@example.com; junk", nil, []string{`"junk" is not a name=value field`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}
			if tt.problems == nil {
				if err != nil {
					t.Errorf("error %v, want none", err)
				}
				return
			}
			se, ok := errors.AsType[*SyntaxError](err)
			if !ok || !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v, want a *SyntaxError", err)
			}
			all := strings.Join(se.Problems, " | ")
			rest := all
			for _, p := range tt.problems {
				i := strings.Index(rest, p)
				if i < 0 {
					t.Errorf("problems %q lack %q (in order)", all, p)
					break
				}
				rest = rest[i+len(p):]
			}
		})
	}
}

func TestString(t *testing.T) {
	r, err := Parse("v=TLSRPTv1 ;rua=mailto:a@example.com , https://r.example/x;x=1;")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x; x=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestProblemsEscaped: a record whose rua carries terminal escape
// sequences gets problems (the error, the Result's Problems and so the
// tlsrpt-invalid message) with them escaped, never raw.
func TestProblemsEscaped(t *testing.T) {
	_, err := Parse("v=TLSRPTv1; rua=mailto:\x1b[31m@x.example,\x1b]0;title\x07")
	if err == nil {
		t.Fatal("parsed")
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Errorf("problems keep control characters: %q", err)
	}
}

package mtasts

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		want    *Policy
		wantErr string // a fragment of the error; "" for success
	}{
		// RFC 8461 §3.2 example.
		{name: "rfc example", in: "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
			want: &Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, MaxAge: 604800}},
		{name: "crlf, no final newline", in: "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400",
			want: &Policy{Mode: ModeTesting, MX: []string{"mx.example.com"}, MaxAge: 86400}},
		{name: "any order, spacing, blank lines", in: "max_age:0  \n\nmx:\tmx.example.com\nmode:   none\nversion: STSv1\n\n",
			want: &Policy{Mode: ModeNone, MX: []string{"mx.example.com"}, MaxAge: 0}},
		{name: "mode none without mx", in: "version: STSv1\nmode: none\nmax_age: 86400\n",
			want: &Policy{Mode: ModeNone, MaxAge: 86400}},
		{name: "extensions kept", in: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 31557600\nx-note: hello world: ünïcode\n",
			want: &Policy{Mode: ModeEnforce, MX: []string{"mx.example.com"}, MaxAge: 31557600, Extensions: []Extension{{"x-note", "hello world: ünïcode"}}}},
		{name: "no version", in: "mode: enforce\nmx: mx.example.com\nmax_age: 1\n", wantErr: "no version"},
		{name: "no mode", in: "version: STSv1\nmx: mx.example.com\nmax_age: 1\n", wantErr: "no mode"},
		{name: "no max_age", in: "version: STSv1\nmode: enforce\nmx: mx.example.com\n", wantErr: "no max_age"},
		{name: "no mx", in: "version: STSv1\nmode: enforce\nmax_age: 1\n", wantErr: "no mx"},
		{name: "bad version", in: "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n", wantErr: "line 1: version"},
		{name: "version is case-sensitive", in: "version: stsv1\n", wantErr: "line 1: version"},
		{name: "bad mode", in: "version: STSv1\nmode: report\n", wantErr: "line 2: mode is \"report\""},
		{name: "two modes", in: "version: STSv1\nmode: enforce\nmode: testing\n", wantErr: "line 3: second mode"},
		{name: "two versions", in: "version: STSv1\nversion: STSv1\n", wantErr: "line 2: second version"},
		{name: "two max_age", in: "max_age: 1\nmax_age: 2\n", wantErr: "line 2: second max_age"},
		{name: "max_age too big", in: "max_age: 31557601\n", wantErr: "above the limit"},
		{name: "max_age 11 digits", in: "max_age: 00000000001\n", wantErr: "more than 10 digits"},
		{name: "max_age negative", in: "max_age: -1\n", wantErr: "not a number"},
		{name: "max_age with unit", in: "max_age: 1d\n", wantErr: "not a number"},
		{name: "no colon", in: "version STSv1\n", wantErr: "line 1: no ':'"},
		{name: "empty value", in: "version: STSv1\nmode:\n", wantErr: "line 2: \"mode\" has no value"},
		{name: "space before colon", in: "mode : enforce\n", wantErr: "field name"},
		{name: "leading space", in: " mode: enforce\n", wantErr: "field name"},
		{name: "mx trailing dot", in: "mx: mx.example.com.\n", wantErr: "empty label"},
		{name: "mx inner wildcard", in: "mx: mx.*.example.com\n", wantErr: "wildcard"},
		{name: "mx bare wildcard", in: "mx: *\n", wantErr: "wildcard"},
		{name: "mx underscore", in: "mx: mx_1.example.com\n", wantErr: "only letters, digits and hyphens"},
		{name: "mx hyphen edge", in: "mx: -mx.example.com\n", wantErr: "hyphen"},
		{name: "mx with port", in: "mx: mx.example.com:25\n", wantErr: "only letters"},
		{name: "control character", in: "version: STSv1\nx-note: a\x01b\n", wantErr: "control characters"},
		{name: "bare CR inside", in: "version: STSv1\rmode: enforce\n", wantErr: "line 1: version"},
		{name: "too large", in: strings.Repeat("x", MaxPolicySize+1), wantErr: "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrPolicySyntax) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePolicy = %v, %v; want an error containing %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if p.Mode != tt.want.Mode || p.MaxAge != tt.want.MaxAge || !slices.Equal(p.MX, tt.want.MX) || !slices.Equal(p.Extensions, tt.want.Extensions) {
				t.Errorf("ParsePolicy = %+v, want %+v", p, tt.want)
			}
			again, err := ParsePolicy(p.String())
			if err != nil || again.String() != p.String() {
				t.Errorf("round trip: %q → %v, %v", p.String(), again, err)
			}
		})
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tt := range []struct {
		pattern, host string
		want          bool
	}{
		{"mail.example.com", "mail.example.com", true},
		{"mail.example.com", "MAIL.Example.COM.", true},
		{"Mail.Example.com", "mail.example.com", true},
		{"mail.example.com", "mail2.example.com", false},
		{"mail.example.com", "example.com", false},
		// RFC 8461 §4.1: the wildcard covers exactly one leftmost label.
		{"*.example.com", "mx1.example.com", true},
		{"*.example.com", "mx1.example.com.", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "mx1.example.net", false},
		{"*.example.com", "mx1.badexample.com", false},
	} {
		if got := MatchPattern(tt.pattern, tt.host); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

func TestNotCovered(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mx1.example.com", "*.backup.example.net"}}
	got := p.NotCovered([]string{"mx1.example.com", "mx2.example.com", "b1.backup.example.net", "backup.example.net"})
	want := []string{"mx2.example.com", "backup.example.net"}
	if !slices.Equal(got, want) {
		t.Errorf("NotCovered = %v, want %v", got, want)
	}
	if got := p.NotCovered([]string{"mx1.example.com"}); got != nil {
		t.Errorf("NotCovered of a covered host = %v, want none", got)
	}
}

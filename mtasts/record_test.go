package mtasts

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in      string
		wantID  string
		wantExt []Extension
		wantErr string // a fragment of the error; "" for success
	}{
		// RFC 8461 §3.1 example.
		{in: "v=STSv1; id=20160831085700Z;", wantID: "20160831085700Z"},
		{in: "v=STSv1; id=20160831085700Z", wantID: "20160831085700Z"},
		{in: "v=STSv1;id=a", wantID: "a"},
		{in: "v=STSv1 ;\tid=abc ; ", wantID: "abc"},
		{in: "v=STSv1; id=" + strings.Repeat("9", 32), wantID: strings.Repeat("9", 32)},
		{in: "v=STSv1; ext.a-1=x:y; id=1", wantID: "1", wantExt: []Extension{{"ext.a-1", "x:y"}}},
		{in: "v=STSv1; id=2026-11-22", wantErr: "only letters and digits"},
		{in: "v=STSv1; id=" + strings.Repeat("9", 33), wantErr: "longer than 32"},
		{in: "v=STSv1; id=", wantErr: "id= is empty"},
		{in: "v=STSv1; id=a; id=b", wantErr: "more than one id"},
		{in: "v=STSv1; ID=abc", wantErr: "no id= field"},
		{in: "v=STSv1;", wantErr: "empty field"},
		{in: "v=STSv1", wantErr: "no fields"},
		{in: "v=STSv1; id=a;; x=y", wantErr: "empty field"},
		{in: "v=STSv1 id=a", wantErr: "unexpected text"},
		{in: "v=STSv1; id= a", wantErr: "only letters and digits"},
		{in: "v=STSv1; id=a; foo", wantErr: "has no '='"},
		{in: "v=STSv1; id=a; _x=y", wantErr: "field name"},
		{in: "v=STSv1; id=a; x=", wantErr: "invalid value"},
		{in: "v=STSv1; id=a; x=a=b", wantErr: "invalid value"},
		{in: "v=STSv2; id=a", wantErr: "does not start"},
		{in: "v=spf1 -all", wantErr: "does not start"},
	} {
		r, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrRecordSyntax) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tt.in, r, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if r.ID != tt.wantID || !slices.Equal(r.Extensions, tt.wantExt) {
			t.Errorf("Parse(%q) = %+v, want id %q extensions %v", tt.in, r, tt.wantID, tt.wantExt)
		}
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Errorf("round trip of %q: %q → %v, %v", tt.in, r.String(), again, err)
		}
	}
}

func TestIsRecord(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"v=STSv1; id=1", true},
		{"v=STSv1", true},
		{"v=STSv1 ;id=1", true},
		{"v=STSv10; id=1", false},
		{"v=stsv1; id=1", false}, // %s: case-sensitive
		{"v=spf1 -all", false},
		{"", false},
	} {
		if got := IsRecord(tt.in); got != tt.want {
			t.Errorf("IsRecord(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

package dane

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in      string
		want    string // String() of the result
		wantErr string
	}{
		{in: "3 1 1 " + digest, want: "3 1 1 " + digest},
		{in: " 3  1 1 " + strings.ToUpper(digest[:20]) + " " + digest[20:] + "\n", want: "3 1 1 " + digest},
		{in: "255 255 255 00", want: "255 255 255 00"},
		{in: "3 1 1", wantErr: "got 3 fields"},
		{in: "3 1 256 00", wantErr: "matching type \"256\""},
		{in: "-1 1 1 00", wantErr: "usage \"-1\""},
		{in: "3 x 1 00", wantErr: "selector \"x\""},
		{in: "3 1 1 abc", wantErr: "not hex"},
		{in: "3 1 1 zz", wantErr: "not hex"},
	} {
		r, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tt.in, r, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tt.in, r, err, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	leaf := issue(t, "mx.example.test", nil, certOpts{names: []string{"mx.example.test"}})
	h := func(b []byte) string { return hex.EncodeToString(b) }
	for _, tt := range []struct {
		in      string
		wantErr error
	}{
		{"3 1 1 " + strings.Repeat("00", 32), nil},
		{"2 0 1 " + strings.Repeat("00", 32), nil},
		{"3 1 2 " + strings.Repeat("00", 64), nil},
		{"3 0 0 " + h(leaf.cert.Raw), nil},
		{"3 1 0 " + h(leaf.cert.RawSubjectPublicKeyInfo), nil},
		// RFC 7672 §3.1.3.
		{"0 0 1 " + strings.Repeat("00", 32), ErrPKIXUsage},
		{"1 1 1 " + strings.Repeat("00", 32), ErrPKIXUsage},
		{"4 1 1 " + strings.Repeat("00", 32), ErrUsage},
		{"3 2 1 " + strings.Repeat("00", 32), ErrSelector},
		{"3 1 3 " + strings.Repeat("00", 32), ErrMatchingType},
		{"3 1 1 " + strings.Repeat("00", 31), ErrDigestLength},
		{"3 1 1 " + strings.Repeat("00", 64), ErrDigestLength},
		{"3 1 2 " + strings.Repeat("00", 32), ErrDigestLength},
		{"3 0 0 " + h(leaf.cert.RawSubjectPublicKeyInfo), ErrAssociationData},
		{"3 1 0 " + h(leaf.cert.Raw), ErrAssociationData},
		{"3 1 0 00", ErrAssociationData},
	} {
		r, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		err = r.Check()
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("Check(%.30s…) = %v, want %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestRecordJSON(t *testing.T) {
	in := []Record{{Usage: DANEEE, Selector: SelectorSPKI, MatchingType: MatchSHA256, Data: make([]byte, 32)}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["3 1 1 ` + strings.Repeat("00", 32) + `"]`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var out []Record
	if err := json.Unmarshal(b, &out); err != nil || len(out) != 1 || out[0].String() != in[0].String() {
		t.Errorf("Unmarshal = %v, %v", out, err)
	}
}

func TestRRRoundTrip(t *testing.T) {
	r, err := Parse("3 1 1 " + strings.Repeat("0f", 32))
	if err != nil {
		t.Fatal(err)
	}
	rr := r.RR("_25._tcp.mx.example.test", 300)
	back, err := FromRR(rr)
	if err != nil || back.String() != r.String() || rr.Hdr.Name != "_25._tcp.mx.example.test." {
		t.Errorf("RR/FromRR: %v → %v, %v", rr, back, err)
	}
}

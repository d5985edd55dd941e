package finding

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// encodingJSON is what encoding/json's Encoder writes for v with HTML
// escaping off, newline included.
func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := jsonenc.AppendReflect(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestAppendJSON compares AppendJSON with encoding/json for every catalogue
// entry, every severity (known or not) and awkward strings.
func TestAppendJSON(t *testing.T) {
	var fs []Finding
	for _, e := range Catalogue {
		fs = append(fs, New(e.ID, "mx.d.test", e.Title))
	}
	for _, s := range []Severity{0, Info, Warning, Error, 4, -1, math.MaxInt, math.MinInt} {
		fs = append(fs, Finding{ID: "x-y", Severity: s})
	}
	fs = append(fs, Finding{
		ID:        "a\"b\\c",
		Severity:  Warning,
		Subject:   "\x00\x01\x1f\x7f\b\f\n\r\t",
		Message:   "<a href=\"x\">&amp;</a> \u2028\u2029 é 日本 🙂",
		Reference: "\xff\xfe\xc0\x80\xed\xa0\x80\xe2\x80",
		Fix:       "\\u0041 \"\"",
	})
	for _, f := range fs {
		got := append(f.AppendJSON([]byte(nil)), '\n')
		if want := encodingJSON(t, &f); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
		got = f.AppendJSONHTML([]byte(nil))
		if want, err := json.Marshal(&f); err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendJSONHTML:\n%s\njson.Marshal:\n%s %v", got, want, err)
		}
	}
	var nilFinding *Finding
	if got := string(nilFinding.AppendJSON([]byte("x"))); got != "xnull" {
		t.Errorf("nil: %s", got)
	}
	if got := string(nilFinding.AppendJSONHTML([]byte("x"))); got != "xnull" {
		t.Errorf("nil, HTML: %s", got)
	}
}

// findingFields is the Finding that AppendJSON was written for, as
// jsonenc.Fields describes it.
const findingFields = `ID finding.ID json:"id"
Severity finding.Severity json:"severity" text:finding.Severity text:*finding.Severity
Subject string json:"subject"
Message string json:"message"
Reference string json:"reference"
Fix string json:"fix"
`

// TestFindingJSONFields fails when Finding changes under AppendJSON (a
// field, a type, a tag, a marshaler): update AppendJSON and findingFields.
func TestFindingJSONFields(t *testing.T) {
	if got := jsonenc.Fields(reflect.TypeFor[Finding]()); got != findingFields {
		t.Errorf("Finding is now\n%s\nAppendJSON was written for\n%s", got, findingFields)
	}
}

package finding

import (
	"reflect"
	"sync"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// findingFields is the Finding that AppendJSON was written for, as
// jsonenc.Fields describes it.
const findingFields = `ID finding.ID json:"id"
Severity finding.Severity json:"severity" text:finding.Severity text:*finding.Severity
Subject string json:"subject"
Message string json:"message"
Reference string json:"reference"
Fix string json:"fix"
`

// handWritten says whether Finding is still the type AppendJSON was
// written for.
var handWritten = sync.OnceValue(func() bool {
	return jsonenc.Fields(reflect.TypeFor[Finding]()) == findingFields
})

// AppendJSON appends f as a JSON object, byte for byte what encoding/json
// writes for it with SetEscapeHTML(false) (without the Encoder's newline);
// nil is null.
//
// It writes the fields by hand because a scan encodes a plan, findings
// included, per domain, and encoding/json's reflection cost 7–8 % of the
// scan's CPU. TestAppendJSON and route's differential test and fuzz target
// compare its bytes with encoding/json's. Should Finding's fields or their
// marshalers change without this function following, it uses encoding/json
// instead (and the tests fail until it is updated).
func (f *Finding) AppendJSON(b []byte) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	if !handWritten() {
		out, err := jsonenc.AppendReflect(b, f)
		if err != nil {
			// Only a field encoding/json cannot encode at all gets here,
			// and every test that writes a finding would catch it.
			panic("finding: encoding a Finding: " + err.Error())
		}
		return out
	}
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, string(f.ID))
	b = append(b, `,"severity":`...)
	b = jsonenc.AppendString(b, f.Severity.String()) // its MarshalText
	b = append(b, `,"subject":`...)
	b = jsonenc.AppendString(b, f.Subject)
	b = append(b, `,"message":`...)
	b = jsonenc.AppendString(b, f.Message)
	b = append(b, `,"reference":`...)
	b = jsonenc.AppendString(b, f.Reference)
	b = append(b, `,"fix":`...)
	b = jsonenc.AppendString(b, f.Fix)
	return append(b, '}')
}

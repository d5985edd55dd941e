package finding

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends f as a JSON object, byte for byte what encoding/json
// writes for it with SetEscapeHTML(false) (without the Encoder's newline);
// nil is null.
//
// It writes the fields by hand because a scan encodes a plan, findings
// included, per domain, and encoding/json's reflection was a noticeable
// share of its CPU (docs/performance.md). TestAppendJSON and route's differential test and fuzz target
// compare its bytes with encoding/json's, and TestFindingJSONFields fails
// when Finding's fields or their marshalers change until this function
// follows.
func (f *Finding) AppendJSON(b []byte) []byte {
	if f == nil {
		return append(b, "null"...)
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

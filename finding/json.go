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
func (f *Finding) AppendJSON(b []byte) []byte { return f.appendJSON(b, jsonenc.AppendString) }

// AppendJSONHTML is AppendJSON with HTML escaping on, as json.Marshal
// writes f: for the findings a MarshalJSON method built on json.Marshal
// writes (nameserver.Result's, spf.Analysis's), whose bytes the Encoder
// keeps as they are.
func (f *Finding) AppendJSONHTML(b []byte) []byte { return f.appendJSON(b, jsonenc.AppendStringHTML) }

func (f *Finding) appendJSON(b []byte, str func([]byte, string) []byte) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = str(b, string(f.ID))
	b = append(b, `,"severity":`...)
	b = str(b, f.Severity.String()) // its MarshalText
	b = append(b, `,"subject":`...)
	b = str(b, f.Subject)
	b = append(b, `,"message":`...)
	b = str(b, f.Message)
	b = append(b, `,"reference":`...)
	b = str(b, f.Reference)
	b = append(b, `,"fix":`...)
	b = str(b, f.Fix)
	return append(b, '}')
}

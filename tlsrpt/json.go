package tlsrpt

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends r as a JSON object, byte for byte what encoding/json
// writes for *Result with SetEscapeHTML(false) (without the Encoder's
// newline); nil is null.
//
// An audit's report holds one Result per domain, and a scan writes a
// report per domain: encoding/json's reflection was a noticeable share of
// its CPU (docs/performance.md), so the fields are written by hand. check's
// differential test and fuzz target compare the bytes with encoding/json's,
// and TestJSONFields there fails when a type here changes until this
// function follows.
func (r *Result) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendString(b, r.Domain)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, r.Name)
	b = append(b, `,"records":`...)
	b = jsonenc.AppendStrings(b, r.Records)
	if r.Record != nil {
		b = append(b, `,"record":{"rua":`...)
		b = jsonenc.AppendStrings(b, r.Record.RUA)
		if len(r.Record.Extensions) != 0 {
			b = append(b, `,"extensions":`...)
			b = jsonenc.AppendArray(b, r.Record.Extensions, (*Extension).appendJSON)
		}
		b = append(b, '}')
	}
	if len(r.Problems) != 0 {
		b = append(b, `,"problems":`...)
		b = jsonenc.AppendStrings(b, r.Problems)
	}
	return append(b, '}')
}

func (e *Extension) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, e.Name)
	b = append(b, `,"value":`...)
	b = jsonenc.AppendString(b, e.Value)
	return append(b, '}')
}

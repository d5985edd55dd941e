package tlsrpt

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends r as a JSON object, byte for byte what encoding/json
// writes for *Result with SetEscapeHTML(false) (without the Encoder's
// newline); nil is null.
//
// Written by hand for the scan's sake; package jsonenc says why, and how
// check's tests keep it in step with encoding/json.
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

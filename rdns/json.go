package rdns

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
	b = append(b, `{"address":`...)
	b = jsonenc.AppendAddr(b, r.Address)
	b = append(b, `,"names":`...)
	b = jsonenc.AppendStrings(b, r.Names)
	if r.Confirmed != "" {
		b = append(b, `,"confirmed":`...)
		b = jsonenc.AppendString(b, r.Confirmed)
	}
	return append(b, '}')
}

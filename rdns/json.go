package rdns

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends r as a JSON object, byte for byte what encoding/json
// writes for *Result with SetEscapeHTML(false) (without the Encoder's
// newline); nil is null.
//
// An audit's report holds one Result per exchange address, and a scan
// writes a report per domain: encoding/json's reflection was a noticeable
// share of its CPU (docs/performance.md), so the fields are written by
// hand. check's differential test and fuzz target compare the bytes with
// encoding/json's, and TestJSONFields there fails when Result changes
// until this function follows.
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

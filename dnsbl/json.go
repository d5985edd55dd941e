package dnsbl

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends r as encoding/json writes it through MarshalJSON
// (the entries as an array), without reflection; nil is null.
// MarshalJSON is built on json.Marshal, which escapes '<', '>' and '&',
// and an Encoder keeps those bytes as they are even with SetEscapeHTML
// off, so every string here is written with HTML escaping on.
//
// Written by hand for the scan's sake; package jsonenc says why, and how
// check's tests keep it in step with encoding/json.
func (r *Result) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	return jsonenc.AppendArray(b, r.Entries, (*Entry).appendJSON)
}

func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"list":`...)
	b = jsonenc.AppendStringHTML(b, e.List)
	b = append(b, `,"address":`...)
	b = jsonenc.AppendAddrHTML(b, e.Address)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendStringHTML(b, string(e.Status))
	if len(e.Codes) != 0 {
		b = append(b, `,"codes":`...)
		b = jsonenc.AppendStringsHTML(b, e.Codes)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonenc.AppendStringHTML(b, e.Reason)
	}
	return append(b, '}')
}

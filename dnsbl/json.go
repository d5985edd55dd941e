package dnsbl

import "github.com/mxtrace/mxtrace/internal/jsonenc"

// AppendJSON appends r as encoding/json writes it through MarshalJSON
// (the entries as an array), without reflection; nil is null.
// MarshalJSON is built on json.Marshal, which escapes '<', '>' and '&',
// and an Encoder keeps those bytes as they are even with SetEscapeHTML
// off, so every string here is written with HTML escaping on.
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

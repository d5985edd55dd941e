package dane

import (
	"encoding/hex"
	"strconv"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

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
	b = append(b, `{"host":`...)
	b = jsonenc.AppendString(b, r.Host)
	if r.Base != "" {
		b = append(b, `,"base":`...)
		b = jsonenc.AppendString(b, r.Base)
	}
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, r.Name)
	b = append(b, `,"records":`...)
	b = jsonenc.AppendArray(b, r.Records, (*Record).appendJSON)
	b = append(b, `,"secure":`...)
	b = strconv.AppendBool(b, r.Secure)
	b = append(b, `,"address_secure":`...)
	b = strconv.AppendBool(b, r.AddressSecure)
	return append(b, '}')
}

// appendJSON writes MarshalText's presentation form (String) as a string:
// digits, spaces and hex, nothing to escape.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(r.Usage), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.Selector), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.MatchingType), 10)
	b = append(b, ' ')
	b = hex.AppendEncode(b, r.Data)
	return append(b, '"')
}

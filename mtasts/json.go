package mtasts

import (
	"errors"
	"strconv"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// AppendJSON appends r as encoding/json writes it through MarshalJSON
// (the record and policy, then the errors as text), without reflection;
// nil is null. MarshalJSON is built on json.Marshal, which escapes '<',
// '>' and '&', and an Encoder keeps those bytes as they are even with
// SetEscapeHTML off, so every string here is written with HTML escaping
// on.
//
// Written by hand for the scan's sake; package jsonenc says why, and how
// check's tests keep it in step with encoding/json.
func (r *Result) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendStringHTML(b, r.Domain)
	b = append(b, `,"txt":`...)
	b = jsonenc.AppendStringsHTML(b, r.TXT)
	if r.Record != nil {
		b = append(b, `,"record":{"id":`...)
		b = jsonenc.AppendStringHTML(b, r.Record.ID)
		b = appendExtensions(b, r.Record.Extensions)
		b = append(b, '}')
	}
	if r.PolicyURL != "" {
		b = append(b, `,"policy_url":`...)
		b = jsonenc.AppendStringHTML(b, r.PolicyURL)
	}
	if p := r.Policy; p != nil {
		b = append(b, `,"policy":{"mode":`...)
		b = jsonenc.AppendStringHTML(b, string(p.Mode))
		b = append(b, `,"mx":`...)
		b = jsonenc.AppendStringsHTML(b, p.MX)
		b = append(b, `,"max_age":`...)
		b = strconv.AppendInt(b, p.MaxAge, 10)
		b = appendExtensions(b, p.Extensions)
		b = append(b, '}')
	}
	// The members MarshalJSON adds, as it computes them.
	if r.TXTErr != nil {
		b = appendNonEmpty(b, `,"txt_error":`, r.TXTErr.Error())
	}
	if r.FetchErr != nil {
		if fe, ok := errors.AsType[*FetchError](r.FetchErr); ok {
			b = appendNonEmpty(b, `,"fetch_stage":`, string(fe.Stage))
		}
		b = appendNonEmpty(b, `,"fetch_error":`, r.FetchErr.Error())
	}
	if r.PolicyErr != nil {
		b = appendNonEmpty(b, `,"policy_error":`, r.PolicyErr.Error())
	}
	return append(b, '}')
}

// appendNonEmpty appends the member name and s unless s is empty
// (omitempty).
func appendNonEmpty(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return jsonenc.AppendStringHTML(append(b, name...), s)
}

// appendExtensions appends the extensions member of a record or policy
// unless there are none (omitempty).
func appendExtensions(b []byte, es []Extension) []byte {
	if len(es) == 0 {
		return b
	}
	b = append(b, `,"extensions":`...)
	return jsonenc.AppendArray(b, es, func(e *Extension, b []byte) []byte {
		b = append(b, `{"name":`...)
		b = jsonenc.AppendStringHTML(b, e.Name)
		b = append(b, `,"value":`...)
		b = jsonenc.AppendStringHTML(b, e.Value)
		return append(b, '}')
	})
}

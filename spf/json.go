package spf

import (
	"strconv"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// AppendJSON appends an as encoding/json writes it through MarshalJSON
// (the analysis with its findings before elapsed_ms), without reflection;
// nil is null. MarshalJSON is built on json.Marshal, which escapes '<',
// '>' and '&', and an Encoder keeps those bytes as they are even with
// SetEscapeHTML off, so every string here is written with HTML escaping
// on.
//
// Written by hand for the scan's sake; package jsonenc says why, and how
// check's tests keep it in step with encoding/json.
func (an *Analysis) AppendJSON(b []byte) []byte {
	if an == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendStringHTML(b, an.Domain)
	b = append(b, `,"tree":`...)
	b = an.Tree.appendJSON(b)
	b = append(b, `,"lookups":`...)
	b = strconv.AppendInt(b, int64(an.Lookups), 10)
	b = append(b, `,"void_lookups":`...)
	b = strconv.AppendInt(b, int64(an.VoidLookups), 10)
	if an.Loop {
		b = append(b, `,"loop":true`...)
	}
	if an.Incomplete {
		b = append(b, `,"incomplete":true`...)
	}
	b = append(b, `,"findings":`...)
	b = jsonenc.AppendArray(b, Findings(an), (*finding.Finding).AppendJSONHTML)
	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendInt(b, an.ElapsedMS, 10)
	return append(b, '}')
}

// appendJSON writes the node and its children, depth first; nil is null.
// The depth is the tree's, which Lookup bounds (Options.MaxRecords).
func (n *Node) appendJSON(b []byte) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendStringHTML(b, n.Domain)
	if n.Via != "" {
		b = append(b, `,"via":`...)
		b = jsonenc.AppendStringHTML(b, n.Via)
	}
	if n.Term != "" {
		b = append(b, `,"term":`...)
		b = jsonenc.AppendStringHTML(b, n.Term)
	}
	if n.Record != "" {
		b = append(b, `,"record":`...)
		b = jsonenc.AppendStringHTML(b, n.Record)
	}
	if len(n.Terms) != 0 {
		b = append(b, `,"terms":`...)
		b = jsonenc.AppendStringsHTML(b, n.Terms)
	}
	b = append(b, `,"lookups":`...)
	b = strconv.AppendInt(b, int64(n.Lookups), 10)
	b = append(b, `,"total_lookups":`...)
	b = strconv.AppendInt(b, int64(n.TotalLookups), 10)
	b = append(b, `,"void_lookups":`...)
	b = strconv.AppendInt(b, int64(n.VoidLookups), 10)
	b = append(b, `,"total_void_lookups":`...)
	b = strconv.AppendInt(b, int64(n.TotalVoidLookups), 10)
	if len(n.Children) != 0 {
		b = append(b, `,"children":`...)
		b = jsonenc.AppendArray(b, n.Children, func(c **Node, b []byte) []byte { return (*c).appendJSON(b) })
	}
	if len(n.Errors) != 0 {
		b = append(b, `,"errors":`...)
		b = jsonenc.AppendStringsHTML(b, n.Errors)
	}
	return append(b, '}')
}

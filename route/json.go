package route

import (
	"strconv"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// AppendJSON appends the plan as a JSON object, byte for byte what
// encoding/json writes for *Plan with SetEscapeHTML(false) (without the
// Encoder's newline): the same members in the same order, nil lists as
// null and empty ones as [], an empty Error and CanonicalName and a zero
// RecordsOmitted left out. A nil plan is null.
//
// A scan writes one plan per domain, and encoding/json's reflection was a
// noticeable share of its CPU (docs/performance.md), so the fields are
// written by hand. The
// differential test and FuzzPlanJSON (route/json_test.go) compare its
// bytes with encoding/json's, and TestPlanJSONFields fails when Plan,
// Record, Tier or Host change (a field, a type, a tag, a marshaler) until
// this function follows. Plan deliberately has no MarshalJSON:
// encoding/json would then parse and compact every plan it is handed.
func (p *Plan) AppendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = p.AppendJSONMembers(append(b, '{'))
	b = append(b, `,"findings":`...)
	b = jsonenc.AppendArray(b, p.Findings, (*finding.Finding).AppendJSON)

	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendInt(b, p.ElapsedMS, 10)
	return append(b, '}')
}

// AppendJSONMembers appends the plan's members before findings (schema to
// order), without the braces: what encoding/json writes of a non-nil *Plan
// embedded in a struct that has Findings and ElapsedMS of its own, which
// take the place of the plan's (check.Report).
func (p *Plan) AppendJSONMembers(b []byte) []byte {
	b = append(b, `"schema":`...)
	b = strconv.AppendInt(b, int64(p.Schema), 10)
	b = append(b, `,"domain":`...)
	b = jsonenc.AppendString(b, p.Domain)
	b = append(b, `,"result":`...)
	b = jsonenc.AppendString(b, string(p.Result))
	if p.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, p.Error)
	}
	b = append(b, `,"implicit":`...)
	b = strconv.AppendBool(b, p.Implicit)
	b = append(b, `,"alias_chain":`...)
	b = jsonenc.AppendStrings(b, p.AliasChain)

	b = append(b, `,"records":`...)
	b = jsonenc.AppendArray(b, p.Records, (*Record).appendJSON)
	if p.RecordsOmitted != 0 {
		b = append(b, `,"records_omitted":`...)
		b = strconv.AppendInt(b, int64(p.RecordsOmitted), 10)
	}

	b = append(b, `,"tiers":`...)
	b = jsonenc.AppendArray(b, p.Tiers, (*Tier).appendJSON)

	b = append(b, `,"order":`...)
	b = jsonenc.AppendStrings(b, p.Order)
	return b
}

func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"preference":`...)
	b = strconv.AppendUint(b, uint64(r.Preference), 10)
	b = append(b, `,"exchange":`...)
	b = jsonenc.AppendString(b, r.Exchange)
	b = append(b, `,"ttl":`...)
	b = strconv.AppendUint(b, uint64(r.TTL), 10)
	return append(b, '}')
}

func (t *Tier) appendJSON(b []byte) []byte {
	b = append(b, `{"preference":`...)
	b = strconv.AppendUint(b, uint64(t.Preference), 10)
	b = append(b, `,"hosts":`...)
	b = jsonenc.AppendArray(b, t.Hosts, (*Host).appendJSON)
	return append(b, '}')
}

func (h *Host) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, h.Name)
	if h.CanonicalName != "" {
		b = append(b, `,"canonical_name":`...)
		b = jsonenc.AppendString(b, h.CanonicalName)
	}
	b = append(b, `,"addresses":`...)
	b = jsonenc.AppendStrings(b, h.Addresses)
	b = append(b, `,"problems":`...)
	b = jsonenc.AppendStrings(b, h.Problems)
	return append(b, '}')
}

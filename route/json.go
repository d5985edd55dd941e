package route

import (
	"reflect"
	"strconv"
	"sync"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// The types AppendJSON was written for, as jsonenc.Fields describes them.
const (
	planFields = `Schema int json:"schema"
Domain string json:"domain"
Result route.Result json:"result"
Error string json:"error,omitempty"
Implicit bool json:"implicit"
AliasChain []string json:"alias_chain"
Records []route.Record json:"records"
Tiers []route.Tier json:"tiers"
Order []string json:"order"
Findings []finding.Finding json:"findings"
ElapsedMS int64 json:"elapsed_ms"
`
	recordFields = `Preference uint16 json:"preference"
Exchange string json:"exchange"
TTL uint32 json:"ttl"
`
	tierFields = `Preference uint16 json:"preference"
Hosts []route.Host json:"hosts"
`
	hostFields = `Name string json:"name"
CanonicalName string json:"canonical_name,omitempty"
Addresses []string json:"addresses"
Problems []finding.ID json:"problems"
`
)

// handWritten says whether Plan and the types in it are still those
// AppendJSON was written for (finding.Finding checks its own).
var handWritten = sync.OnceValue(func() bool {
	return jsonenc.Fields(reflect.TypeFor[Plan]()) == planFields &&
		jsonenc.Fields(reflect.TypeFor[Record]()) == recordFields &&
		jsonenc.Fields(reflect.TypeFor[Tier]()) == tierFields &&
		jsonenc.Fields(reflect.TypeFor[Host]()) == hostFields
})

// AppendJSON appends the plan as a JSON object, byte for byte what
// encoding/json writes for *Plan with SetEscapeHTML(false) (without the
// Encoder's newline): the same members in the same order, nil lists as
// null and empty ones as [], an empty Error and CanonicalName left out. A
// nil plan is null.
//
// A scan writes one plan per domain, and encoding/json's reflection cost
// 7–8 % of the scan's CPU, so the fields are written by hand. The
// differential test and FuzzPlanJSON (route/json_test.go) compare its
// bytes with encoding/json's. Should Plan, Record, Tier or Host change
// (a field, a type, a tag, a marshaler) without this function following,
// it uses encoding/json instead, and TestPlanJSONFields fails until it is
// updated. Plan deliberately has no MarshalJSON: encoding/json would then
// parse and compact every plan it is handed.
func (p *Plan) AppendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	if !handWritten() {
		out, err := jsonenc.AppendReflect(b, p)
		if err != nil {
			// Only a field encoding/json cannot encode at all gets here,
			// and every test that writes a plan would catch it.
			panic("route: encoding a Plan: " + err.Error())
		}
		return out
	}
	b = append(b, `{"schema":`...)
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

	b = append(b, `,"tiers":`...)
	b = jsonenc.AppendArray(b, p.Tiers, (*Tier).appendJSON)

	b = append(b, `,"order":`...)
	b = jsonenc.AppendStrings(b, p.Order)

	b = append(b, `,"findings":`...)
	b = jsonenc.AppendArray(b, p.Findings, (*finding.Finding).AppendJSON)

	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendInt(b, p.ElapsedMS, 10)
	return append(b, '}')
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

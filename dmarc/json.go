package dmarc

import (
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
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendString(b, r.Domain)
	b = append(b, `,"org_domain":`...)
	b = jsonenc.AppendString(b, r.OrgDomain)
	if r.PolicyDomain != "" {
		b = append(b, `,"policy_domain":`...)
		b = jsonenc.AppendString(b, r.PolicyDomain)
	}
	b = append(b, `,"records":`...)
	b = jsonenc.AppendStrings(b, r.Records)
	if r.Record != nil {
		b = append(b, `,"record":`...)
		b = r.Record.appendJSON(b)
	}
	if len(r.Problems) != 0 {
		b = append(b, `,"problems":`...)
		b = jsonenc.AppendStrings(b, r.Problems)
	}
	if r.Policy != "" {
		b = append(b, `,"policy":`...)
		b = jsonenc.AppendString(b, string(r.Policy))
	}
	if len(r.Destinations) != 0 {
		b = append(b, `,"destinations":`...)
		b = jsonenc.AppendArray(b, r.Destinations, (*Destination).appendJSON)
	}
	return append(b, '}')
}

func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"p":`...)
	b = jsonenc.AppendString(b, string(r.Policy))
	if r.SubdomainPolicy != "" {
		b = append(b, `,"sp":`...)
		b = jsonenc.AppendString(b, string(r.SubdomainPolicy))
	}
	b = append(b, `,"adkim":`...)
	b = jsonenc.AppendString(b, string(r.DKIMAlignment))
	b = append(b, `,"aspf":`...)
	b = jsonenc.AppendString(b, string(r.SPFAlignment))
	b = append(b, `,"pct":`...)
	b = strconv.AppendInt(b, int64(r.Percent), 10)
	b = append(b, `,"fo":`...)
	b = jsonenc.AppendStrings(b, r.FailureOptions)
	b = append(b, `,"rf":`...)
	b = jsonenc.AppendStrings(b, r.ReportFormats)
	b = append(b, `,"ri":`...)
	b = strconv.AppendUint(b, uint64(r.ReportInterval), 10)
	if len(r.AggregateURIs) != 0 {
		b = append(b, `,"rua":`...)
		b = jsonenc.AppendArray(b, r.AggregateURIs, (*URI).appendJSON)
	}
	if len(r.FailureURIs) != 0 {
		b = append(b, `,"ruf":`...)
		b = jsonenc.AppendArray(b, r.FailureURIs, (*URI).appendJSON)
	}
	if len(r.Unknown) != 0 {
		b = append(b, `,"unknown":`...)
		b = jsonenc.AppendArray(b, r.Unknown, (*Tag).appendJSON)
	}
	return append(b, '}')
}

func (u *URI) appendJSON(b []byte) []byte {
	b = append(b, `{"uri":`...)
	b = jsonenc.AppendString(b, u.URI)
	if u.Size != "" {
		b = append(b, `,"size":`...)
		b = jsonenc.AppendString(b, u.Size)
	}
	return append(b, '}')
}

func (t *Tag) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, t.Name)
	b = append(b, `,"value":`...)
	b = jsonenc.AppendString(b, t.Value)
	return append(b, '}')
}

func (d *Destination) appendJSON(b []byte) []byte {
	b = append(b, `{"tag":`...)
	b = jsonenc.AppendString(b, d.Tag)
	b = append(b, `,"uri":`...)
	b = jsonenc.AppendString(b, d.URI)
	if d.Domain != "" {
		b = append(b, `,"domain":`...)
		b = jsonenc.AppendString(b, d.Domain)
	}
	if d.Query != "" {
		b = append(b, `,"query":`...)
		b = jsonenc.AppendString(b, d.Query)
	}
	b = append(b, `,"consent":`...)
	b = jsonenc.AppendString(b, string(d.Consent))
	return append(b, '}')
}

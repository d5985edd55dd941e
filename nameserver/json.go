package nameserver

import (
	"strconv"

	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// AppendJSON appends r as encoding/json writes it through MarshalJSON
// (the facts, then the findings), without reflection; nil is null.
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
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendStringHTML(b, r.Domain)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendStringHTML(b, r.Name)
	b = append(b, `,"alias_chain":`...)
	b = jsonenc.AppendStringsHTML(b, r.AliasChain)
	b = append(b, `,"nxdomain":`...)
	b = strconv.AppendBool(b, r.NXDomain)
	b = append(b, `,"apex":`...)
	b = jsonenc.AppendStringHTML(b, r.Apex)
	b = append(b, `,"servers":`...)
	b = jsonenc.AppendArray(b, r.Servers, (*Server).appendJSON)
	if r.ServersOmitted != 0 {
		b = append(b, `,"servers_omitted":`...)
		b = strconv.AppendInt(b, int64(r.ServersOmitted), 10)
	}
	b = append(b, `,"dnssec":`...)
	b = r.DNSSEC.appendJSON(b)
	b = append(b, `,"notes":`...)
	b = jsonenc.AppendStringsHTML(b, r.Notes)
	b = append(b, `,"findings":`...)
	b = jsonenc.AppendArray(b, Findings(r), (*finding.Finding).AppendJSONHTML)
	return append(b, '}')
}

func (s *Server) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendStringHTML(b, s.Name)
	b = append(b, `,"addresses":`...)
	b = jsonenc.AppendArray(b, s.Addresses, (*Address).appendJSON)
	if s.AddressesOmitted != 0 {
		b = append(b, `,"addresses_omitted":`...)
		b = strconv.AppendInt(b, int64(s.AddressesOmitted), 10)
	}
	if s.Problem != "" {
		b = append(b, `,"problem":`...)
		b = jsonenc.AppendStringHTML(b, s.Problem)
	}
	return append(b, '}')
}

func (a *Address) appendJSON(b []byte) []byte {
	b = append(b, `{"address":`...)
	b = jsonenc.AppendAddrHTML(b, a.Address)
	b = append(b, `,"mx":`...)
	b = a.MX.appendJSON(b)
	b = append(b, `,"soa":`...)
	b = a.SOA.appendJSON(b)
	return append(b, '}')
}

func (r *Reply) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = jsonenc.AppendStringHTML(b, string(r.Status))
	if r.Rcode != "" {
		b = append(b, `,"rcode":`...)
		b = jsonenc.AppendStringHTML(b, r.Rcode)
	}
	if len(r.Records) != 0 {
		b = append(b, `,"records":`...)
		b = jsonenc.AppendStringsHTML(b, r.Records)
	}
	if r.Serial != nil {
		b = append(b, `,"serial":`...)
		b = strconv.AppendUint(b, uint64(*r.Serial), 10)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonenc.AppendStringHTML(b, r.Reason)
	}
	if r.Referral != "" {
		b = append(b, `,"referral":`...)
		b = jsonenc.AppendStringHTML(b, r.Referral)
	}
	return append(b, '}')
}

func (d *DNSSEC) appendJSON(b []byte) []byte {
	b = append(b, `{"state":`...)
	b = jsonenc.AppendStringHTML(b, string(d.State))
	b = append(b, `,"ds":`...)
	b = strconv.AppendBool(b, d.DS)
	b = append(b, `,"dnskey":`...)
	b = strconv.AppendBool(b, d.DNSKEY)
	b = append(b, `,"ad":`...)
	b = strconv.AppendBool(b, d.AD)
	if len(d.Failing) != 0 {
		b = append(b, `,"failing":`...)
		b = jsonenc.AppendStringsHTML(b, d.Failing)
	}
	if d.Note != "" {
		b = append(b, `,"note":`...)
		b = jsonenc.AppendStringHTML(b, d.Note)
	}
	return append(b, '}')
}

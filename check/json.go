package check

import (
	"strconv"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
	"github.com/mxtrace/mxtrace/probe"
)

// AppendJSON appends r as a JSON object, byte for byte what encoding/json
// writes for *Report with SetEscapeHTML(false) (without the Encoder's
// newline): the embedded plan's members (none when Plan is nil), then the
// report's own, which take the place of the plan's findings and
// elapsed_ms; the details as their types' MarshalJSON methods write them.
// A nil report is null. The only error is encoding/json's, from the SMTP
// probes (see Facts); b is then returned as it was.
//
// A scan in check mode writes one report per domain, and encoding/json's
// reflection over it was 11 % of the scan's CPU (docs/performance.md), so
// every type it holds is written by hand. TestReportJSONGolden and
// FuzzReportJSON (check/json_test.go) compare the bytes with
// encoding/json's, and TestJSONFields fails when one of those types
// changes (a field, a type, a tag, a marshaler) until its encoder follows.
func (r *Report) AppendJSON(b []byte) ([]byte, error) {
	if r == nil {
		return append(b, "null"...), nil
	}
	start := len(b)
	b = append(b, '{')
	if r.Plan != nil {
		b = append(r.Plan.AppendJSONMembers(b), ',')
	}
	b = append(b, `"findings":`...)
	b = jsonenc.AppendArray(b, r.Findings, (*finding.Finding).AppendJSON)
	b = append(b, `,"areas":`...)
	b = jsonenc.AppendArray(b, r.Areas, (*AreaResult).appendJSON)
	b = append(b, `,"skipped":`...)
	b = jsonenc.AppendArray(b, r.Skipped, (*Skip).appendJSON)
	b = append(b, `,"details":`...)
	b, err := r.Details.appendJSON(b)
	if err != nil {
		return b[:start], err
	}
	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendInt(b, r.ElapsedMS, 10)
	return append(b, '}'), nil
}

func (a *AreaResult) appendJSON(b []byte) []byte {
	b = append(b, `{"area":`...)
	b = jsonenc.AppendString(b, string(a.Area))
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, string(a.Status))
	b = append(b, `,"summary":`...)
	b = jsonenc.AppendString(b, a.Summary)
	if a.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, a.Error)
	}
	b = append(b, `,"findings":`...)
	b = jsonenc.AppendArray(b, a.Findings, (*finding.Finding).AppendJSON)
	return append(b, '}')
}

func (s *Skip) appendJSON(b []byte) []byte {
	b = append(b, `{"area":`...)
	b = jsonenc.AppendString(b, string(s.Area))
	b = append(b, `,"reason":`...)
	b = jsonenc.AppendString(b, s.Reason)
	return append(b, '}')
}

// appendJSON writes the facts; nil is null. The SMTP probes are the one
// member left to encoding/json (jsonenc.AppendReflect): a scan probes no
// exchange unless asked (--smtp), so the common scan line never holds one,
// and a probe takes far longer than its encoding. Its error (a certificate
// date outside years 0-9999) is the only one.
func (f *Facts) appendJSON(b []byte) ([]byte, error) {
	if f == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	if f.Nameservers != nil {
		b = append(b, `"nameservers":`...)
		b = append(f.Nameservers.AppendJSON(b), ',')
	}
	b = append(b, `"ptr":`...)
	b = jsonenc.AppendArray(b, f.PTR, (*probe.HostPTR).AppendJSON)
	if f.SPF != nil {
		b = append(b, `,"spf":`...)
		b = f.SPF.AppendJSON(b)
	}
	if f.DMARC != nil {
		b = append(b, `,"dmarc":`...)
		b = f.DMARC.AppendJSON(b)
	}
	if f.DKIM != nil {
		b = append(b, `,"dkim":`...)
		b = f.DKIM.AppendJSON(b)
	}
	if f.MTASTS != nil {
		b = append(b, `,"mta_sts":`...)
		b = f.MTASTS.AppendJSON(b)
	}
	if f.TLSRPT != nil {
		b = append(b, `,"tls_rpt":`...)
		b = f.TLSRPT.AppendJSON(b)
	}
	b = append(b, `,"dane":`...)
	b = jsonenc.AppendArray(b, f.DANE, func(r **dane.Result, b []byte) []byte { return (*r).AppendJSON(b) })
	if !f.DNSBL.IsZero() { // omitzero, through Result.IsZero
		b = append(b, `,"dnsbl":`...)
		b = f.DNSBL.AppendJSON(b)
	}
	if len(f.SMTP) != 0 {
		b = append(b, `,"smtp":`...)
		var err error
		if b, err = jsonenc.AppendReflect(b, f.SMTP); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

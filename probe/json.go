package probe

import (
	"strconv"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
	"github.com/mxtrace/mxtrace/rdns"
)

// AppendJSON appends h as a JSON object, byte for byte what encoding/json
// writes for HostPTR with SetEscapeHTML(false) (without the Encoder's
// newline).
//
// An audit's report holds one HostPTR per exchange, and a scan writes a
// report per domain: encoding/json's reflection was a noticeable share of
// its CPU (docs/performance.md), so the fields are written by hand. check's
// differential test and fuzz target compare the bytes with encoding/json's,
// and TestJSONFields there fails when HostPTR changes until this function
// follows. Result (an SMTP probe) has no such encoder: a scan probes no
// exchange unless asked (--smtp), and a probe's time costs far more than
// its encoding.
func (h *HostPTR) AppendJSON(b []byte) []byte {
	b = append(b, `{"host":`...)
	b = jsonenc.AppendString(b, h.Host)
	b = append(b, `,"results":`...)
	b = jsonenc.AppendArray(b, h.Results, func(r **rdns.Result, b []byte) []byte { return (*r).AppendJSON(b) })
	if len(h.Errors) != 0 {
		b = append(b, `,"errors":`...)
		b = jsonenc.AppendStrings(b, h.Errors)
	}
	if h.Outside != 0 {
		b = append(b, `,"outside":`...)
		b = strconv.AppendInt(b, int64(h.Outside), 10)
	}
	return append(b, '}')
}

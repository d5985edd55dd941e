package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fatih/color"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/route"
)

// ProbeOptions says what WriteProbe adds to the table.
type ProbeOptions struct {
	// Transcript prints every session line by line (-v).
	Transcript bool
}

// WriteProbe writes a probe report: a heading with the verdict, one row
// per probed address (preference, host, address, greeting, TLS,
// certificate, DANE, where the session ended), the transcripts when asked
// for, then the findings with their fixes.
func WriteProbe(w io.Writer, r *probe.Report, st Style, o ProbeOptions) error {
	bold := st.paint(color.Bold)
	dim := st.paint(color.Faint)
	var b strings.Builder

	verdict := "no problems"
	switch worst := finding.Worst(r.Findings); {
	case r.Error != "" && len(r.Results) == 0:
		verdict = "could not probe: " + Plain(r.Error)
	case r.Error != "":
		verdict = Plain(r.Error) // addresses not probed in time
	case worst == finding.Error:
		verdict = "errors"
	case worst == finding.Warning:
		verdict = "warnings"
	}
	head := bold(r.Target)
	if r.Plan != nil && r.Plan.Result != route.ResultOK {
		head += "  " + st.paint(resultColor(r.Plan.Result)...)(r.Plan.Result) + "  nothing to probe"
		if r.Error != "" {
			verdict = Plain(r.Error)
		}
	} else if len(r.Results) > 0 {
		head += "  " + prose.Count(len(r.Results), "address") + " probed"
		if port := r.Results[0].Port; port != dial.SMTPPort {
			head += fmt.Sprintf(" on port %d", port)
		}
	}
	fmt.Fprintf(&b, "%s  %s  %s\n", head, verdict, dim(fmt.Sprintf("(%d ms)", r.ElapsedMS)))

	if len(r.Results) > 0 {
		if err := writeProbeTable(&b, r, st); err != nil {
			return err
		}
	}
	if o.Transcript {
		for _, res := range r.Results {
			writeTranscript(&b, res, st)
		}
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	writeFindings(&b, r.Findings, st)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeProbeTable(b *strings.Builder, r *probe.Report, st Style) error {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	daneCol := len(r.DANE) == len(r.Results)
	hdr := "  PREF\tHOST\tADDRESS\tBANNER\tTLS\tCERTIFICATE\t"
	if daneCol {
		hdr += "DANE\t"
	}
	fmt.Fprintln(tw, hdr+"RESULT")
	var lastPref *uint16
	for i, res := range r.Results {
		pref := ""
		if res.Preference != nil && (lastPref == nil || *lastPref != *res.Preference) {
			pref = fmt.Sprint(*res.Preference)
		}
		lastPref = res.Preference
		host := res.Host
		if host == "" {
			host = "-"
		}
		row := fmt.Sprintf("  %s\t%s\t%s\t%s\t%s\t%s\t", pref, host, res.Address, bannerCell(res), tlsCell(res), certCell(res))
		if daneCol {
			row += string(r.DANE[i].Status) + "\t"
		}
		// Only the last column may carry colour: escape codes would count
		// as width in tabwriter and break the alignment.
		outcome, bad := outcomeCell(res)
		paint := st.paint(color.FgGreen)
		if bad {
			paint = st.paint(color.FgRed)
		}
		fmt.Fprintln(tw, row+paint(outcome))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for l := range strings.Lines(table.String()) {
		b.WriteString(strings.TrimRight(l, " \n"))
		b.WriteString("\n")
	}
	return nil
}

func bannerCell(r *probe.Result) string {
	if r.Banner == nil {
		if r.Err != nil && r.Err.Step == probe.StepBanner && r.Err.Partial != "" {
			return "partial"
		}
		return "-"
	}
	return fmt.Sprintf("%03d %s", r.Banner.Code, ms(r.Banner.MS))
}

func tlsCell(r *probe.Result) string {
	switch {
	case r.TLS != nil:
		return r.TLS.Version
	case r.Err != nil && (r.Err.Step == probe.StepStartTLS || r.Err.Step == probe.StepTLS):
		return "failed"
	case r.EHLO != nil && !r.StartTLS:
		return "no STARTTLS"
	}
	return "-"
}

func certCell(r *probe.Result) string {
	t := r.TLS
	if t == nil {
		return "-"
	}
	var words []string
	switch {
	case t.Verified:
		words = append(words, "verified")
	case !t.Trusted:
		words = append(words, "untrusted")
	}
	if t.Expired {
		words = append(words, "expired")
	}
	if !t.NameOK {
		words = append(words, "wrong name")
	}
	if !t.Expired && len(t.Chain) > 0 {
		words = append(words, fmt.Sprintf("%dd left", t.ExpiresInDays))
	}
	return strings.Join(words, ", ")
}

// outcomeCell says where the session ended, and whether that is bad.
func outcomeCell(r *probe.Result) (string, bool) {
	e := r.Err
	if e == nil {
		return "ok", false
	}
	s := fmt.Sprintf("%s: %s", e.Step, e.Kind)
	if e.Code != 0 {
		s += fmt.Sprintf(" %03d", e.Code)
	}
	// Failing at QUIT, or in the relay test, comes after the answers the
	// probe came for.
	return s, e.Step != probe.StepQuit && e.Step != probe.StepRelay
}

func ms(n int64) string {
	if n >= 10000 {
		return fmt.Sprintf("%ds", n/1000)
	}
	return fmt.Sprintf("%dms", n)
}

// writeTranscript prints one session: the endpoint, then each line with
// its time since the connection started and its direction.
func writeTranscript(b *strings.Builder, r *probe.Result, st Style) {
	dim := st.paint(color.Faint)
	fmt.Fprintf(b, "\n  %s\n", st.paint(color.Bold)(r.Subject()))
	for _, l := range r.Transcript {
		fmt.Fprintf(b, "    %s  %s  %s\n", dim(fmt.Sprintf("%6d ms", l.MS)), l.Dir, l.Text)
	}
	if r.TranscriptCut {
		fmt.Fprintf(b, "    %s\n", dim(fmt.Sprintf("(cut after %d lines)", probe.MaxTranscriptLines)))
	}
}

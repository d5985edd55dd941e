package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
)

// WriteCheck writes an audit grouped by area: the plan's table first, then
// one line per area that passed, and the problems of the others in full,
// each with its fix; what was skipped comes last, in one line.
func WriteCheck(w io.Writer, r *check.Report, st Style) error {
	bold := st.paint(color.Bold)
	var b strings.Builder
	p := r.Plan
	worst := finding.Worst(r.Findings)
	verdict := "no problems"
	switch {
	case len(r.Errors()) > 0:
		verdict = prose.Count(len(r.Errors()), "area") + " could not be checked"
	case worst == finding.Error:
		verdict = "errors"
	case worst == finding.Warning:
		verdict = "warnings"
	}
	fmt.Fprintf(&b, "%s  %s  %s  %s\n", bold(p.Domain), st.paint(resultColor(p.Result)...)(p.Result), verdict,
		st.paint(color.Faint)(fmt.Sprintf("(%d ms)", r.ElapsedMS)))
	if len(p.AliasChain) > 0 {
		fmt.Fprintf(&b, "  alias: %s → %s\n", p.Domain, strings.Join(p.AliasChain, " → "))
	}
	if err := writePlanTable(&b, p, st); err != nil {
		return err
	}
	b.WriteString("\n")

	// One width for every domain's block, whichever areas it shows.
	width := 0
	for _, c := range check.Checks() {
		width = max(width, len(c.Area))
	}
	for _, a := range r.Areas {
		mark, paint := "✓", st.paint(color.FgGreen)
		switch a.Status {
		case check.StatusProblems:
			mark, paint = "✗", st.paint(severityColor(finding.Worst(a.Findings))...)
		case check.StatusError:
			mark, paint = "!", st.paint(color.FgRed)
		}
		line := a.Summary
		if a.Status == check.StatusError {
			line = "could not check: " + Plain(a.Error)
			if id := saidBy(a.Findings, a.Error); id != "" {
				// The finding below quotes the error: say it once.
				line = "could not check: see " + string(id)
			}
		}
		fmt.Fprintf(&b, "  %s %-*s  %s\n", paint(mark), width, a.Area, line)
		// Aligned as everywhere else; a passed area's notes (info) come
		// without a fix.
		var ib strings.Builder
		writeFindings(&ib, a.Findings, st)
		for l := range strings.Lines(ib.String()) {
			b.WriteString("    " + l)
		}
	}
	if len(r.Skipped) > 0 {
		// One line, the areas grouped by the reason they were skipped.
		var reasons []string
		byReason := map[string][]string{}
		for _, s := range r.Skipped {
			if _, ok := byReason[s.Reason]; !ok {
				reasons = append(reasons, s.Reason)
			}
			byReason[s.Reason] = append(byReason[s.Reason], string(s.Area))
		}
		var groups []string
		for _, reason := range reasons {
			g := strings.Join(byReason[reason], ", ")
			if reason != "" {
				g += " (" + reason + ")"
			}
			groups = append(groups, g)
		}
		fmt.Fprintf(&b, "  %s %s\n", st.paint(color.Faint)("skipped:"), strings.Join(groups, "; "))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// saidBy returns the ID of the finding in fs whose message ends with the
// cause that errText ends with ("The MX lookup failed temporarily:
// lookup ..." for "route d.test: temporary DNS failure: lookup ..."), or
// "" when none does.
func saidBy(fs []finding.Finding, errText string) finding.ID {
	for _, f := range fs {
		_, cause, ok := strings.Cut(f.Message, ": ")
		cause = strings.TrimSuffix(cause, ".")
		if ok && cause != "" && strings.HasSuffix(errText, cause) {
			return f.ID
		}
	}
	return ""
}

// Package report renders mxtrace results for people (aligned text, colour
// on a terminal only) and for programs (JSON, one object per domain).
package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fatih/color"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/jsonenc"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/route"
)

// Style says how text output looks.
type Style struct {
	// Color turns on ANSI colours. Callers decide (a terminal, and NO_COLOR
	// unset, per https://no-color.org); the package never looks at the
	// environment itself.
	Color bool
}

func (s Style) paint(attrs ...color.Attribute) func(a ...any) string {
	c := color.New(attrs...)
	if s.Color {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return c.SprintFunc()
}

// WriteJSON writes v as one line of JSON (README.md's shape for route,
// check and scan output): AppendJSON's bytes, in one write.
func WriteJSON(w io.Writer, v any) error {
	b, err := AppendJSON(nil, v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// AppendJSON appends v as one line of JSON, newline included, as
// encoding/json's Encoder with HTML escaping off writes it. A plan and a
// check report go through route.Plan.AppendJSON and check.Report.AppendJSON,
// which write the same bytes without reflection (a scan writes one of them
// per domain); everything else through encoding/json. On error b is
// returned as it was.
func AppendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case *route.Plan:
		return append(v.AppendJSON(b), '\n'), nil
	case *check.Report:
		b, err = v.AppendJSON(b)
	default:
		b, err = jsonenc.AppendReflect(b, v)
	}
	if err != nil {
		return b, err
	}
	return append(b, '\n'), nil
}

// resultColor maps a route result to its colour.
func resultColor(r route.Result) []color.Attribute {
	switch r {
	case route.ResultOK:
		return []color.Attribute{color.FgGreen, color.Bold}
	case route.ResultNullMX:
		return []color.Attribute{color.FgCyan, color.Bold}
	case route.ResultNoMail:
		return []color.Attribute{color.FgYellow, color.Bold}
	}
	return []color.Attribute{color.FgRed, color.Bold}
}

func severityColor(s finding.Severity) []color.Attribute {
	switch s {
	case finding.Error:
		return []color.Attribute{color.FgRed}
	case finding.Warning:
		return []color.Attribute{color.FgYellow}
	}
	return []color.Attribute{color.FgCyan}
}

// WriteRoute writes a plan as a table a person reads at a glance: a heading
// with the result, the tiers with their hosts and addresses, the attempt
// order, then the findings with their fixes.
func WriteRoute(w io.Writer, p *route.Plan, st Style) error {
	bold := st.paint(color.Bold)
	dim := st.paint(color.Faint)
	var b strings.Builder

	fmt.Fprintf(&b, "%s  %s", bold(p.Domain), st.paint(resultColor(p.Result)...)(p.Result))
	switch {
	case p.Result == route.ResultOK && p.Implicit:
		b.WriteString("  implicit MX: no MX records, the domain's own address is used")
	case p.Result == route.ResultOK:
		fmt.Fprintf(&b, "  %s in %s", prose.Count(len(p.Hosts()), "exchange"), prose.Count(len(p.Tiers), "tier"))
	case p.Result == route.ResultError:
		fmt.Fprintf(&b, "  %s", Plain(p.Error))
	}
	fmt.Fprintf(&b, "  %s\n", dim(fmt.Sprintf("(%d ms)", p.ElapsedMS)))
	if len(p.AliasChain) > 0 {
		fmt.Fprintf(&b, "  alias: %s → %s\n", p.Domain, strings.Join(p.AliasChain, " → "))
	}

	if err := writePlanTable(&b, p, st); err != nil {
		return err
	}
	writeFindings(&b, p.Findings, st)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writePlanTable writes the tiers, hosts, addresses and problems of a plan
// and its attempt order (or the bare records when nothing was planned).
func writePlanTable(b *strings.Builder, p *route.Plan, st Style) error {
	if len(p.Tiers) > 0 {
		var table strings.Builder
		tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
		// Only the last column may carry colour: escape codes would count
		// as width in tabwriter and break the alignment.
		fmt.Fprintf(tw, "  PREF\tEXCHANGE\tADDRESSES\tPROBLEMS\n")
		for _, t := range p.Tiers {
			for i, h := range t.Hosts {
				pref := ""
				if i == 0 {
					pref = fmt.Sprint(t.Preference)
				}
				name := h.Name
				if h.CanonicalName != "" {
					name += " → " + h.CanonicalName
				}
				addrs := h.Addresses
				if len(addrs) == 0 {
					addrs = []string{"-"}
				}
				probs := make([]string, len(h.Problems))
				for j, id := range h.Problems {
					probs[j] = string(id)
				}
				problems := ""
				if len(probs) > 0 {
					problems = st.paint(color.FgRed)(strings.Join(probs, " "))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", pref, name, addrs[0], problems)
				for _, a := range addrs[1:] {
					fmt.Fprintf(tw, "  \t\t%s\t\n", a)
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		// tabwriter pads every cell, the empty last ones too.
		for l := range strings.Lines(table.String()) {
			b.WriteString(strings.TrimRight(l, " \n"))
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "  order: %s\n", strings.Join(p.Order, ", "))
	} else if len(p.Records) > 0 && p.Result != route.ResultNullMX {
		// A person reads the first route.DefaultMaxExchanges, as many as
		// a plan would resolve; the JSON has them all.
		shown := p.Records[:min(len(p.Records), route.DefaultMaxExchanges)]
		for _, r := range shown {
			fmt.Fprintf(b, "  MX %d %s\n", r.Preference, r.Exchange)
		}
		if more := len(p.Records) - len(shown) + p.RecordsOmitted; more > 0 {
			fmt.Fprintf(b, "  … and %s\n", prose.Count(more, "more MX record"))
		}
	}
	return nil
}

// writeFindings lists findings worst first, each with its fix.
func writeFindings(b *strings.Builder, fs []finding.Finding, st Style) {
	for _, f := range fs {
		sev := st.paint(severityColor(f.Severity)...)(fmt.Sprintf("%-7s", f.Severity))
		fmt.Fprintf(b, "  %s %s  %s\n", sev, f.ID, f.Message)
		if f.Severity > finding.Info && f.Fix != "" {
			ref := ""
			if f.Reference != "" {
				ref = " (" + f.Reference + ")"
			}
			fmt.Fprintf(b, "          %s %s%s\n", st.paint(color.Faint)("fix:"), f.Fix, ref)
		}
	}
}

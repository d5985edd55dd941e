package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/spf"
)

// WriteSPF prints the result for a person: the result line, the deciding
// path, the counts, then the record tree and the findings.
func WriteSPF(w io.Writer, o *spf.Evaluation, st Style) error {
	var b strings.Builder
	// A domain or HELO name taken from the session may be empty (sender
	// "user@"): shown as "", not as nothing.
	shown := func(s string) string {
		if s == "" {
			return `""`
		}
		return s
	}
	fmt.Fprintf(&b, "%s  %s  for %s (sender %s, helo %s)  (%d ms)\n",
		shown(clip(o.Domain, maxShownName)), o.Status, o.IP, shownSender(o.Sender), shown(clip(o.HELO, maxShownName)), o.ElapsedMS)
	why := Plain(o.Reason)
	if why != "" {
		fmt.Fprintf(&b, "  why: %s\n", clip(why, maxShownText))
	}
	if o.Explanation != "" {
		fmt.Fprintf(&b, "  explanation: %s\n", clip(o.Explanation, maxShownText))
	}
	if path := spfPath(o.Path, why); len(path) > 0 {
		b.WriteString("  decided by:\n")
		for _, l := range path {
			b.WriteString("    " + l + "\n")
		}
	}
	fmt.Fprintf(&b, "  evaluation: %s, %s (limits %d and %d)\n",
		prose.Count(o.Lookups, "DNS-querying term"), prose.Count(o.VoidLookups, "void lookup"), spf.MaxLookups, spf.MaxVoidLookups)

	// A tree without a root record says only what the why line said.
	if o.Tree != nil && o.Tree.Record != "" {
		fmt.Fprintf(&b, "  record tree: %s, %s in all", prose.Count(o.TreeLookups, "DNS-querying term"), prose.Count(o.TreeVoidLookups, "void lookup"))
		if o.Incomplete {
			b.WriteString(" (incomplete)")
		}
		b.WriteString("\n")
		writeSPFNode(&b, o.Tree, "    ", "    ")
	}
	if e := Plain(o.Error); e != "" && !strings.Contains(why, e) {
		fmt.Fprintf(&b, "  analysis failed: %s\n", e)
	}
	writeFindings(&b, o.Findings, st)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// spfPath returns the lines of the deciding path, each step's detail
// left out when the why line already says it. A path that then tells no
// more than the result line (one step, no term, nothing left to say) is
// left out.
func spfPath(path []spf.Step, why string) []string {
	var lines []string
	said := false
	for i, s := range path {
		via := ""
		if s.Via != "" {
			via = s.Via + " → "
		}
		term := s.Term
		switch {
		case term != "":
		case s.Record == "" && s.Result == spf.TempError:
			term = "(lookup failed)"
		case s.Record == "" && s.Result == spf.None:
			term = "(no record)"
		default:
			term = "(no term)"
		}
		l := fmt.Sprintf("%s%s%s: %s  %s", strings.Repeat("  ", i), via, s.Domain, term, s.Result)
		if d := Plain(s.Detail); d != "" && !strings.Contains(why, d) {
			l += "  (" + d + ")"
			said = true
		}
		said = said || s.Term != ""
		lines = append(lines, l)
	}
	if len(path) == 1 && !said {
		return nil
	}
	return lines
}

// writeSPFNode prints one record of the tree and, indented, its children.
func writeSPFNode(b *strings.Builder, n *spf.Node, first, rest string) {
	b.WriteString(first)
	if n.Term != "" {
		b.WriteString(n.Term + "  ")
	} else {
		b.WriteString(n.Domain + "  ")
	}
	switch {
	case n.Record != "":
		fmt.Fprintf(b, "%q  ", n.Record)
	case len(n.Errors) == 0:
		// With errors, they say why there is no record.
		b.WriteString("(no record)  ")
	}
	fmt.Fprintf(b, "[%s", prose.Count(n.Lookups, "lookup"))
	if n.TotalLookups != n.Lookups {
		fmt.Fprintf(b, ", %d with includes", n.TotalLookups)
	}
	if n.VoidLookups > 0 {
		fmt.Fprintf(b, ", %s", prose.Count(n.VoidLookups, "void lookup"))
	}
	b.WriteString("]\n")
	for _, e := range n.Errors {
		fmt.Fprintf(b, "%s  ! %s\n", rest, Plain(e))
	}
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			writeSPFNode(b, c, rest+"└─ ", rest+"   ")
		} else {
			writeSPFNode(b, c, rest+"├─ ", rest+"│  ")
		}
	}
}

// Bounds on what the result line and the why and explanation lines print
// of values taken from the session: a name is at most 253 characters (RFC
// 1035 §2.3.4), a local part at most 64 octets (RFC 5321 §4.5.3.1.1), an
// SMTP reply line at most 512 octets (RFC 5321 §4.5.3.1.5). JSON keeps
// the values whole.
const (
	maxShownName  = 253
	maxShownLocal = 64
	maxShownText  = 512
)

// clip returns s, or its first max octets and how long it was.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + fmt.Sprintf("… (%d octets in all)", len(s))
}

// shownSender is the sender for the result line: a local part over 64
// octets (RFC 5321 §4.5.3.1.1) is cut there and its length said; the
// evaluation used it whole for %{l} and %{s}.
func shownSender(sender string) string {
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return clip(sender, maxShownName)
	}
	local, domain := sender[:at], clip(sender[at+1:], maxShownName)
	if len(local) <= maxShownLocal {
		return local + "@" + domain
	}
	return fmt.Sprintf("%s…@%s [local part of %d octets, more than the %d of RFC 5321 §4.5.3.1.1]",
		strings.ToValidUTF8(local[:maxShownLocal], ""), domain, len(local), maxShownLocal)
}

package finding

import (
	"fmt"
	"strings"
)

// Markdown renders the catalogue as the reference page docs/findings.md:
// one section per area, one entry per ID with its severity, meaning,
// reference, fix and an example that triggers it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Finding catalogue\n\n")
	b.WriteString("Every finding mxtrace reports has a stable `id` (scripts may match on it), a `severity`\n")
	b.WriteString("(`error`, `warning`, `info`), a `subject` (the name or address it is about), a `message`,\n")
	b.WriteString("a `reference` and a `fix`. This page is generated from `finding/catalogue.go`\n")
	b.WriteString("(`go test ./finding -update`); a test fails when the two disagree.\n")
	var area Area
	for _, e := range Catalogue {
		if e.Area != area {
			area = e.Area
			fmt.Fprintf(&b, "\n## %s\n", area)
		}
		fmt.Fprintf(&b, "\n### `%s` (%s)\n\n%s\n\n", e.ID, e.Severity, e.Title)
		if e.Reference != "" {
			fmt.Fprintf(&b, "- Reference: %s\n", e.Reference)
		}
		fmt.Fprintf(&b, "- Fix: %s\n", e.Fix)
		fmt.Fprintf(&b, "- Example: %s\n", e.Example)
	}
	return b.String()
}

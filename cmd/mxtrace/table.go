package main

import (
	"io"
	"strings"
	"text/tabwriter"
)

// aligned lays out the tab-separated lines that write writes in columns
// two spaces apart, without the padding tabwriter leaves at the end of a
// line whose last cells are empty: the tables of watch list and relay
// queue list.
func aligned(write func(tw io.Writer)) (string, error) {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	write(tw)
	if err := tw.Flush(); err != nil {
		return "", err
	}
	var b strings.Builder
	for l := range strings.Lines(table.String()) {
		b.WriteString(strings.TrimRight(l, " \n") + "\n")
	}
	return b.String(), nil
}

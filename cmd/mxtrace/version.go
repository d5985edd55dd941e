package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxtrace/mxtrace/report"
)

// buildVersion is what `mxtrace version` prints: the module version, the
// commit it was built from, and the Go that built it, all read from the
// binary's build information (runtime/debug.ReadBuildInfo).
type buildVersion struct {
	// Version is the module's version: a tag (v1.2.0), a pseudo-version,
	// or "(devel)" for a build from a working tree (go build, go run).
	Version string `json:"version"`
	// Commit, Time and Modified are the VCS state stamped by go build
	// (vcs.revision, vcs.time, vcs.modified); empty and false when the
	// build had none (go run, -buildvcs=false, a build outside git).
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// readVersion reads the version from build information (ok false: none,
// as in a binary built without module support).
func readVersion(bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the version for a person, one line.
func (v buildVersion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mxtrace %s", v.Version)
	switch {
	case v.Commit != "":
		fmt.Fprintf(&b, ", commit %s", v.Commit)
		if v.Time != "" {
			fmt.Fprintf(&b, " (%s)", v.Time)
		}
		if v.Modified {
			b.WriteString(" with uncommitted changes")
		}
	case v.Version == "(devel)":
		b.WriteString(", commit unknown (not stamped: go run, or -buildvcs=false)")
	}
	fmt.Fprintf(&b, ", %s %s", v.Go, v.Platform)
	return b.String()
}

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mxtrace's version, the commit it was built from, and the Go that built it",
		Long: `version prints the module version (a release tag, or "(devel)" for a build
from a working tree), the VCS commit and its time (and whether the tree had
uncommitted changes), and the Go version and platform, as recorded in the
binary. --json prints them as one object. mxtrace --version prints the same
line.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := readVersion(debug.ReadBuildInfo())
			var err error
			if g.json {
				err = report.WriteJSON(g.stdout, v)
			} else {
				_, err = fmt.Fprintln(g.stdout, v)
			}
			if err != nil {
				return &exitError{exitFailed, err}
			}
			return nil
		},
	}
}

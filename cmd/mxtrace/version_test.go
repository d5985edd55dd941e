package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestReadVersion: what the build information holds, in one line.
func TestReadVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/mxtrace/mxtrace", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{stamped, true, "mxtrace v1.4.0, commit 0123abcd (2026-12-01T10:00:00Z) with uncommitted changes, go1.26.1 " + platform},
		{&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}}, true, "mxtrace v1.4.0, go1.26.1 " + platform},
		{&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}}, true,
			"mxtrace (devel), commit unknown (not stamped: go run, or -buildvcs=false), go1.26.1 " + platform},
		{nil, false, "mxtrace (devel), commit unknown (not stamped: go run, or -buildvcs=false), " + runtime.Version() + " " + platform},
	} {
		if got := readVersion(tc.bi, tc.ok).String(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestVersion: mxtrace version and mxtrace --version print the same line,
// with the Go version; --json prints it as an object.
func TestVersion(t *testing.T) {
	code, out, errOut := mxtrace(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "mxtrace ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
		t.Errorf("version: exit %d, %q (stderr %q)", code, out, errOut)
	}
	if code, flag, _ := mxtrace(t, "--version"); code != exitOK || flag != out {
		t.Errorf("--version: exit %d, %q; want %q", code, flag, out)
	}
	if _, help, _ := mxtrace(t, "--help"); !strings.Contains(help, "--version  ") || strings.Contains(help, "version for mxtrace") {
		t.Errorf("--help does not describe --version in the tool's words:\n%s", help)
	}
	code, out, _ = mxtrace(t, "version", "--json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || v.Version == "" || v.Go != runtime.Version() {
		t.Errorf("version --json: exit %d, %q (%v)", code, out, err)
	}
	if code, _, errOut := mxtrace(t, "version", "extra"); code != exitUsage || !strings.Contains(errOut, "unknown command") && !strings.Contains(errOut, "accepts 0 arg") {
		t.Errorf("version extra: exit %d, %q", code, errOut)
	}
}

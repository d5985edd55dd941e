package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/internal/golden"
)

// TestSPFTextGolden pins spf's text for a person, one case per way an
// evaluation ends: no Go package prefixes ("why: spf: ..."), and no
// reason said twice in one block (the why line again in parentheses on
// the path, a path that only repeats the result line). Rewrite with
// go test ./cmd/mxtrace -run TestSPFTextGolden -update.
func TestSPFTextGolden(t *testing.T) {
	const zone = "testdata/spf-text.zone"
	var all strings.Builder
	for _, args := range [][]string{
		{"via.example.test", "--ip", "192.0.2.7"},
		{"noinclude.example.test", "--ip", "192.0.2.7"},
		{"redir.example.test", "--ip", "192.0.2.7"},
		{"nospf.example.test", "--ip", "192.0.2.7"},
		{"neutral.example.test", "--ip", "192.0.2.7"},
		{"broken.example.test", "--ip", "192.0.2.7"},
		{"--sender", "<>", "--helo", "a..b.example.test", "--ip", "192.0.2.7"},
	} {
		code, out, errOut := mxtrace(t, append([]string{"spf", "--zone", zone}, args...)...)
		if code != exitOK {
			t.Errorf("%q: exit %d, stderr %s", args, code, errOut)
		}
		if strings.Contains(out, "spf: ") {
			t.Errorf("%q: a Go package prefix in\n%s", args, out)
		}
		for l := range strings.Lines(out) {
			if why, ok := strings.CutPrefix(strings.TrimSpace(l), "why: "); ok && strings.Count(out, why) > 1 {
				t.Errorf("%q: the reason %q is said twice in\n%s", args, why, out)
			}
		}
		all.WriteString(stable(out))
	}
	golden.Check(t, filepath.Join("testdata", "spf.text"), []byte(all.String()))
}

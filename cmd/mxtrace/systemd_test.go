package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSystemdUnits: the example units (docs/serve.md, docs/relay.md)
// and the serve unit's drop-in pass systemd-analyze verify with nothing to
// say: no unknown key, no bad value, no missing section. The units name
// /usr/local/bin/mxtrace, which verify wants to exist: a copy names this
// test binary instead. It skips where systemd-analyze is not installed,
// CI included (it is not among the peers CI installs).
func TestServeSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src := "../../examples/systemd"
	dir := t.TempDir()
	var units []string
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		to := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".service") && filepath.Dir(rel) == "." {
			units = append(units, to)
		}
		return os.WriteFile(to, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/mxtrace", self)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(units) < 2 {
		t.Fatalf("found %d units in %s, want the serve and relay ones", len(units), src)
	}
	for _, u := range units {
		cmd := exec.CommandContext(t.Context(), analyze, "verify", u)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(u), err, out)
		}
	}
}

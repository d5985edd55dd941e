package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeQuickStart runs every mxtrace command of README.md's quick
// start, as written (from the repository's root, where the reader runs
// them), and requires exit status 0: a first command that ends in "exit
// status 1" looks broken. The quick start must show mxtrace version.
func TestReadmeQuickStart(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var commands [][]string
	inCode := false
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
		case inCode && strings.HasPrefix(line, "go run ./cmd/mxtrace "):
			if strings.ContainsAny(line, `'"|<>;&$`+"`") {
				t.Fatalf("%q: quoting or shell syntax this test does not run; keep quick-start commands plain", line)
			}
			commands = append(commands, strings.Fields(line)[3:])
		}
	}
	if len(commands) < 3 || !strings.Contains(section, "go run ./cmd/mxtrace version\n") {
		t.Fatalf("found %d mxtrace commands in the quick start, and it must show mxtrace version: %q", len(commands), commands)
	}
	t.Chdir("../..")
	for _, args := range commands {
		code, out, errOut := mxtrace(t, args...)
		if code != exitOK || out == "" {
			t.Errorf("mxtrace %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanTornOneByte: a torn last line of one byte is "1 byte".
func TestScanTornOneByte(t *testing.T) {
	list := writeList(t, scanDomains...)
	part := filepath.Join(t.TempDir(), "part.jsonl")
	if code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", "-o", part, list); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	full, _ := os.ReadFile(part)
	lines := strings.SplitAfter(string(full), "\n")
	os.WriteFile(part, []byte(strings.Join(lines[:2], "")+"{"), 0o644)
	code, _, errOut := mxtrace(t, "scan", "--zone", exampleZone, "--seed", "1", "-o", part, "--resume", list)
	if code != exitOK || !strings.Contains(errOut, "cut a torn last line (1 byte)") {
		t.Errorf("resume: exit %d: %s", code, errOut)
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/check"
)

// TestCheckShortNamesAreas: check's one-line help names every area by the
// name the report prints ("reverse DNS", not "PTR"), SMTP and tiers too.
func TestCheckShortNamesAreas(t *testing.T) {
	short := checkCommand(&globals{}).Short
	for _, c := range check.Checks() {
		if !strings.Contains(short, string(c.Area)) {
			t.Errorf("check's help %q does not name the area %q", short, c.Area)
		}
	}
}

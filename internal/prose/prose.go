// Package prose builds the small pieces of English that mxtrace's summaries
// and finding messages share: a counted noun ("1 tier", "3 addresses") and
// a list ("a, b and c"), so every report says them the same way.
package prose

import (
	"strconv"
	"strings"
)

// Count says "1 tier", "2 tiers", "3 addresses", "4 queries": the
// regular English plural, with "es" after a final "s" or "x", and "ies"
// for a final "y" after a consonant.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	// One concatenation, one string: every audit's summaries count.
	stem, suffix := plural(noun)
	return strconv.Itoa(n) + " " + stem + suffix
}

// plural returns noun's plural as a stem and the suffix to append to it.
func plural(noun string) (stem, suffix string) {
	switch {
	case strings.HasSuffix(noun, "s"), strings.HasSuffix(noun, "x"):
		return noun, "es"
	case len(noun) > 1 && noun[len(noun)-1] == 'y' && !strings.ContainsRune("aeiou", rune(noun[len(noun)-2])):
		return noun[:len(noun)-1], "ies"
	}
	return noun, "s"
}

// List joins "a", "a and b", "a, b and c".
func List(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

package prose

import (
	"fmt"
	"testing"
)

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "tier", "0 tiers"},
		{1, "tier", "1 tier"},
		{2, "exchange", "2 exchanges"},
		{1, "address", "1 address"},
		{3, "address", "3 addresses"},
		{2, "void lookup", "2 void lookups"},
		{4, "query", "4 queries"},
		{0, "retry", "0 retries"},
		{2, "day", "2 days"},
		{2, "box", "2 boxes"},
		{1, "query", "1 query"},
	} {
		if got := Count(tt.n, tt.noun); got != tt.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}

func TestList(t *testing.T) {
	for _, tt := range []struct {
		items []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a and b"},
		{[]string{"a", "b", "c"}, "a, b and c"},
	} {
		if got := List(tt.items); got != tt.want {
			t.Errorf("List(%q) = %q, want %q", tt.items, got, tt.want)
		}
	}
}

func Example() {
	fmt.Println(Count(3, "address") + " on " + List([]string{"mx1", "mx2", "mx3"}))
	// Output: 3 addresses on mx1, mx2 and mx3
}

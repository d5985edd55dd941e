package send

import (
	"strings"
	"testing"
)

func TestQueueID(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"2.0.0 Ok: queued as 4Xyz12AbCd", "4Xyz12AbCd"},
		{"Ok: queued as 4Xyz12AbCd", "4Xyz12AbCd"},
		{"2.0.0 Ok: QUEUED AS ABC123.", "ABC123"},
		{"OK id=1tAbCd-000Xyz-9Q", "1tAbCd-000Xyz-9Q"},
		{"2.0.0 5A1B2C3D4E Message accepted for delivery", "5A1B2C3D4E"},
		{"2.0.0 Message accepted for delivery", ""},
		{"2.0.0 OK  1700000000 a1b2c3si123.45 - gsmtp", ""},
		{"Ok: queued as", ""},
		{"queued as <ID42>", "ID42"},
		{"queued as " + strings.Repeat("x", 100), ""},
		{"id=", ""},
		{"", ""},
	} {
		if got := QueueID(tt.text); got != tt.want {
			t.Errorf("QueueID(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// FuzzQueueID: whatever the reply, an ID found is a short printable word
// of the text, and put back in Postfix's wording it is found again.
func FuzzQueueID(f *testing.F) {
	for _, s := range []string{
		"2.0.0 Ok: queued as 4Xyz12AbCd",
		"OK id=1tAbCd-000Xyz-9Q",
		"2.0.0 5A1B2C3D4E Message accepted for delivery",
		"queued as <x>",
		"id=id=id=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		id := QueueID(text)
		if id == "" {
			return
		}
		if len(id) > maxQueueID || strings.ContainsAny(id, " \t\r\n") || !strings.Contains(text, id) {
			t.Fatalf("QueueID(%q) = %q", text, id)
		}
		if again := QueueID("2.0.0 Ok: queued as " + id); again != id {
			t.Fatalf("QueueID of %q re-formatted = %q", id, again)
		}
	})
}

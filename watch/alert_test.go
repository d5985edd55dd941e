package watch

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	good := []struct {
		in   string
		kind TargetKind
		str  string
	}{
		{"log", TargetLog, "log"},
		{"https://hooks.example.org/mxtrace", TargetWebhook, "https://hooks.example.org/mxtrace"},
		{"HTTPS://hooks.example.org/x?team=mail", TargetWebhook, "https://hooks.example.org/x?team=mail"},
		{"http://127.0.0.1:8080/hook", TargetWebhook, "http://127.0.0.1:8080/hook"},
		{"https://[2001:db8::1]/hook", TargetWebhook, "https://[2001:db8::1]/hook"},
		{"mailto:postmaster@example.org", TargetMail, "mailto:postmaster@example.org"},
		{"MAILTO:ops@example.org", TargetMail, "mailto:ops@example.org"},
		{"mailto:ops%2Bmx@example.org", TargetMail, "mailto:ops+mx@example.org"},
	}
	for _, c := range good {
		tg, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.in, err)
			continue
		}
		if tg.Kind != c.kind || tg.String() != c.str {
			t.Errorf("ParseTarget(%q) = %s %q, want %s %q", c.in, tg.Kind, tg, c.kind, c.str)
		}
		// What String gives is read back the same: the store keeps it.
		if again, err := ParseTarget(tg.String()); err != nil || again.String() != tg.String() {
			t.Errorf("ParseTarget(%q) again: %v, %v", tg, again, err)
		}
	}
	bad := []string{
		"", "logs", "example.org", "ftp://example.org/", "https://", "https:///path",
		"https://user:pass@example.org/hook", "https://example.org/hook#frag",
		"https://example.org:0/", "https://example.org:99999/", "https://example.org:x/",
		"mailto:", "mailto:nobody", "mailto:a@b.example?subject=hi", "mailto:a@b.example,c@d.example",
		"mailto:Ops <ops@example.org>", "mailto:ops@example.org%0D%0ABcc:x@y", "mailto:@example.org",
		"https://example.org/" + strings.Repeat("a", maxTargetLen),
	}
	for _, in := range bad {
		if tg, err := ParseTarget(in); !errors.Is(err, ErrTarget) {
			t.Errorf("ParseTarget(%q) = %v, %v; want ErrTarget", in, tg, err)
		}
	}
}

func TestNoticeSummaryAndID(t *testing.T) {
	n := Notice{Schema: NoticeSchema, Kind: AlertChange, Domain: "example.org", Status: "problems",
		At:      time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC),
		Changes: []NoticeChange{{Kind: "mx-added", Message: "exchange mx2.example.org added"}, {Message: "x"}}}
	if got, want := n.Summary(), "example.org: exchange mx2.example.org added (and 1 more)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	for kind, want := range map[AlertKind]string{
		AlertRecovery:         "example.org: recovered",
		AlertReminder:         "example.org: still failing: exchange mx2.example.org added (and 1 more)",
		AlertConfirmedFailure: "example.org: could not be checked: exchange mx2.example.org added (and 1 more)",
	} {
		n := n
		n.Kind = kind
		if got := n.Summary(); got != want {
			t.Errorf("%s: Summary = %q, want %q", kind, got, want)
		}
	}
	body, _ := json.Marshal(&n)
	b, got, err := withID(body, 42)
	if err != nil || got.ID != 42 || !strings.Contains(string(b), `"id":42`) {
		t.Errorf("withID = %s, %+v, %v", b, got, err)
	}
	if _, _, err := withID([]byte("{"), 1); err == nil {
		t.Error("withID accepted a broken body")
	}
}

// FuzzParseTarget: whatever parses prints as a target that parses to the
// same, and a mail target never carries a line break or a second address.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"log", "https://hooks.example.org/a?b=c", "http://127.0.0.1:8080/", "mailto:ops@example.org",
		"mailto:a%40b@example.org", "https://[::1]:443/", "mailto:\"a b\"@example.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again.String() != tg.String() || again.Kind != tg.Kind {
			t.Fatalf("%q → %q → %v, %v", s, tg, again, err)
		}
		if tg.Kind == TargetMail && strings.ContainsAny(tg.Addr, "\r\n,") {
			t.Fatalf("%q: mail address %q", s, tg.Addr)
		}
	})
}

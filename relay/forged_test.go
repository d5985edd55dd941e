package relay

import (
	"strings"
	"testing"
)

// TestDropOwnResults: Authentication-Results fields that claim the
// relay's own authserv-id are removed from the header, whatever their
// case, comments or folding; others' stay, as does the body, even a body
// line that looks like such a field (RFC 8601 §5).
func TestDropOwnResults(t *testing.T) {
	const id = "mx2.example.com"
	for _, tt := range []struct {
		name, in, want string
		dropped        int
	}{
		{"none", "From: a@b.example\r\n\r\nbody\r\n", "From: a@b.example\r\n\r\nbody\r\n", 0},
		{"forged", "Authentication-Results: mx2.example.com; dmarc=pass\r\nFrom: a@b.example\r\n\r\nbody\r\n",
			"From: a@b.example\r\n\r\nbody\r\n", 1},
		{"case and comment", "authentication-results: (forged) MX2.Example.COM (x); spf=pass\r\nSubject: s\r\n\r\n",
			"Subject: s\r\n\r\n", 1},
		{"folded", "Subject: s\r\nAuthentication-Results:\r\n mx2.example.com;\r\n\tdkim=pass header.d=b.example\r\nFrom: a@b.example\r\n\r\nx",
			"Subject: s\r\nFrom: a@b.example\r\n\r\nx", 1},
		{"with a version", "Authentication-Results: mx2.example.com 1; dmarc=pass\r\n\r\n", "\r\n", 1},
		{"quoted", "Authentication-Results: \"mx2.example.com\"; dmarc=pass\r\n\r\n", "\r\n", 1},
		{"another server's", "Authentication-Results: mx.other.example; dmarc=pass\r\n\r\n",
			"Authentication-Results: mx.other.example; dmarc=pass\r\n\r\n", 0},
		{"a longer name", "Authentication-Results: mx2.example.com.evil; dmarc=pass\r\n\r\n",
			"Authentication-Results: mx2.example.com.evil; dmarc=pass\r\n\r\n", 0},
		{"in the body", "From: a@b.example\r\n\r\nAuthentication-Results: mx2.example.com; dmarc=pass\r\n",
			"From: a@b.example\r\n\r\nAuthentication-Results: mx2.example.com; dmarc=pass\r\n", 0},
		{"bare LF", "Authentication-Results: mx2.example.com; dmarc=pass\nFrom: a@b.example\n\nbody\n", "From: a@b.example\n\nbody\n", 1},
		{"two of them", "Authentication-Results: mx2.example.com; spf=pass\r\nX: y\r\nAuthentication-Results: mx2.example.com; dkim=pass\r\n\r\n",
			"X: y\r\n\r\n", 2},
		{"no body, no end", "Authentication-Results: mx2.example.com; dmarc=pass", "", 1},
		{"unclosed comment", "Authentication-Results: (mx2.example.com; dmarc=pass\r\n\r\n",
			"Authentication-Results: (mx2.example.com; dmarc=pass\r\n\r\n", 0},
	} {
		got, n := dropOwnResults([]byte(tt.in), id)
		if string(got) != tt.want || n != tt.dropped {
			t.Errorf("%s: %q, %d dropped; want %q, %d", tt.name, got, n, tt.want, tt.dropped)
		}
	}
}

// FuzzDropOwnResults: whatever the message, the result is never longer,
// its body (after the first empty line) is untouched, and a second pass
// finds nothing more to drop.
func FuzzDropOwnResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx2.example.com; dmarc=pass\r\nFrom: a@b.example\r\n\r\nbody\r\n"))
	f.Add([]byte("Authentication-Results: ((x)) mx2.example.com\r\n \r\n\r\n"))
	f.Add([]byte("X\n\nAuthentication-Results: mx2.example.com;\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := string(msg)
		got, _ := dropOwnResults(msg, "mx2.example.com")
		if len(got) > len(in) {
			t.Fatalf("grew: %q -> %q", in, got)
		}
		if i := strings.Index(in, "\n\n"); i >= 0 && !strings.HasSuffix(string(got), in[i+2:]) {
			t.Fatalf("the body changed: %q -> %q", in, got)
		}
		again, n := dropOwnResults([]byte(string(got)), "mx2.example.com")
		if n != 0 || string(again) != string(got) {
			t.Fatalf("a second pass dropped %d more from %q", n, got)
		}
	})
}

// TestForgedResultsRemoved: a message that arrives with an
// Authentication-Results field in the relay's name is queued without it;
// one in another server's name stays (RFC 8601 §5).
func TestForgedResultsRemoved(t *testing.T) {
	q := &fakeQueue{}
	_, addr := startServer(t, testConfig(q))
	c := dial(t, addr)
	c.want("EHLO client.example", 250)
	body := "Authentication-Results: relay.example; dmarc=pass header.from=bank.example\r\n" +
		"Authentication-Results: mx.other.example; spf=fail\r\n" +
		"From: a@bank.example\r\nSubject: hi\r\n\r\nbody\r\n"
	if code, msg := c.send("a@sender.example", []string{"user@d.example"}, body); code != 250 {
		t.Fatalf("data: %d %s", code, msg)
	}
	msgs := q.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d queued", len(msgs))
	}
	data := string(msgs[0].Data)
	want := "Authentication-Results: mx.other.example; spf=fail\r\nFrom: a@bank.example\r\nSubject: hi\r\n\r\nbody\r\n"
	if strings.Contains(data, "relay.example; dmarc=pass") || !strings.HasSuffix(data, want) || !strings.HasPrefix(data, "Received: ") {
		t.Errorf("queued:\n%s", data)
	}
}

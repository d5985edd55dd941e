package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	arrival = time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)
	now     = time.Date(2026, 12, 7, 9, 30, 5, 0, time.UTC)
)

const original = "Received: from client.example.net ([192.0.2.7])\r\n\tby relay.example.test with ESMTP id 42\r\n" +
	"From: Alice <alice@example.net>\r\nTo: bob@example.test, carol@example.test\r\nSubject: lunch\r\n" +
	"Message-ID: <1@example.net>\r\n\r\nThe body, which never goes back.\r\n"

func failedReport() Report {
	return Report{
		ReportingMTA: "relay.example.test",
		Sender:       "alice@example.net",
		Arrival:      arrival,
		Date:         now,
		MessageID:    "dsn1@relay.example.test",
		Boundary:     "dsn-boundary-1",
		Recipients: []Recipient{
			{FinalRecipient: "bob@example.test", Action: ActionFailed, Status: "5.1.1", RemoteMTA: "mx1.example.test",
				Diagnostic: "550 5.1.1 <bob@example.test>: Recipient address rejected: User unknown", LastAttempt: now},
			{FinalRecipient: "carol@example.test", Action: ActionFailed, Status: "4.4.7", RemoteMTA: "mx1.example.test",
				Diagnostic: "451 4.3.0 try again later", LastAttempt: now.Add(-time.Minute)},
		},
		Original: []byte(original),
	}
}

func delayedReport() Report {
	return Report{
		ReportingMTA: "relay.example.test",
		Sender:       "alice@example.net",
		Arrival:      arrival,
		Date:         arrival.Add(4 * time.Hour),
		MessageID:    "dsn2@relay.example.test",
		Boundary:     "dsn-boundary-2",
		Recipients: []Recipient{
			{FinalRecipient: "bob@example.test", Action: ActionDelayed, Status: "4.4.1", Reason: "connect: connection refused",
				LastAttempt: arrival.Add(4 * time.Hour), WillRetryUntil: arrival.Add(120 * time.Hour)},
		},
		Original: []byte(strings.ReplaceAll(original, "\r\n", "\n")),
	}
}

// TestGolden compares whole notifications with testdata/*.eml (go test
// -update rewrites them).
func TestGolden(t *testing.T) {
	for name, r := range map[string]Report{"failed": failedReport(), "delayed": delayedReport()} {
		t.Run(name, func(t *testing.T) {
			got, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".eml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", path, got)
			}
		})
	}
}

// TestParseBack reads a notification as a mail client does (net/mail,
// mime/multipart) and checks each part and each delivery-status field.
func TestParseBack(t *testing.T) {
	b, err := Build(failedReport())
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"From": "Mail Delivery System <MAILER-DAEMON@relay.example.test>", "To": "<alice@example.net>",
		"Auto-Submitted": "auto-replied", "Subject": "Undelivered Mail Returned to Sender",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date %v %v, want %v", d, err, now)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %s %v %v", mt, params, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		parts = append(parts, body)
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	if !strings.Contains(string(parts[0]), "<bob@example.test>: failed\r\n    mx1.example.test said: 550 5.1.1") {
		t.Errorf("text part:\n%s", parts[0])
	}
	// RFC 3464 §2.1: blocks of header-like fields, blank-line separated.
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(parts[1])))
	var blocks []textproto.MIMEHeader
	for {
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			blocks = append(blocks, h)
		}
		if err != nil {
			break
		}
	}
	if len(blocks) != 3 {
		t.Fatalf("%d delivery-status blocks, want 3:\n%s", len(blocks), parts[1])
	}
	if blocks[0].Get("Reporting-MTA") != "dns; relay.example.test" || blocks[0].Get("Arrival-Date") != arrival.Format(time.RFC1123Z) {
		t.Errorf("per-message fields %v", blocks[0])
	}
	bob, carol := blocks[1], blocks[2]
	for k, want := range map[string]string{
		"Final-Recipient": "rfc822; bob@example.test", "Action": "failed", "Status": "5.1.1",
		"Remote-MTA": "dns; mx1.example.test", "Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.test>: Recipient address rejected: User unknown",
		"Last-Attempt-Date": now.Format(time.RFC1123Z),
	} {
		if got := bob.Get(k); got != want {
			t.Errorf("bob %s: %q, want %q", k, got, want)
		}
	}
	if carol.Get("Status") != "4.4.7" || carol.Get("Will-Retry-Until") != "" {
		t.Errorf("carol %v", carol)
	}
	h, err := mail.ReadMessage(bytes.NewReader(append(parts[2], '\r', '\n')))
	if err != nil || h.Header.Get("Message-ID") != "<1@example.net>" || h.Header.Get("Subject") != "lunch" {
		t.Errorf("returned header %v %v", h, err)
	}
	if strings.Contains(string(b), "never goes back") {
		t.Errorf("the original body was returned")
	}
}

// TestDelayed: a delayed notice says when the relay gives up, and a
// failed one never does (RFC 3464 §2.3.8).
func TestDelayed(t *testing.T) {
	b, err := Build(delayedReport())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"Subject: Delayed Mail (still being retried)\r\n", "Action: delayed\r\n", "Status: 4.4.1\r\n",
		"\r\n    connect: connection refused\r\n", "Will-Retry-Until: " + arrival.Add(120*time.Hour).Format(time.RFC1123Z) + "\r\n", "\r\nSubject: lunch\r\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	r := failedReport()
	r.Recipients[0].WillRetryUntil = now.Add(time.Hour)
	if b, _ := Build(r); strings.Contains(string(b), "Will-Retry-Until") {
		t.Errorf("a failed recipient has Will-Retry-Until")
	}
}

// TestRefused: reports Build will not write.
func TestRefused(t *testing.T) {
	for name, mod := range map[string]func(*Report){
		"null sender":        func(r *Report) { r.Sender = "" },
		"no recipient":       func(r *Report) { r.Recipients = nil },
		"header injection":   func(r *Report) { r.Sender = "a@b\r\nBcc: victim@example.org" },
		"recipient CRLF":     func(r *Report) { r.Recipients[0].FinalRecipient = "b@x\r\nX: y" },
		"bad reporting MTA":  func(r *Report) { r.ReportingMTA = "relay example" },
		"bad remote MTA":     func(r *Report) { r.Recipients[0].RemoteMTA = "mx;\n" },
		"delivered action":   func(r *Report) { r.Recipients[0].Action = "delivered" },
		"delayed with 5.x.x": func(r *Report) { r.Recipients[0].Action = ActionDelayed },
		"2.x.x status":       func(r *Report) { r.Recipients[0].Status = "2.0.0" },
		"status syntax":      func(r *Report) { r.Recipients[0].Status = "5.1" },
		"quote in boundary":  func(r *Report) { r.Boundary = `a"b` },
	} {
		r := failedReport()
		mod(&r)
		if b, err := Build(r); !errors.Is(err, ErrReport) || b != nil {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// TestHostileInput: a diagnostic with control characters stays on its
// line, an overlong one is cut, and an original with no end to its header
// is returned only up to MaxOriginalHeader.
func TestHostileInput(t *testing.T) {
	r := failedReport()
	r.Boundary, r.MessageID = "", ""
	r.Recipients[0].Diagnostic = "550 evil\r\nX-Injected: yes\x00" + strings.Repeat("x", 5000)
	r.Recipients[1].FinalRecipient = strings.Repeat("a", 680) + "@example.test"
	r.Recipients[1].RemoteMTA = strings.Repeat("m", 250)
	r.Original = bytes.Repeat([]byte("X-Long: "+strings.Repeat("y", 100)+"\n"), 2000)
	b, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("\r\nX-Injected")) {
		t.Errorf("the diagnostic broke out of its line")
	}
	for _, l := range strings.Split(string(b), "\r\n") {
		if len(l) > 998 {
			t.Errorf("a line of %d octets", len(l))
		}
	}
	if n := bytes.Count(b, []byte("X-Long: ")); n == 0 || n*110 > MaxOriginalHeader {
		t.Errorf("%d original header lines returned", n)
	}
	if _, err := mail.ReadMessage(bytes.NewReader(b)); err != nil {
		t.Errorf("unreadable: %v", err)
	}
}

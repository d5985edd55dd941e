package dsn_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dsn"
)

// A relay returns a message its destination refused for good: the
// notification goes to the envelope sender, from MAILER-DAEMON, and is
// itself sent with the null reverse path.
func ExampleBuild() {
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	b, err := dsn.Build(dsn.Report{
		ReportingMTA: "relay.example.test",
		Sender:       "alice@example.net",
		Arrival:      at.Add(-time.Minute),
		Date:         at,
		Recipients: []dsn.Recipient{{
			FinalRecipient: "bob@example.test",
			Action:         dsn.ActionFailed,
			Status:         "5.1.1",
			RemoteMTA:      "mx1.example.test",
			Diagnostic:     "550 5.1.1 no such user",
			LastAttempt:    at,
		}},
		Original: []byte("From: alice@example.net\r\nSubject: lunch\r\n\r\nbody\r\n"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The machine-readable part (RFC 3464 §2.2, §2.3).
	s := string(b)
	start := strings.Index(s, "Reporting-MTA:")
	end := strings.Index(s[start:], "\r\n\r\n--")
	for l := range strings.SplitSeq(s[start:start+end], "\r\n") {
		fmt.Println(l)
	}
	// Output:
	// Reporting-MTA: dns; relay.example.test
	// Arrival-Date: Mon, 07 Dec 2026 09:29:00 +0000
	//
	// Final-Recipient: rfc822; bob@example.test
	// Action: failed
	// Status: 5.1.1
	// Remote-MTA: dns; mx1.example.test
	// Diagnostic-Code: smtp; 550 5.1.1 no such user
	// Last-Attempt-Date: Mon, 07 Dec 2026 09:30:00 +0000
}

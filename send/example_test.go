package send_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// A Sender plans the route of the recipient's domain and tries its
// exchanges in order. This domain publishes a Null MX, so nothing is
// dialled: the error says why, and its kind is what the CLI maps to an
// exit status.
func ExampleSender_Send() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.test.
@ 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ 3600 IN MX 0 .
`), "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &send.Sender{
		Planner:   &route.Planner{Resolver: zones},
		HelloName: "client.example.net",
		Timeouts:  dial.SMTPTimeouts{Session: 2 * time.Minute, Connect: 10 * time.Second, Command: time.Minute},
		Observer: func(e send.Event) {
			if e.Kind == send.EventPlan {
				fmt.Println("route:", e.Plan.Result)
			}
		},
	}
	res, err := s.Send(context.Background(), &send.Message{From: "mxtrace@client.example.net", To: "user@example.test"})
	fmt.Println("accepted:", res.Accepted, "attempts:", len(res.Attempts))
	fmt.Println("kind:", send.KindOf(err), "permanent:", errors.Is(err, send.ErrPermanent))
	// Output:
	// route: null-mx
	// accepted: false attempts: 0
	// kind: no-route permanent: true
}

// Bytes builds the RFC 5322 message that Send delivers.
func ExampleMessage_Bytes() {
	m := &send.Message{
		From:      "mxtrace@client.example.net",
		To:        "user@example.test",
		Subject:   "Grüße",
		Body:      "Hello.\n",
		Date:      time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
		MessageID: "1234@client.example.net",
	}
	b, err := m.Bytes()
	if err != nil {
		fmt.Println(err)
		return
	}
	os.Stdout.Write([]byte(strings.ReplaceAll(string(b), "\r\n", "\n")))
	// Output:
	// Date: Fri, 14 Mar 2025 15:09:26 +0000
	// Message-ID: <1234@client.example.net>
	// From: <mxtrace@client.example.net>
	// To: <user@example.test>
	// Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: 7bit
	//
	// Hello.
}

func ExampleQueueID() {
	fmt.Println(send.QueueID("2.0.0 Ok: queued as 4Xyz12AbCd"))
	fmt.Println(send.QueueID("OK id=1tAbCd-000Xyz-9Q"))
	// Output:
	// 4Xyz12AbCd
	// 1tAbCd-000Xyz-9Q
}

// Deliver forwards raw message bytes to several recipients of one domain,
// as a relay does, and says what became of each. A relay that is itself
// the domain's only exchange (Planner.Self) has nowhere to send: the
// recipients stay deferred with the mail loop named, never bounced.
func ExampleSender_Deliver() {
	zones, err := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.test.
@ 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ 3600 IN MX 10 relay
relay 3600 IN A 192.0.2.20
`), "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &send.Sender{Planner: &route.Planner{Resolver: zones, Self: "relay.example.test"}, HelloName: "relay.example.test"}
	res, err := s.Deliver(context.Background(), send.Envelope{
		From: "alice@example.net",
		To:   []string{"bob@example.test", "carol@example.test"},
		Data: []byte("Subject: hi\r\n\r\nHello.\r\n"),
	})
	for _, r := range res.Recipients {
		fmt.Println(r.Recipient, r.Status)
	}
	fmt.Println("mail loop:", errors.Is(err, route.ErrMailLoop))
	// Output:
	// bob@example.test deferred
	// carol@example.test deferred
	// mail loop: true
}

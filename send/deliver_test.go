package send

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/route"
)

// rawMessage has a line starting with a dot: it must arrive as it is,
// which only dot-stuffing on the wire and unstuffing by the server give.
const rawMessage = "From: a@client.example.test\r\nTo: b@example.test\r\nSubject: raw\r\n\r\nline one\r\n.leading dot\r\n"

func statuses(res *Result) []string {
	var out []string
	for _, r := range res.Recipients {
		out = append(out, r.Recipient+" "+string(r.Status))
	}
	return out
}

// TestDeliverRaw: the bytes arrive as given, to every recipient in one
// transaction, from the null sender; each recipient is accepted with the
// server's queue ID.
func TestDeliverRaw(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	s := newSender(t, zones(t, baseZone), port)
	to := []string{"a@example.test", "b@EXAMPLE.test"}
	res, err := s.Deliver(t.Context(), Envelope{From: "", To: to, Data: []byte(rawMessage)})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	msgs := mx1.Messages()
	if len(msgs) != 1 || mx1.Transactions() != 1 {
		t.Fatalf("mx1 got %d messages in %d transactions; want 1 and 1", len(msgs), mx1.Transactions())
	}
	if msgs[0].From != "" || !slices.Equal(msgs[0].To, to) || string(msgs[0].Data) != rawMessage {
		t.Errorf("delivered %q → %v:\n%q\nwant <> → %v:\n%q", msgs[0].From, msgs[0].To, msgs[0].Data, to, rawMessage)
	}
	if got, want := statuses(res), []string{"a@example.test accepted", "b@EXAMPLE.test accepted"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	for _, r := range res.Recipients {
		if r.QueueID != msgs[0].QueueID || r.Host != "mx1.example.test" || r.Code != 250 {
			t.Errorf("recipient %+v: want queue ID %s at mx1 with 250", r, msgs[0].QueueID)
		}
	}
	if !res.Accepted || res.Domain != "example.test" || res.To != "" {
		t.Errorf("accepted %v domain %q to %q", res.Accepted, res.Domain, res.To)
	}
}

// TestDeliverMixedRcpt: RFC 5321 §3.3 and §4.2.1 per recipient: the one
// accepted gets the message at mx1, the one refused with 450 is tried at
// the next exchange and delivered there, the one refused with 550 is
// rejected and tried nowhere else; the error is permanent because that is
// the only failure left.
func TestDeliverMixedRcpt(t *testing.T) {
	port := smtptest.Port(t)
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: func(to string) error {
		switch to {
		case "busy@example.test":
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		case "nobody@example.test":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port), Rcpt: func(to string) error {
		if to == "nobody@example.test" {
			t.Errorf("mx2 was asked for %s, rejected for good at mx1", to)
		}
		return nil
	}})
	s := newSender(t, zones(t, baseZone), port)
	res, err := s.Deliver(t.Context(), Envelope{From: "s@client.example.test",
		To: []string{"ok@example.test", "busy@example.test", "nobody@example.test"}, Data: []byte(rawMessage)})
	if !errors.Is(err, ErrPermanent) || KindOf(err) != KindPermanent || !strings.Contains(err.Error(), "550 to RCPT: no such user") {
		t.Fatalf("err %v, want a permanent failure naming the 550", err)
	}
	if got, want := statuses(res), []string{"ok@example.test accepted", "busy@example.test accepted", "nobody@example.test rejected"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	m1, m2 := mx1.Messages(), mx2.Messages()
	if len(m1) != 1 || !slices.Equal(m1[0].To, []string{"ok@example.test"}) {
		t.Errorf("mx1 messages %+v, want one to ok@", m1)
	}
	if len(m2) != 1 || !slices.Equal(m2[0].To, []string{"busy@example.test"}) {
		t.Errorf("mx2 messages %+v, want one to busy@", m2)
	}
	r := res.Recipients[2]
	if r.Code != 550 || r.Enhanced != "5.1.1" || r.Reply != "no such user" || r.Stage != StageRcpt || r.Host != "mx1.example.test" {
		t.Errorf("rejected recipient %+v", r)
	}
	if b := res.Recipients[1]; b.Host != "mx2.example.test" || b.QueueID != m2[0].QueueID {
		t.Errorf("deferred-then-accepted recipient %+v", b)
	}
}

// TestDeliverAllRefused: every RCPT refused means no DATA (RFC 5321 §3.3);
// a 4xx among them leaves that recipient deferred after the route is
// exhausted, and the error is temporary.
func TestDeliverAllRefused(t *testing.T) {
	port := smtptest.Port(t)
	rcpt := func(to string) error {
		if strings.HasPrefix(to, "busy") {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many recipients"}
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Rcpt: rcpt})
	mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port), Rcpt: rcpt})
	res, err := newSender(t, zones(t, baseZone), port).Deliver(t.Context(), Envelope{From: "s@client.example.test",
		To: []string{"nobody@example.test", "busy@example.test"}, Data: []byte(rawMessage)})
	if KindOf(err) != KindTemporary {
		t.Fatalf("err %v (%s), want temporary", err, KindOf(err))
	}
	if got, want := statuses(res), []string{"nobody@example.test rejected", "busy@example.test deferred"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	if b := res.Recipients[1]; b.Code != 452 || b.Host != "mx2.example.test" {
		t.Errorf("deferred recipient %+v: want mx2's 452", b)
	}
	if len(mx1.Messages())+len(mx2.Messages()) != 0 {
		t.Errorf("a message was delivered with no accepted recipient")
	}
	wantOutcomes(t, res, "mx1.example.test rcpt deferred", "mx2.example.test rcpt deferred")
}

// TestDeliverDataRejected: a 5xx to the message data rejects every
// recipient of the transaction; no other exchange is tried.
func TestDeliverDataRejected(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port), Data: func(string, []string, []byte) error {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
	}})
	mx2 := smtptest.Start(t, smtptest.Options{Addr: at(3, port)})
	res, err := newSender(t, zones(t, baseZone), port).Deliver(t.Context(), Envelope{From: "s@client.example.test",
		To: []string{"a@example.test", "b@example.test"}, Data: []byte(rawMessage)})
	if KindOf(err) != KindPermanent {
		t.Fatalf("err %v, want permanent", err)
	}
	if got, want := statuses(res), []string{"a@example.test rejected", "b@example.test rejected"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	if r := res.Recipients[0]; r.Code != 554 || r.Enhanced != "5.7.1" || r.Stage != StageMessage {
		t.Errorf("recipient %+v: want 554 5.7.1 at the message", r)
	}
	if mx2.Connections() != 0 {
		t.Errorf("mx2 was tried after a permanent rejection")
	}
}

// TestDeliverRoutes: a domain without a mail route rejects every
// recipient; a relay that is the most preferred exchange itself (RFC 5321
// §5.1 --self pruning leaves nothing) defers them with the mail loop named.
func TestDeliverRoutes(t *testing.T) {
	env := Envelope{From: "s@client.example.test", To: []string{"a@example.test"}, Data: []byte(rawMessage)}
	nullMX := zones(t, "$ORIGIN example.test.\n@ 3600 IN SOA ns.example.test. h.example.test. 1 3600 600 86400 300\n@ 3600 IN MX 0 .\n")
	res, err := newSender(t, nullMX, 25).Deliver(t.Context(), env)
	if KindOf(err) != KindNoRoute || statuses(res)[0] != "a@example.test rejected" || res.Recipients[0].Error == "" {
		t.Errorf("null MX: err %v, recipients %+v", err, res.Recipients)
	}
	s := newSender(t, zones(t, baseZone), 25)
	s.Planner = &route.Planner{Resolver: s.Planner.Resolver, Self: "mx1.example.test"}
	res, err = s.Deliver(t.Context(), env)
	if !errors.Is(err, route.ErrMailLoop) || statuses(res)[0] != "a@example.test deferred" || !strings.Contains(res.Recipients[0].Error, "mail loop") {
		t.Errorf("self at 10: err %v, recipients %+v", err, res.Recipients)
	}
	if len(res.Attempts) != 0 {
		t.Errorf("attempts %v with no exchange left", outcomes(res))
	}
}

// TestDeliverEnvelope: envelopes Deliver refuses before any lookup.
func TestDeliverEnvelope(t *testing.T) {
	s := newSender(t, zones(t, baseZone), 25)
	for _, e := range []Envelope{
		{From: "s@c.test", Data: []byte(rawMessage)},
		{From: "s@c.test", To: []string{"a@example.test"}},
		{From: "s@c.test", To: []string{"a@example.test", "b@other.test"}, Data: []byte(rawMessage)},
		{From: "s@c.test", To: []string{"postmaster"}, Data: []byte(rawMessage)},
	} {
		res, err := s.Deliver(t.Context(), e)
		if !errors.Is(err, ErrMessage) || len(res.Attempts) != 0 || res.Route != nil {
			t.Errorf("%+v: err %v, %d attempts", e.To, err, len(res.Attempts))
		}
	}
}

// TestSendJSONUnchanged: send --json has no recipients member (Deliver's
// addition is omitted for Send).
func TestSendJSONUnchanged(t *testing.T) {
	port := smtptest.Port(t)
	smtptest.Start(t, smtptest.Options{Addr: at(2, port)})
	res, err := newSender(t, zones(t, baseZone), port).Send(t.Context(), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"recipients"`) || !strings.Contains(string(b), `"to":"user@example.test"`) {
		t.Errorf("send JSON: %s", b)
	}
}

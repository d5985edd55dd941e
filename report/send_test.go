package report_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// sendEvents is a delivery with a greylisting round, a deferred primary,
// a policy note and a retry.
func sendEvents() ([]send.Event, *send.Result) {
	plan := &route.Plan{Domain: "example.test", Result: route.ResultOK,
		Tiers: []route.Tier{{Preference: 10, Hosts: []route.Host{{Name: "mx1.example.test"}}}, {Preference: 20, Hosts: []route.Host{{Name: "mx2.example.test"}}}},
		Order: []string{"mx1.example.test", "mx2.example.test"}}
	refused := &send.Attempt{Round: 1, Host: "mx1.example.test", Address: "192.0.2.1", Rule: send.RuleOpportunistic, Stage: send.StageConnect,
		Outcome: send.OutcomeDeferred, Error: "connect: connection refused"}
	grey := &send.Attempt{Round: 1, Host: "mx2.example.test", Address: "192.0.2.2", Rule: send.RuleMTASTSTesting, Stage: send.StageRcpt,
		Outcome: send.OutcomeDeferred, Code: 451, Enhanced: "4.7.1", Reply: "greylisted", Error: "451 4.7.1 greylisted",
		PolicyNote: "the server does not offer STARTTLS"}
	ok := &send.Attempt{Round: 2, Host: "mx2.example.test", Address: "192.0.2.2", Rule: send.RuleDANE, Stage: send.StageMessage,
		Outcome: send.OutcomeAccepted, Code: 250, Enhanced: "2.0.0", Reply: "Ok: queued as ABC123",
		TLS: &send.TLSState{Version: "TLS 1.3", Verified: true, Method: "dane"}}
	events := []send.Event{
		{Kind: send.EventMTASTS, MTASTS: &send.MTASTSState{Mode: "testing", MX: []string{"*.example.test"}}},
		{Kind: send.EventPlan, Round: 1, Plan: plan},
		{Kind: send.EventConnect, Host: refused.Host, Address: refused.Address},
		{Kind: send.EventLine, Line: "S: 220 hidden without -v"},
		{Kind: send.EventAttempt, Attempt: refused},
		{Kind: send.EventConnect, Host: grey.Host, Address: grey.Address},
		{Kind: send.EventAttempt, Attempt: grey},
		{Kind: send.EventWait, Round: 1, Wait: 31 * time.Second, Schedule: []time.Duration{30 * time.Second, time.Minute}},
		{Kind: send.EventPlan, Round: 2, Plan: plan},
		{Kind: send.EventConnect, Host: ok.Host, Address: ok.Address},
		{Kind: send.EventAttempt, Attempt: ok},
	}
	res := &send.Result{Accepted: true, Host: ok.Host, Address: ok.Address, QueueID: "ABC123", TLS: ok.TLS,
		Attempts: []send.Attempt{*refused, *grey, *ok}, Rounds: 2, ElapsedMS: 31500}
	return events, res
}

func TestSendPrinter(t *testing.T) {
	events, res := sendEvents()
	var b bytes.Buffer
	p := &report.SendPrinter{W: &b}
	p.Start("mxtrace@client.example.test", "user@example.test", "1@client.example.test")
	p.Retry(send.Retry{Base: 30 * time.Second, Factor: 2, Max: 5 * time.Minute, For: 10 * time.Minute})
	for _, e := range events {
		p.Event(e)
	}
	if err := report.WriteSend(&b, res, report.Style{}); err != nil || p.Err != nil {
		t.Fatal(err, p.Err)
	}
	want := `send to user@example.test  from mxtrace@client.example.test  Message-ID <1@client.example.test>
  retry: up to 4 more rounds within 10m, waiting 30s, 1m, 2m, 4m (each plus up to 10%)
  MTA-STS: mode testing, mx *.example.test
  route: example.test ok  10: mx1.example.test; 20: mx2.example.test
  order: mx1.example.test, mx2.example.test
  mx1.example.test [192.0.2.1]  deferred at connect: connect: connection refused
  mx2.example.test [192.0.2.2]  deferred at rcpt: 451 4.7.1 greylisted  [rule mta-sts-testing]
      MTA-STS testing, enforce would refuse: the server does not offer STARTTLS
  every exchange deferred; waiting 31s before round 2 (backoff from here: 30s, 1m, each plus up to 10%)
  round 2, route: example.test ok  10: mx1.example.test; 20: mx2.example.test
  order: mx1.example.test, mx2.example.test
  mx2.example.test [192.0.2.2]  accepted: 250 2.0.0 Ok: queued as ABC123  (TLS 1.3, certificate matches DANE)  [rule dane]
accepted by mx2.example.test [192.0.2.2] as ABC123  (TLS 1.3, certificate matches DANE; 3 attempts in 2 rounds, 32s)
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestSendPrinterTranscript: with Transcript every line is printed, and
// the attempt line follows it on its own.
func TestSendPrinterTranscript(t *testing.T) {
	events, _ := sendEvents()
	var b bytes.Buffer
	p := &report.SendPrinter{W: &b, Transcript: true}
	for _, e := range events[2:5] {
		p.Event(e)
	}
	want := `  mx1.example.test [192.0.2.1]  connecting
      S: 220 hidden without -v
  mx1.example.test [192.0.2.1]  deferred at connect: connect: connection refused
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteSendFailure(t *testing.T) {
	var b bytes.Buffer
	res := &send.Result{Error: "permanent failure: mx [192.0.2.1] answered 550 to RCPT: no such user", Kind: send.KindPermanent,
		Attempts: []send.Attempt{{}}, Rounds: 1, ElapsedMS: 12}
	if err := report.WriteSend(&b, res, report.Style{Color: true}); err != nil {
		t.Fatal(err)
	}
	got := escapes.ReplaceAllString(b.String(), "")
	if want := "not delivered: permanent failure: mx [192.0.2.1] answered 550 to RCPT: no such user  (1 attempt in 1 round, 12ms)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !strings.Contains(b.String(), "\x1b[") {
		t.Errorf("no colour")
	}
}

// failWriter fails every write.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) { f.n++; return 0, errors.New("disk full") }

func TestSendPrinterWriteError(t *testing.T) {
	events, _ := sendEvents()
	w := &failWriter{}
	p := &report.SendPrinter{W: w}
	for _, e := range events {
		p.Event(e)
	}
	if p.Err == nil || w.n != 1 {
		t.Errorf("err %v after %d writes; want the first error kept and no more writes", p.Err, w.n)
	}
}

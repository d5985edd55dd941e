package relay

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
)

// TestCalloutPostfix asks a real Postfix, the primary of d.test at
// 127.0.0.2, which refuses bob at RCPT (check_recipient_access) and takes
// every other local part of d.test.
func TestCalloutPostfix(t *testing.T) {
	pf := peers.StartPostfix(t, peers.PostfixConfig{
		Hostname:  "mx1.d.test",
		Domains:   []string{"d.test"},
		Listeners: []peers.PostfixListener{{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 0), Name: "primary"}},
		Reject:    map[string]string{"bob@d.test": "550 5.1.1 no such user"},
	})
	l, _ := pf.Listener("primary")
	c, _ := newCallout(t, int(l.Addr.Port()), DownTempfail)
	if v := verify(c, "alice"); !v.Accepted() {
		t.Errorf("alice: %q", v.Error())
	}
	v := verify(c, "bob")
	if v.Code != 550 || v.Enhanced != "5.1.1" || !strings.Contains(v.Message, "no such user") {
		t.Errorf("bob: %q, want 550 5.1.1 with Postfix's text", v.Error())
	}
	// The callout never sent a message, and closed its transactions
	// with RSET and QUIT (Postfix logs after the session: wait for it).
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	log, err := pf.WaitLog(wctx, "NOQUEUE: reject: RCPT", "rset=1", "quit=1")
	if err != nil {
		t.Errorf("%v: no RCPT refusal, RSET or QUIT in Postfix's log:\n%s", err, log)
	}
	if got := pf.Received(); len(got) != 0 {
		t.Errorf("Postfix received %d messages", len(got))
	}
	// Postfix stops: the primary is down, and so is the answer for
	// someone never verified.
	if err := pf.Stop(); err != nil {
		t.Fatal(err)
	}
	if v := verify(c, "carol"); v.Code != 451 || v.Enhanced != "4.4.1" {
		t.Errorf("carol with Postfix stopped: %q, want 451 4.4.1", v.Error())
	}
	if v := verify(c, "alice"); !v.Accepted() {
		t.Errorf("alice, verified a moment ago: %q", v.Error())
	}
}

package integration

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/watch"
)

// TestWatchMailPostfix submits alerts to a real Postfix offering STARTTLS:
// the message goes over TLS with the alert's Message-ID; Postfix's 550 is
// a permanent failure and its 450 a temporary one; a Postfix without
// STARTTLS gets nothing.
func TestWatchMailPostfix(t *testing.T) {
	ip, ip2 := netip.AddrFrom4([4]byte{127, 0, 0, 31}), netip.AddrFrom4([4]byte{127, 0, 0, 32})
	port, err := peers.FreePortOn(ip, ip2)
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, "mxtrace alert mail CA")
	cert := ca.Leaf(t, testpki.LeafOptions{Names: []string{"submit.alerts.test"}})
	p := peers.StartPostfix(t, peers.PostfixConfig{
		Hostname: "submit.alerts.test",
		Domains:  []string{"alerts.test"},
		Listeners: []peers.PostfixListener{
			{Addr: netip.AddrPortFrom(ip, uint16(port)), Name: "submit", TLS: &cert},
			{Addr: netip.AddrPortFrom(ip2, uint16(port)), Name: "plain"},
		},
		Reject: map[string]string{
			"gone@alerts.test": "550 5.1.1 no such user",
			"grey@alerts.test": "450 4.2.0 try again later",
		},
	})
	submit, _ := p.Listener("submit")
	plain, _ := p.Listener("plain")
	m := &watch.Mailer{Server: submit.Addr.String(), ServerName: "submit.alerts.test", RootCAs: ca.Pool,
		From: "mxtrace@alerts.test", Hostname: "watcher.alerts.test", Timeout: 20 * time.Second}
	n := &watch.Notice{Schema: watch.NoticeSchema, ID: 4242, Kind: watch.AlertChange, Domain: "shop.example",
		At: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), Status: "problems",
		Changes: []watch.NoticeChange{{Kind: "exchange-added", Subject: "mx2.shop.example", Severity: "info", Message: "mx2.shop.example was added."}}}
	target := func(s string) watch.Target {
		t.Helper()
		tg, err := watch.ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}

	if err := m.Send(t.Context(), target("mailto:ops@alerts.test"), n, time.Now()); err != nil {
		t.Fatalf("Send: %v\n%s", err, p.Log())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got, err := p.WaitReceived(ctx, 1)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	d := got[0]
	if d.TLSVersion() == "" || d.From != "mxtrace@alerts.test" || !slices.Equal(d.To, []string{"ops@alerts.test"}) ||
		!strings.HasPrefix(d.MessageID, "mxtrace-alert-4242.") || d.Listener != "submit" {
		t.Errorf("Postfix received %+v", d)
	}

	for to, permanent := range map[string]bool{"gone@alerts.test": true, "grey@alerts.test": false} {
		err := m.Send(t.Context(), target("mailto:"+to), n, time.Now())
		if e, ok := errors.AsType[*watch.Error](err); !ok || e.Permanent != permanent {
			t.Errorf("%s: %v; want permanent %v", to, err, permanent)
		}
	}
	noTLS := *m
	noTLS.Server = plain.Addr.String()
	if err := noTLS.Send(t.Context(), target("mailto:ops@alerts.test"), n, time.Now()); !errors.Is(err, watch.ErrNoTLS) {
		t.Errorf("a server without STARTTLS: %v; want ErrNoTLS", err)
	}
	if got := p.Received(); len(got) != 1 {
		t.Errorf("Postfix received %d messages, want 1: %+v", len(got), got)
	}
}

package watch

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/store"
)

// TestAlertScenario runs the whole path on one SQLite store: Runner with
// AlertPolicy, then Deliverer, for a domain whose zone changes between
// checks, whose resolver fails once (a hiccup), then twice, then
// recovers; the webhook receiver and the SMTP sink get exactly the
// expected alerts, each once, and nothing else.
func TestAlertScenario(t *testing.T) {
	res := newTestResolver(t, shopZone)
	s := openStore(t)
	rc := &receiver{}
	hook := startReceiver(t, rc)
	ca := testpki.NewCA(t, "scenario CA")
	sk := startSink(t, ca)
	targets := []string{hook.String(), "mailto:ops@example.org"}
	if err := s.AddWatch(t.Context(), store.Watch{Domain: "shop.example", Every: time.Hour, Alerts: targets}); err != nil {
		t.Fatal(err)
	}
	policy := &AlertPolicy{Store: s, Remind: 24 * time.Hour}
	r := &Runner{Store: s, Auditor: auditor(res), Worker: "w", Policy: policy.Alerts}
	d := &Deliverer{Store: s, Webhook: &Webhook{Secret: testSecret},
		Mailer: &Mailer{Server: sk.addr, ServerName: "mail.test", RootCAs: ca.Pool, From: "mxtrace@example.org", Username: "alerts", Password: "hunter2"}}

	var got []string // what the receiver got, in order: kind and change kinds
	step := func(name string, zone string, fail bool, want ...string) {
		t.Helper()
		if zone != "" {
			z, err := resolve.ParseZones(strings.NewReader(zone), "test.zone")
			if err != nil {
				t.Fatal(err)
			}
			res.zones = z
		}
		res.fail.Store(fail)
		c, err := r.RunOnce(t.Context(), true)
		if err != nil || len(c) != 1 || c[0].Err != nil {
			t.Fatalf("%s: RunOnce: %v %+v", name, err, c)
		}
		if _, err := d.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		bodies, _, _ := rc.received()
		var now []string
		for _, b := range bodies[len(got):] {
			var n Notice
			if err := json.Unmarshal(b, &n); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, ch := range n.Changes {
				kinds = append(kinds, ch.Kind)
			}
			now = append(now, fmt.Sprintf("%s %s", n.Kind, strings.Join(kinds, " ")))
		}
		got = append(got, now...)
		if !slices.Equal(now, want) {
			t.Errorf("%s: the receiver got %q, want %q", name, now, want)
		}
	}
	step("baseline", "", false)
	step("no change", "", false)
	step("exchange added", strings.Replace(shopZone, "shop 3600 IN MX 20 mx2.shop", "shop 3600 IN MX 20 mx2.shop\nshop 300 IN MX 30 mx3.shop\nmx3.shop 3600 IN A 192.0.2.27", 1), false,
		"change exchange-added")
	step("one failed check", "", true)
	step("back", "", false)
	step("failed", "", true)
	step("failed again: confirmed", "", true, "confirmed-failure could-not-check")
	step("still failing, before the reminder", "", true)
	step("recovered", "", false, "recovery ")

	// The sink got one message per webhook request, each a distinct alert.
	msgs := sk.messages()
	if len(msgs) != len(got) {
		t.Errorf("the sink got %d messages, the receiver %d alerts", len(msgs), len(got))
	}
	_, ids, requests := rc.received()
	if requests != len(got) || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Errorf("%d requests for %d alerts, IDs %v", requests, len(got), ids)
	}
	as, err := s.Alerts(t.Context(), "shop.example", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Sent.IsZero() {
			t.Errorf("alert %d to %s not sent: %+v", a.ID, a.Target, a)
		}
	}
}

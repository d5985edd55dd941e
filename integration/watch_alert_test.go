package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/resolve/stub"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// shopZone is the watched zone at serial; extra lines are added to it.
func shopZone(serial int, extra ...string) string {
	return fmt.Sprintf(`$TTL 300
@        SOA  ns1 hostmaster %d 7200 900 1209600 300
@        NS   ns1
ns1      A    127.0.0.1
@        MX   10 mx1
mx1      A    192.0.2.25
`, serial) + strings.Join(extra, "\n") + "\n"
}

const reverseZone = `$TTL 300
@   SOA  ns1.shop.example. hostmaster.shop.example. 1 7200 900 1209600 300
@   NS   ns1.shop.example.
25  PTR  mx1.shop.example.
26  PTR  mx2.shop.example.
27  PTR  mx2.shop.example.
`

// hookReceiver verifies every webhook request and keeps the accepted
// notices.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []watch.Notice
	ids    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = watch.Verify(h.secret, r.Header, body, time.Now(), 0)
	}
	if err != nil {
		h.t.Errorf("webhook receiver: %v", err)
		http.Error(w, "refused", http.StatusUnauthorized)
		return
	}
	var n watch.Notice
	if err := json.Unmarshal(body, &n); err != nil {
		h.t.Errorf("webhook receiver: %v", err)
	}
	h.mu.Lock()
	h.got = append(h.got, n)
	h.ids = append(h.ids, r.Header.Get(watch.HeaderAlertID))
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) notices() []watch.Notice {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// TestWatchAlertsKnot is the scripted scenario: Knot serves the watched
// zone, and between checks the test rewrites the zone file and reloads it
// (knotc zone-reload): an exchange added, its address changed, removed,
// then an exchange whose PTR question Knot refuses (a check that cannot
// be completed) and its removal. Every check goes through the runner with
// the alert policy, then the deliverer; the expected alerts, and nothing
// else, reach a webhook receiver that verifies their signature and an SMTP
// sink with STARTTLS.
func TestWatchAlertsKnot(t *testing.T) {
	knotc := peers.Binary(t, "knotc", "knot")
	// The reverse zone answers the PTR questions, so every area is judged
	// (a REFUSED there makes the check temporary).
	k := peers.StartKnot(t, peers.Zone{Origin: "shop.example.", Text: shopZone(1)},
		peers.Zone{Origin: "2.0.192.in-addr.arpa.", Text: reverseZone})
	st, err := stub.New(stub.Config{Servers: []string{k.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// reload rewrites the zone file and has Knot load it, then waits for
	// the new serial.
	reload := func(serial int, extra ...string) {
		t.Helper()
		text := "$ORIGIN shop.example.\n" + shopZone(serial, extra...)
		if err := os.WriteFile(filepath.Join(k.Dir, "zone0.zone"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, knotc, "-s", filepath.Join(k.Dir, "knot.sock"), "zone-reload", "shop.example.").CombinedOutput(); err != nil {
			t.Fatalf("knotc zone-reload: %v\n%s", err, out)
		}
		for {
			c := &dns.Client{Timeout: time.Second}
			m := new(dns.Msg)
			m.SetQuestion("shop.example.", dns.TypeSOA)
			if r, _, err := c.ExchangeContext(ctx, m, k.Addr); err == nil && len(r.Answer) == 1 {
				if soa, ok := r.Answer[0].(*dns.SOA); ok && soa.Serial == uint32(serial) {
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("Knot did not load serial %d", serial)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	ca := testpki.NewCA(t, "watch alerts CA")
	sink := smtptest.Start(t, smtptest.Options{Hostname: "mail.test", TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: []string{"mail.test"}})}}})
	secret := []byte("integration secret")
	hook := &hookReceiver{t: t, secret: secret}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)

	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "watch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddWatch(t.Context(), store.Watch{Domain: "shop.example", Every: time.Hour,
		Alerts: []string{srv.URL + "/hook", "mailto:ops@example.org"}}); err != nil {
		t.Fatal(err)
	}
	policy := &watch.AlertPolicy{Store: s}
	r := &watch.Runner{Store: s, Worker: "knot-test", Policy: policy.Alerts,
		Auditor: &check.Auditor{Resolver: st, Planner: &route.Planner{Resolver: st, IPv4: true}, SkipReason: "the test stays on loopback"}}
	d := &watch.Deliverer{Store: s, Webhook: &watch.Webhook{Secret: secret},
		Mailer: &watch.Mailer{Server: sink.Addr().String(), ServerName: "mail.test", RootCAs: ca.Pool, From: "mxtrace@example.org"}}

	seen := 0
	run := func(name string, want ...string) {
		t.Helper()
		c, err := r.RunOnce(t.Context(), true)
		if err != nil || len(c) != 1 || c[0].Err != nil {
			t.Fatalf("%s: RunOnce: %v %+v", name, err, c)
		}
		if _, err := d.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range hook.notices()[seen:] {
			var kinds []string
			for _, ch := range n.Changes {
				kinds = append(kinds, ch.Kind+" "+ch.Subject)
			}
			got = append(got, string(n.Kind)+": "+strings.Join(kinds, ", "))
		}
		seen += len(got)
		// Alerts are sent several at a time: in no fixed order.
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the webhook got %q, want %q", name, got, want)
		}
	}
	run("baseline")
	run("unchanged")
	reload(2, "@ MX 20 mx2", "mx2 A 192.0.2.26")
	// A second exchange: no longer a single point of failure.
	run("exchange added", "change: exchange-added mx2.shop.example", "change: finding-resolved shop.example")
	reload(3, "@ MX 20 mx2", "mx2 A 192.0.2.27")
	run("address changed", "change: address-changed mx2.shop.example")
	reload(4)
	run("exchange removed", "change: exchange-removed mx2.shop.example")
	run("unchanged again")
	// An exchange in a reverse zone Knot does not serve: its PTR
	// question is REFUSED, so the domain cannot be checked in full. Once
	// is a hiccup; twice is confirmed; then it recovers.
	reload(5, "@ MX 30 mx3", "mx3 A 198.51.100.7")
	run("could not check, once")
	run("could not check, twice", "confirmed-failure: could-not-check shop.example")
	run("could not check, three times")
	reload(6)
	run("recovered", "recovery: ")

	msgs := sink.Messages()
	if len(msgs) != seen {
		t.Errorf("the SMTP sink got %d messages, the webhook %d alerts", len(msgs), seen)
	}
	for _, m := range msgs {
		if !m.TLS || !slices.Equal(m.To, []string{"ops@example.org"}) || !strings.Contains(string(m.Data), "Subject: [mxtrace] shop.example: ") {
			t.Errorf("message to %v, TLS %v:\n%s", m.To, m.TLS, m.Data)
		}
	}
}

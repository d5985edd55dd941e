package relay

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/mtasts"
	"github.com/mxtrace/mxtrace/resolve"
)

// tlsCase is one delivery to example.test's primary mx1 (the relay's
// only candidate: it prunes itself at 20 and mx3 at 30) under the
// destination's TLS policy.
type tlsCase struct {
	name string
	// zone is added to relayZones, in example.test.
	zone string
	// tls is mx1's STARTTLS configuration; nil: it offers none.
	tls *tls.Config
	// delivered: the message reaches mx1, over TLS; otherwise it stays
	// in the queue, deferred (never failed, never notified), and mx1
	// never has it.
	delivered bool
	// reason is in the deferral the queue records.
	reason string
	// unlisted: mx1 is no candidate at all (RFC 8461 §4.1), so it must
	// not even be connected to.
	unlisted bool
}

// runTLSCase delivers one queued message to bob@example.test through d
// and checks the outcome against tt.
func runTLSCase(t *testing.T, tt tlsCase, port int, d *Deliverer, q *memQueue) {
	t.Helper()
	mx1 := smtptest.Start(t, smtptest.Options{Addr: at(2, port), Hostname: "mx1.example.test", TLS: tt.tls})
	enqueue(t, q, "alice@example.net", "bob@example.test")
	step(t, d)

	o := q.Outcomes()
	if len(o) != 1 {
		t.Fatalf("outcomes %+v, want one", o)
	}
	msgs := mx1.Messages()
	if tt.delivered {
		if len(o[0].Delivered) != 1 || len(msgs) != 1 || !msgs[0].TLS {
			t.Fatalf("outcome %+v, mx1 got %+v: want delivered over TLS", o[0], msgs)
		}
		if q.Len() != 0 {
			t.Errorf("%d deliveries left after delivery", q.Len())
		}
		return
	}
	if len(msgs) != 0 {
		t.Fatalf("mx1 got the message (TLS %v) against the destination's policy", msgs[0].TLS)
	}
	if tt.unlisted && mx1.Connections() != 0 {
		t.Errorf("mx1, outside the policy, was connected to %d times", mx1.Connections())
	}
	why, ok := o[0].Deferred["bob@example.test"]
	if !ok || len(o[0].Delivered) != 0 || len(o[0].Failed) != 0 || o[0].Next.IsZero() {
		t.Fatalf("outcome %+v: want bob deferred with a next attempt", o[0])
	}
	if !strings.Contains(strings.ToLower(why), tt.reason) {
		t.Errorf("deferral reason %q lacks %q", why, tt.reason)
	}
	if n := q.Notices(); len(n) != 0 {
		t.Errorf("notices %+v: a policy failure is temporary (RFC 8461 §5.1, RFC 7672 §2.2), no DSN", n)
	}
	if q.Len() != 1 {
		t.Errorf("%d deliveries in the queue, want the deferred one", q.Len())
	}
}

// tlsDeliverer is newDeliverer on relayZones plus extra, in example.test.
func tlsDeliverer(t *testing.T, q *memQueue, port int, extra string) *Deliverer {
	t.Helper()
	d := newDeliverer(t, q, port, "relay.example.test")
	z, err := resolve.ParseZones(strings.NewReader(relayZones+"$ORIGIN example.test.\n"+extra), "test")
	if err != nil {
		t.Fatal(err)
	}
	d.Sender.Planner.Resolver = z
	d.Sender.Resolver = z
	return d
}

// TestDeliverMTASTS: the relay delivers under the destination's MTA-STS
// policy (RFC 8461 §4, §5): in enforce mode an exchange the policy does
// not list is never contacted, and a listed one must offer STARTTLS with
// a certificate valid for its name; otherwise the message is deferred,
// not sent in plaintext and not bounced (§5.1: an enforce failure is not
// a permanent one).
func TestDeliverMTASTS(t *testing.T) {
	ca := testpki.NewCA(t, "relay test CA")
	valid := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: []string{"mx1.example.test"}})}}
	const records = "_mta-sts 3600 IN TXT \"v=STSv1; id=20261207\"\nmta-sts 3600 IN A 127.0.0.1\n"
	policy := func(mx string) string {
		return "version: STSv1\nmode: enforce\nmx: " + mx + "\nmax_age: 86400\n"
	}
	for _, tt := range []struct {
		tlsCase
		policy string
	}{
		{tlsCase{name: "mx1 not in the policy", zone: records, tls: valid, reason: "mta-sts", unlisted: true}, policy("mx9.example.test")},
		{tlsCase{name: "mx1 without STARTTLS", zone: records, reason: "starttls"}, policy("mx1.example.test")},
		{tlsCase{name: "mx1 with a certificate for another name", zone: records, reason: "certificate",
			tls: &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testpki.LeafOptions{Names: []string{"other.example.test"}})}}}, policy("mx1.example.test")},
		{tlsCase{name: "mx1 in the policy with a valid certificate", zone: records, tls: valid, delivered: true}, policy("*.example.test")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			q := newMemQueue(time.Now)
			d := tlsDeliverer(t, q, port, tt.zone)
			host := smtptest.StartPolicyHost(t, ca.Leaf(t, testpki.LeafOptions{Names: []string{"mta-sts.example.test"}}), tt.policy)
			d.Sender.RootCAs = ca.Pool
			d.Sender.MTASTS = &mtasts.Options{Fetcher: &mtasts.Fetcher{Resolver: d.Sender.Resolver, RootCAs: ca.Pool, Dialer: host, Timeout: 5 * time.Second}}
			runTLSCase(t, tt.tlsCase, port, d, q)
		})
	}
}

// TestDeliverDANE: the relay delivers under the destination's DANE TLSA
// records (RFC 7672): with usable records in a signed zone, mx1 must
// offer STARTTLS (§2.2) and present a certificate the records match
// (§3), whatever its CA; otherwise the message is deferred, never sent in
// plaintext and never bounced.
func TestDeliverDANE(t *testing.T) {
	// No CA anyone trusts issued it: only the TLSA record vouches for it.
	cert := testpki.NewCA(t, "untrusted").Leaf(t, testpki.LeafOptions{Names: []string{"whatever.invalid"}})
	withCert := &tls.Config{Certificates: []tls.Certificate{cert}}
	// A DNSKEY at the apex makes the zone-file resolver answer with AD
	// (as send's tests do): the TLSA records are DNSSEC-validated.
	const signed = "@ 3600 IN DNSKEY 257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==\n"
	good := signed + "_25._tcp.mx1 3600 IN TLSA 3 1 1 " + testpki.SPKIHash(cert) + "\n"
	for _, tt := range []tlsCase{
		{name: "TLSA does not match", zone: signed + "_25._tcp.mx1 3600 IN TLSA 3 1 1 " + strings.Repeat("ab", 32) + "\n", tls: withCert, reason: "dane"},
		{name: "TLSA without STARTTLS", zone: good, reason: "starttls"},
		{name: "TLSA matches", zone: good, tls: withCert, delivered: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := smtptest.Port(t)
			q := newMemQueue(time.Now)
			d := tlsDeliverer(t, q, port, tt.zone)
			d.Sender.DANE = &dane.Options{}
			runTLSCase(t, tt, port, d, q)
		})
	}
}

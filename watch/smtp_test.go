package watch_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/watch"
)

// TestSnapshotSMTP probes two in-process exchanges on loopback three
// times, changing them in between as an operator would: the snapshot
// holds what each address offered (STARTTLS, the certificate's
// fingerprint, end and verification), and the diffs name the renewal,
// the STARTTLS gained and then lost.
func TestSnapshotSMTP(t *testing.T) {
	port := smtptest.Port(t)
	ca := testpki.NewCA(t, "watch test CA")
	now := time.Now()
	cert := func(name string, days int) tls.Certificate {
		return ca.Leaf(t, testpki.LeafOptions{Names: []string{name}, NotAfter: now.AddDate(0, 0, days).Truncate(time.Second)})
	}
	at := func(n byte) string { return netip.AddrPortFrom(smtptest.Loopback(n), uint16(port)).String() }
	z, err := resolve.ParseZones(strings.NewReader(`$ORIGIN shop.test.
@    300 SOA ns h 1 7200 900 1209600 300
@    300 MX  10 mx1
@    300 MX  20 mx2
mx1  300 A   127.0.0.5
mx2  300 A   127.0.0.6
`), "shop")
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewCache(z, 0)
	a := &check.Auditor{
		Resolver: r,
		Planner:  &route.Planner{Resolver: r},
		Probe: &probe.Prober{Port: port, RootCAs: ca.Pool, HelloName: "watcher.test",
			Timeouts: dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, Command: 5 * time.Second, TLSHandshake: 5 * time.Second}},
		SkipReason: "offline",
	}
	// round starts the exchanges (nil: no STARTTLS), checks the domain
	// and stops them.
	round := func(mx1, mx2 *tls.Certificate) *watch.Snapshot {
		t.Helper()
		var servers []*smtptest.Server
		for i, c := range []*tls.Certificate{mx1, mx2} {
			o := smtptest.Options{Addr: at(byte(5 + i)), Hostname: []string{"mx1.shop.test", "mx2.shop.test"}[i]}
			if c != nil {
				o.TLS = &tls.Config{Certificates: []tls.Certificate{*c}}
			}
			servers = append(servers, smtptest.Start(t, o))
		}
		defer func() {
			for _, s := range servers {
				s.Close()
			}
		}()
		return watch.SnapshotOf(a.Audit(t.Context(), dnsname.MustParse("shop.test")))
	}
	kinds := func(cs []watch.Change) []string {
		var out []string
		for _, c := range cs {
			s := string(c.Kind) + " " + c.Subject
			if c.Kind == watch.KindFindingResolved {
				s += " " + c.Old
			}
			out = append(out, s)
		}
		return out
	}

	first := cert("mx1.shop.test", 30)
	s1 := round(&first, nil)
	if s1.At.IsZero() || s1.Temporary() {
		t.Fatalf("snapshot: at %v, temporary %v (incomplete %v)", s1.At, s1.Temporary(), s1.Incomplete)
	}
	sum := sha256.Sum256(first.Leaf.Raw)
	want := []watch.SMTP{
		{Host: "mx1.shop.test", Address: "127.0.0.5", Reached: true, StartTLS: true,
			Cert: &watch.Cert{Fingerprint: hex.EncodeToString(sum[:]), Subject: first.Leaf.Subject.String(), NotAfter: first.Leaf.NotAfter.UTC(), Verified: true}},
		{Host: "mx2.shop.test", Address: "127.0.0.6", Reached: true},
	}
	if len(s1.SMTP) != 2 || *s1.SMTP[0].Cert != *want[0].Cert || s1.SMTP[1] != want[1] {
		t.Fatalf("SMTP facts:\n got %+v %+v\nwant %+v %+v", s1.SMTP, s1.SMTP[0].Cert, want, want[0].Cert)
	}

	renewed, mx2 := cert("mx1.shop.test", 90), cert("mx2.shop.test", 90)
	s2 := round(&renewed, &mx2)
	// The backup tier is no longer weaker than the primary: a finding
	// of the tiers area resolved.
	if got, want := kinds(watch.Diff(s1, s2)), []string{
		"cert-renewed mx1.shop.test[127.0.0.5]", "starttls-gained mx2.shop.test[127.0.0.6]",
		"finding-resolved mx2.shop.test mx-backup-weaker",
	}; !slices.Equal(got, want) {
		t.Errorf("Diff(first, second):\n got %q\nwant %q", got, want)
	}

	s3 := round(nil, &mx2)
	if got, want := kinds(watch.Diff(s2, s3)), []string{"starttls-lost mx1.shop.test[127.0.0.5]"}; !slices.Equal(got, want) {
		t.Errorf("Diff(second, third):\n got %q\nwant %q", got, want)
	}
}

package relay

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/spf"
)

const spfZone = `
$ORIGIN sender.example.
@        300 SOA ns hostmaster 1 7200 900 1209600 300
@        TXT "v=spf1 ip4:192.0.2.1 -all"
mx       TXT "v=spf1 ip4:192.0.2.9 -all"
soft     TXT "v=spf1 ~all"
`

func zones(t *testing.T, text string) *resolve.Zones {
	t.Helper()
	z, err := resolve.ParseZones(strings.NewReader(text), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func newAuth(r resolve.Resolver) *Authenticator {
	return &Authenticator{SPF: &spf.Checker{Resolver: r, Receiver: "relay.example"}, Resolver: r, Hostname: "relay.example"}
}

func TestCheckSender(t *testing.T) {
	a := newAuth(zones(t, spfZone))
	// The same without an SPF Checker: one on Resolver is used.
	bare := &Authenticator{Resolver: a.Resolver, Hostname: "relay.example"}
	ctx := context.Background()
	for _, tc := range []struct {
		client, helo, from string
		status             spf.Status
		identity, domain   string
		header             []string // substrings of the unfolded field
	}{
		{"192.0.2.1", "mx.sender.example", "a@sender.example", spf.Pass, IdentityMailFrom, "sender.example",
			[]string{"Received-SPF: pass (relay.example: domain of a@sender.example designates 192.0.2.1 as permitted sender)", "receiver=relay.example;", "client-ip=192.0.2.1;", `envelope-from="a@sender.example";`, "helo=mx.sender.example;", "identity=mailfrom"}},
		{"192.0.2.7", "mx.sender.example", "a@sender.example", spf.Fail, IdentityMailFrom, "sender.example",
			[]string{"Received-SPF: fail (relay.example: domain of a@sender.example does not designate 192.0.2.7 as permitted sender)"}},
		{"::ffff:192.0.2.1", "x", "<a@sender.example>", spf.Pass, IdentityMailFrom, "sender.example", []string{"client-ip=192.0.2.1;"}},
		{"2001:db8::1", "x", "a@sender.example", spf.Fail, IdentityMailFrom, "sender.example", []string{`client-ip="2001:db8::1";`, "does not designate 2001:db8::1 as"}},
		// RFC 7208 §2.3: the null sender is checked with the HELO identity.
		{"192.0.2.9", "mx.sender.example", "", spf.Pass, IdentityHELO, "mx.sender.example",
			[]string{"domain of postmaster@mx.sender.example designates", `envelope-from="";`, "identity=helo"}},
		{"192.0.2.1", "mx.sender.example", "x@soft.sender.example", spf.SoftFail, IdentityMailFrom, "soft.sender.example", []string{"softfail (relay.example: domain of transitioning"}},
		{"192.0.2.1", "h", "x@nowhere.example", spf.TempError, IdentityMailFrom, "nowhere.example", []string{"temperror", "problem="}},
	} {
		sc := a.CheckSender(ctx, netip.MustParseAddr(tc.client), tc.helo, tc.from)
		if h := bare.CheckSender(ctx, netip.MustParseAddr(tc.client), tc.helo, tc.from).Header(); h != sc.Header() {
			t.Errorf("without a Checker:\n%s\nwith one:\n%s", h, sc.Header())
		}
		if sc.Result.Status != tc.status || sc.Identity != tc.identity || sc.Result.Domain != tc.domain {
			t.Errorf("%s %s %q: %s %s %s, want %s %s %s", tc.client, tc.helo, tc.from, sc.Result.Status, sc.Identity, sc.Result.Domain, tc.status, tc.identity, tc.domain)
		}
		h := sc.Header()
		checkFolded(t, h)
		unfolded := strings.ReplaceAll(h, "\r\n", "")
		for _, want := range tc.header {
			if !strings.Contains(unfolded, want) {
				t.Errorf("%s %q: header\n%s\nlacks %q", tc.client, tc.from, unfolded, want)
			}
		}
	}
}

// checkFolded fails when a header field has a line that is not folded
// (every CRLF followed by a space), a bare CR or LF, or a line over 998.
func checkFolded(t *testing.T, field string) {
	t.Helper()
	for i, line := range strings.Split(field, "\r\n") {
		if i > 0 && !strings.HasPrefix(line, " ") {
			t.Errorf("line %d of %q is not a continuation", i, field)
		}
		if strings.ContainsAny(line, "\r\n") || len(line) > 998 {
			t.Errorf("bad line %q", line)
		}
	}
}

// TestReceivedSPFHostile: what the client sends cannot end the field or
// start another.
func TestReceivedSPFHostile(t *testing.T) {
	a := newAuth(zones(t, spfZone))
	helo := "evil\r\nX-Injected: yes (\"quoted\\\" paren) " + strings.Repeat("h", 2000)
	sc := a.CheckSender(context.Background(), netip.MustParseAddr("192.0.2.1"), helo, "")
	h := sc.Header()
	checkFolded(t, h)
	if strings.Contains(h, "\r\nX-Injected") {
		t.Errorf("injected a field: %q", h)
	}
	if strings.Count(h, "helo=\"") != 1 {
		t.Errorf("helo not quoted: %q", h)
	}
}

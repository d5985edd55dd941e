package relay

import (
	"net/netip"
	"testing"
	"time"
)

func TestReceivedField(t *testing.T) {
	date := time.Date(2026, 12, 7, 3, 4, 5, 0, time.FixedZone("", 3600))
	one := []Address{{Local: "user", Domain: "d.example"}}
	for _, tc := range []struct {
		name string
		in   receivedInfo
		want string
	}{
		{"ipv6, tls, two recipients", receivedInfo{Helo: "mx.client.example", Client: netip.MustParseAddr("2001:db8::1"),
			Hostname: "relay.example", TLS: true, ID: "abc", Rcpt: append(one, one...), Date: date},
			"Received: from mx.client.example ([IPv6:2001:db8::1])\r\n\tby relay.example with ESMTPS id abc; Mon, 07 Dec 2026 03:04:05 +0100\r\n"},
		{"address literal helo", receivedInfo{Helo: "[192.0.2.1]", Client: netip.MustParseAddr("192.0.2.1"),
			Hostname: "relay.example", ID: "abc", Rcpt: one, Date: date},
			"Received: from [192.0.2.1] ([192.0.2.1])\r\n\tby relay.example with ESMTP id abc\r\n\tfor <user@d.example>; Mon, 07 Dec 2026 03:04:05 +0100\r\n"},
		// A HELO that is not a domain is left out: it could end the
		// field or fake another one.
		{"hostile helo", receivedInfo{Helo: "x)\r\nX-Injected: 1 (", Client: netip.MustParseAddr("192.0.2.1"),
			Hostname: "relay.example", ID: "abc", Date: date},
			"Received: from [192.0.2.1] ([192.0.2.1])\r\n\tby relay.example with ESMTP id abc; Mon, 07 Dec 2026 03:04:05 +0100\r\n"},
		{"bad literal helo", receivedInfo{Helo: "[not an address]", Client: netip.Addr{}, Hostname: "relay.example", ID: "abc", Date: date},
			"Received: from [unknown] ([unknown])\r\n\tby relay.example with ESMTP id abc; Mon, 07 Dec 2026 03:04:05 +0100\r\n"},
	} {
		if got := received(tc.in); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestHeaderBlock(t *testing.T) {
	got := headerBlock([]string{
		"A: 1",
		"B: 2\r\n 3\r\n",
		"C: 4\r\nX-Injected: 5", // a new field inside one: dropped
		"D: 6\n 7",              // a bare LF: dropped
		"no colon",
		": empty name",
		"",
	})
	if want := "A: 1\r\nB: 2\r\n 3\r\n"; got != want {
		t.Errorf("headerBlock = %q, want %q", got, want)
	}
}

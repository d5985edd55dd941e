package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
)

func TestParseAddress(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		in     string
		local  string
		domain dnsname.Name
		err    error // nil: accepted
	}{
		{in: "user@d.example", local: "user", domain: "d.example"},
		{in: "<user@d.example>", local: "user", domain: "d.example"},
		{in: "USER@D.EXAMPLE", local: "USER", domain: "d.example"},
		{in: "first.last+tag@d.example", local: "first.last+tag", domain: "d.example"},
		{in: `"user"@d.example`, local: "user", domain: "d.example"},
		{in: `"a b"@d.example`, local: `"a b"`, domain: "d.example"},
		{in: `"a\"b"@d.example`, local: `"a\"b"`, domain: "d.example"},
		{in: `"a\\b"@d.example`, local: `"a\\b"`, domain: "d.example"},
		{in: "user@xn--bcher-kva.example", local: "user", domain: "xn--bcher-kva.example"},
		{in: long + "@d.example", local: long, domain: "d.example"},

		{in: "user%other.example@d.example", err: ErrRouteInLocalPart},
		{in: "other.example!user@d.example", err: ErrRouteInLocalPart},
		{in: `"user%other"@d.example`, err: ErrRouteInLocalPart},
		{in: `"u@other.example"@d.example`, err: ErrRouteInLocalPart},
		{in: "user@other.example@d.example", err: ErrRouteInLocalPart},
		{in: "<@a.example:user@d.example>", err: ErrSourceRoute},
		{in: "@a.example,@b.example:user@d.example", err: ErrSourceRoute},
		{in: "user@[192.0.2.1]", err: ErrAddressLiteral},
		{in: "user@[IPv6:2001:db8::1]", err: ErrAddressLiteral},
		{in: "user@192.0.2.1", err: ErrAddressLiteral},
		{in: "user@d.example.", err: ErrTrailingDot},
		{in: "user@-d.example", err: ErrDomain},
		{in: "user@d_x.example", err: ErrDomain},
		{in: "user@d..example", err: ErrDomain},
		{in: "user@" + strings.Repeat("a", 64) + ".example", err: ErrDomain},
		{in: "", err: ErrSyntax},
		{in: "<>", err: ErrSyntax},
		{in: "<user@d.example", err: ErrSyntax},
		{in: "user@d.example>", err: ErrSyntax},
		{in: "user", err: ErrSyntax},
		{in: "user@", err: ErrSyntax},
		{in: "@d.example", err: ErrSourceRoute},
		{in: "us er@d.example", err: ErrSyntax},
		{in: ".user@d.example", err: ErrSyntax},
		{in: "user.@d.example", err: ErrSyntax},
		{in: "us..er@d.example", err: ErrSyntax},
		{in: `"user@d.example`, err: ErrSyntax},
		{in: `"user\`, err: ErrSyntax},
		{in: `""@d.example`, err: ErrSyntax},
		{in: "(comment)user@d.example", err: ErrSyntax},
		{in: "user@d.example extra", err: ErrDomain},
		{in: "user\x00@d.example", err: ErrNotASCII},
		{in: "user@d.example\r\nRCPT TO:<x@y>", err: ErrNotASCII},
		{in: "us\ter@d.example", err: ErrNotASCII},
		{in: "üser@d.example", err: ErrNotASCII},
		{in: "user@bücher.example", err: ErrNotASCII},
		{in: long + "a@d.example", err: ErrTooLong},
		{in: "u@" + strings.Repeat("a.", 130) + "example", err: ErrTooLong},
	} {
		got, err := ParseAddress(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !errors.Is(err, ErrAddress) {
				t.Errorf("ParseAddress(%q) = %+v, %v; want an error of kind %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.Local != tc.local || got.Domain != tc.domain {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %s@%s", tc.in, got, err, tc.local, tc.domain)
		}
	}
}

// TestMailboxOf: the mailbox as go-smtp hands it over (route dropped,
// quotes removed) is judged as the client sent it.
func TestMailboxOf(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "": refused
	}{
		{"user@D.Example", "user@d.example"},
		{"a b@d.example", `"a b"@d.example`},  // from "a b"@d.example
		{`a"b@d.example`, `"a\"b"@d.example`}, // from "a\"b"@d.example
		{"u@other.example@d.example", ""},     // from "u@other.example"@d.example or u@other.example@d.example
		{"u%other@d.example", ""},             // from "u%other"@d.example
		{"a\x00b@d.example", ""},
		{"user@d.example.", ""},
		{"user@[192.0.2.1]", ""},
	} {
		got, err := mailboxOf(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("mailboxOf(%q) = %v, want an error", tc.in, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("mailboxOf(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestAddressReason(t *testing.T) {
	_, err := ParseAddress("user%x@d.example")
	if got := AddressReason(err); got != "route-in-local-part" {
		t.Errorf("AddressReason = %q", got)
	}
	if got := AddressReason(errors.New("other")); got != "bad-address" {
		t.Errorf("AddressReason(other) = %q", got)
	}
}

// FuzzParseAddress: whatever the input, ParseAddress does not panic, and
// what it accepts prints back as an address it accepts again unchanged,
// with no routing character in the local part's content and a domain in
// canonical form.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"user@d.example", `"a b"@d.example`, "<@a:u@b>", "u%v@d", "u@[1.2.3.4]", `"\\\""@x.y`, "a@b.", "x!y@z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrAddress) {
				t.Fatalf("ParseAddress(%q): error %v does not wrap ErrAddress", s, err)
			}
			return
		}
		again, err := ParseAddress(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAddress(%q) = %v, which parses as %v, %v", s, a, again, err)
		}
		if string(a.Domain) != strings.ToLower(string(a.Domain)) {
			t.Fatalf("ParseAddress(%q): domain %q not canonical", s, a.Domain)
		}
		if back, err := mailboxOf(unquote(a.Local) + "@" + a.Domain.String()); err != nil || back != a {
			t.Fatalf("mailboxOf of %v = %v, %v", a, back, err)
		}
	})
}

// unquote is the content of a local part, as go-smtp hands it over.
func unquote(local string) string {
	if !strings.HasPrefix(local, `"`) {
		return local
	}
	var b strings.Builder
	for i := 1; i < len(local)-1; i++ {
		if local[i] == '\\' {
			i++
		}
		b.WriteByte(local[i])
	}
	return b.String()
}

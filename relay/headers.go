package relay

import (
	"net/netip"
	"strings"
	"time"
)

// receivedInfo is what the relay's Received field says about one message.
type receivedInfo struct {
	Helo     string     // the EHLO or HELO argument, as the client sent it
	Client   netip.Addr // the client's address
	Hostname string     // the relay's own name
	TLS      bool       // the message came over TLS (STARTTLS)
	ID       string     // the transaction's ID, also in the relay's log
	Rcpt     []Address  // the accepted recipients
	Date     time.Time
}

// received formats the relay's trace field (RFC 5321 §4.4), folded, with
// its CRLF:
//
//	Received: from helo.example ([192.0.2.1])
//		by relay.example with ESMTPS id 0123456789ab
//		for <user@example.com>; Mon, 07 Dec 2026 03:04:05 +0000
//
// "from" is the EHLO name when it is a Domain or an address literal
// (anything else the client typed is left out: it cannot appear in the
// field unescaped), followed by the TCP-info, the client's address literal
// (§4.1.3). "with" is ESMTP, or ESMTPS over TLS (RFC 3848 §3); go-smtp
// does not say whether the client used HELO, so it is never plain SMTP.
// "for" names the recipient only when there is one, so the copy of each
// recipient does not disclose the others (§7.2).
func received(r receivedInfo) string {
	literal := addressLiteral(r.Client)
	var b strings.Builder
	b.WriteString("Received: from ")
	if h := heloDomain(r.Helo); h != "" {
		b.WriteString(h + " (" + literal + ")")
	} else {
		b.WriteString(literal + " (" + literal + ")")
	}
	b.WriteString("\r\n\tby " + r.Hostname + " with ")
	if r.TLS {
		b.WriteString("ESMTPS")
	} else {
		b.WriteString("ESMTP")
	}
	b.WriteString(" id " + r.ID)
	if len(r.Rcpt) == 1 {
		b.WriteString("\r\n\tfor <" + r.Rcpt[0].String() + ">")
	}
	// RFC 5322 §3.3 date-time.
	b.WriteString("; " + r.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	return b.String()
}

// addressLiteral is a as an RFC 5321 §4.1.3 address literal: "[192.0.2.1]"
// or "[IPv6:2001:db8::1]"; "[unknown]" for the zero Addr (not TCP).
func addressLiteral(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "[unknown]"
	case a.Is4():
		return "[" + a.String() + "]"
	default:
		return "[IPv6:" + a.String() + "]"
	}
}

// heloDomain is the EHLO argument when it may appear in a Received field
// as the client gave it: an RFC 5321 Domain or address literal (at most
// 255 octets, letters, digits, hyphens and dots, or a bracketed literal of
// hexadecimal digits, dots and colons); "" otherwise.
func heloDomain(h string) string {
	if h == "" || len(h) > 255 {
		return ""
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		inner := strings.TrimPrefix(h[1:len(h)-1], "IPv6:")
		if _, err := netip.ParseAddr(inner); err != nil {
			return ""
		}
		return h
	}
	if _, err := parseDomain(strings.TrimSuffix(h, ".")); err != nil {
		return ""
	}
	return h
}

// headerBlock joins header fields (each "Name: value", possibly folded,
// with or without its final CRLF) into lines ending in CRLF, top first.
// A field holding a bare CR or LF not followed by white space (which
// would end the header or start a new field) is dropped.
func headerBlock(fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		f = strings.TrimRight(f, "\r\n")
		if f == "" || !wellFolded(f) {
			continue
		}
		b.WriteString(f + "\r\n")
	}
	return b.String()
}

// wellFolded reports whether every line break in f is a CRLF followed by
// a space or a tab (RFC 5322 §2.2.3), and f starts with a field name
// (RFC 5322 §3.6.8: printable ASCII but ':', then ':').
func wellFolded(f string) bool {
	colon := strings.IndexByte(f, ':')
	if colon <= 0 {
		return false
	}
	for i := 0; i < colon; i++ {
		if f[i] < 33 || f[i] > 126 {
			return false
		}
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\r':
			if i+2 >= len(f) || f[i+1] != '\n' || (f[i+2] != ' ' && f[i+2] != '\t') {
				return false
			}
		case '\n':
			if i == 0 || f[i-1] != '\r' {
				return false
			}
		}
	}
	return true
}

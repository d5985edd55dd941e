package stub_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/internal/dnstest"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/resolve/stub"
)

// TestErrorWords: a failed lookup says what happened in DNS terms (the
// question, the server, what it did), not the socket's text ("read udp
// 127.0.0.1:60474->127.0.0.1:9: read: connection refused"), and still
// unwraps to the sentinel and to the socket's error.
func TestErrorWords(t *testing.T) {
	// A UDP port nobody listens on: the kernel answers with ICMP port
	// unreachable, which the socket reports as ECONNREFUSED.
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.LocalAddr().String()
	closed.Close()

	const zone = "$ORIGIN d.test.\n@ 60 SOA ns. h. 1 2 3 4 5\n@ 60 MX 10 mx\n"
	silent := dnstest.New(t, dnstest.Silent())
	garbage := dnstest.New(t, dnstest.Garbage(dnstest.LyingCounts))
	truncClosed := dnstest.NewZone(t, zone, dnstest.AlwaysTruncated(), dnstest.BrokenTCP(dnstest.CloseConn))
	truncGarbage := dnstest.New(t, dnstest.Garbage(dnstest.LyingCounts), dnstest.AlwaysTruncated())
	servfail := dnstest.New(t, dnstest.Rcode(dns.RcodeServerFailure))

	for _, tt := range []struct {
		name, server string
		attempts     int
		want         string
		is           []error
	}{
		{"timeout", silent.Addr, 1, "lookup d.test. MX: no answer from " + silent.Addr + " within 100ms",
			[]error{resolve.ErrTimeout}},
		{"timeout, two tries", silent.Addr, 2, "lookup d.test. MX: no answer from " + silent.Addr + " within 100ms (2 tries)",
			[]error{resolve.ErrTimeout}},
		{"refused", closedAddr, 1, "lookup d.test. MX: " + closedAddr + " refused the query (port unreachable)",
			[]error{resolve.ErrUnreachable, syscall.ECONNREFUSED}},
		{"truncated, then TCP closed", truncClosed.Addr, 1,
			"lookup d.test. MX: " + truncClosed.Addr + " truncated its UDP reply, then closed the TCP connection before the whole one",
			[]error{resolve.ErrBadResponse}},
		{"malformed over TCP", truncGarbage.Addr, 1,
			"lookup d.test. MX: " + truncGarbage.Addr + " sent a malformed reply over TCP (after a truncated UDP reply): the header announces [1 5 5 5] records per section, the message holds [1 0 0 0]",
			[]error{resolve.ErrBadResponse}},
		{"malformed over UDP", garbage.Addr, 1,
			"lookup d.test. MX: no answer from " + garbage.Addr + " within 100ms (and dropped a reply: malformed response: the header announces [1 5 5 5] records per section, the message holds [1 0 0 0])",
			[]error{resolve.ErrTimeout, resolve.ErrBadResponse}},
		{"SERVFAIL", servfail.Addr, 1, "lookup d.test. MX: " + servfail.Addr + " answered SERVFAIL (server failure)",
			[]error{resolve.ErrServerFailure}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// 100 ms where the time-out is the outcome (its text says so);
			// the others must get their reply, even under -race on a
			// loaded machine, and say nothing of time.
			timeout := 100 * time.Millisecond
			if !errors.Is(tt.is[0], resolve.ErrTimeout) {
				timeout = 5 * time.Second
			}
			s, err := stub.New(stub.Config{Servers: []string{tt.server}, Timeout: timeout, Attempts: tt.attempts})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Lookup(t.Context(), resolve.Q("d.test.", dns.TypeMX))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n %v\nwant\n %s", err, tt.want)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
		})
	}
}

// TestErrorWordsUnreachable: what a socket reports for an ICMP network
// or host unreachable, which loopback cannot produce, as upstream wraps
// it.
func TestErrorWordsUnreachable(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.ENETUNREACH:  "lookup d.test. MX: 192.0.2.53:53 cannot be reached (network unreachable)",
		syscall.EHOSTUNREACH: "lookup d.test. MX: 192.0.2.53:53 cannot be reached (host unreachable)",
	} {
		sock := &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("read", errno)}
		err := &resolve.Error{Question: resolve.Q("d.test.", dns.TypeMX), Server: "192.0.2.53:53", Rcode: -1,
			Err: fmt.Errorf("%w: %w", resolve.ErrUnreachable, sock)}
		if err.Error() != want || !errors.Is(err, errno) || strings.Contains(err.Error(), "read udp") {
			t.Errorf("%v: %q, want %q", errno, err, want)
		}
	}
}

package dial

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestPolicyCheck(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		range_ string // "" = allowed
	}{
		{"192.0.43.8", ""},
		{"8.8.8.8", ""},
		{"2001:4860:4860::8888", ""},
		{"2a00:1450::1", ""},
		{"2001:3::1", ""},             // AMT, globally reachable inside 2001::/23
		{"2001:4:112::1", ""},         // AS112-v6
		{"64:ff9b::808:808", "NAT64"}, // of 8.8.8.8: refused for its form
		{"0.1.2.3", "this network"},
		{"10.1.2.3", "private-use"},
		{"100.64.0.1", "shared address space"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"172.16.0.1", "private-use"},
		{"172.31.255.255", "private-use"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.0.9", ""}, // PCP anycast, globally reachable
		{"192.88.99.1", "deprecated 6to4 relay anycast"},
		{"192.0.2.1", "documentation"},
		{"192.168.1.1", "private-use"},
		{"198.18.0.1", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.251", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "limited broadcast"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "IPv4-mapped"},
		{"::ffff:8.8.8.8", "IPv4-mapped"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"::ffff:10.0.0.1", "IPv4-mapped"},
		{"64:ff9b::7f00:1", "NAT64"}, // of 127.0.0.1
		{"64:ff9b:1::1", "local-use NAT64"},
		{"4000::1", "reserved"},
		{"100::1", "discard-only"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"ff02::1", "multicast"},
		{"fec0::1", "reserved"},
		{"2001::1", "Teredo"},
		{"2001:20::1", "IETF protocol assignments"}, // ORCHIDv2
		{"2001:db8::1", "documentation"},
		{"2002:7f00:1::1", "6to4"},  // of 127.0.0.1
		{"2002:808:808::1", "6to4"}, // of 8.8.8.8
		{"3fff::1", "documentation"},
	} {
		addr := netip.MustParseAddr(tt.addr)
		err := (&Policy{}).Check(addr)
		switch {
		case tt.range_ == "" && err != nil:
			t.Errorf("%s: %v, want allowed", tt.addr, err)
		case tt.range_ != "":
			fe, ok := errors.AsType[*ForbiddenError](err)
			if !ok || !errors.Is(err, ErrForbidden) {
				t.Errorf("%s: %v, want a ForbiddenError", tt.addr, err)
				continue
			}
			got := fe.Class.Name
			if fe.Embedding.Form != "" {
				got = fe.Embedding.Form
			}
			if got != tt.range_ {
				t.Errorf("%s: range %q, want %q", tt.addr, got, tt.range_)
			}
		}
		if err := (&Policy{AllowPrivate: true}).Check(addr); err != nil {
			t.Errorf("%s with AllowPrivate: %v", tt.addr, err)
		}
	}
}

// listen accepts connections on a loopback address and reports the remote
// address of each.
func listen(t *testing.T, addr string) (string, <-chan net.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan net.Addr, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr()
			c.Close()
		}
	}()
	return ln.Addr().String(), peers
}

// TestNetPolicy: the policy is checked on the address connected to, after
// name resolution, so a name for a loopback address is refused too.
func TestNetPolicy(t *testing.T) {
	addr, _ := listen(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	for _, tt := range []struct {
		name    string
		d       *Net
		address string
		refused bool
	}{
		{"no policy", &Net{}, addr, false},
		{"allow private", &Net{Policy: &Policy{AllowPrivate: true}}, addr, false},
		{"public only", &Net{Policy: &Policy{}}, addr, true},
		{"public only, by name", &Net{Policy: &Policy{}}, net.JoinHostPort("localhost", port), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.d.DialContext(t.Context(), "tcp", tt.address)
			if c != nil {
				c.Close()
			}
			if tt.refused != errors.Is(err, ErrForbidden) {
				t.Errorf("err = %v, refused want %t", err, tt.refused)
			}
			if !tt.refused && err != nil {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestNetMapped: Go connects to an IPv4-mapped address over an IPv4
// socket, so Control sees the plain IPv4 address and could not refuse the
// mapped form; Net refuses it before dialing, naming the form.
func TestNetMapped(t *testing.T) {
	addr, peers := listen(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	mapped := net.JoinHostPort("::ffff:127.0.0.1", port)

	// What Control is given for a mapped address: the IPv4 one.
	var seen []string
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		seen = append(seen, network+" "+address)
		return nil
	}}
	c, err := d.DialContext(t.Context(), "tcp", mapped)
	if err != nil {
		t.Fatalf("plain dial of %s: %v", mapped, err)
	}
	c.Close()
	<-peers
	if want := []string{"tcp4 127.0.0.1:" + port}; !slices.Equal(seen, want) {
		t.Errorf("Control saw %q, want %q: the pre-check may no longer be needed", seen, want)
	}

	_, err = (&Net{Policy: &Policy{}, Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", mapped)
	fe, ok := errors.AsType[*ForbiddenError](err)
	if !ok || fe.Embedding.Form != "IPv4-mapped" || fe.Addr != netip.MustParseAddr("::ffff:127.0.0.1") {
		t.Errorf("policy dial of %s: %v, want a ForbiddenError for the IPv4-mapped form", mapped, err)
	}
	select {
	case p := <-peers:
		t.Errorf("the listener was reached from %s", p)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNetFamily(t *testing.T) {
	addr, _ := listen(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	d := &Net{IPv6: true}
	if _, err := d.DialContext(t.Context(), "tcp", addr); !errors.Is(err, ErrFamily) {
		t.Errorf("-6 to %s: %v, want ErrFamily", addr, err)
	}
	if _, err := d.DialContext(t.Context(), "tcp4", "[::1]:"+port); !errors.Is(err, ErrFamily) {
		t.Errorf("-6 on tcp4: %v, want ErrFamily", err)
	}
	c, err := (&Net{IPv4: true}).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("-4 to %s: %v", addr, err)
	}
	c.Close()
	if _, err := (&Net{IPv4: true}).DialContext(t.Context(), "tcp", "[::1]:"+port); !errors.Is(err, ErrFamily) {
		t.Errorf("-4 to [::1]: %v, want ErrFamily", err)
	}
}

func TestNetSource(t *testing.T) {
	addr, peers := listen(t, "127.0.0.1:0")
	d := &Net{Source: netip.MustParseAddr("127.0.0.2"), Timeout: 5 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2: %v", err)
	}
	defer c.Close()
	select {
	case p := <-peers:
		if ap, err := netip.ParseAddrPort(p.String()); err != nil || ap.Addr() != d.Source {
			t.Errorf("the server saw %s, want %s", p, d.Source)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
}

func TestSMTPTimeoutsOr(t *testing.T) {
	got := SMTPTimeouts{Greeting: time.Second, Command: -1}.Or(RFC5321Timeouts())
	want := RFC5321Timeouts()
	want.Greeting = time.Second
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

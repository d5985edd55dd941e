package mux

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestSendSegments: one segmented send of five 128-octet datagrams and a
// shorter last one arrives as six datagrams, each whole and in order.
func TestSendSegments(t *testing.T) {
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialUDP("udp", nil, l.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !udpGSO(c) {
		t.Fatal("this kernel does not segment UDP sends (UDP_SEGMENT, Linux 4.18)")
	}
	var b []byte
	sizes := []int{128, 128, 128, 128, 128, 60}
	for i, n := range sizes {
		b = append(b, bytes.Repeat([]byte{byte('a' + i)}, n)...)
	}
	if err := sendSegments(c, b, 128); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for i, n := range sizes {
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := l.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if want := bytes.Repeat([]byte{byte('a' + i)}, n); !bytes.Equal(buf[:got], want) {
			t.Fatalf("datagram %d: %q, want %q", i, buf[:got], want)
		}
	}
}

// TestSameSize: runs of one size, cut at maxSegments.
func TestSameSize(t *testing.T) {
	ends := func(sizes ...int) []int {
		var out []int
		end := 0
		for _, s := range sizes {
			end += s
			out = append(out, end)
		}
		return out
	}
	long := make([]int, maxSegments+3)
	for i := range long {
		long[i] = 128
	}
	for _, tt := range []struct {
		ends         []int
		start, i, to int
	}{
		{ends(128, 128, 128), 0, 0, 3},
		{ends(128, 128, 256, 128), 0, 0, 2},
		{ends(128, 128, 256, 128), 256, 2, 3},
		{ends(128, 128, 256, 128), 512, 3, 4},
		{ends(60), 0, 0, 1},
		{ends(long...), 0, 0, maxSegments},
		{ends(long...), maxSegments * 128, maxSegments, maxSegments + 3},
	} {
		if got := sameSize(tt.ends, tt.start, tt.i); got != tt.to {
			t.Errorf("sameSize(%v, %d, %d) = %d, want %d", tt.ends, tt.start, tt.i, got, tt.to)
		}
	}
}

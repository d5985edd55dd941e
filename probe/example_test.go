package probe_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/probe"
)

// scripted is a Dialer whose "server" is an in-memory MTA without
// STARTTLS; a real caller leaves Prober.Dialer nil (a net.Dialer).
type scripted struct{}

func (scripted) DialContext(context.Context, string, string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		io.WriteString(server, "220 mx.example.com ESMTP\r\n")
		br := bufio.NewReader(server)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "EHLO"):
				io.WriteString(server, "250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n")
			case strings.HasPrefix(line, "QUIT"):
				io.WriteString(server, "221 bye\r\n")
				return
			}
		}
	}()
	return client, nil
}

func ExampleProber_Probe() {
	p := &probe.Prober{HelloName: "client.example.org", Dialer: scripted{}}
	r := p.Probe(context.Background(), "mx.example.com", netip.MustParseAddr("192.0.2.1"))

	fmt.Println("greeting:", r.Banner.Code, r.Banner.Host)
	fmt.Println("extensions:", r.EHLO.Extensions, "size:", r.EHLO.Size)
	fmt.Println("STARTTLS:", r.StartTLS)
	for _, l := range r.Transcript {
		if l.Dir != "*" {
			fmt.Println(l.Dir+":", l.Text)
		}
	}
	for _, f := range probe.Findings([]*probe.Result{r}, time.Now(), nil) {
		fmt.Println(f.ID, f.Subject)
	}
	// Output:
	// greeting: 220 mx.example.com
	// extensions: [PIPELINING SIZE 10240000] size: 10240000
	// STARTTLS: false
	// S: 220 mx.example.com ESMTP
	// C: EHLO client.example.org
	// S: 250-mx.example.com
	// S: 250-PIPELINING
	// S: 250 SIZE 10240000
	// C: QUIT
	// S: 221 bye
	// smtp-starttls-missing mx.example.com[192.0.2.1]:25
}

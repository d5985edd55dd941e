package smtptest_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/smtptest"
)

// Two servers on one port, as mxtrace sees two exchanges: a well-behaved
// MTA on 127.0.0.2 and a silent one on 127.0.0.3. In a test, pass t
// instead of tb and let the test's clean-up close the servers.
func Example() {
	tb := &exampleTB{}
	defer tb.cleanup()

	port := uint16(smtptest.Port(tb))
	good := smtptest.Start(tb, smtptest.Options{
		Addr:     netip.AddrPortFrom(smtptest.Loopback(2), port).String(),
		Hostname: "mx1.example.test",
	})
	silent := smtptest.StartRaw(tb, smtptest.RawOptions{
		Addr:      netip.AddrPortFrom(smtptest.Loopback(3), port).String(),
		Behaviour: smtptest.Silent,
	})

	for _, ap := range []netip.AddrPort{good.Addr(), silent.Addr()} {
		conn, err := net.DialTimeout("tcp", ap.String(), time.Second)
		if err != nil {
			fmt.Println(err)
			return
		}
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		banner, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			fmt.Printf("127.0.0.%d: no banner\n", ap.Addr().As4()[3])
			continue
		}
		fmt.Printf("127.0.0.%d: %s\n", ap.Addr().As4()[3], strings.TrimSpace(banner))
	}
	fmt.Println("transactions:", good.Transactions())
	// Output:
	// 127.0.0.2: 220 mx1.example.test ESMTP Service Ready
	// 127.0.0.3: no banner
	// transactions: 0
}

// exampleTB stands in for a *testing.T outside a test: it runs clean-ups
// when told and panics on a fatal error.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (*exampleTB) Helper()                           {}
func (*exampleTB) Logf(string, ...any)               {}
func (*exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (tb *exampleTB) Cleanup(f func())               { tb.cleanups = append(tb.cleanups, f) }

func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

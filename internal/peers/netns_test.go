package peers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mailZone is relay.test with its exchanges at the namespace's
// addresses: MX 10 mx1 (primary), MX 20 mx2 (backup).
func mailZone(ns, mx1, mx2 netip.Addr) string {
	return fmt.Sprintf(`$TTL 60
@    SOA ns hostmaster 1 3600 600 86400 60
@    NS  ns
ns   A   %s
@    MX  10 mx1
@    MX  20 mx2
mx1  A   %s
mx2  A   %s
`, ns, mx1, mx2)
}

// submit hands one message to the SMTP server at addr in ns and returns
// the queue ID of its 250 reply (RFC 5321 §4.1.1.4).
func submit(t *testing.T, ns *Netns, addr netip.AddrPort, from, to, msgID string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sendTimeout)
	defer cancel()
	conn, err := ns.Dial(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(sendTimeout))
	c, err := smtp.NewClient(conn, addr.Addr().String())
	if err != nil {
		return "", err
	}
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from); err != nil {
		return "", err
	}
	if err := c.Rcpt(to); err != nil {
		return "", err
	}
	if _, _, err := cmdReply(c, 354, "DATA"); err != nil {
		return "", err
	}
	w := c.Text.DotWriter()
	if _, err := fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: netns\r\nMessage-ID: <%s>\r\n\r\nhello\r\n", from, to, msgID); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	_, msg, err := c.Text.ReadResponse(250)
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	m := regexp.MustCompile(`queued as ([0-9A-Za-z]+)`).FindStringSubmatch(msg)
	if m == nil {
		return "", fmt.Errorf("no queue ID in %q", msg)
	}
	return m[1], nil
}

// waitMessage waits until p has delivered the message with Message-ID id.
func waitMessage(t *testing.T, p *Postfix, id string) PostfixDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sendTimeout)
	defer cancel()
	for {
		got := p.Received()
		if i := slices.IndexFunc(got, func(d PostfixDelivery) bool { return d.MessageID == id }); i >= 0 {
			return got[i]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message %s never arrived; the instance received %+v", id, got)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestNetnsPostfixFailover proves the namespace harness with Postfix on
// both sides: a sending Postfix follows relay.test's MX records, which
// Knot serves on the namespace's port 53, to the primary (MX 10); with
// the primary stopped it delivers to the backup (MX 20) instead (RFC
// 5321 §5.1); with the primary back, to the primary again. Every process
// and the namespace itself are gone after the test.
func TestNetnsPostfixFailover(t *testing.T) {
	var name string
	var pids []int
	t.Run("mail", func(t *testing.T) {
		ns := NewNetns(t)
		name = ns.Name
		dnsA, mx1A, mx2A, outA := ns.Addr(t, 53), ns.Addr(t, 10), ns.Addr(t, 20), ns.Addr(t, 30)
		knot := StartKnotIn(t, ns, netip.AddrPortFrom(dnsA, 53), Zone{Origin: "relay.test.", Text: mailZone(dnsA, mx1A, mx2A)})
		ns.SetResolver(t, dnsA)
		receiver := func(name string, a netip.Addr) *Postfix {
			return StartPostfix(t, PostfixConfig{
				Hostname:  name + ".relay.test",
				Domains:   []string{"relay.test"},
				Listeners: []PostfixListener{{Addr: netip.AddrPortFrom(a, 25), Name: name}},
				Netns:     ns,
			})
		}
		mx1, mx2 := receiver("mx1", mx1A), receiver("mx2", mx2A)
		out := StartPostfix(t, PostfixConfig{
			Hostname:  "out.sender.test",
			Listeners: []PostfixListener{{Addr: netip.AddrPortFrom(outA, 25), Name: "out"}},
			Netns:     ns,
			Sender:    true,
		})
		pids = []int{knot.proc.cmd.Process.Pid, mx1.PID(), mx2.PID(), out.PID()}

		// The namespace's resolver is Knot, for programs run in it.
		b, err := ns.Command(t.Context(), "cat", "/etc/resolv.conf").Output()
		if err != nil || !strings.Contains(string(b), "nameserver "+dnsA.String()) {
			t.Errorf("resolv.conf in the namespace: %v\n%s", err, b)
		}
		// The machine's own interfaces have none of the namespace's
		// addresses.
		if addrs, err := net.InterfaceAddrs(); err != nil {
			t.Error(err)
		} else if i := slices.IndexFunc(addrs, func(a net.Addr) bool {
			p, err := netip.ParsePrefix(a.String())
			return err == nil && ns.Prefix.Contains(p.Addr())
		}); i >= 0 {
			t.Errorf("the machine has the namespace's address %v", addrs[i])
		}

		send := func(id string) {
			t.Helper()
			if _, err := submit(t, ns, out.Listeners[0].Addr, "alice@sender.test", "bob@relay.test", id); err != nil {
				t.Fatalf("submitting %s to the sending Postfix: %v", id, err)
			}
		}
		check := func(d PostfixDelivery, listener string) {
			t.Helper()
			if d.Listener != listener || d.Client != outA || d.From != "alice@sender.test" || !slices.Equal(d.To, []string{"bob@relay.test"}) {
				t.Errorf("delivery %+v, want it on %s from %s for bob@relay.test", d, listener, outA)
			}
		}

		send("first@netns.test")
		check(waitMessage(t, mx1, "first@netns.test"), "mx1")

		if err := mx1.Stop(); err != nil {
			t.Fatal(err)
		}
		send("second@netns.test")
		check(waitMessage(t, mx2, "second@netns.test"), "mx2")

		mx1.Start(t)
		send("third@netns.test")
		check(waitMessage(t, mx1, "third@netns.test"), "mx1")

		// The sender's log says where each message went.
		sent, err := out.WaitReceived(ctxTimeout(t, sendTimeout), 3)
		if err != nil {
			t.Fatal(err)
		}
		var relays []string
		for _, d := range sent {
			relays = append(relays, d.MessageID+" "+d.Relay)
		}
		want := []string{
			fmt.Sprintf("first@netns.test mx1.relay.test[%s]:25", mx1A),
			fmt.Sprintf("second@netns.test mx2.relay.test[%s]:25", mx2A),
			fmt.Sprintf("third@netns.test mx1.relay.test[%s]:25", mx1A),
		}
		if !slices.Equal(relays, want) {
			t.Errorf("the sender's deliveries: %q, want %q", relays, want)
		}
		for p, want := range map[*Postfix]int{mx1: 2, mx2: 1} {
			if n := len(p.Received()); n != want {
				t.Errorf("%s received %d messages, want %d: %+v", p.Listeners[0].Name, n, want, p.Received())
			}
		}
	})
	if name == "" {
		return // skipped
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d outlived the test (kill 0: %v)", pid, err)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err != nil || strings.Contains(string(out), name) {
		t.Errorf("ip netns list after the test: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(netnsConfDir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s/%s outlived the test: %v", netnsConfDir, name, err)
	}
}

// cleanupTB keeps the cleanups it is given, to run them when the test
// says, and records errors instead of failing.
type cleanupTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (c *cleanupTB) Cleanup(f func())  { c.cleanups = append(c.cleanups, f) }
func (c *cleanupTB) Error(args ...any) { c.errs = append(c.errs, fmt.Sprint(args...)) }

// TestNetnsRemovesLeftovers: a process the test left running in the
// namespace (as a test that failed halfway would) is killed at cleanup
// and reported, and the namespace and its /etc/netns directory are
// removed.
func TestNetnsRemovesLeftovers(t *testing.T) {
	c := &cleanupTB{TB: t}
	ns := NewNetns(c)
	if ns == nil {
		return
	}
	ns.SetResolver(c, ns.Addr(c, 53))
	cmd := ns.Command(t.Context(), "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// ip netns exec joins the namespace, then execs sleep: until it has,
	// the process is not in the namespace yet. Ask until it is (the
	// bound only keeps a broken namespace from hanging the test).
	var (
		pids []int
		err  error
	)
	for range 500 {
		if pids, err = ns.PIDs(); err != nil || slices.Contains(pids, cmd.Process.Pid) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		for _, f := range slices.Backward(c.cleanups) {
			f()
		}
		t.Fatalf("ip netns pids = %v, %v; want it to list sleep's pid %d", pids, err, cmd.Process.Pid)
	}
	for _, f := range slices.Backward(c.cleanups) {
		f()
	}
	select {
	case err := <-waited:
		if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep outlived the namespace's cleanup")
	}
	if len(c.errs) != 1 || !strings.Contains(c.errs[0], fmt.Sprint(cmd.Process.Pid)) {
		t.Errorf("cleanup errors %q, want one naming pid %d", c.errs, cmd.Process.Pid)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err != nil || strings.Contains(string(out), ns.Name) {
		t.Errorf("ip netns list after cleanup: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(netnsConfDir, ns.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s/%s outlived the cleanup: %v", netnsConfDir, ns.Name, err)
	}
}

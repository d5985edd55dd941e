package peers

// This file makes a network namespace of the test's own (ip-netns(8)), in
// which peers and the program under test talk over addresses that exist
// nowhere else: a mail domain's exchanges each have their own address and
// listen on port 25, and the domain's nameserver answers on port 53, as on
// the Internet, without touching the machine's network. Programs are run
// in it with "ip netns exec", which also mounts /etc/netns/NAME/resolv.conf
// over /etc/resolv.conf, so a program that resolves through the C library
// (Postfix's smtp client) asks the test's Knot.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsConfDir is where ip netns exec finds a namespace's own /etc files.
const netnsConfDir = "/etc/netns"

// ErrNetns is returned (wrapped) when the namespace cannot be used.
var ErrNetns = errors.New("peers: network namespace")

// Netns is a network namespace the test created: its loopback interface
// is up, and a dummy interface (the loopback one where the kernel has no
// dummy driver) holds the addresses 10.250.N.1 to 10.250.N.254 given out
// by Addr. Everything in it is removed when the test ends.
type Netns struct {
	// Name is the namespace's name ("mxt-" and random hex), as
	// "ip netns exec NAME" takes it.
	Name string
	// Prefix is the namespace's 10.250.N.0/24.
	Prefix netip.Prefix

	ip   string
	dev  string
	dir  string // for logs
	used map[netip.Addr]bool
}

// NewNetns creates a network namespace and registers its removal (every
// process still in it is killed by its PID, then the namespace and its
// /etc/netns directory are removed) with tb.Cleanup. Creating one needs
// root and iproute2: without them the test is skipped, or fails under
// CI=true.
func NewNetns(tb testing.TB) *Netns {
	tb.Helper()
	ip := Binary(tb, "ip", "iproute2")
	if ip == "" {
		return nil
	}
	if os.Geteuid() != 0 {
		msg := "a network namespace (ip netns add) needs root"
		if InCI() {
			tb.Fatalf("CI=true and %s", msg)
		} else {
			tb.Skip(msg)
		}
		return nil
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	n := &Netns{
		Name:   "mxt-" + hex.EncodeToString(b[:3]),
		Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, b[3], 0}), 24),
		ip:     ip,
		dir:    tb.TempDir(),
		used:   map[netip.Addr]bool{},
	}
	if err := n.ipCmd("netns", "add", n.Name); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	tb.Cleanup(func() {
		if err := n.remove(); err != nil {
			tb.Error(err)
		}
	})
	if err := n.ipCmd("-n", n.Name, "link", "set", "lo", "up"); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	n.dev = "mxt0"
	if err := n.ipCmd("-n", n.Name, "link", "add", n.dev, "type", "dummy"); err != nil {
		// Containers often lack the dummy module: the loopback
		// interface holds other addresses just as well.
		tb.Logf("peers: no dummy interface (%v); the addresses go on lo", err)
		n.dev = "lo"
	} else if err := n.ipCmd("-n", n.Name, "link", "set", n.dev, "up"); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	return n
}

// ipCmd runs ip with args, bounded in time.
func (n *Netns) ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: ip %s: %w: %s", ErrNetns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// remove kills what is left in the namespace, by PID, and deletes it and
// its /etc/netns directory.
func (n *Netns) remove() error {
	var errs []error
	for range 3 {
		pids, err := n.PIDs()
		if err != nil || len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		errs = append(errs, fmt.Errorf("%w %s: processes %v were still running at the end of the test and were killed", ErrNetns, n.Name, pids))
		time.Sleep(100 * time.Millisecond)
	}
	if err := n.ipCmd("netns", "delete", n.Name); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(netnsConfDir, n.Name)); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrNetns, err))
	}
	return errors.Join(errs...)
}

// PIDs lists the processes running in the namespace (ip netns pids).
func (n *Netns) PIDs() ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.ip, "netns", "pids", n.Name).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: ip netns pids %s: %w", ErrNetns, n.Name, err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%w: ip netns pids printed %q", ErrNetns, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Addr returns the namespace's address 10.250.N.host, adding it to the
// namespace's interface the first time it is asked for. host is 1 to 254.
func (n *Netns) Addr(tb testing.TB, host byte) netip.Addr {
	tb.Helper()
	if host == 0 || host == 255 {
		tb.Fatalf("peers: host %d is not an address of a /24", host)
	}
	a := n.Prefix.Addr().As4()
	a[3] = host
	addr := netip.AddrFrom4(a)
	if n.used[addr] {
		return addr
	}
	if err := n.ipCmd("-n", n.Name, "addr", "add", netip.PrefixFrom(addr, 24).String(), "dev", n.dev); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	n.used[addr] = true
	return addr
}

// Holds reports whether addr is one of the addresses Addr added: peers
// started in the namespace listen only on those.
func (n *Netns) Holds(addr netip.Addr) bool {
	return n != nil && (n.used[addr] || addr.IsLoopback())
}

// SetResolver makes the programs started in the namespace resolve names
// through the DNS server at addr on port 53 (resolv.conf(5), mounted over
// /etc/resolv.conf by ip netns exec): the C library's resolver knows no
// other port.
func (n *Netns) SetResolver(tb testing.TB, addr netip.Addr) {
	tb.Helper()
	dir := filepath.Join(netnsConfDir, n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("peers: %v", err)
	}
	text := fmt.Sprintf("# written by mxtrace internal/peers\nnameserver %s\noptions timeout:1 attempts:2\n", addr)
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(text), 0o644); err != nil {
		tb.Fatalf("peers: %v", err)
	}
}

// Command returns bin with args, to be run in the namespace (through
// ip netns exec, which execs bin: the process's PID is bin's). A nil n
// runs bin on the machine's own network.
func (n *Netns) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if n == nil {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, n.ip, append([]string{"netns", "exec", n.Name, bin}, args...)...)
}

// command is Command without a context: for peers, which are stopped by
// their PID.
func (n *Netns) command(bin string, args ...string) *exec.Cmd {
	if n == nil {
		return exec.Command(bin, args...)
	}
	return exec.Command(n.ip, append([]string{"netns", "exec", n.Name, bin}, args...)...)
}

// Do runs fn on an OS thread that is in the namespace, so the sockets fn
// opens are the namespace's (a connection, once made, can be used from
// any goroutine); the thread returns to its own namespace after fn. A nil
// n runs fn as it is.
func (n *Netns) Do(fn func() error) error {
	if n == nil {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restore, err := enterNetns(filepath.Join("/run/netns", n.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("%w %s: %w", ErrNetns, n.Name, err)
			return
		}
		err = fn()
		if rerr := restore(); rerr != nil {
			// The thread stays locked and ends with this goroutine:
			// no other goroutine may run in the namespace.
			errc <- errors.Join(err, fmt.Errorf("%w %s: %w", ErrNetns, n.Name, rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// Dial connects to addr ("host:port") inside the namespace.
func (n *Netns) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// WaitBanner waits, bounded by StartTimeout, until an SMTP server at addr
// in the namespace greets with 220 (RFC 5321 §4.2).
func (n *Netns) WaitBanner(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	var last error
	for {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		last = n.Do(func() error { return banner(qctx, addr.String()) })
		qcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrPeerNotReady, addr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Process is a program the test started with Netns.Start.
type Process struct {
	p *process
}

// Start runs bin with args in the namespace, its output in a log file,
// and stops it (SIGTERM, then SIGKILL) by its PID when the test ends,
// printing the log if the test failed. It dies with the test binary.
func (n *Netns) Start(tb testing.TB, name, bin string, args ...string) *Process {
	tb.Helper()
	logPath := filepath.Join(n.dir, fmt.Sprintf("%s.%d.log", name, time.Now().UnixNano()))
	p, err := startCmd(name, logPath, n.command(bin, args...), nil)
	if err != nil {
		tb.Fatal(err)
	}
	manage(tb, p)
	return &Process{p: p}
}

// PID is the process's ID.
func (p *Process) PID() int { return p.p.cmd.Process.Pid }

// Kill sends SIGKILL, as a crash or the OOM killer would, and waits until
// the process has exited.
func (p *Process) Kill() error {
	if p.p.exited() {
		return fmt.Errorf("%w: %s (pid %d) before it was killed: %v", ErrPeerExited, p.p.name, p.PID(), p.p.waitErr)
	}
	if err := p.p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("peers: kill %s: %w", p.p.name, err)
	}
	select {
	case <-p.p.done:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("peers: %s (pid %d) did not exit after SIGKILL", p.p.name, p.PID())
	}
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited within a
// few seconds, and waits for it.
func (p *Process) Stop() error { return p.p.stop() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool { return p.p.exited() }

// Log returns the end of the process's output.
func (p *Process) Log() string { return p.p.tail() }

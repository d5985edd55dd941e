// Package peers starts real DNS software on loopback for integration tests:
// Knot DNS as the authoritative server (RFC 1034 §4.3.1, with automatic
// DNSSEC signing, RFC 4033–4035) and Unbound as a recursive, validating
// resolver (RFC 4035 §4.3) whose every zone is a stub pointing at Knot, so
// nothing ever leaves the machine; and PostgreSQL, the database several
// watch workers share.
//
// Every server runs in the foreground from a configuration written into the
// test's temporary directory, listens on 127.0.0.1 at a free port (or in a
// network namespace the test created, NewNetns, on the namespace's own
// addresses and the real ports, 25 and 53), is
// polled until it answers (bounded in time), and is killed by its PID when
// the test ends. Its log is a file in the temporary directory and is printed
// with the test's log when the test fails.
//
// The programs come from Debian packages (knot, unbound, postgresql). A test that needs
// a missing program is skipped, except under CI=true, where it fails: a test
// that needs a peer must fail rather than skip silently in CI (DEVELOPERS.md).
package peers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Bounds on waiting for a peer.
const (
	// StartTimeout bounds how long a peer may take to answer after it was
	// started (Knot includes signing its zones).
	StartTimeout = 20 * time.Second
	// stopTimeout bounds how long a peer may take to exit after SIGTERM,
	// and again after SIGKILL.
	stopTimeout = 5 * time.Second
	// startAttempts is how often a start is retried on a fresh port when
	// the chosen port was taken between choosing it and binding it.
	startAttempts = 3
	// logTail is how much of a peer's log is printed when a test fails.
	logTail = 32 << 10
	// maxSocketPath is the usable length of a Unix socket path (sun_path
	// is 108 bytes on Linux, 104 on the BSDs).
	maxSocketPath = 100
)

// Errors returned (wrapped) by the peers.
var (
	ErrPeerNotReady = errors.New("peers: the server did not answer in time")
	ErrPeerExited   = errors.New("peers: the server exited")
)

// sbinDirs are searched after PATH: Debian installs knotd and unbound in
// /usr/sbin, which is not in an ordinary user's PATH.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// InCI reports whether the tests run under continuous integration
// (CI=true), where a missing peer is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Binary returns the path of the program name. When it is missing the test
// is skipped, or fails under CI=true. pkg names the Debian package that
// provides it, for the message.
func Binary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (apt-get install %s): %v", name, pkg, err)
	if InCI() {
		tb.Fatalf("CI=true and %s", msg)
		return ""
	}
	tb.Skip(msg)
	return ""
}

// LookPath finds name in PATH, then in the sbin directories.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s", exec.ErrNotFound, name)
}

// FreePort returns a port that was free for both UDP and TCP on 127.0.0.1
// a moment ago. Another process may take it before the peer binds it;
// starts are retried on a fresh port for that reason.
func FreePort() (int, error) {
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("peers: free port: %w", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue // taken for TCP: try another
		}
		t.Close()
		return port, nil
	}
	return 0, errors.New("peers: no port free for both UDP and TCP on 127.0.0.1")
}

// process is one running peer.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
	// stopSignal asks the process to exit; zero means SIGTERM.
	stopSignal syscall.Signal
}

// startProcess runs bin with args in the foreground, its output appended to
// logPath. The process dies with the test binary where the OS allows it.
func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	return startCmd(name, logPath, exec.Command(bin, args...), nil)
}

// startCmd is startProcess for a command the caller prepared (its working
// directory), run as the user cred when it is not nil.
func startCmd(name, logPath string, cmd *exec.Cmd, cred *syscall.Credential) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("peers: %s log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if cred != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = cred
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux delivers Pdeathsig when the thread that started the child
		// ends, not the process: keep this goroutine on its thread until
		// the child has exited.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			p.waitErr = cmd.Wait()
		}
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("peers: start %s: %w", name, err)
	}
	return p, nil
}

// exited reports whether the process has already ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process by its PID: its stop signal (SIGTERM unless set),
// then SIGKILL if it has not exited within stopTimeout, and waits for it.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	sig := p.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("peers: %s (pid %d) ignored %v and was killed", p.name, p.cmd.Process.Pid, sig)
	case <-time.After(stopTimeout):
		return fmt.Errorf("peers: %s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// tail returns the end of the log file.
func (p *process) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTail {
		b = append([]byte("…\n"), b[len(b)-logTail:]...)
	}
	return string(bytes.TrimRight(b, "\n"))
}

// manage registers the cleanup that stops p and prints its log when the
// test failed.
func manage(tb testing.TB, p *process) {
	tb.Helper()
	tb.Cleanup(func() {
		if err := p.stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("%s log (%s):\n%s", p.name, p.logPath, p.tail())
		}
	})
}

// waitReady polls ready until it succeeds, the process exits, or
// StartTimeout passes. The last error from ready is wrapped.
func waitReady(p *process, ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%w: %s: %v", ErrPeerExited, p.name, p.waitErr)
		}
		qctx, qcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		last = ready(qctx)
		qcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s after %v: %w", ErrPeerNotReady, p.name, StartTimeout, last)
		case <-p.done:
		case <-tick.C:
		}
	}
}

// exchange sends one query to addr ("host:port") over net ("udp" or "tcp")
// and returns the response, bounded by ctx.
func exchange(ctx context.Context, network, addr string, name string, qtype uint16, recurse bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = recurse
	m.SetEdns0(1232, true)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// workDir returns a directory for a peer's files. It is under the test's
// temporary directory unless that path is too long for the Unix socket a
// peer creates there, in which case a short directory under /tmp is made
// and removed at cleanup.
func workDir(tb testing.TB, name string) (string, error) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), name)
	if len(dir)+len("/knot.sock") <= maxSocketPath {
		return dir, os.Mkdir(dir, 0o755)
	}
	dir, err := os.MkdirTemp("/tmp", "peer-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir, nil
}

// quote writes s as a double-quoted string for the configuration formats
// of Knot and Unbound, which take "…" without escapes; callers check their
// strings with quotable first.
func quote(s string) string { return `"` + s + `"` }

// quotable rejects strings the configuration files cannot hold.
func quotable(ss ...string) error {
	for _, s := range ss {
		if strings.ContainsAny(s, "\"\n\\") {
			return fmt.Errorf("peers: %q cannot be written into a configuration file", s)
		}
	}
	return nil
}

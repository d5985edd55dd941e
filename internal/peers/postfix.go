package peers

// This file starts a real Postfix (Debian's postfix package, 3.4 or later)
// as the receiving MTA of integration tests: RFC 5321 §4.1 for the
// dialogue it speaks, RFC 3207 for the STARTTLS it offers on chosen
// listeners. Each instance has its own configuration, queue and data
// directories, logs to a file of its own (maillog_file through postlogd),
// never to syslog, listens only on the loopback addresses it is given, and
// never sends mail or asks DNS: every accepted message is discarded after
// its delivery is logged.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// postfixLogCap caps how much of a maillog file is read: a test's log is a
// few kilobytes per message.
const postfixLogCap = 64 << 20

// PostfixListener is one SMTP listener (an inet smtpd service in
// master.cf) of a Postfix instance.
type PostfixListener struct {
	// Addr is a loopback address and port. Port 0 picks a port free on
	// that address.
	Addr netip.AddrPort
	// Name tags the listener's log lines ("postfix/NAME/smtpd[PID]"), so
	// the log says which listener received which message. Lower-case
	// letters, digits and '-'; unique within the instance.
	Name string
	// Hostname, when set, replaces PostfixConfig.Hostname in this
	// listener's banner and EHLO reply.
	Hostname string
	// TLS, when set, makes the listener offer STARTTLS (RFC 3207) with
	// this certificate chain and key; nil offers no STARTTLS.
	TLS *tls.Certificate
}

// PostfixConfig is what StartPostfix needs.
type PostfixConfig struct {
	// Hostname is myhostname: the name in the banner and the EHLO reply.
	// Empty means "mx.test".
	Hostname string
	// Domains are the recipient domains accepted (mydestination); mail
	// for any other domain is refused as relaying, as a real MX does.
	Domains []string
	// Listeners are the SMTP listeners; at least one.
	Listeners []PostfixListener
	// Reject maps a recipient address or domain to the access(5) action
	// Postfix takes at RCPT TO, e.g. "450 4.2.0 try again later" or
	// "550 5.1.1 no such user" (check_recipient_access).
	Reject map[string]string
	// Netns, when set, runs the instance in that network namespace,
	// where its listeners may have the namespace's addresses.
	Netns *Netns
	// Sender makes the instance a sending MTA (needs Netns): it relays
	// mail from the namespace's addresses (mynetworks) to any domain
	// not in Domains, through its smtp client, which looks up MX
	// records (smtp_host_lookup = dns) through the namespace's resolver
	// (Netns.SetResolver) and falls back to the next exchange in
	// preference order when one does not answer (RFC 5321 §5.1). Its
	// retry timers are a second or two, so deferred mail is tried again
	// quickly. The smtp client binds the first listener's address.
	Sender bool
}

// Postfix is a running Postfix instance.
type Postfix struct {
	// Dir holds the configuration (conf/), queue (queue/), data (data/)
	// and the log (maillog). It is removed when the test ends.
	Dir string
	// Listeners are the configured listeners with their actual ports.
	Listeners []PostfixListener

	proc     *process
	ns       *Netns
	restart  func(tb testing.TB) error // starts the stopped instance again
	maillog  string
	stopOnce sync.Once
	stopErr  error
}

// PostfixDelivery is one message Postfix received over SMTP and finished
// with, as its log tells it.
type PostfixDelivery struct {
	QueueID   string     // as in "250 2.0.0 Ok: queued as QUEUEID"
	Listener  string     // the PostfixListener.Name that received it
	Client    netip.Addr // the SMTP client's address
	TLS       string     // e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) …"; empty without STARTTLS
	MessageID string     // the Message-ID header, without angle brackets
	From      string     // the envelope sender (MAIL FROM), without angle brackets
	Size      int        // bytes, as Postfix queued it
	To        []string   // recipients delivered (status=sent), in log order
	// Relay is where a sending instance's smtp client delivered the
	// message ("mx1.relay.test[10.250.7.10]:25"); empty for mail
	// delivered locally.
	Relay string
}

// TLSVersion returns the protocol of the TLS session ("TLSv1.3"), or ""
// when the message came without STARTTLS.
func (d PostfixDelivery) TLSVersion() string {
	v, _, _ := strings.Cut(d.TLS, " ")
	return v
}

// Errors returned (wrapped) by the Postfix peer.
var (
	ErrPostfixStillRunning = errors.New("peers: postfix processes or listeners outlived the stop")
	ErrPostfixConfig       = errors.New("peers: bad postfix configuration")
)

// StartPostfix writes a Postfix configuration into a fresh directory,
// starts its master daemon in the foreground as root (the daemons drop to
// the postfix user), and waits until every listener answers with a 220
// banner. The instance is stopped by the master's PID when the test ends.
//
// A missing Postfix skips the test (fails it under CI=true), and so does
// running as a user other than root, which Postfix's master requires. Any
// other failure fails the test with the log.
func StartPostfix(tb testing.TB, cfg PostfixConfig) *Postfix {
	tb.Helper()
	return startPostfix(tb, cfg, "postconf")
}

// startPostfix is StartPostfix finding Postfix through the program
// postconf (a parameter so the missing-program path can be tested). It
// returns nil when tb was told to skip or fail.
func startPostfix(tb testing.TB, cfg PostfixConfig, postconf string) *Postfix {
	tb.Helper()
	bin := Binary(tb, postconf, "postfix")
	if bin == "" {
		return nil
	}
	if os.Geteuid() != 0 {
		msg := "the Postfix master daemon must run as root"
		if InCI() {
			tb.Fatalf("CI=true and %s", msg)
		} else {
			tb.Skip(msg)
		}
		return nil
	}
	master, err := postfixMaster(bin)
	if err != nil {
		tb.Fatalf("peers: postfix: %v", err)
		return nil
	}
	owner, err := postfixOwner()
	if err != nil {
		tb.Fatalf("peers: postfix: %v", err)
		return nil
	}
	if err := cfg.validate(); err != nil {
		tb.Fatalf("peers: postfix: %v", err)
		return nil
	}
	// The daemons run as the postfix user and must reach the queue
	// through every parent directory, which tb.TempDir (mode 0700) does
	// not allow.
	dir, err := os.MkdirTemp("/tmp", "mxtrace-postfix-")
	if err != nil {
		tb.Fatalf("peers: postfix: %v", err)
		return nil
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postfix{Dir: dir, maillog: filepath.Join(dir, "maillog"), ns: cfg.Netns}
	tb.Cleanup(func() {
		if p.proc == nil {
			return
		}
		if err := p.Stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("postfix log (%s):\n%s", p.maillog, tailText(p.Log()))
		}
	})
	for attempt := 1; ; attempt++ {
		err = p.start(tb, master, bin, owner, cfg, attempt)
		if err == nil {
			again := cfg
			again.Listeners = p.Listeners // the ports it has now
			p.restart = func(tb testing.TB) error {
				attempt++
				return p.start(tb, master, bin, owner, again, attempt)
			}
			return p
		}
		fixed := !slices.ContainsFunc(cfg.Listeners, func(l PostfixListener) bool { return l.Addr.Port() == 0 })
		if attempt == startAttempts || fixed || !errors.Is(err, ErrPeerExited) && !errors.Is(err, ErrPeerNotReady) {
			tb.Fatalf("peers: postfix: %v", err)
			return nil
		}
		tb.Logf("peers: postfix did not start (%v); retrying on other ports", err)
	}
}

// postfixMaster finds the master daemon in Postfix's daemon_directory.
func postfixMaster(postconf string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postconf, "-d", "-h", "daemon_directory").Output()
	if err != nil {
		return "", fmt.Errorf("postconf daemon_directory: %w", err)
	}
	master := filepath.Join(strings.TrimSpace(string(out)), "master")
	if st, err := os.Stat(master); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("no master daemon at %s: %v", master, err)
	}
	return master, nil
}

// owner is the mail_owner user and setgid_group group Postfix is built
// to run with.
type owner struct {
	uid, gid, postdrop int
}

func postfixOwner() (owner, error) {
	u, err := user.Lookup("postfix")
	if err != nil {
		return owner{}, fmt.Errorf("mail_owner: %w", err)
	}
	g, err := user.LookupGroup("postdrop")
	if err != nil {
		return owner{}, fmt.Errorf("setgid_group: %w", err)
	}
	var o owner
	for _, f := range []struct {
		s string
		p *int
	}{{u.Uid, &o.uid}, {u.Gid, &o.gid}, {g.Gid, &o.postdrop}} {
		if *f.p, err = strconv.Atoi(f.s); err != nil {
			return owner{}, fmt.Errorf("postfix ids: %w", err)
		}
	}
	return o, nil
}

// Names in the configuration are checked against these before they are
// written into main.cf or master.cf, which have no quoting.
var (
	listenerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
	hostName     = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$`)
	accessKey    = regexp.MustCompile(`^[^\s#@]*@?[A-Za-z0-9_.-]+$`)
)

func (cfg PostfixConfig) validate() error {
	if cfg.Hostname != "" && !hostName.MatchString(cfg.Hostname) {
		return fmt.Errorf("%w: hostname %q", ErrPostfixConfig, cfg.Hostname)
	}
	for _, d := range cfg.Domains {
		if !hostName.MatchString(d) {
			return fmt.Errorf("%w: domain %q", ErrPostfixConfig, d)
		}
	}
	if len(cfg.Listeners) == 0 {
		return fmt.Errorf("%w: no listener", ErrPostfixConfig)
	}
	seen := map[string]bool{}
	for _, l := range cfg.Listeners {
		if !listenerName.MatchString(l.Name) || seen[l.Name] {
			return fmt.Errorf("%w: listener name %q (want [a-z0-9-], unique)", ErrPostfixConfig, l.Name)
		}
		seen[l.Name] = true
		if !l.Addr.Addr().IsLoopback() && !cfg.Netns.Holds(l.Addr.Addr()) {
			return fmt.Errorf("%w: listener %s: %s is not a loopback address or one of the namespace's", ErrPostfixConfig, l.Name, l.Addr.Addr())
		}
		if l.Hostname != "" && !hostName.MatchString(l.Hostname) {
			return fmt.Errorf("%w: listener %s: hostname %q", ErrPostfixConfig, l.Name, l.Hostname)
		}
		if l.TLS != nil && len(l.TLS.Certificate) == 0 {
			return fmt.Errorf("%w: listener %s: TLS certificate without a chain", ErrPostfixConfig, l.Name)
		}
	}
	if cfg.Sender && cfg.Netns == nil {
		return fmt.Errorf("%w: a sending instance asks DNS and connects anywhere: it runs in a network namespace only", ErrPostfixConfig)
	}
	for k, v := range cfg.Reject {
		if !accessKey.MatchString(k) || strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) == "" {
			return fmt.Errorf("%w: reject %q → %q", ErrPostfixConfig, k, v)
		}
	}
	return nil
}

// start is one attempt: fresh ports for the listeners that asked for any,
// configuration, directories, master, and the wait for every banner.
func (p *Postfix) start(tb testing.TB, master, postconf string, o owner, cfg PostfixConfig, attempt int) error {
	tb.Helper()
	p.Listeners = slices.Clone(cfg.Listeners)
	for i, l := range p.Listeners {
		if l.Addr.Port() != 0 {
			continue
		}
		var port int
		err := p.ns.Do(func() error {
			var err error
			port, err = FreePortOn(l.Addr.Addr())
			return err
		})
		if err != nil {
			return err
		}
		p.Listeners[i].Addr = netip.AddrPortFrom(l.Addr.Addr(), uint16(port))
	}
	conf := filepath.Join(p.Dir, "conf")
	if err := p.layout(o); err != nil {
		return err
	}
	if err := p.writeConfig(conf, cfg); err != nil {
		return err
	}
	// -s: stdout is not redirected to /dev/null; -c: this instance's
	// configuration, for the master and every daemon it starts.
	out := filepath.Join(p.Dir, fmt.Sprintf("master.%d.out", attempt))
	proc, err := startCmd("postfix master", out, p.ns.command(master, "-c", conf, "-s"), nil)
	if err != nil {
		return err
	}
	p.proc = proc
	p.stopOnce, p.stopErr = sync.Once{}, nil
	if err := waitReady(proc, p.ready); err != nil {
		_ = p.Stop()
		return fmt.Errorf("%w%s", err, p.diagnose(postconf, conf))
	}
	return nil
}

// diagnose runs "postfix check" on the configuration when the master
// failed: the master reports start-up errors only to syslog, which this
// setup does not use, while postfix(1) prints them.
func (p *Postfix) diagnose(postconf, conf string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(postconf), "postfix"), "-c", conf, "check")
	out, err := cmd.CombinedOutput()
	return fmt.Sprintf("\npostfix check: %v\n%s", err, tailText(string(out)))
}

// layout creates the queue and data directories with the owners and modes
// Postfix's postfix-files list (the work "postfix post-install" does).
func (p *Postfix) layout(o owner) error {
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	type d struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}
	q := filepath.Join(p.Dir, "queue")
	dirs := []d{
		{filepath.Join(p.Dir, "conf"), 0o755, 0, 0},
		{q, 0o755, 0, 0},
		{filepath.Join(q, "pid"), 0o755, 0, 0},
		{filepath.Join(p.Dir, "data"), 0o700, o.uid, o.gid},
		{filepath.Join(q, "maildrop"), 0o730, o.uid, o.postdrop},
		{filepath.Join(q, "public"), 0o710, o.uid, o.postdrop},
	}
	for _, name := range []string{"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved", "trace"} {
		dirs = append(dirs, d{filepath.Join(q, name), 0o700, o.uid, o.gid})
	}
	for _, d := range dirs {
		if err := os.Mkdir(d.path, d.mode); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("peers: %w", err)
		}
		// Chmod after Mkdir: the umask must not narrow the modes.
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			return fmt.Errorf("peers: %w", err)
		}
	}
	return nil
}

// writeConfig writes main.cf, master.cf, the TLS chain files and the
// recipient access table (postconf(5), master(5), Postfix 3.7).
func (p *Postfix) writeConfig(conf string, cfg PostfixConfig) error {
	if err := quotable(p.Dir); err != nil || strings.ContainsAny(p.Dir, " \t,") {
		return fmt.Errorf("%w: directory %q", ErrPostfixConfig, p.Dir)
	}
	host := cfg.Hostname
	if host == "" {
		host = "mx.test"
	}
	domain := "invalid"
	if _, parent, ok := strings.Cut(host, "."); ok && parent != "" {
		domain = parent
	}
	protocols, interfaces := "ipv4", "loopback-only"
	if cfg.Netns != nil {
		// The listeners' own addresses only: Postfix's smtp client
		// takes every inet_interfaces address for itself, and would
		// refuse to send to an exchange that has one ("mail loops back
		// to myself").
		var addrs []string
		for _, l := range p.Listeners {
			addrs = append(addrs, l.Addr.Addr().String())
		}
		interfaces = strings.Join(addrs, ", ")
	}
	for _, l := range p.Listeners {
		if l.Addr.Addr().Is6() && !l.Addr.Addr().Is4In6() {
			protocols = "all"
		}
	}
	var mc strings.Builder
	fmt.Fprintf(&mc, `# written by mxtrace internal/peers
compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = %[2]s
mydomain = %[3]s
myorigin = $myhostname
inet_interfaces = %[6]s
inet_protocols = %[5]s
mynetworks =
biff = no
append_dot_mydomain = no
readme_directory = no
notify_classes =

# Log to a file of this instance through postlogd, never to syslog.
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
maillog_file_permissions = 0644

# Accept mail for these domains only (RFC 5321 §4.1.1.3: a server may
# refuse to relay) and discard it once its delivery is logged.
mydestination = %[4]s
smtpd_relay_restrictions = reject_unauth_destination
local_recipient_maps =
local_transport = discard:
alias_maps =
alias_database =

# Never send mail and never ask DNS.
default_transport = error:5.7.1 this test server sends no mail
relay_transport = error:5.7.1 this test server sends no mail
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_peername_lookup = no

smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
in_flow_delay = 0
disable_vrfy_command = yes
enable_long_queue_ids = yes
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h

# STARTTLS only where a listener asks for it; log every session.
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtp_tls_session_cache_database =
`, p.Dir, host, domain, strings.Join(cfg.Domains, ", "), protocols, interfaces)
	if cfg.Sender {
		// A sending MTA (postconf(5)): relay for the namespace, follow
		// MX records through the namespace's resolver, try again within
		// seconds. These replace the lines above that keep a receiving
		// instance from ever sending.
		text := setParams(mc.String(), [][2]string{
			{"mynetworks", "127.0.0.0/8, " + cfg.Netns.Prefix.String()},
			{"smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"},
			{"default_transport", "smtp"},
			{"relay_transport", "smtp"},
			{"smtp_dns_support_level", "enabled"},
			{"smtp_host_lookup", "dns"},
			{"smtp_bind_address", p.Listeners[0].Addr.Addr().String()},
			{"smtp_connect_timeout", "2s"},
			{"smtp_tls_security_level", "none"},
			{"minimal_backoff_time", "1s"},
			{"maximal_backoff_time", "2s"},
			{"queue_run_delay", "1s"},
		})
		mc.Reset()
		mc.WriteString(text)
	}

	if len(cfg.Reject) > 0 {
		var access strings.Builder
		for _, k := range slices.Sorted(maps.Keys(cfg.Reject)) {
			fmt.Fprintf(&access, "%s %s\n", k, strings.TrimSpace(cfg.Reject[k]))
		}
		file := filepath.Join(conf, "reject")
		if err := os.WriteFile(file, []byte(access.String()), 0o644); err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		// texthash: read when a daemon starts, no postmap needed.
		fmt.Fprintf(&mc, "smtpd_recipient_restrictions = check_recipient_access texthash:%s\n", file)
	}
	// master(5): service type private unpriv chroot wakeup maxproc command.
	var ms strings.Builder
	ms.WriteString("# written by mxtrace internal/peers\n")
	for _, l := range p.Listeners {
		lhost := l.Hostname
		if lhost == "" {
			lhost = host
		}
		addr := l.Addr.Addr().String()
		if l.Addr.Addr().Is6() {
			addr = "[" + addr + "]"
		}
		fmt.Fprintf(&ms, "%s:%d inet n - n - 20 smtpd\n  -o syslog_name=postfix/%s\n  -o myhostname=%s\n  -o { smtpd_banner = $myhostname ESMTP %s }\n",
			addr, l.Addr.Port(), l.Name, lhost, l.Name)
		if l.TLS != nil {
			file := filepath.Join(conf, l.Name+".pem")
			if err := writeChainFile(file, l.TLS); err != nil {
				return err
			}
			// RFC 3207: offered, not required.
			fmt.Fprintf(&ms, "  -o smtpd_tls_security_level=may\n  -o smtpd_tls_chain_files=%s\n", file)
		}
	}
	if cfg.Sender {
		ms.WriteString("smtp      unix  - - n -    - smtp\n")
	}
	ms.WriteString(`pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
`)
	for name, text := range map[string]string{"main.cf": mc.String(), "master.cf": ms.String()} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("peers: %w", err)
		}
	}
	return settle(conf)
}

// setParams sets each parameter in the main.cf text: its line is
// replaced where there is one (Postfix would warn about a second
// definition), appended otherwise.
func setParams(text string, params [][2]string) string {
	lines := strings.Split(text, "\n")
	for _, kv := range params {
		line := kv[0] + " = " + kv[1]
		i := slices.IndexFunc(lines, func(l string) bool {
			k, _, ok := strings.Cut(l, "=")
			return ok && strings.TrimSpace(k) == kv[0]
		})
		if i >= 0 {
			lines[i] = line
			continue
		}
		lines = append(lines[:len(lines)-1], line, "")
	}
	return strings.Join(lines, "\n")
}

// settle dates every file of the configuration a minute back: Postfix
// waits, 300 ms at a time, for a table or main.cf changed within the last
// second to stop changing before it reads it (dict_load_file), which
// would add seconds to every start.
func settle(conf string) error {
	ents, err := os.ReadDir(conf)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	past := time.Now().Add(-time.Minute)
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(conf, e.Name()), past, past); err != nil {
			return fmt.Errorf("peers: %w", err)
		}
	}
	return nil
}

// writeChainFile writes the private key followed by the chain, leaf first:
// the smtpd_tls_chain_files format. smtpd reads it as root, before it
// drops privileges, so the file stays private.
func writeChainFile(file string, c *tls.Certificate) error {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return fmt.Errorf("peers: TLS key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, cert := range c.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})...)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	return nil
}

// ready reads a 220 banner (RFC 5321 §4.2: "220 " ends the greeting) from
// every listener and says QUIT.
func (p *Postfix) ready(ctx context.Context) error {
	for _, l := range p.Listeners {
		if err := p.ns.Do(func() error { return banner(ctx, l.Addr.String()) }); err != nil {
			return fmt.Errorf("listener %s (%s): %w", l.Name, l.Addr, err)
		}
	}
	return nil
}

func banner(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(deadline)
	r := bufio.NewReaderSize(c, 1024)
	for range 20 {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("banner: %w", err)
		}
		if !strings.HasPrefix(string(line), "220") {
			return fmt.Errorf("banner: %q", strings.TrimSpace(string(line)))
		}
		if len(line) > 3 && line[3] == ' ' {
			_, _ = c.Write([]byte("QUIT\r\n"))
			return nil
		}
	}
	return errors.New("banner: too many lines")
}

// Start starts a stopped instance again, with the same configuration,
// listeners, ports and queue (mail it had queued is still there), and
// waits until every listener answers: an exchange coming back up. It is
// stopped when the test that started it first ends.
func (p *Postfix) Start(tb testing.TB) {
	tb.Helper()
	if !p.proc.exited() {
		tb.Fatal("peers: postfix is running")
	}
	if err := p.restart(tb); err != nil {
		tb.Fatalf("peers: postfix: %v", err)
	}
}

// PID returns the process ID of the master daemon.
func (p *Postfix) PID() int { return p.proc.cmd.Process.Pid }

// Listener returns the listener called name, with its actual port.
func (p *Postfix) Listener(name string) (PostfixListener, bool) {
	for _, l := range p.Listeners {
		if l.Name == name {
			return l, true
		}
	}
	return PostfixListener{}, false
}

// Stop ends the instance by the master's PID: SIGTERM, which the master
// passes on to its daemons (master(8)), SIGKILL after a bound. Then it
// makes sure no process of the master's process group is left (the master
// leads its own session), killing stragglers, and that no listener still
// accepts connections. It is idempotent, and runs when the test ends.
func (p *Postfix) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Postfix) stop() error {
	pgid := p.proc.cmd.Process.Pid
	errs := []error{p.proc.stop()}
	// The master called setsid(), so its daemons share its process group,
	// whose ID is the master's PID.
	deadline := time.Now().Add(stopTimeout)
	for len(groupMembers(pgid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := groupMembers(pgid); len(left) > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
		errs = append(errs, fmt.Errorf("%w: daemons %v of master %d were killed", ErrPostfixStillRunning, left, pgid))
		if left := groupMembers(pgid); len(left) > 0 {
			errs = append(errs, fmt.Errorf("%w: daemons %v of master %d survived SIGKILL", ErrPostfixStillRunning, left, pgid))
		}
	}
	for _, l := range p.Listeners {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := p.ns.Dial(ctx, "tcp", l.Addr.String())
		cancel()
		if err == nil {
			c.Close()
			errs = append(errs, fmt.Errorf("%w: listener %s (%s) still accepts connections", ErrPostfixStillRunning, l.Name, l.Addr))
		}
	}
	return errors.Join(errs...)
}

// groupMembers lists the live (not zombie) processes in process group
// pgid, from /proc. Zombies are dead: they only wait for their parent (or
// init) to collect them.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// proc(5): pid (comm) state ppid pgrp …; comm may hold spaces and
		// parentheses, so fields are counted after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Log returns the instance's log (maillog_file).
func (p *Postfix) Log() string {
	f, err := os.Open(p.maillog)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(f).WriteTo(limitWriter{&b, postfixLogCap})
	return b.String()
}

type limitWriter struct {
	b *strings.Builder
	n int
}

func (w limitWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); len(p) > room {
		w.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return w.b.Write(p)
}

// Received returns the messages the instance received over SMTP and has
// finished delivering (the queue manager removed them), in the order they
// arrived.
func (p *Postfix) Received() []PostfixDelivery {
	return parsePostfixLog(p.Log())
}

// WaitReceived waits until at least n messages were received and
// delivered, and returns them all; when ctx ends first it returns those
// seen so far and an error.
func (p *Postfix) WaitReceived(ctx context.Context, n int) ([]PostfixDelivery, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := p.Received()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("peers: postfix received %d of %d messages: %w", len(got), n, ctx.Err())
		case <-tick.C:
		}
	}
}

// The log lines a delivery is put together from (Postfix 3.7, with
// smtpd_tls_loglevel = 1). Each line is "TIME HOST TAG[PID]: TEXT".
var (
	logConnect = regexp.MustCompile(`^connect from \S+\[([^\]]*)\]`)
	logTLS     = regexp.MustCompile(`TLS connection established from \S+\[[^\]]*\]: (.+)$`)
	logClient  = regexp.MustCompile(`^([0-9A-Za-z]+): client=\S*\[([^\]]*)\]`)
	logMsgID   = regexp.MustCompile(`^([0-9A-Za-z]+): message-id=<?([^>]*)>?$`)
	logFrom    = regexp.MustCompile(`^([0-9A-Za-z]+): from=<([^>]*)>, size=(\d+)`)
	logTo      = regexp.MustCompile(`^([0-9A-Za-z]+): to=<([^>]*)>,.* status=(\w+)`)
	logRelay   = regexp.MustCompile(`, relay=([^,\s]+),`)
	logRemoved = regexp.MustCompile(`^([0-9A-Za-z]+): removed$`)
)

// parsePostfixLog follows each SMTP session by its smtpd process (a
// process serves one session at a time) and each message by its queue ID.
func parsePostfixLog(log string) []PostfixDelivery {
	type session struct{ tls string }
	sessions := map[string]*session{} // "TAG[PID]" → current session
	byID := map[string]*PostfixDelivery{}
	var order []string
	done := map[string]bool{}
	for line := range strings.Lines(log) {
		if !strings.HasSuffix(line, "\n") {
			break // being written
		}
		line = strings.TrimRight(line, "\r\n")
		i := strings.Index(line, "]: ")
		if i < 0 {
			continue
		}
		head, text := line[:i+1], line[i+3:]
		tag := head[strings.LastIndexByte(head, ' ')+1:]
		name, _, _ := strings.Cut(tag, "[")
		parts := strings.Split(name, "/")
		program := parts[len(parts)-1]
		if program == "smtpd" {
			listener := ""
			if len(parts) == 3 {
				listener = parts[1]
			}
			switch {
			case logConnect.MatchString(text):
				sessions[tag] = &session{}
			case logTLS.MatchString(text):
				if s := sessions[tag]; s != nil {
					s.tls = logTLS.FindStringSubmatch(text)[1]
				}
			case logClient.MatchString(text):
				m := logClient.FindStringSubmatch(text)
				d := &PostfixDelivery{QueueID: m[1], Listener: listener}
				d.Client, _ = netip.ParseAddr(strings.TrimPrefix(m[2], "IPv6:"))
				if s := sessions[tag]; s != nil {
					d.TLS = s.tls
				}
				if _, ok := byID[d.QueueID]; !ok {
					order = append(order, d.QueueID)
				}
				byID[d.QueueID] = d
			}
			continue
		}
		switch {
		case logMsgID.MatchString(text):
			m := logMsgID.FindStringSubmatch(text)
			if d := byID[m[1]]; d != nil {
				d.MessageID = m[2]
			}
		case logFrom.MatchString(text):
			m := logFrom.FindStringSubmatch(text)
			if d := byID[m[1]]; d != nil {
				d.From = m[2]
				d.Size, _ = strconv.Atoi(m[3])
			}
		case logTo.MatchString(text):
			m := logTo.FindStringSubmatch(text)
			if d := byID[m[1]]; d != nil && m[3] == "sent" {
				d.To = append(d.To, m[2])
				if r := logRelay.FindStringSubmatch(text); r != nil && r[1] != "none" {
					d.Relay = r[1]
				}
			}
		case logRemoved.MatchString(text):
			done[logRemoved.FindStringSubmatch(text)[1]] = true
		}
	}
	var out []PostfixDelivery
	for _, id := range order {
		if done[id] {
			out = append(out, *byID[id])
		}
	}
	return out
}

// FreePortOn returns a TCP port that was free on every one of addrs a
// moment ago, so that servers on several loopback addresses can share one
// port, as the exchanges of a domain all listen on 25. Another process may
// take it before it is bound.
func FreePortOn(addrs ...netip.Addr) (int, error) {
	if len(addrs) == 0 {
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	for range 50 {
		first, err := net.Listen("tcp", netip.AddrPortFrom(addrs[0], 0).String())
		if err != nil {
			return 0, fmt.Errorf("peers: free port: %w", err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		first.Close()
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("peers: no TCP port free on all of %v", addrs)
}

// tailText returns the end of a long text.
func tailText(s string) string {
	if len(s) > logTail {
		s = "…\n" + s[len(s)-logTail:]
	}
	return strings.TrimRight(s, "\n")
}

package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running PostgreSQL server, for the store's tests and for
// several watch workers sharing one database.
type Postgres struct {
	Addr string // "127.0.0.1:PORT"
	Port int
	// Dir holds the cluster (Dir/data), the Unix socket and the log.
	Dir string

	proc *process
	dbs  atomic.Int64 // databases made by NewDatabase
}

// postgresUser is the superuser initdb creates; authentication is trust,
// for connections from this machine only.
const postgresUser = "postgres"

// StartPostgres creates a throw-away cluster in a temporary directory
// (initdb) and starts postgres in the foreground on 127.0.0.1 at a free
// port and on a Unix socket in that directory, and waits until it accepts a
// connection. It is stopped by its PID (SIGINT, a fast shutdown that
// disconnects clients) when the test ends, and the directory removed.
//
// Durability is off (fsync=off): the tests kill processes, not the machine.
// initdb and postgres refuse to run as root, so when the test runs as root
// both run as nobody, owning the directory.
//
// The programs come from Debian's postgresql package, under
// /usr/lib/postgresql/VERSION/bin (the newest version is taken), or from
// PATH. When they are missing the test is skipped, or fails under CI=true.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	bin := postgresBinDir(tb)
	dir, err := os.MkdirTemp("/tmp", "peer-postgres-")
	if err != nil {
		tb.Fatalf("peers: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := unprivileged(dir)
	if err != nil {
		tb.Fatalf("peers: postgres: %v", err)
	}
	data := filepath.Join(dir, "data")
	if err := initdb(bin, data, cred); err != nil {
		tb.Fatalf("peers: postgres: %v", err)
	}
	p := &Postgres{Dir: dir}
	for attempt := 1; ; attempt++ {
		err = p.start(tb, bin, cred, attempt)
		if err == nil {
			return p
		}
		if attempt == startAttempts || !errors.Is(err, ErrPeerExited) && !errors.Is(err, ErrPeerNotReady) {
			tb.Fatalf("peers: postgres: %v", err)
		}
		tb.Logf("peers: postgres did not start on port %d (%v); retrying on another port", p.Port, err)
	}
}

// postgresBinDir finds the directory of initdb and postgres.
func postgresBinDir(tb testing.TB) string {
	tb.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// The newest major version first: "15" < "16" as numbers, not text.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	msg := "PostgreSQL not found in /usr/lib/postgresql/*/bin or PATH (apt-get install postgresql)"
	if InCI() {
		tb.Fatalf("CI=true and %s", msg)
	}
	tb.Skip(msg)
	return ""
}

// unprivileged returns nil when the test does not run as root, and
// otherwise the credentials of nobody, having given dir to that user.
func unprivileged(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no user to run as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user nobody: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// initdb creates the cluster in data: UTF-8, C locale (no dependence on
// the machine's locales), trust authentication, no fsync.
func initdb(bin, data string, cred *syscall.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", postgresUser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.Dir = filepath.Dir(data)
	cmd.SysProcAttr = sysProcAttr()
	if cred != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = cred
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// start is one attempt to start postgres on a fresh port.
func (p *Postgres) start(tb testing.TB, bin string, cred *syscall.Credential, attempt int) error {
	tb.Helper()
	port, err := FreePort()
	if err != nil {
		return err
	}
	p.Port, p.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(p.Dir, fmt.Sprintf("postgres.%d.log", attempt))
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(p.Dir, "data"),
		"-p", strconv.Itoa(port),
		"-k", p.Dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning")
	cmd.Dir = p.Dir
	proc, err := startCmd("postgres", logPath, cmd, cred)
	if err != nil {
		return err
	}
	// SIGTERM would be a smart shutdown, waiting for every client to leave.
	proc.stopSignal = syscall.SIGINT
	manage(tb, proc)
	p.proc = proc
	if err := waitReady(proc, p.ready); err != nil {
		_ = proc.stop()
		return err
	}
	return nil
}

// ready connects to the postgres database and pings it.
func (p *Postgres) ready(ctx context.Context) error {
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}

// DSN is the URL of database db on the server, over TCP on loopback.
func (p *Postgres) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(postgresUser),
		Host:     p.Addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SocketDSN is dsn (from DSN or NewDatabase) over the server's Unix
// socket in Dir instead of TCP: for a program in another network
// namespace (peers.Netns), where 127.0.0.1 is its own loopback but the
// file system, and so the socket, is shared.
func (p *Postgres) SocketDSN(tb testing.TB, dsn string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("peers: postgres: SocketDSN(%q): %v", dsn, err)
	}
	q := u.Query()
	q.Set("host", p.Dir) // a directory: the socket .s.PGSQL.PORT in it
	q.Set("port", strconv.Itoa(p.Port))
	u.Host, u.RawQuery = "", q.Encode()
	return u.String()
}

// NewDatabase creates an empty database of its own for one test and returns
// its DSN, so tests sharing a server never see each other's rows.
func (p *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		tb.Fatalf("peers: postgres: %v", err)
	}
	defer c.Close(context.Background())
	name := fmt.Sprintf("test%d", p.dbs.Add(1))
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("peers: postgres: create database %s: %v", name, err)
	}
	return p.DSN(name)
}

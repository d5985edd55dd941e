package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/internal/peers"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// relayReturn is how soon after the primary's return the relay must have
// delivered everything it held for it (issue 19 item 5: "within seconds",
// item 7: 5 seconds).
const relayReturn = 5 * time.Second

// relayWorld is relay.test in a network namespace of the test's own:
// Knot on port 53 serves MX 10 mx1 (the primary, a Postfix) and MX 20 mx2
// (mxtrace relay); a sending Postfix follows those records; every program
// resolves through Knot (the namespace's resolv.conf).
type relayWorld struct {
	bin     string
	ns      *peers.Netns
	dns     netip.Addr
	primary *peers.Postfix
	sender  *peers.Postfix
	mx1     netip.AddrPort
	mx2     netip.AddrPort
	out     netip.AddrPort
	dir     string
}

// relayZone is relay.test: the primary at 10, the relay at 20.
func relayZone(ns, mx1, mx2 netip.Addr) string {
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

// senderZone is sender.test, the senders' domain: its SPF policy allows
// the namespace's addresses and its DMARC policy rejects, so the relay's
// sender checks (RFC 7208, RFC 7489) pass for its mail.
func senderZone(prefix netip.Prefix) string {
	return fmt.Sprintf(`$TTL 60
@       SOA ns.relay.test. hostmaster.relay.test. 1 3600 600 86400 60
@       NS  ns.relay.test.
@       TXT "v=spf1 ip4:%s -all"
_dmarc  TXT "v=DMARC1; p=reject"
`, prefix)
}

// The recipients of relay.test: the primary knows bob and carol and
// refuses ghost; the relay's static list holds bob and carol.
const (
	knownRcpt   = "bob@relay.test"
	otherRcpt   = "carol@relay.test"
	unknownRcpt = "ghost@relay.test"
)

func startRelayWorld(t *testing.T) *relayWorld {
	t.Helper()
	ns := peers.NewNetns(t)
	w := &relayWorld{ns: ns, dns: ns.Addr(t, 53), dir: t.TempDir()}
	w.mx1 = netip.AddrPortFrom(ns.Addr(t, 10), 25)
	w.mx2 = netip.AddrPortFrom(ns.Addr(t, 20), 25)
	w.out = netip.AddrPortFrom(ns.Addr(t, 30), 25)
	w.bin = buildMxtrace(t)
	peers.StartKnotIn(t, ns, netip.AddrPortFrom(w.dns, 53),
		peers.Zone{Origin: "relay.test.", Text: relayZone(w.dns, w.mx1.Addr(), w.mx2.Addr())},
		peers.Zone{Origin: "sender.test.", Text: senderZone(ns.Prefix)})
	ns.SetResolver(t, w.dns)
	w.primary = peers.StartPostfix(t, peers.PostfixConfig{
		Hostname:  "mx1.relay.test",
		Domains:   []string{"relay.test"},
		Listeners: []peers.PostfixListener{{Addr: w.mx1, Name: "mx1"}},
		Reject:    map[string]string{unknownRcpt: "550 5.1.1 no such user"},
		Netns:     ns,
	})
	w.sender = peers.StartPostfix(t, peers.PostfixConfig{
		Hostname:  "out.sender.test",
		Listeners: []peers.PostfixListener{{Addr: w.out, Name: "out"}},
		Netns:     ns,
		Sender:    true,
	})
	list := filepath.Join(w.dir, "recipients")
	if err := os.WriteFile(list, []byte("# relay.test's mailboxes\n"+knownRcpt+"\n"+otherRcpt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// startRelay runs mxtrace relay for relay.test on mx2:25 with its queue
// in db (a SQLite file, or postgres://...) and the extra flags, and waits for its banner. It
// is stopped when the test ends.
func (w *relayWorld) startRelay(t *testing.T, db string, extra ...string) *peers.Process {
	t.Helper()
	args := append([]string{"relay",
		"--domain", "relay.test",
		"--listen", w.mx2.String(),
		"--queue", db,
		"--hostname", "mx2.relay.test",
		"--self", "mx2.relay.test",
		"--resolver", w.dns.String(),
		"--allow-private",
		"--rate", "0",
		"--max-conns-per-client", "100",
		"--timeout", "10s",
	}, extra...)
	p := w.ns.Start(t, "mxtrace relay", w.bin, args...)
	if err := w.ns.WaitBanner(t.Context(), w.mx2); err != nil {
		t.Fatalf("mxtrace %s: %v\n%s", strings.Join(args, " "), err, p.Log())
	}
	return p
}

// queued lists the relay's queue in db with mxtrace relay queue list
// --json.
func (w *relayWorld) queued(t *testing.T, db string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := w.ns.Command(ctx, w.bin, "relay", "queue", "list", "--queue", db, "--json").Output()
	if err != nil {
		t.Fatalf("mxtrace relay queue list: %v\n%s", err, out)
	}
	var list []map[string]any
	if err := json.Unmarshal(out, &list); err == nil {
		return list
	}
	// One object per line.
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var e map[string]any
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("mxtrace relay queue list --json printed %q: %v", out, err)
		}
		list = append(list, e)
	}
	return list
}

// relaySession is one SMTP conversation from inside the namespace.
type relaySession struct {
	c *textproto.Conn
}

func (w *relayWorld) dialSMTP(ctx context.Context, addr netip.AddrPort) (*relaySession, error) {
	conn, err := w.ns.Dial(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	s := &relaySession{c: textproto.NewConn(conn)}
	if _, _, err := s.c.ReadResponse(220); err != nil {
		s.c.Close()
		return nil, err
	}
	if _, _, err := s.cmd(250, "EHLO client.test"); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// cmd sends one command and reads its reply (RFC 5321 §4.2), expecting
// the code class of want (textproto: 2 for any 2xx, 250 exactly).
func (s *relaySession) cmd(want int, format string, args ...any) (int, string, error) {
	id, err := s.c.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	s.c.StartResponse(id)
	defer s.c.EndResponse(id)
	return s.c.ReadResponse(want)
}

// send sends one message with Message-ID id and returns the final reply
// to its data (RFC 5321 §4.1.1.4); an error before it is returned as err.
func (s *relaySession) send(from, to, id string, body int) (int, string, error) {
	if _, _, err := s.cmd(250, "MAIL FROM:<%s>", from); err != nil {
		return 0, "", err
	}
	if _, _, err := s.cmd(250, "RCPT TO:<%s>", to); err != nil {
		return 0, "", err
	}
	if _, _, err := s.cmd(354, "DATA"); err != nil {
		return 0, "", err
	}
	dw := s.c.DotWriter()
	fmt.Fprintf(dw, "From: <%s>\r\nTo: <%s>\r\nSubject: relay test\r\nMessage-ID: <%s>\r\n\r\n", from, to, id)
	line := strings.Repeat("x", 76) + "\r\n"
	for n := 0; n < body; n += len(line) {
		fmt.Fprint(dw, line)
	}
	if err := dw.Close(); err != nil {
		return 0, "", err
	}
	return s.c.ReadResponse(250)
}

func (s *relaySession) close() {
	_, _, _ = s.cmd(221, "QUIT")
	s.c.Close()
}

// submit hands one message for to with Message-ID id to the sending
// Postfix, which routes it by relay.test's MX records.
func (w *relayWorld) submit(t *testing.T, to, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := w.dialSMTP(ctx, w.out)
	if err != nil {
		t.Fatalf("the sending Postfix: %v", err)
	}
	defer s.close()
	if code, msg, err := s.send("alice@sender.test", to, id, 200); err != nil {
		t.Fatalf("submitting %s: %d %s: %v", id, code, msg, err)
	}
}

// queuedMessageIDs reads the Message-ID of every message in the relay's
// queue at path, a SQLite file or postgres://... (relay/queue's own
// reading, beside the running relay: SQLite in WAL mode takes readers
// while it writes).
func queuedMessageIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, path)
	if err != nil {
		t.Fatalf("queue.Open %s: %v", path, err)
	}
	defer q.Close()
	es, err := q.List(ctx, queue.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range es {
		data, err := q.Data(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("message %v in the queue: %v", e.ID, err)
		}
		ids[strings.Trim(m.Header.Get("Message-ID"), "<>")] = true
	}
	return ids
}

// messageIDs returns how often each Message-ID shows among deliveries.
func messageIDs(ds []peers.PostfixDelivery) map[string]int {
	n := map[string]int{}
	for _, d := range ds {
		n[d.MessageID]++
	}
	return n
}

// TestRelay runs mxtrace relay as relay.test's backup MX between real
// Postfix servers (issue 19 item 7): the sender fails over to it while
// the primary is down, the relay refuses unknown recipients at RCPT while
// it cannot ask the primary, refuses every open-relay trick, delivers
// everything within seconds of the primary's return, and loses no
// acknowledged message when it is killed (SIGKILL) in the middle of a
// burst.
func TestRelay(t *testing.T) {
	w := startRelayWorld(t)
	// In this order: each leaves the primary up.
	t.Run("failover", func(t *testing.T) { relayFailover(t, w) })
	t.Run("recipients", func(t *testing.T) { relayRecipients(t, w) })
	t.Run("openrelay", func(t *testing.T) { relayOpenRelay(t, w) })
	// The kill -9 battery on both queues (issue 19 item 4): the SQLite
	// file, and PostgreSQL, the queue several relays share. The relay
	// runs in the namespace and reaches PostgreSQL, outside it, over its
	// Unix socket.
	t.Run("kill9", func(t *testing.T) {
		t.Run("sqlite", func(t *testing.T) { relayKill9(t, w, "sqlite", filepath.Join(w.dir, "kill9.db")) })
		t.Run("postgres", func(t *testing.T) {
			pg := peers.StartPostgres(t)
			relayKill9(t, w, "postgres", pg.SocketDSN(t, pg.NewDatabase(t)))
		})
	})
}

// relayFailover: with the primary stopped, the sending Postfix delivers
// to the relay (MX 20), which queues; the primary is started again and
// every message reaches it within relayReturn, once, from the relay. The
// relay's retry timer is its default (5 minutes at first): only its
// out-of-band probe of the primary can flush the queue that soon.
func relayFailover(t *testing.T, w *relayWorld) {
	db := filepath.Join(w.dir, "failover.db")
	w.startRelay(t, db, "--recipients", filepath.Join(w.dir, "recipients"))
	if err := w.primary.Stop(); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var ids []string
	for i := range n {
		id := fmt.Sprintf("failover-%d@relay.test", i)
		ids = append(ids, id)
		w.submit(t, knownRcpt, id)
	}
	// The sender hands each message to the relay (the primary refuses
	// connections), which acknowledges it.
	before := len(w.sender.Received())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	sent, err := w.sender.WaitReceived(ctx, n)
	if err != nil {
		t.Fatalf("the sender delivered %d of %d messages (%d before): %v", len(sent), n, before, err)
	}
	for _, d := range sent {
		if want := fmt.Sprintf("mx2.relay.test[%s]:25", w.mx2.Addr()); d.Relay != want {
			t.Errorf("the sender delivered %s to %q, want the relay %s", d.MessageID, d.Relay, want)
		}
	}
	if q := w.queued(t, db); len(q) != n {
		t.Errorf("the relay's queue holds %d messages, want %d: %v", len(q), n, q)
	}

	w.primary.Start(t)
	back := time.Now()
	deadline, cancel := context.WithTimeout(t.Context(), 3*relayReturn)
	defer cancel()
	got, err := w.primary.WaitReceived(deadline, n)
	took := time.Since(back)
	if err != nil {
		t.Fatalf("%v after the primary's return: %v", took, err)
	}
	if took > relayReturn {
		t.Errorf("the relay delivered the queue %v after the primary's return, want within %v", took, relayReturn)
	}
	t.Logf("the relay delivered its %d messages %v after the primary's return", n, took.Round(10*time.Millisecond))
	count := messageIDs(got)
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("the primary received %s %d times, want once", id, count[id])
		}
	}
	for _, d := range got {
		// The relay connects from whichever of the namespace's addresses
		// the kernel picks; the sender binds its own, so a delivery from
		// that one would have bypassed the relay.
		if d.Client == w.out.Addr() || !slices.Equal(d.To, []string{knownRcpt}) || d.From != "alice@sender.test" {
			t.Errorf("delivery %+v, want from the relay, alice@sender.test to %s", d, knownRcpt)
		}
	}
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for len(w.queued(t, db)) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("the relay's queue still holds %v after delivery", w.queued(t, db))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rcpt asks addr whether it takes a message for to (MAIL FROM, RCPT TO,
// QUIT) with swaks in the namespace, and returns swaks's transcript.
func (w *relayWorld) rcpt(t *testing.T, swaks string, addr netip.AddrPort, to string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, _ := w.ns.Command(ctx, swaks, "--server", addr.Addr().String(), "--port", strconv.Itoa(int(addr.Port())),
		"--from", "alice@sender.test", "--to", to, "--helo", "client.test",
		"--quit-after", "RCPT", "--timeout", "20s").CombinedOutput()
	return string(out)
}

// rcptReply is the reply to RCPT TO in a swaks transcript: "250", "550
// 5.7.1", … ("" when swaks never got that far).
func rcptReply(transcript string) string {
	rcpt := false
	for line := range strings.Lines(transcript) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "~> RCPT TO:") || strings.HasPrefix(line, " -> RCPT TO:") || strings.HasPrefix(line, "-> RCPT TO:") {
			rcpt = true
			continue
		}
		if !rcpt {
			continue
		}
		line = strings.TrimLeft(line, "<~*- ")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		code := strings.TrimRight(f[0], "-")
		if len(f) > 1 && strings.Count(f[1], ".") == 2 {
			return code + " " + f[1]
		}
		return code
	}
	return ""
}

// replyIs reports whether a reply ("250 2.1.5") is want ("250" or "550
// 5.1.1").
func replyIs(reply, want string) bool {
	return reply == want || strings.HasPrefix(reply, want+" ")
}

// relayRecipients: while the primary is down the relay refuses what it
// cannot show the primary would take, per its policy: with the static
// list, an unlisted address gets 550 5.1.1; with the callout and
// --down-policy tempfail every recipient gets 451 4.4.1; with
// --down-policy known, an address the primary accepted before is taken,
// one it refused stays refused (negative cache), and one never seen gets
// 451 4.4.1 (try later), never a 250 the relay would have to bounce.
func relayRecipients(t *testing.T, w *relayWorld) {
	swaks := peers.Binary(t, "swaks", "swaks")
	t.Run("list", func(t *testing.T) {
		r := w.startRelay(t, filepath.Join(w.dir, "list.db"), "--recipients", filepath.Join(w.dir, "recipients"))
		defer r.Stop()
		if err := w.primary.Stop(); err != nil {
			t.Fatal(err)
		}
		defer w.primary.Start(t)
		for to, want := range map[string]string{
			knownRcpt:           "250",
			"BOB@Relay.Test":    "250", // RFC 5321 §2.4: the domain's case does not matter
			otherRcpt:           "250",
			unknownRcpt:         "550 5.1.1",
			"nobody@relay.test": "550 5.1.1",
		} {
			if got := rcptReply(w.rcpt(t, swaks, w.mx2, to)); !replyIs(got, want) {
				t.Errorf("RCPT TO:<%s> with the primary down: %q, want %q", to, got, want)
			}
		}
	})
	t.Run("callout-tempfail", func(t *testing.T) {
		r := w.startRelay(t, filepath.Join(w.dir, "tempfail.db"), "--callout", "--down-policy", "tempfail")
		defer r.Stop()
		if err := w.primary.Stop(); err != nil {
			t.Fatal(err)
		}
		defer w.primary.Start(t)
		// Nothing is known of any recipient: every one waits for the
		// primary.
		for _, to := range []string{knownRcpt, unknownRcpt} {
			if got := rcptReply(w.rcpt(t, swaks, w.mx2, to)); !replyIs(got, "451 4.4.1") {
				t.Errorf("RCPT TO:<%s> with the primary down: %q, want 451 4.4.1", to, got)
			}
		}
	})
	t.Run("callout", func(t *testing.T) {
		r := w.startRelay(t, filepath.Join(w.dir, "callout.db"), "--callout", "--down-policy", "known")
		defer r.Stop()
		// With the primary up, the callout learns bob (valid) and ghost
		// (refused).
		for to, want := range map[string]string{knownRcpt: "250", unknownRcpt: "550 5.1.1"} {
			if got := rcptReply(w.rcpt(t, swaks, w.mx2, to)); !replyIs(got, want) {
				t.Errorf("RCPT TO:<%s> with the primary up: %q, want %q", to, got, want)
			}
		}
		if err := w.primary.Stop(); err != nil {
			t.Fatal(err)
		}
		defer w.primary.Start(t)
		for to, want := range map[string]string{
			knownRcpt:   "250",
			unknownRcpt: "550 5.1.1",
			otherRcpt:   "451 4.4.1", // valid, but never seen: the relay cannot know
		} {
			if got := rcptReply(w.rcpt(t, swaks, w.mx2, to)); !replyIs(got, want) {
				t.Errorf("RCPT TO:<%s> with the primary down: %q, want %q", to, got, want)
			}
		}
	})
}

// relayOpenRelay: the classic open-relay tricks, sent by swaks to the
// real relay, all get 550 5.7.1 at RCPT, and nothing reaches the queue.
// The relay verifies no recipient (--accept-any-recipient), its most
// permissive setting: the address rules alone must refuse every trick.
func relayOpenRelay(t *testing.T, w *relayWorld) {
	swaks := peers.Binary(t, "swaks", "swaks")
	db := filepath.Join(w.dir, "openrelay.db")
	r := w.startRelay(t, db, "--accept-any-recipient")
	defer r.Stop()
	for _, to := range []string{
		"victim@elsewhere.test",             // another domain
		"victim%elsewhere.test@relay.test",  // the percent hack
		"@relay.test:victim@elsewhere.test", // a source route (RFC 5321 §4.1.2, obsolete)
		"@mx2.relay.test,@relay.test:victim@elsewhere.test",
		`"victim@elsewhere.test"@relay.test`, // a quoted local part with @
		"victim@elsewhere.test@relay.test",   // two @
		"victim@[10.250.0.1]",                // an address literal
		"victim@relay.test.",                 // a trailing dot
		"victim@relay.test.elsewhere.test",   // our domain as a prefix
		"victim@sub.relay.test",              // a subdomain
		"victim@xrelay.test",                 // our domain as a suffix
		"victim!elsewhere.test@relay.test",   // a UUCP bang path
		"victim@elsewhere.test%relay.test",   // percent hack the other way
	} {
		// 550 5.7.1 (relaying denied), or 501 5.5.2 for what the
		// SMTP parser cannot read as a path at all.
		if got := rcptReply(w.rcpt(t, swaks, w.mx2, to)); !replyIs(got, "550 5.7.1") && !replyIs(got, "501 5.5.2") {
			t.Errorf("RCPT TO:<%s>: %q, want 550 5.7.1", to, got)
		}
	}
	// Whole transactions, so a wrongly accepted recipient would be queued.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, _ := w.ns.Command(ctx, swaks, "--server", w.mx2.Addr().String(), "--port", "25",
		"--from", "spammer@elsewhere.test", "--to", "victim%elsewhere.test@relay.test", "--timeout", "20s").CombinedOutput()
	if !strings.Contains(string(out), "<** 550 5.7.1") {
		t.Errorf("a whole transaction to the percent hack:\n%s", out)
	}
	if q := w.queued(t, db); len(q) != 0 {
		t.Errorf("the queue holds %v after the open-relay battery, want nothing", q)
	}
}

// relayKill9: clients send a burst to the relay over several connections;
// the relay is killed with SIGKILL in the middle of it and started again
// on the same queue, db (engine names it; it tags the Message-IDs, so the
// runs on each engine are told apart at the primary). Every message a client saw 250 for reaches the
// primary (no loss); a message reaches it twice only if the killed relay
// had already delivered it (a delivery in flight at the kill: SMTP's own
// duplicate, RFC 5321 §6.1), and at most as many as the relay delivers at
// once (--per-destination).
func relayKill9(t *testing.T, w *relayWorld, engine, db string) {
	const (
		clients        = 4
		killAfter      = 150 // acknowledged messages before the kill
		perDestination = 4
	)
	prefix := "kill9-" + engine + "-"
	flags := []string{"--recipients", filepath.Join(w.dir, "recipients"), "--per-destination", strconv.Itoa(perDestination)}
	r := w.startRelay(t, db, flags...)
	base := messageIDs(w.primary.Received())

	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for c := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			s, err := w.dialSMTP(ctx, w.mx2)
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				once.Do(func() { close(enough) })
				return
			}
			defer s.c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s%d-%d@relay.test", prefix, c, i)
				if _, _, err := s.send("alice@sender.test", knownRcpt, id, 2000); err != nil {
					return // the relay is gone: this message was not acknowledged
				}
				mu.Lock()
				acked = append(acked, id)
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() { close(enough) })
				}
				if i >= 1000 {
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		once.Do(func() { close(enough) })
	}()
	<-enough
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < killAfter {
		t.Fatalf("the clients stopped after %d acknowledged messages, before the kill point (%d)", n, killAfter)
	}
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	sawOK := slices.Clone(acked)
	mu.Unlock()
	// What the killed relay delivered: Postfix logs a delivery after the
	// session, so give it a moment to finish its lines.
	time.Sleep(time.Second)
	beforeRestart := messageIDs(w.primary.Received())

	w.startRelay(t, db, flags...)
	// Every acknowledged message reaches the primary: the new process
	// frees the deliveries the killed one had claimed (its owner, host:pid,
	// names a process that is gone) instead of waiting out their lease.
	var got map[string]int
	undelivered := func() bool {
		got = messageIDs(w.primary.Received())
		return slices.ContainsFunc(sawOK, func(id string) bool { return got[id] == 0 })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for undelivered() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	inQueue := queuedMessageIDs(t, db)
	got = messageIDs(w.primary.Received())
	var held []string
	for _, id := range sawOK {
		switch {
		case got[id] > 0:
		case inQueue[id]:
			held = append(held, id)
		default:
			t.Errorf("%s was acknowledged and is neither at the primary nor in the relay's queue: lost", id)
		}
	}
	if len(held) > 0 {
		t.Errorf("%d acknowledged messages are still in the queue 30 s after the restart (not lost, but not delivered): %v", len(held), held)
	}
	// Messages taken but not acknowledged may be delivered too, or wait
	// in the queue: both are allowed.
	got = messageIDs(w.primary.Received())
	var dups []string
	delivered, early := 0, 0
	for id, n := range got {
		if base[id] > 0 || !strings.HasPrefix(id, prefix) {
			continue
		}
		delivered++
		if beforeRestart[id] > 0 {
			early++
		}
		if n > 1 {
			dups = append(dups, id)
			if beforeRestart[id] == 0 {
				t.Errorf("%s reached the primary %d times, and the killed relay had not delivered it", id, n)
			}
		}
	}
	if len(dups) > perDestination {
		t.Errorf("%d messages were delivered twice (%v), more than the %d deliveries in flight at once", len(dups), dups, perDestination)
	}
	t.Logf("%s: %d messages acknowledged before the kill; %d delivered by the killed relay, %d in all, %d twice %v",
		engine, len(sawOK), early, delivered, len(dups), dups)
}

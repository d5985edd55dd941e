package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Group commit bounds: one transaction writes at most this many messages
// and, beyond its first message, this many bytes of data.
const (
	maxGroup      = 128
	maxGroupBytes = 16 << 20
)

// MaxRecipients is the most recipients a message may have: ten times the
// 100 an SMTP server must accept (RFC 5321 §4.5.3.1.8).
const MaxRecipients = 1000

// CommitTimeout bounds one group commit. A commit runs for every message in
// its group, so it does not end with the context of the caller that
// happens to run it.
const CommitTimeout = time.Minute

// request is one Enqueue call waiting for its group commit.
type request struct {
	m    *prepared
	id   ID
	err  error
	done chan struct{} // closed once id and err are set
}

// prepared is a message checked and ready to insert.
type prepared struct {
	sender, client, helo string
	received, expires    time.Time
	data                 []byte
	// domains are the recipients' domains in order of first appearance;
	// rcpts the distinct recipients, each with its domain's index.
	domains []string
	rcpts   []string
	domain  []int
}

// prepare checks m and fills in what Enqueue may default: Received (now)
// and Expires (Received + DefaultLifetime).
func prepare(m *Message, now time.Time) (*prepared, error) {
	if m == nil {
		return nil, errors.New("queue: no message")
	}
	if len(m.Recipients) == 0 {
		return nil, errors.New("queue: a message without recipients")
	}
	if len(m.Recipients) > MaxRecipients {
		return nil, fmt.Errorf("queue: %d recipients; at most %d", len(m.Recipients), MaxRecipients)
	}
	if !text(m.Sender) {
		return nil, fmt.Errorf("queue: sender %q is not valid UTF-8 text", m.Sender)
	}
	// The HELO name is only recorded: made valid rather than refused.
	p := &prepared{sender: m.Sender, helo: clean(m.Helo), received: m.Received, expires: m.Expires, data: m.Data}
	if m.Client.IsValid() {
		p.client = m.Client.String()
	}
	if p.received.IsZero() {
		p.received = now
	}
	if p.expires.IsZero() {
		p.expires = p.received.Add(DefaultLifetime)
	}
	if p.data == nil {
		p.data = []byte{}
	}
	seen := map[string]bool{}
	index := map[string]int{}
	for _, r := range m.Recipients {
		at := strings.LastIndexByte(r, '@')
		if at <= 0 || at == len(r)-1 || !text(r) {
			return nil, fmt.Errorf("queue: recipient %q is not local@domain", r)
		}
		if seen[r] {
			continue // one RCPT TO given twice is one delivery
		}
		seen[r] = true
		d := strings.ToLower(r[at+1:])
		i, ok := index[d]
		if !ok {
			i = len(p.domains)
			index[d] = i
			p.domains = append(p.domains, d)
		}
		p.rcpts = append(p.rcpts, r)
		p.domain = append(p.domain, i)
	}
	return p, nil
}

// text reports whether s can be stored in a text column of both engines:
// valid UTF-8 (PostgreSQL refuses anything else) without NUL.
func text(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// clean is s made storable as text: each invalid byte sequence and NUL
// replaced by U+FFFD. Text that is only recorded (a HELO name, a remote
// server's reply) is cleaned rather than refused: a server's reply of
// invalid UTF-8 must not keep its outcome from being recorded.
func clean(s string) string {
	if text(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Enqueue stores m and returns its ID once it is committed: on SQLite,
// the write-ahead log holding it is fsynced (synchronous=FULL); on
// PostgreSQL, the server has committed it. Only then may the relay answer
// 250 (RFC 5321 §4.1.1.4, §6.1).
//
// Concurrent calls share transactions (group commit): while one commit
// runs, the messages that arrive wait for it, then the next caller writes
// all of them in one transaction with one fsync, so the rate of accepted
// messages is not the rate of fsyncs. Each call still returns only when
// its own message is committed. A call whose ctx ends before its group is
// taken returns the context's error and stores nothing; once taken, it
// waits for the commit.
//
// Received defaults to now and Expires to Received + DefaultLifetime.
// Every recipient is local@domain, its domain in canonical form (it is
// compared without case); a recipient given twice is stored once.
func (q *Queue) Enqueue(ctx context.Context, m *Message) (ID, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, fmt.Errorf("queue: enqueue: %w", err)
	}
	p, err := prepare(m, q.now())
	if err != nil {
		return 0, err
	}
	r := &request{m: p, done: make(chan struct{})}
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
	for {
		select {
		case <-r.done:
			return r.id, r.err
		default:
		}
		select {
		case <-r.done:
			return r.id, r.err
		case q.write <- struct{}{}:
			q.commitGroup(ctx)
			<-q.write
		case <-ctx.Done():
			if q.withdraw(r) {
				return 0, fmt.Errorf("queue: enqueue: %w", context.Cause(ctx))
			}
			<-r.done // its group is being committed
			return r.id, r.err
		}
	}
}

// withdraw removes r from the pending calls and reports whether it was
// still there (no group has taken it).
func (q *Queue) withdraw(r *request) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.pending {
		if p == r {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			return true
		}
	}
	return false
}

// commitGroup takes the pending calls (within the group bounds) and
// commits them together; the caller holds the write turn. If the group's
// transaction fails, each message is tried again in a transaction of its
// own, so one bad message does not fail the others.
func (q *Queue) commitGroup(ctx context.Context) {
	q.mu.Lock()
	n, size := 0, 0
	for n < len(q.pending) && n < maxGroup {
		size += len(q.pending[n].m.data)
		if n > 0 && size > maxGroupBytes {
			break
		}
		n++
	}
	group := make([]*request, n)
	copy(group, q.pending[:n])
	q.pending = append(q.pending[:0], q.pending[n:]...)
	q.mu.Unlock()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	ids := make([]ID, n)
	err := q.tx(ctx, func(tx *sql.Tx) error {
		for i, r := range group {
			id, err := q.insert(ctx, tx, r.m)
			if err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err == nil {
		q.groups.Add(1)
	}
	if err == nil || n == 1 {
		for i, r := range group {
			r.id, r.err = ids[i], err
			close(r.done)
		}
		return
	}
	for _, r := range group {
		r.err = q.tx(ctx, func(tx *sql.Tx) error {
			var err error
			r.id, err = q.insert(ctx, tx, r.m)
			return err
		})
		close(r.done)
	}
}

// insert writes one message, its deliveries (due at once) and its
// recipients in tx.
func (q *Queue) insert(ctx context.Context, tx *sql.Tx, p *prepared) (ID, error) {
	var id ID
	err := q.queryRow(ctx, tx, `
		INSERT INTO relay_messages (sender, client, helo, received, expires, size, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		p.sender, p.client, p.helo, q.at(p.received), q.at(p.expires), len(p.data), p.data).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("queue: enqueue: %w", err)
	}
	deliveries := make([]int64, len(p.domains))
	for i, d := range p.domains {
		err := q.queryRow(ctx, tx, `
			INSERT INTO relay_deliveries (message_id, domain, next_attempt)
			VALUES ($1, $2, $3) RETURNING id`, id, d, q.at(p.received)).Scan(&deliveries[i])
		if err != nil {
			return 0, fmt.Errorf("queue: enqueue: %w", err)
		}
	}
	// The recipients, recipientRows to a statement.
	for start := 0; start < len(p.rcpts); start += recipientRows {
		end := min(start+recipientRows, len(p.rcpts))
		var values strings.Builder
		args := make([]any, 0, 4*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "(%s, 'queued')", placeholders(len(args)+1, 4))
			args = append(args, id, i, deliveries[p.domain[i]], p.rcpts[i])
		}
		if err := q.exec(ctx, tx, `
			INSERT INTO relay_recipients (message_id, position, delivery_id, address, state)
			VALUES `+values.String(), args...); err != nil {
			return 0, fmt.Errorf("queue: enqueue: %w", err)
		}
	}
	return id, nil
}

// recipientRows is the most recipients one INSERT writes.
const recipientRows = 16

// maxStatements bounds the cache of prepared statements (one per distinct
// recipient count, beyond the two fixed inserts).
const maxStatements = 32

// queryRow runs query in tx as a statement prepared once per connection
// (Enqueue's inserts run thousands of times a second: parsing them each
// time would cost more than executing them).
func (q *Queue) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, tx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// exec is queryRow for a statement that returns no row.
func (q *Queue) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	var err error
	if st := q.stmt(ctx, tx, query); st != nil {
		_, err = st.ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, query, args...)
	}
	return err
}

// stmt is query prepared (once per connection) for tx; nil when the cache
// is full or the statement could not be prepared (tx then runs the text,
// and reports the error if there is one).
func (q *Queue) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	q.stmtMu.Lock()
	defer q.stmtMu.Unlock()
	st, ok := q.stmts[query]
	if !ok {
		if len(q.stmts) >= maxStatements {
			return nil
		}
		var err error
		if st, err = q.db.PrepareContext(ctx, query); err != nil {
			return nil
		}
		if q.stmts == nil {
			q.stmts = map[string]*sql.Stmt{}
		}
		q.stmts[query] = st
	}
	return tx.StmtContext(ctx, st)
}

package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/mxtrace/mxtrace/dnsname"
)

// Limits on a recipients file. They keep a mistaken path (a log file, a
// binary) from filling memory; a real list of a million addresses fits.
const (
	// MaxRecipientsFileBytes is the largest recipients file read.
	MaxRecipientsFileBytes = 256 << 20
	// MaxRecipientLine is the longest line of a recipients file: an
	// address of RFC 5321 §4.5.3.1.1 (local part, 64 octets) and
	// §4.5.3.1.2 (domain, 255 octets), with room for spaces.
	MaxRecipientLine = 1024
	// maxLocalPart is RFC 5321 §4.5.3.1.1's limit on a local part.
	maxLocalPart = 64
)

// ErrRecipientsFile is wrapped by every error of reading a recipients
// file; a *RecipientsFileError says where.
var ErrRecipientsFile = errors.New("relay: bad recipients file")

// RecipientsFileError is a line of a recipients file that cannot be used.
type RecipientsFileError struct {
	Path string
	Line int
	Err  error
}

func (e *RecipientsFileError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
}

// Unwrap makes errors.Is(err, ErrRecipientsFile) true.
func (e *RecipientsFileError) Unwrap() []error { return []error{ErrRecipientsFile, e.Err} }

// StaticList is the RecipientVerifier of --recipients FILE: the valid
// recipients listed in a file, which Reload reads again (on SIGHUP).
//
// The file format, one entry a line:
//
//	# a comment: a line whose first non-blank character is '#'
//	alice@example.com     one mailbox
//	@lists.example.com    every local part of that domain (a catch-all)
//
// Blank lines are skipped and spaces around an entry ignored. An address is
// a local part, then the last "@", then a domain name, in any case and in
// Unicode or A-label form (compared in canonical form). Local parts are
// compared without regard to ASCII case: RFC 5321 §2.4 lets the destination
// decide, and the primaries a relay stands in front of (Postfix's lookup
// tables, Exim, Exchange) fold case, so a list that refused "Alice@" where
// the primary takes it would refuse mail the primary wants. A line that is
// not an entry (no "@", an empty or over-long local part, a bad domain)
// fails the whole load, naming the line: a list silently missing addresses
// would refuse their mail for good. A local part cannot hold a space or a
// control character, so a quoted local part with a space cannot be listed
// (list its domain as a catch-all instead).
//
// A StaticList is safe for concurrent use; Reload swaps the list atomically,
// so a verification sees the old list or the new one, never a mix.
type StaticList struct {
	path string
	set  atomic.Pointer[recipientSet]
}

// recipientSet is one loaded list.
type recipientSet struct {
	mailboxes map[string]struct{}       // "local@domain", local part in lower case
	domains   map[dnsname.Name]struct{} // catch-all domains
}

// LoadStaticList reads the recipients file at path.
func LoadStaticList(path string) (*StaticList, error) {
	l := &StaticList{path: path}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reload reads the file again and replaces the list with it. When the file
// cannot be read or has a bad line, the list in use stays as it was and
// the error says why, so a mistake in an edit never empties the list.
func (l *StaticList) Reload() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecipientsFile, err)
	}
	defer f.Close()
	set, err := parseRecipients(io.LimitReader(f, MaxRecipientsFileBytes+1), l.path)
	if err != nil {
		return err
	}
	l.set.Store(set)
	return nil
}

// Len is the number of entries (mailboxes and catch-all domains) in use.
func (l *StaticList) Len() int {
	s := l.set.Load()
	return len(s.mailboxes) + len(s.domains)
}

// VerifyRecipient accepts a listed mailbox, or any mailbox of a listed
// catch-all domain, and refuses every other with 550 5.1.1 (RFC 3463
// §3.2: bad destination mailbox address).
func (l *StaticList) VerifyRecipient(_ context.Context, rcpt Address) Verdict {
	s := l.set.Load()
	if _, ok := s.domains[rcpt.Domain]; ok {
		return Verdict{}
	}
	if _, ok := s.mailboxes[mailboxKey(rcpt.Local, rcpt.Domain)]; ok {
		return Verdict{}
	}
	return unknownRecipient("no such recipient")
}

// unknownRecipient is the refusal of a recipient the primary would refuse.
func unknownRecipient(text string) Verdict {
	return Verdict{Code: 550, Enhanced: "5.1.1", Message: text, Reason: "unknown-recipient"}
}

// mailboxKey is the list's key for a mailbox: the local part in ASCII
// lower case (other characters as they are), "@", the canonical domain.
func mailboxKey(local string, domain dnsname.Name) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, local) + "@" + string(domain)
}

// parseRecipients reads a recipients file (StaticList's format) from r;
// name is used in errors.
func parseRecipients(r io.Reader, name string) (*recipientSet, error) {
	set := &recipientSet{mailboxes: map[string]struct{}{}, domains: map[dnsname.Name]struct{}{}}
	br := bufio.NewReaderSize(r, MaxRecipientLine+2)
	total := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if total > MaxRecipientsFileBytes {
			return nil, &RecipientsFileError{Path: name, Line: n, Err: fmt.Errorf("the file is longer than %d octets", MaxRecipientsFileBytes)}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &RecipientsFileError{Path: name, Line: n, Err: fmt.Errorf("line longer than %d octets", MaxRecipientLine)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &RecipientsFileError{Path: name, Line: n, Err: err}
		}
		if perr := set.add(strings.TrimSpace(string(line))); perr != nil {
			return nil, &RecipientsFileError{Path: name, Line: n, Err: perr}
		}
		if err != nil {
			return set, nil
		}
	}
}

// add adds one line's entry; blank lines and comments add nothing.
func (s *recipientSet) add(entry string) error {
	if entry == "" || entry[0] == '#' {
		return nil
	}
	at := strings.LastIndexByte(entry, '@')
	if at < 0 {
		return fmt.Errorf("%q is neither an address nor @domain", entry)
	}
	local := entry[:at]
	d, err := dnsname.Parse(entry[at+1:])
	if err != nil {
		return fmt.Errorf("%q: %w", entry, err)
	}
	if local == "" {
		s.domains[d] = struct{}{}
		return nil
	}
	if len(local) > maxLocalPart {
		return fmt.Errorf("%q: local part longer than %d octets (RFC 5321 §4.5.3.1.1)", entry, maxLocalPart)
	}
	if strings.ContainsFunc(local, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q: local part with a space or control character", entry)
	}
	s.mailboxes[mailboxKey(local, d)] = struct{}{}
	return nil
}

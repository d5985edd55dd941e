package relay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mxtrace/mxtrace/dnsname"
)

func addr(local, domain string) Address {
	return Address{Local: local, Domain: dnsname.MustParse(domain)}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStaticList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recipients")
	writeFile(t, path, "# the valid recipients\n\n  alice@Example.COM  \nBob.Smith@example.com\r\n@lists.example.com\npostmaster@bücher.example\nlast@example.org")
	l, err := LoadStaticList(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 5 {
		t.Errorf("Len = %d, want 5", l.Len())
	}
	for _, tc := range []struct {
		rcpt Address
		ok   bool
	}{
		{addr("alice", "example.com"), true},
		{addr("ALICE", "example.com"), true}, // local parts compared without case
		{addr("bob.smith", "example.com"), true},
		{addr("anyone", "lists.example.com"), true},
		{addr("postmaster", "xn--bcher-kva.example"), true},
		{addr("last", "example.org"), true}, // the last line has no line ending
		{addr("carol", "example.com"), false},
		{addr("alice", "example.org"), false},
		{addr("anyone", "sub.lists.example.com"), false}, // a catch-all covers its domain only
		{addr("alice", "lists.example.com.evil.example"), false},
	} {
		v := l.VerifyRecipient(context.Background(), tc.rcpt)
		if v.Accepted() != tc.ok {
			t.Errorf("%s: accepted %v, want %v (%v)", tc.rcpt, v.Accepted(), tc.ok, v.Error())
		}
		if !tc.ok && (v.Code != 550 || v.Enhanced != "5.1.1" || v.Reason != "unknown-recipient") {
			t.Errorf("%s: refused with %q (%s), want 550 5.1.1 unknown-recipient", tc.rcpt, v.Error(), v.Reason)
		}
	}
}

func TestStaticListReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recipients")
	writeFile(t, path, "alice@example.com\n")
	l, err := LoadStaticList(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A bad edit: the reload fails, naming the line, and the old list stays.
	writeFile(t, path, "bob@example.com\nnot an address\n")
	err = l.Reload()
	var fe *RecipientsFileError
	if !errors.As(err, &fe) || fe.Line != 2 || !errors.Is(err, ErrRecipientsFile) {
		t.Fatalf("Reload of a bad file: %v, want a RecipientsFileError at line 2", err)
	}
	if !l.VerifyRecipient(ctx, addr("alice", "example.com")).Accepted() || l.VerifyRecipient(ctx, addr("bob", "example.com")).Accepted() {
		t.Error("a failed reload changed the list")
	}
	// A missing file fails the same way.
	os.Remove(path)
	if err := l.Reload(); !errors.Is(err, ErrRecipientsFile) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file: %v", err)
	}
	// A good edit replaces the list.
	writeFile(t, path, "bob@example.com\n")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if l.VerifyRecipient(ctx, addr("alice", "example.com")).Accepted() || !l.VerifyRecipient(ctx, addr("bob", "example.com")).Accepted() {
		t.Error("the reload did not replace the list")
	}
}

// TestStaticListReloadConcurrent verifies while reloading: each
// verification sees one whole list (run with -race). Every list holds
// keep@ beside a@ or b@, so a verification that saw a list half read, or
// none, refuses keep@. (a@ and b@ checked one after the other may each
// meet the list without it, so they prove nothing together.)
func TestStaticListReloadConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recipients")
	writeFile(t, path, "keep@example.com\na@example.com\n")
	l, err := LoadStaticList(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if !l.VerifyRecipient(context.Background(), addr("keep", "example.com")).Accepted() {
					t.Error("a verification saw a list without keep@")
					return
				}
				l.VerifyRecipient(context.Background(), addr("a", "example.com"))
			}
		})
	}
	for i := range 50 {
		other := "a@example.com\n"
		if i%2 == 1 {
			other = "b@example.com\n"
		}
		writeFile(t, path+".new", "keep@example.com\n"+other)
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
		if err := l.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// The last reload (i = 49) left keep@ and b@.
	if l.VerifyRecipient(context.Background(), addr("a", "example.com")).Accepted() || !l.VerifyRecipient(context.Background(), addr("b", "example.com")).Accepted() {
		t.Error("the last reload is not the list in use")
	}
}

func TestParseRecipientsErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"alice\n", "neither an address"},
		{"alice@\n", "alice@"},
		{"alice@exa mple.com\n", "exa mple"},
		{"alice@-bad-.example\n", "bad"},
		{strings.Repeat("x", 65) + "@example.com\n", "longer than 64"},
		{"al\x01ice@example.com\n", "control"},
		{"ok@example.com\n" + strings.Repeat("y", MaxRecipientLine+10) + "\n", "line longer"},
	} {
		_, err := parseRecipients(strings.NewReader(tc.text), "f")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want an error mentioning %q", tc.text, err, tc.want)
		}
	}
}

func FuzzParseRecipients(f *testing.F) {
	f.Add([]byte("# c\nalice@example.com\n@example.org\n"))
	f.Add([]byte("a@b@c.example\r\n\n \t\n"))
	f.Add([]byte("\"q u\"@example.com"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseRecipients(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		// Every mailbox loaded is found again by its own address.
		for key := range set.mailboxes {
			at := strings.LastIndexByte(key, '@')
			l := &StaticList{}
			l.set.Store(set)
			if !l.VerifyRecipient(context.Background(), Address{Local: asciiUpper(key[:at]), Domain: dnsname.Name(key[at+1:])}).Accepted() {
				t.Fatalf("%q loaded but not found", key)
			}
		}
	})
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}

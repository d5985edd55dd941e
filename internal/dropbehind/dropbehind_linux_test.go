package dropbehind

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// write writes size bytes of a pattern to w in 256 kB writes, as the
// scan's buffered writer does, and returns their hash.
func write(t *testing.T, w io.Writer, size int) [32]byte {
	t.Helper()
	buf := make([]byte, 256<<10)
	h := sha256.New()
	for off := 0; off < size; off += len(buf) {
		for i := range buf {
			buf[i] = byte((off + i) * 7 / 5)
		}
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
		h.Write(buf)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// resident is the share of the pages of f's [off, off+n) in the page
// cache (mincore(2)).
func resident(t *testing.T, f *os.File, off, n int64) float64 {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (n+page-1)/page)
	// x/sys/unix has no wrapper for mincore(2).
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(len(vec))
}

func fileHash(t *testing.T, path string, skip int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(skip, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// TestDropsWhatIsWritten writes eight chunks through a Writer and checks
// that the file holds exactly what was written, and that the part more
// than a Window behind left the page cache while the same writes made
// without the Writer stay cached: the contrast shows the file system
// keeps written pages, so the drop is the Writer's doing.
func TestDropsWhatIsWritten(t *testing.T) {
	const size = 8 * Chunk
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC {
		// The page cache is where such a file lives: nothing can be
		// dropped, and the Writer's calls change nothing.
		t.Skipf("%s is on a memory file system: its pages are the file", dir)
	}

	plain, err := os.Create(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	write(t, plain, size)
	if r := resident(t, plain, 0, 2*Chunk); r < 0.9 {
		t.Skipf("this file system (under %s) keeps only %.0f%% of a file just written in the page cache: nothing to tell the Writer's drop from", dir, 100*r)
	}

	path := filepath.Join(dir, "out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f)
	want := write(t, w, size)
	if r := resident(t, f, 0, size-Window-Chunk); r > 0.1 {
		t.Errorf("%.0f%% of the part more than a window behind is still cached, want at most 10%%", 100*r)
	}
	if r := resident(t, f, size-Chunk, Chunk); r < 0.9 {
		t.Errorf("only %.0f%% of the last chunk is cached: the Writer dropped what it had not yet passed", 100*r)
	}
	// Read back last: reading brings the pages into the cache again.
	if got := fileHash(t, path, 0); got != want {
		t.Fatal("the file does not hold what was written")
	}
}

// TestAppendStartsAtTheEnd: a file opened with O_APPEND over earlier
// lines (scan --resume) keeps them, gets the new bytes after them, and
// the new bytes' older part is dropped.
func TestAppendStartsAtTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	head := bytes.Repeat([]byte("line\n"), 1000)
	if err := os.WriteFile(path, head, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f)
	if w.pos != int64(len(head)) {
		t.Fatalf("the Writer starts at %d, want the end, %d", w.pos, len(head))
	}
	want := write(t, w, 6*Chunk)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(head)], head) {
		t.Fatal("the earlier lines changed")
	}
	if fileHash(t, path, int64(len(head))) != want {
		t.Fatal("the appended part does not hold what was written")
	}
	if w.dropped <= int64(len(head)) {
		t.Errorf("nothing dropped after %d bytes appended (dropped up to %d)", 6*Chunk, w.dropped)
	}
}

// TestPipeIsOnlyWritten: on a pipe there is no page cache to bound; the
// Writer writes through and tries nothing else.
func TestPipeIsOnlyWritten(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := New(pw)
	if w.on {
		t.Fatal("the Writer would bound a pipe's page cache")
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	if _, err := w.Write([]byte("a line\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if b := <-got; string(b) != "a line\n" {
		t.Fatalf("read %q from the pipe", b)
	}
}

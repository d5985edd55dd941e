// Package dropbehind keeps a long sequential output file from filling
// the page cache.
//
// A scan of a million domains in check mode writes about 8.5 GB of JSON
// lines. Left to itself the kernel keeps every written page cached until
// memory runs short: the user's other cached files are pushed out, and
// on a virtual machine that backs its memory lazily each new page also
// costs a fault in the host. On the bench machine (docs/performance.md,
// "The output's page cache") writing 4 GB took 45 s of system time
// plainly and 2.1 s through a Writer, and a 1M audit spent 145-166 µs of
// system time a domain against about 50 at 100k.
//
// The Writer does what PostgreSQL's *_flush_after settings and dd's
// oflag=nocache do: every Chunk bytes it starts the writeback of what was
// written (sync_file_range(2), SYNC_FILE_RANGE_WRITE); once more than
// Window bytes are written but not dropped, it waits for the writeback of
// the older part to finish and tells the kernel that part will not be
// read again (posix_fadvise(2), POSIX_FADV_DONTNEED), which frees its
// clean pages for the next writes. So the file holds about Window bytes
// of page cache however long it grows, and the same pages are reused.
//
// Only a regular file on Linux is handled this way; anything else (a
// pipe, a terminal, another system) is written to as it is.
package dropbehind

import (
	"io"
	"os"
)

// Sizes of the writeback steps. Chunk is large enough that the two calls
// it costs are nothing beside the writes (8 MB is about a thousand JSON
// lines of a check scan), and Window small beside any machine's memory
// while leaving the disk several chunks of slack before the Writer waits.
const (
	Chunk  = 8 << 20
	Window = 4 * Chunk
)

// Writer writes to a file and bounds the page cache its written part
// holds. Like the *os.File under it, it is not safe for concurrent use.
type Writer struct {
	f *os.File
	// pos is where the next write lands, as far as the Writer knows;
	// started is where the writeback started so far ends, dropped where
	// the part already dropped from the cache ends. A file opened with
	// O_APPEND, or written to by others, may put writes elsewhere: the
	// Writer asks the file its real position at each chunk.
	pos, started, dropped int64
	on                    bool
}

// New wraps f. On a file it cannot handle it returns a Writer that only
// writes.
func New(f *os.File) *Writer {
	w := &Writer{f: f}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !supported {
		return w
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return w
	}
	// O_APPEND leaves the offset at 0 until the first write, which goes
	// to the end.
	pos = max(pos, st.Size())
	w.pos, w.started, w.dropped, w.on = pos, pos, pos, true
	return w
}

// Write writes p to the file. When the writeback of an older part
// reports an error (a failed device, a full disk found at allocation),
// Write returns it: those bytes did not reach the disk.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil || !w.on {
		return n, err
	}
	w.pos += int64(n)
	if w.pos-w.started < Chunk {
		return n, nil
	}
	return n, w.step()
}

// step starts the writeback of the chunks written since the last step
// and drops what lies more than Window behind.
func (w *Writer) step() error {
	if pos, err := w.f.Seek(0, io.SeekCurrent); err == nil {
		w.pos = pos
	}
	if w.pos < w.started { // and so before dropped, which never passes started
		// Written elsewhere than the Writer thought: begin again
		// from here.
		w.started, w.dropped = w.pos, w.pos
		return nil
	}
	ok, err := startWriteback(w.f, w.started, w.pos-w.started)
	if !ok {
		w.on = false
		return nil
	}
	if err != nil {
		return err
	}
	w.started = w.pos
	if w.started-w.dropped <= Window {
		return nil
	}
	// Keep the last chunk's writeback running; wait for and drop the rest.
	end := w.started - Chunk
	if err := dropWritten(w.f, w.dropped, end-w.dropped); err != nil {
		return err
	}
	w.dropped = end
	return nil
}

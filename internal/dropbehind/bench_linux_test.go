package dropbehind

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWrite writes a file of DROPBEHIND_BYTES (default 1 GiB) in
// 256 kB writes, plainly and through a Writer, and reports the system
// time per MB written. On the bench machine the difference shows past
// the 1-2 GB of pages earlier writes freed (docs/performance.md, "The
// output's page cache"):
//
//	DROPBEHIND_BYTES=4294967296 go test -run x -bench Write -benchtime 1x ./internal/dropbehind
func BenchmarkWrite(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv("DROPBEHIND_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("DROPBEHIND_BYTES=%q: want a positive number of bytes", v)
		}
		size = n
	}
	for _, tc := range []struct {
		name string
		wrap func(*os.File) io.Writer
	}{
		{"plain", func(f *os.File) io.Writer { return f }},
		{"dropbehind", func(f *os.File) io.Writer { return New(f) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 256<<10)
			for i := range buf {
				buf[i] = byte('a' + i%26)
			}
			path := filepath.Join(b.TempDir(), "out")
			var sys time.Duration
			b.SetBytes(size)
			for b.Loop() {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				w := tc.wrap(f)
				before := systemTime(b)
				for n := int64(0); n < size; n += int64(len(buf)) {
					if _, err := w.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				sys += systemTime(b) - before
				f.Close()
				os.Remove(path)
			}
			b.ReportMetric(float64(sys.Microseconds())/float64(b.N)/float64(size>>20), "sys-µs/MB")
		})
	}
}

func systemTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Stime.Nano())
}

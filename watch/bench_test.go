package watch_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mxtrace/mxtrace/watch"
)

func readSnapshot(b *testing.B, file string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDiffStored is what "mxtrace diff" and "history" pay per pair
// of stored results: two snapshots decoded and compared.
func BenchmarkDiffStored(b *testing.B) {
	v1, v2 := readSnapshot(b, "v1.snapshot.json"), readSnapshot(b, "v2.snapshot.json")
	for b.Loop() {
		o, err := watch.ParseSnapshot(v1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := watch.ParseSnapshot(v2)
		if err != nil {
			b.Fatal(err)
		}
		if len(watch.Diff(o, n)) == 0 {
			b.Fatal("no changes")
		}
	}
}

// BenchmarkDiff is the comparison alone.
func BenchmarkDiff(b *testing.B) {
	o, err := watch.ParseSnapshot(readSnapshot(b, "v1.snapshot.json"))
	if err != nil {
		b.Fatal(err)
	}
	n, err := watch.ParseSnapshot(readSnapshot(b, "v2.snapshot.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		watch.Diff(o, n)
	}
}

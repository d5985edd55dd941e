package dropbehind_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mxtrace/mxtrace/internal/dropbehind"
)

// A long output file written through a buffer and a dropbehind.Writer
// holds about dropbehind.Window bytes of page cache, however long it
// grows.
func Example() {
	dir, err := os.MkdirTemp("", "dropbehind")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	bw := bufio.NewWriterSize(dropbehind.New(f), 256<<10)
	for i := range 3 {
		fmt.Fprintf(bw, "{\"line\":%d}\n", i)
	}
	if err := bw.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(f.Name())
	fmt.Print(string(b))
	// Output:
	// {"line":0}
	// {"line":1}
	// {"line":2}
}

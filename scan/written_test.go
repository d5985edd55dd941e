package scan

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/route"
)

// TestWritten: Written sees every line written, in output order, with the
// value it encodes; an entry that is not a domain comes as its
// ErrorRecord. An error from Written stops the run with it.
func TestWritten(t *testing.T) {
	var got []string
	var out bytes.Buffer
	cfg := Config{Job: instant, Concurrency: 4, Written: func(it Item, value any, line []byte) error {
		switch v := value.(type) {
		case *route.Plan:
			got = append(got, v.Domain)
		case *ErrorRecord:
			got = append(got, "error:"+v.Domain)
		default:
			t.Errorf("value %T", value)
		}
		if !strings.Contains(string(line), it.Key()) {
			t.Errorf("line %q is not %s's", line, it.Key())
		}
		return nil
	}}
	if _, err := Run(t.Context(), Lines(strings.NewReader("a.example\nnot a domain!\nb.example\n")), &out, cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example", "error:not a domain!", "b.example"}; !slices.Equal(got, want) {
		t.Errorf("Written saw %q; want %q", got, want)
	}
	if !strings.HasPrefix(out.String(), `{"schema"`) || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("output %q", out.String())
	}

	boom := errors.New("database gone")
	cfg.Written = func(Item, any, []byte) error { return boom }
	if _, err := Run(t.Context(), Lines(strings.NewReader(list(5000))), &out, cfg); !errors.Is(err, boom) {
		t.Errorf("Run = %v; want %v", err, boom)
	}
}

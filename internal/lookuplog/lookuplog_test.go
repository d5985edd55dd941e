package lookuplog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type result struct{ n int }

func TestRun(t *testing.T) {
	attrs := func(r *result) []any { return []any{"n", r.n} }
	for _, tc := range []struct {
		name string
		res  *result
		err  error
		want []string
		not  []string
	}{
		{"result", &result{n: 3}, nil, []string{"msg=\"x lookup\"", "domain=example.test", "duration=", " n=3"}, []string{"err="}},
		{"error", nil, errors.New("boom"), []string{"domain=example.test", "err=boom"}, []string{" n="}},
		{"both", &result{n: 1}, errors.New("boom"), []string{" n=1", "err=boom"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			res, err := Run(log, "x lookup", []any{"domain", "example.test"},
				func() (*result, error) { return tc.res, tc.err }, attrs)
			if res != tc.res || err != tc.err {
				t.Fatalf("Run = %v, %v: want %v, %v", res, err, tc.res, tc.err)
			}
			out := buf.String()
			if strings.Count(out, "\n") != 1 {
				t.Errorf("logged %q: want one line", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("logged %q: want %q", out, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("logged %q: want no %q", out, w)
				}
			}
		})
	}
}

func TestRunNilLogger(t *testing.T) {
	want := &result{n: 2}
	res, err := Run(nil, "x lookup", nil, func() (*result, error) { return want, nil },
		func(*result) []any { t.Error("result attributes asked for with no logger"); return nil })
	if res != want || err != nil {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

// TestRunDebugDisabled: a logger that drops debug records is not asked
// for the result's attributes, and logs nothing.
func TestRunDebugDisabled(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	want := &result{n: 2}
	res, err := Run(log, "x lookup", []any{"domain", "example.test"}, func() (*result, error) { return want, nil },
		func(*result) []any { t.Error("result attributes asked for with debug disabled"); return nil })
	if res != want || err != nil {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %q with debug disabled", buf.String())
	}
}
